"""Load and validate the Observatory source tables of a data folder.

Every table is read as text (so codes keep their leading zeros), validated against its
pandera schema with lazy evaluation, and only then coerced. All failures of all files
are collected into one ``DataValidationError`` whose message lists file, row, column
and reason, so the run stops before any notebook starts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pandera.errors

from ..exceptions import DataValidationError
from . import reference
from .schemas import REQUIRED_TABLES, SCHEMAS

MAX_LISTED_FAILURES = 20


@dataclass
class Sources:
    """Validated source tables, keyed by table name, plus a report on name matching."""

    folder: Path
    tables: dict[str, pd.DataFrame]
    files: dict[str, Path]
    match_report: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.tables[name]


def find_table_file(folder: Path, table: str) -> Path | None:
    """``<table>.csv`` (or .csv.gz) or ``<table>.xlsx`` in folder, or None."""
    for suffix in (".csv", ".csv.gz", ".xlsx"):
        path = folder / f"{table}{suffix}"
        if path.is_file():
            return path
    return None


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or XLSX source as text columns (empty cells become missing)."""
    if path.name.endswith(".xlsx"):
        df = pd.read_excel(path, dtype=str)
    else:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8")
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _describe_failures(path: Path, err: pandera.errors.SchemaErrors) -> list[dict]:
    cases = err.failure_cases
    out = []
    for rec in cases.head(MAX_LISTED_FAILURES * 5).to_dict("records"):
        idx = rec.get("index")
        row = int(idx) + 2 if idx is not None and pd.notna(idx) else None  # header is line 1
        column = rec.get("column") if pd.notna(rec.get("column")) else None
        check = str(rec.get("check"))
        value = rec.get("failure_case")
        if check == "column_in_dataframe":
            column, reason = value, "required column is missing"
        elif check.startswith("coerce_dtype"):
            reason = f"value {value!r} cannot be read as {check.split('(')[-1].rstrip(')')}"
        elif check == "not_nullable":
            reason = "empty value not allowed"
        elif check in ("field_uniqueness", "multiple_fields_uniqueness"):
            reason = f"duplicate value {value!r}"
        else:
            reason = f"value {value!r} fails check {check}"
        out.append({"file": str(path), "row": row, "column": column, "reason": reason})
    return out


def _check_codes(path: Path, df: pd.DataFrame, valid: set[str]) -> list[dict]:
    if "codice_istat" not in df.columns:
        return []
    bad = df["codice_istat"].notna() & ~df["codice_istat"].isin(valid)
    return [
        {
            "file": str(path),
            "row": int(i) + 2,
            "column": "codice_istat",
            "reason": f"{df.at[i, 'codice_istat']!r} is not the ISTAT code of a comune (2023 list)",
        }
        for i in df.index[bad][:MAX_LISTED_FAILURES]
    ]


def format_failures(failures: list[dict]) -> str:
    lines = []
    for f in failures[:MAX_LISTED_FAILURES]:
        where = f["file"]
        if f.get("row"):
            where += f", row {f['row']}"
        if f.get("column"):
            where += f", column '{f['column']}'"
        lines.append(f"  {where}: {f['reason']}")
    if len(failures) > MAX_LISTED_FAILURES:
        lines.append(f"  ... and {len(failures) - MAX_LISTED_FAILURES} more")
    return "\n".join(lines)


def validate_table(table: str, path: Path) -> tuple[pd.DataFrame, list[dict]]:
    """Validate one file; return the coerced frame and the failures (empty when valid)."""
    try:
        raw = read_table(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        return pd.DataFrame(), [{"file": str(path), "row": None, "column": None, "reason": f"cannot read file: {exc}"}]
    try:
        df = SCHEMAS[table].validate(raw, lazy=True)
    except pandera.errors.SchemaErrors as err:
        return raw, _describe_failures(path, err)
    valid_codes = set(reference.comuni()["codice_istat"])
    return df, _check_codes(path, df, valid_codes)


def load_sources(folder: Path, tables: list[str] | None = None) -> Sources:
    """Validate and load every table in folder; raise DataValidationError on any failure."""
    folder = Path(folder)
    wanted = tables or list(SCHEMAS)
    failures: list[dict] = []
    loaded: dict[str, pd.DataFrame] = {}
    files: dict[str, Path] = {}
    for table in wanted:
        path = find_table_file(folder, table)
        if path is None:
            if table in REQUIRED_TABLES:
                failures.append({"file": str(folder / f"{table}.csv"), "row": None, "column": None,
                                 "reason": "required source table is missing (expected .csv or .xlsx)"})
            continue
        df, problems = validate_table(table, path)
        failures.extend(problems)
        loaded[table], files[table] = df, path
    if failures:
        raise DataValidationError(
            f"{len(failures)} problem(s) in the sources of {folder}:\n" + format_failures(failures), failures
        )
    loaded, report = attach_codes(loaded)
    return Sources(folder=folder, tables=loaded, files=files, match_report=report)


def attach_codes(tables: dict[str, pd.DataFrame]) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Fill ``codice_istat`` from comune names where a table has names only.

    Returns the tables and a report of every name that was not matched to one code.
    """
    reports = []
    out = {}
    for name, df in tables.items():
        if "comune" in df.columns and ("codice_istat" not in df.columns or df["codice_istat"].isna().any()):
            from .names import match_comuni

            df = df.copy()
            if "codice_istat" not in df.columns:
                df["codice_istat"] = pd.NA
            need = df["codice_istat"].isna() & df["comune"].notna()
            prov = df.loc[need, "provincia"] if "provincia" in df.columns else None
            matched = match_comuni(df.loc[need, "comune"].tolist(), province=None if prov is None else prov.tolist())
            df.loc[need, "codice_istat"] = matched["codice_istat"].to_numpy()
            bad = matched[matched["stato"] != "matched"].assign(tabella=name)
            reports.append(bad)
        out[name] = df
    report = pd.concat(reports, ignore_index=True) if reports else pd.DataFrame(
        columns=["tabella", "nome", "stato", "candidati"])
    return out, report


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def source_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every source file present in folder (for the run manifest)."""
    out = {}
    for table in SCHEMAS:
        path = find_table_file(Path(folder), table)
        if path is not None:
            out[path.name] = file_sha256(path)
    return out
