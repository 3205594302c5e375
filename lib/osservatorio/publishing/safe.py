"""What users write, made safe for where it goes: markdown shown in reports, spreadsheet cells.

Theme texts (title, question, practice, outcome labels), entity and comune names and every
other text column of the sources reach the reports and the exports. In markdown
(``show.para``, headlines) they are backslash-escaped, so ``<script>`` or ``**`` in a name
is shown as written, never run or formatted. HTML is escaped where it is built (jinja2
autoescape, ``html.escape``, the pandas Styler's ``escape="html"``).

In CSV and XLSX exports, a text cell that a spreadsheet would run as a formula (it starts
with ``=``, ``+``, ``-``, ``@``, tab or carriage return: OWASP, CSV injection) gets a
leading single quote; numbers, missing values and booleans are left as they are.
``write_csv`` and ``write_sheet`` (and ``workbook.write_xlsx``) are how every export is
written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"

# Characters with a meaning anywhere on a line (CommonMark inline syntax, raw HTML, GFM
# tables and strikethrough, the $ of the math that Jupyter and nbconvert render, and the
# colon of a bare URL, which nbconvert would turn into a link).
_MD_INLINE = re.compile(r"([\\`*_\[\]<>&~|$]|:(?=//))")
# At the start of a line: a heading, list item, setext underline or thematic break.
_MD_LINE_START = re.compile(r"^(\d{0,9})([#+=.)-])(?=\s|$|[#=-])")


def escape_markdown(text: Any) -> str:
    """``text`` as inline markdown that renders to that text (line breaks become spaces,
    outer spaces go): every character markdown or HTML would read as syntax is backslash-escaped."""
    s = " ".join(str(text).splitlines()).strip()
    s = _MD_INLINE.sub(r"\\\1", s)
    return _MD_LINE_START.sub(r"\1\\\2", s)


def is_formula_like(value: Any) -> bool:
    """True for a text value a spreadsheet would read as a formula."""
    return isinstance(value, str) and value.startswith(FORMULA_STARTS)


def neutralise_cell(value: Any) -> Any:
    """A text value with a leading quote when it would run as a formula; anything else as is."""
    return QUOTE + value if is_formula_like(value) else value


def neutralise_frame(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its text cells and column names neutralised (a copy when anything changed).

    Numeric, boolean and datetime columns are not touched: a negative number stays a number."""
    changed: dict[Any, pd.Series] = {}
    for position, (_, series) in enumerate(df.items()):
        dtype = series.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            categories = list(dtype.categories)
            if any(is_formula_like(c) for c in categories):
                changed[position] = series.cat.rename_categories([neutralise_cell(c) for c in categories])
            continue
        if (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
                or pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype)):
            continue
        if dtype != object and pd.api.types.is_string_dtype(dtype):  # pandas' string dtypes: vectorised
            mask = series.str.startswith(FORMULA_STARTS).fillna(False).to_numpy(dtype=bool)
            if mask.any():
                changed[position] = series.where(~mask, QUOTE + series)
            continue
        values = series.tolist()
        if any(is_formula_like(v) for v in values):
            changed[position] = pd.Series([neutralise_cell(v) for v in values], index=series.index, dtype=dtype,
                                          name=series.name)
    renamed = [neutralise_cell(c) for c in df.columns]
    if not changed and renamed == list(df.columns):
        return df
    out = df.copy()
    for position, series in changed.items():
        out.isetitem(position, series)
    out.columns = renamed
    return out


def write_csv(df: pd.DataFrame, path: str | Path, **kwargs: Any) -> Path:
    """Write ``df`` as CSV without its index, text cells neutralised (fields quoted as usual)."""
    kwargs.setdefault("index", False)
    neutralise_frame(df).to_csv(path, **kwargs)
    return Path(path)


def write_sheet(writer: pd.ExcelWriter, df: pd.DataFrame, sheet_name: str) -> None:
    """Write ``df`` without its index to a sheet of an open ``pd.ExcelWriter``, text cells
    neutralised (openpyxl would store a text starting with "=" as a formula)."""
    neutralise_frame(df).to_excel(writer, sheet_name=sheet_name, index=False)
