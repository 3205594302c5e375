"""Fast .xlsx export of data frames (one sheet each), for large tables.

pandas' Excel writers spend microseconds per cell in Python objects (openpyxl about
12 µs: 5 s for the 450,000 cells of indicatori.xlsx, in every theme run). Here each column
is handed to XlsxWriter's typed writers in constant-memory mode, a row at a time: the same
cells as ``DataFrame.to_excel(index=False)`` with openpyxl (a header row of column names;
numbers read back bit for bit equal; missing values as empty cells; infinities as the text
``inf``/``-inf``, pandas' ``inf_rep``; booleans as booleans). Frames with dates or other
types go through pandas. Either way text cells are neutralised first (``safe.neutralise_frame``:
a text a spreadsheet would run as a formula gets a leading quote) and XlsxWriter is told to
write strings as strings, never as formulas, numbers or links.

Workbooks are cached by content (``outputs/.cache/workbooks/<key>/``, the entry format of
the source cache: checked against its SHA-256 on every read, rebuilt when it does not
match): the key hashes the sheets' names, columns, dtypes and values, the layout, this
module's and ``safe``'s code and XlsxWriter's version. A theme rerun on the same data,
or the same table written by another run, copies the file instead of writing every cell
again (seconds per run for the indicator and transferability workbooks).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from osservatorio import paths
from osservatorio.publishing.safe import neutralise_frame

CACHE_PACKAGES = ("XlsxWriter", "pandas", "numpy")
WORKBOOK_FILE = "workbook.xlsx"


def cache_root() -> Path:
    """``outputs/.cache/workbooks``: created by the first write."""
    return paths.cache_dir() / "workbooks"


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    from osservatorio.data.cache import code_hash

    return code_hash(("publishing/workbook.py", "publishing/safe.py"), CACHE_PACKAGES)


def entry_store_read(key: str) -> bytes | None:
    """The cached workbook of ``key`` (checked), or None."""
    from osservatorio.data import cache as entry_store

    return entry_store.read_file_entry(cache_root(), key, WORKBOOK_FILE)


def content_key(sheets: dict[str, pd.DataFrame], layout: dict[str, dict]) -> str:
    """SHA-256 of everything a workbook's bytes depend on: sheet names and order, column
    names, dtypes and every value (numbers by their exact bits), the layout and the code."""
    h = hashlib.sha256(code_fingerprint().encode())
    h.update(json.dumps(layout, sort_keys=True, default=str).encode())
    for name, df in sheets.items():
        h.update(json.dumps([name, [str(c) for c in df.columns], [str(d) for d in df.dtypes], len(df)]).encode())
        for col in range(df.shape[1]):
            series = df.iloc[:, col]
            if pd.api.types.is_numeric_dtype(series.dtype) and not isinstance(series.dtype, pd.CategoricalDtype):
                values = series.to_numpy(dtype=float, na_value=np.nan) if not pd.api.types.is_bool_dtype(series.dtype) \
                    else series.to_numpy(dtype=bool)
                h.update(np.ascontiguousarray(values).tobytes())
            elif series.dtype != object:  # string or categorical: pandas hashes the text of each value
                h.update(pd.util.hash_pandas_object(series, index=False, categorize=False).to_numpy().tobytes())
                h.update(series.isna().to_numpy().tobytes())
            else:  # mixed: each value with its type, so 1 and "1" differ
                h.update(json.dumps([None if v is None or v is pd.NA or (isinstance(v, float) and v != v)
                                     else [type(v).__name__, str(v)] for v in series.astype(object).tolist()]
                                    ).encode())
    return h.hexdigest()


def write_xlsx(path: str | Path, sheets: dict[str, pd.DataFrame], layout: dict[str, dict] | None = None,
               cache: bool = True) -> Path:
    """Write each frame (no index) to its sheet of a new workbook at ``path``, atomically;
    with ``cache``, a copy of the cached workbook of the same content when there is one.

    ``layout`` may give, per sheet, ``freeze`` (row, column of the first scrolling cell, as
    XlsxWriter's ``freeze_panes``), ``width`` (every column) and ``widths`` (column name to
    width), applied on both paths."""
    from osservatorio.data import cache as entry_store

    layout = layout or {}
    path = Path(path)
    sheets = {name: neutralise_frame(df) for name, df in sheets.items()}
    key = content_key(sheets, layout) if cache else None
    cached = entry_store_read(key) if key else None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".xlsx", dir=path.parent)
    os.close(fd)
    try:
        if cached is not None:
            Path(tmp).write_bytes(cached)
        elif all(_supported(df) for df in sheets.values()):
            _write_fast(tmp, sheets, layout)
        else:
            with pd.ExcelWriter(tmp, engine="xlsxwriter",
                                engine_kwargs={"options": {"strings_to_formulas": False, "strings_to_urls": False}}) as xl:
                for name, df in sheets.items():
                    df.to_excel(xl, sheet_name=name, index=False)
                    _apply_layout(xl.sheets[name], df, layout.get(name))
        if key and cached is None:
            entry_store.write_file_entry(cache_root(), key, {WORKBOOK_FILE: Path(tmp).read_bytes()})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _supported(df: pd.DataFrame) -> bool:
    return all(pd.api.types.is_numeric_dtype(d) or pd.api.types.is_string_dtype(d) or isinstance(d, pd.CategoricalDtype)
               for d in df.dtypes)


def _column_writer(worksheet, series: pd.Series):
    """(values, write) for a column: ``write(row, col, value)`` skips missing values."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.tolist(), worksheet.write_boolean

    def write_number(row: int, col: int, v: float) -> None:
        if v != v:
            return
        if v in (float("inf"), float("-inf")):
            worksheet.write_string(row, col, "inf" if v > 0 else "-inf")
        else:
            worksheet.write_number(row, col, v)

    if pd.api.types.is_numeric_dtype(series.dtype) and not isinstance(series.dtype, pd.CategoricalDtype):
        return series.to_numpy(dtype=float, na_value=np.nan).tolist(), write_number
    values = series.astype(object).where(series.notna(), None).tolist()

    def write_text(row: int, col: int, v: object) -> None:
        """Text as text; the numbers and booleans of a mixed column as numbers and
        booleans, as pandas writes them."""
        if v is None or (isinstance(v, str) and v == ""):
            return
        if isinstance(v, (bool, np.bool_)):
            worksheet.write_boolean(row, col, bool(v))
        elif isinstance(v, (int, float, np.integer, np.floating)):
            write_number(row, col, float(v))
        else:
            worksheet.write_string(row, col, str(v))

    return values, write_text


def _apply_layout(ws, df: pd.DataFrame, spec: dict | None) -> None:
    """Column widths and frozen panes of an XlsxWriter worksheet (before its rows, as
    constant-memory mode needs)."""
    if not spec:
        return
    widths = spec.get("widths", {})
    for col, name in enumerate(df.columns):
        width = widths.get(name, spec.get("width"))
        if width is not None:
            ws.set_column(col, col, width)
    if "freeze" in spec:
        ws.freeze_panes(*spec["freeze"])


_FIXED_CREATED = datetime(2000, 1, 1, tzinfo=timezone.utc)


def _write_fast(path: str, sheets: dict[str, pd.DataFrame], layout: dict[str, dict]) -> None:
    import xlsxwriter

    with xlsxwriter.Workbook(path, {"constant_memory": True, "strings_to_numbers": False,
                                    "strings_to_formulas": False, "strings_to_urls": False}) as book:
        # a fixed creation date (XlsxWriter's default is the second of writing): the same
        # content gives the same bytes, so a cached copy equals a fresh write
        book.set_properties({"created": _FIXED_CREATED})
        for name, df in sheets.items():
            ws = book.add_worksheet(name)
            _apply_layout(ws, df, layout.get(name))
            for col, header in enumerate(df.columns):
                ws.write_string(0, col, str(header))
            columns = [_column_writer(ws, df[c]) for c in df.columns]
            for row in range(len(df)):  # constant memory: rows in order
                for col, (values, write) in enumerate(columns):
                    write(row + 1, col, values[row])
