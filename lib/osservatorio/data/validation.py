"""Validate a source table against its pandera schema in bounded time and memory.

pandera's lazy validation keeps every failure case as a row of a frame and, when a column
does not convert, coerces it again element by element: 2 million bad numbers took 41 s
and 3.2 GB, and each was reported twice (as unreadable, then as failing ``>= 0`` on the
text 'TypeError(...)'). The schemas stay pandera's (``schemas.py``) and so do their
checks: each ``Check`` runs here once on a whole column, on the cells that passed the
checks before it, so a bad cell is reported once. Every failure is counted; only the
first ``MAX_LISTED`` of each kind are described, quoting the cell as written in the file.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Final

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.compute as pc

from osservatorio.data.reading import SourceText
from osservatorio.exceptions import quoted

MAX_LISTED: Final = 20
NUMBER: Final = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
DISTRICT_COLUMNS: Final = ["ambito_sociale", "distretto_sanitario", "asl"]

if TYPE_CHECKING:
    import pandera.pandas as pa


@dataclass
class Failures:
    """Problems found in the sources: every one counted (``total``, and per file and column
    in ``counts``), the first ``MAX_LISTED`` of each kind kept in ``items`` (enough for the
    first ``MAX_LISTED`` overall in file and row order); ``notes``: how a file was read."""

    items: list[dict] = field(default_factory=list)
    total: int = 0
    counts: Counter = field(default_factory=Counter)
    notes: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.total > 0

    def add(self, file: str, row: int | None, column: str | None, reason: str) -> None:
        self.items.append({"file": file, "row": row, "column": column, "reason": reason})
        self.total += 1
        self.counts[(file, column)] += 1

    def add_rows(self, file: str, column: str | None, rows: pd.Index, reason: Callable[[object], str]) -> None:
        """``len(rows)`` failures of one kind; ``reason(label)`` describes the first few."""
        if len(rows) == 0:
            return
        for label in rows[:MAX_LISTED]:
            self.items.append({"file": file, "row": int(label) + 2, "column": column,  # header is line 1
                               "reason": reason(label)})
        self.total += len(rows)
        self.counts[(file, column)] += len(rows)

    def extend(self, other: "Failures") -> None:
        self.items += other.items
        self.total += other.total
        self.counts.update(other.counts)
        self.notes.update(other.notes)

    def listed(self) -> list[dict]:
        """The first ``MAX_LISTED`` failures: files in the order met, whole-file ones first, then by row."""
        order = {f: i for i, f in enumerate(dict.fromkeys(item["file"] for item in self.items))}
        ranked = sorted(self.items, key=lambda f: (order[f["file"]], f["row"] or 0))
        return ranked[:MAX_LISTED]

    def format(self) -> str:
        """One line per listed failure ('file, row R, column 'c': reason'), a note per file
        read as Windows-1252, and '... and K more' with K exact and where they are."""
        listed = self.listed()
        files = dict.fromkeys(f["file"] for f in self.items)
        lines = [f"  note: {file} {self.notes[file]}" for file in files if file in self.notes]
        for f in listed:
            where = f["file"] + (f", row {f['row']}" if f.get("row") else "")
            where += f", column '{f['column']}'" if f.get("column") else ""
            lines.append(f"  {where}: {f['reason']}")
        rest = self.total - len(listed)
        if rest > 0:
            shown = Counter((f["file"], f["column"]) for f in listed)
            left = [(k, n - shown[k]) for k, n in self.counts.most_common() if n > shown[k]]
            parts = [f"{n} in {'column ' + repr(c) + ' of ' if c else ''}{f}" for (f, c), n in left[:5]]
            lines.append(f"  ... and {rest} more: " + "; ".join(parts) + ("; ..." if len(left) > 5 else ""))
        return "\n".join(lines)


def to_float(s: pd.Series) -> pd.Series:
    """Text to float64, NaN where the text is not a decimal number (so 'inf', 'nan' and
    '1_000' are not numbers; '1e999' is, and is infinite). Vectorised in Arrow: a regular
    expression, then a cast, 0.7 s on 2 million cells (``pd.to_numeric``: 7 s)."""
    arr = pyarrow.array(s.array)
    ok = pc.match_substring_regex(arr, NUMBER)
    try:
        num = pc.cast(pc.if_else(ok, arr, pyarrow.scalar(None, pyarrow.string())), pyarrow.float64())
    except pyarrow.ArrowInvalid:  # a text the pattern passes and Arrow refuses: the slow way
        return pd.to_numeric(s.where(ok.to_pandas().to_numpy(dtype=bool, na_value=False)), errors="coerce")
    return pd.Series(num.to_numpy(zero_copy_only=False), index=s.index, dtype="float64")


def _is_numeric(column: pa.Column) -> bool:
    return pd.api.types.is_float_dtype(getattr(column.dtype, "type", None))


def _failed(result, index: pd.Index) -> pd.Index:
    """The labels a pandera CheckResult failed (a scalar result fails them all or none)."""
    out = result.check_output
    if isinstance(out, pd.Series):
        return out.index[~out.to_numpy(dtype=bool, na_value=False)]
    return index if not bool(out) else index[:0]


def _found_columns(text: SourceText) -> str:
    heads = ", ".join(quoted(h, 30) for h in text.headers[:12]) + (", ..." if len(text.headers) > 12 else "")
    found = f"the file's columns: {heads}" if text.headers else "no columns found"
    if text.encoding == "XLSX":
        if not text.sheets:
            return f"{found}; the workbook has no sheet"
        sheets = ", ".join(quoted(s, 40) for s in text.sheets[:10]) + (", ..." if len(text.sheets) > 10 else "")
        return f"{found}; read from the first sheet, {quoted(text.sheets[0], 40)}, of {len(text.sheets)}: " \
               f"{sheets}; the table must be on the first sheet"
    return f"{found}; read as {text.encoding}, separated by '{text.separator}'"


def _shown(text: SourceText, column: str, row) -> str:
    """The cell quoted as written in the file, and as read when a repair changed it:
    "'12/25/2021' (read as '2021-25-12')"."""
    written, read = text.as_written(column, row), text.frame.at[row, column]
    return quoted(written) + (f" (read as {quoted(read)})" if written != read else "")


def _not_a_number(text: SourceText, column: str, row) -> str:
    try:
        float(str(text.frame.at[row, column]))
    except ValueError:
        return f"value {_shown(text, column, row)} is not a number"
    return f"value {_shown(text, column, row)} is not a finite number"


def check_structure(path: str, text: SourceText, schema: pa.DataFrameSchema, required: bool) -> Failures:
    """Whole-file failures, one line per file: the required columns missing and the
    table's own checks (with the columns found and, in a workbook, its sheets); no rows
    in a required table."""
    fails = Failures()
    df = text.frame
    missing = [name for name, column in schema.columns.items() if column.required and name not in df.columns]
    unmet = [check.error for check in schema.checks if not bool(check(df).check_passed)]
    if len(missing) == 1 and not unmet:
        fails.add(path, None, missing[0], f"required column is missing ({_found_columns(text)})")
    elif missing or unmet:
        said = [f"required columns are missing: {', '.join(map(repr, missing))}"] if missing else []
        fails.add(path, None, None, "; ".join(said + unmet) + f" ({_found_columns(text)})")
    if not fails and required and df.empty:
        fails.add(path, None, None, "no rows: the file has a header line only, and this table is required")
    return fails


def check_cells(path: str, text: SourceText, schema: pa.DataFrameSchema, valid_codes: set[str]) -> tuple[pd.DataFrame, Failures]:
    """Every cell against its column's rules, vectorised; the table with numbers as float64.

    Per column: empty cells where not allowed, numbers that cannot be read or are not
    finite (inf, nan as text), then each pandera check in order on the cells still good,
    then uniqueness; then the table's unique key and the ISTAT codes.
    """
    fails, df = Failures(), text.frame
    out = dict(df.items())
    for name, column in schema.columns.items():
        if name not in df.columns:
            continue
        s = df[name]
        ok = s.notna()
        if not column.nullable:
            fails.add_rows(path, name, s.index[~ok.to_numpy()], lambda r: "empty value not allowed")
        values = s
        if _is_numeric(column):
            values = to_float(s)
            bad = ok.to_numpy() & ~np.isfinite(values.to_numpy())
            fails.add_rows(path, name, s.index[bad], lambda r: _not_a_number(text, name, r))
            ok &= ~bad
            out[name] = values
        for check in column.checks:
            failed = _failed(check(values[ok]), s.index[ok.to_numpy()])
            fails.add_rows(path, name, failed,
                           lambda r: f"value {_shown(text, name, r)} is not {check.error}")
            ok.loc[failed] = False
        if column.unique:
            dup = s.duplicated(keep="first").to_numpy() & s.notna().to_numpy()
            fails.add_rows(path, name, s.index[dup], lambda r: _repeated(text, [name], r))
    if schema.unique:
        keys = list(schema.unique)
        dup = df.duplicated(subset=keys, keep="first").to_numpy()
        fails.add_rows(path, None, df.index[dup], lambda r: _repeated(text, keys, r))
    if "codice_istat" in df.columns:
        code = df["codice_istat"]
        unknown = code.notna() & code.str.fullmatch(r"\d{6}").fillna(False).astype(bool) & ~code.isin(valid_codes)
        fails.add_rows(path, "codice_istat", code.index[unknown.to_numpy()],
                       lambda r: f"{_shown(text, 'codice_istat', r)} is not the ISTAT code of a comune (2023 list)")
    return pd.DataFrame(out, index=df.index), fails


def _repeated(text: SourceText, keys: list[str], row) -> str:
    """'value 'X' is repeated (first on row R)' for one key column; the key's values for several."""
    df = text.frame
    match = np.ones(len(df), dtype=bool)
    for k in keys:
        match &= (df[k] == df.at[row, k]).to_numpy(dtype=bool, na_value=False)
    first = int(df.index[match][0]) + 2
    if len(keys) == 1:
        return f"value {_shown(text, keys[0], row)} is repeated (first on row {first})"
    values = ", ".join(f"{k}={quoted(df.at[row, k], 30)}" for k in keys)
    return f"({values}) is repeated (first on row {first}); ({', '.join(keys)}) must be unique"


def check_units(esiti: pd.DataFrame, esiti_path: str, ambiti: pd.DataFrame | None, ambiti_path: str,
                valid_codes: set[str]) -> Failures:
    """``esiti.unita`` names a unit at its level: a comune by its ISTAT code (2023 list), or
    a district by a code of ``ambito_sociale``, ``distretto_sanitario`` or ``asl`` listed
    in ``ambiti`` (judged on the distinct values, so 2 million rows cost little)."""
    fails = Failures()
    codes = esiti["unita"]
    values = pd.Index(codes.dropna().unique())
    districts: set[str] = set()
    if ambiti is not None:
        for col in [c for c in DISTRICT_COLUMNS if c in ambiti.columns]:
            districts.update(ambiti[col].dropna().unique())
    unknown = values[~(values.isin(valid_codes) | values.isin(districts))]
    if len(unknown) == 0:
        return fails
    rows = codes.index[codes.isin(unknown).to_numpy()]
    name = ambiti_path.rsplit("/", 1)[-1]

    def reason(r) -> str:
        v = codes.at[r]
        if len(v) == 6 and v.isdigit():
            return f"{quoted(v)} is not the ISTAT code of a comune (2023 list) nor a district code in {name}"
        hint = ""
        if v.isdigit() and len(v) in (4, 5) and v.zfill(6) in valid_codes:
            hint = f" ('{v.zfill(6)}' without its leading zeros? write the code as text)"
        return (f"{quoted(v)} is neither the 6-digit ISTAT code of a comune nor a code of ambito_sociale, "
                f"distretto_sanitario or asl in {name}{hint}")

    fails.add_rows(esiti_path, "unita", rows, reason)
    return fails


def check_contract_terms(strumenti: pd.DataFrame, path: str, columns: list[str]) -> Failures:
    """A row of ``strumenti_finanza_sociale`` gives every contract term (``columns``) or
    none: half a contract cannot be evaluated."""
    fails = Failures()
    present = [c for c in columns if c in strumenti.columns]
    if not present:
        return fails
    filled = strumenti[present].notna()
    if len(present) < len(columns):  # some term columns are in the file, others are not
        rows = strumenti.index[filled.any(axis=1).to_numpy()]
        absent = [c for c in columns if c not in present]
        fails.add_rows(path, absent[0], rows, lambda r: f"a contract needs every term: the column(s) "
                       f"{', '.join(absent)} are missing (terms: {', '.join(columns)})")
        return fails
    partial = filled.any(axis=1) & ~filled.all(axis=1)
    rows = strumenti.index[partial.to_numpy()]
    fails.add_rows(path, None, rows, lambda r: "a contract gives every term or none; empty here: "
                   + ", ".join(c for c in present if pd.isna(strumenti.at[r, c])))
    return fails


def check_costs(costi: pd.DataFrame, path: str, pilot: pd.DataFrame | None, pilot_path: str) -> Failures:
    """``costi_pilota.id_pilota`` names a pilot of ``pilot``; the beneficiaries of one
    pilot and year, when given on several rows, agree."""
    fails = Failures()
    if pilot is not None and "id_pilota" in pilot.columns:
        known = set(pilot["id_pilota"].dropna())
        unknown = costi["id_pilota"].notna() & ~costi["id_pilota"].isin(known)
        name = pilot_path.rsplit("/", 1)[-1]
        fails.add_rows(path, "id_pilota", costi.index[unknown.to_numpy()],
                       lambda r: f"{quoted(costi.at[r, 'id_pilota'])} is not an id_pilota of {name}")
    if "beneficiari" in costi.columns:
        given = costi.dropna(subset=["beneficiari"])
        spread = given.groupby(["id_pilota", "anno"])["beneficiari"].transform("nunique")
        rows = given.index[(spread > 1).to_numpy()]
        fails.add_rows(path, "beneficiari", rows, lambda r: (
            f"pilot {quoted(costi.at[r, 'id_pilota'])} gives different beneficiari for {int(costi.at[r, 'anno'])} "
            "on different rows: one number per pilot and year"))
    return fails
