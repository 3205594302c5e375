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
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from osservatorio.publishing.safe import neutralise_frame


def write_xlsx(path: str | Path, sheets: dict[str, pd.DataFrame], layout: dict[str, dict] | None = None) -> Path:
    """Write each frame (no index) to its sheet of a new workbook at ``path``, atomically.

    ``layout`` may give, per sheet, ``freeze`` (row, column of the first scrolling cell, as
    XlsxWriter's ``freeze_panes``), ``width`` (every column) and ``widths`` (column name to
    width), applied on both paths."""
    layout = layout or {}
    path = Path(path)
    sheets = {name: neutralise_frame(df) for name, df in sheets.items()}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".xlsx", dir=path.parent)
    os.close(fd)
    try:
        if all(_supported(df) for df in sheets.values()):
            _write_fast(tmp, sheets, layout)
        else:
            with pd.ExcelWriter(tmp, engine="xlsxwriter",
                                engine_kwargs={"options": {"strings_to_formulas": False, "strings_to_urls": False}}) as xl:
                for name, df in sheets.items():
                    df.to_excel(xl, sheet_name=name, index=False)
                    _apply_layout(xl.sheets[name], df, layout.get(name))
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


def _write_fast(path: str, sheets: dict[str, pd.DataFrame], layout: dict[str, dict]) -> None:
    import xlsxwriter

    with xlsxwriter.Workbook(path, {"constant_memory": True, "strings_to_numbers": False,
                                    "strings_to_formulas": False, "strings_to_urls": False}) as book:
        for name, df in sheets.items():
            ws = book.add_worksheet(name)
            _apply_layout(ws, df, layout.get(name))
            for col, header in enumerate(df.columns):
                ws.write_string(0, col, str(header))
            columns = [_column_writer(ws, df[c]) for c in df.columns]
            for row in range(len(df)):  # constant memory: rows in order
                for col, (values, write) in enumerate(columns):
                    write(row + 1, col, values[row])
