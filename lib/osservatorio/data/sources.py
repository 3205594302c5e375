"""Load and validate the Observatory source tables of a data folder.

Every table is read as text (so codes keep their leading zeros), validated against its
pandera schema with lazy evaluation, and only then coerced. All failures of all files
are collected into one ``DataValidationError`` whose message lists file, row, column
and reason, so the run stops before any notebook starts. Validated tables are cached
by content (``osservatorio.data.cache``), so stages and themes validate a file once.
"""

from __future__ import annotations

import datetime
import gzip
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pandas as pd
import pandera.errors

from osservatorio.data import cache as source_cache
from osservatorio.data import reference
from osservatorio.exceptions import DataValidationError
from osservatorio.data.schemas import REQUIRED_TABLES, SCHEMAS

MAX_LISTED_FAILURES = 20


@dataclass
class Sources:
    """Validated source tables, keyed by table name, plus the report on name matching
    (names not matched to one ISTAT code) and its summary per table."""

    folder: Path
    tables: dict[str, pd.DataFrame]
    files: dict[str, Path]
    match_report: pd.DataFrame = field(default_factory=pd.DataFrame)
    match_summary: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.tables[name]


def find_table_file(folder: Path, table: str) -> Path | None:
    """``<table>.csv`` (or .csv.gz) or ``<table>.xlsx`` in folder, or None."""
    for suffix in (".csv", ".csv.gz", ".xlsx"):
        path = folder / f"{table}{suffix}"
        if path.is_file():
            return path
    return None


# Header spellings of real exports mapped to the schema's names (after normalisation).
COLUMN_ALIASES: Final = {
    "codice_comune": "codice_istat", "cod_istat": "codice_istat", "istat": "codice_istat",
    "codice_istat_comune": "codice_istat", "denominazione_comune": "comune", "nome_comune": "comune",
    "sigla_provincia": "provincia", "prov": "provincia", "sigla_prov": "provincia",
}
NUMERIC_COLUMNS: Final = ["volontari", "dipendenti", "importo_euro", "costo_euro", "beneficiari", "valore",
                          "denominatore"]
DATE_COLUMNS: Final = ["data_iscrizione", "data", "data_avvio"]
_IT_NUMBER = re.compile(r"^-?\d{1,3}(\.\d{3})+(,\d+)?$|^-?\d+,\d+$")
_IT_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


def normalise_header(name: object) -> str:
    """'Codice ISTAT ' -> 'codice_istat'; known aliases to the schema's names."""
    import unicodedata

    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode().strip().lower()
    key = "_".join(re.sub(r"[^a-z0-9]+", " ", text).split())
    return COLUMN_ALIASES.get(key, key)


def _sniff_csv(path: Path) -> tuple[str, str]:
    """(separator, encoding): ';' when the header has more ';' than ','; UTF-8 (BOM
    allowed) unless the bytes are not UTF-8, then Windows-1252 (Excel's Italian CSV)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        head = fh.read(1 << 16)
    try:
        text, encoding = head.decode("utf-8-sig"), "utf-8-sig"
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end of the sample
            text, encoding = head.decode("cp1252", errors="replace"), "cp1252"
        else:
            text, encoding = head[: exc.start].decode("utf-8-sig"), "utf-8-sig"
    first = text.splitlines()[0] if text else ""
    return (";" if first.count(";") > first.count(",") else ","), encoding


def _cell_text(value: object) -> object:
    """XLSX cell as text: dates as YYYY-MM-DD, whole floats without '.0'."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return pd.NA
    if isinstance(value, (pd.Timestamp, datetime.datetime, datetime.date)):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip() or pd.NA


def _as_text(df: pd.DataFrame) -> pd.DataFrame:
    """Every column as pandas text (``str``) with surrounding spaces removed, blanks missing."""
    out = {}
    for col in df.columns:
        v = df[col].astype(object)
        v = v.where(v.notna(), None).map(lambda x: None if x is None else (str(x).strip() or None))
        out[col] = pd.Series(v, index=df.index, dtype="str")
    return pd.DataFrame(out, index=df.index)


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or XLSX source as text columns, tolerant of how files really come.

    Headers are normalised (case, accents, spaces; aliases such as 'Codice comune',
    'Prov.'). CSV: ',' or ';' separated, UTF-8 or Windows-1252. XLSX: the first sheet,
    date cells as YYYY-MM-DD. ISTAT codes that lost their leading zeros (a spreadsheet
    reading 037006 as 37006) are padded back to 6 digits; in ';' files and XLSX text
    cells, Italian numbers ('1.234,5') are read as numbers (never in ',' files, where
    '1,500' could be English); dates written DD/MM/YYYY (the Italian order) become
    YYYY-MM-DD. Anything else is left as written, for the schema to judge.
    """
    if path.name.endswith(".xlsx"):
        df = pd.read_excel(path, dtype=object).map(_cell_text)
        sep = "xlsx"  # text cells of an Italian spreadsheet: Italian numbers, as in ';' files
    else:
        sep, encoding = _sniff_csv(path)
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding=encoding, sep=sep)
    df.columns = [normalise_header(c) for c in df.columns]
    df = df.dropna(how="all").reset_index(drop=True) if path.name.endswith(".xlsx") else df
    df = _as_text(df)
    if "codice_istat" in df.columns:
        code = df["codice_istat"]
        short = code.notna() & code.astype(str).str.fullmatch(r"\d{4,5}")
        df.loc[short, "codice_istat"] = code[short].astype(str).str.zfill(6)
    if sep in (";", "xlsx"):
        for col in set(NUMERIC_COLUMNS) & set(df.columns):
            v = df[col].astype("string")
            it = v.str.fullmatch(_IT_NUMBER).fillna(False).astype(bool)
            df.loc[it, col] = v[it].str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    for col in set(DATE_COLUMNS) & set(df.columns):
        v = df[col].astype("string")
        parts = v.str.extract(_IT_DATE)
        ok = parts[0].notna()
        df.loc[ok, col] = parts.loc[ok, 2] + "-" + parts.loc[ok, 1].str.zfill(2) + "-" + parts.loc[ok, 0].str.zfill(2)
    return df


def _describe_failures(path: Path, err: pandera.errors.SchemaErrors) -> list[dict]:
    cases = err.failure_cases
    out = []
    coerced = {(r.get("index"), r.get("column")) for r in cases.to_dict("records")
               if str(r.get("check")).startswith("coerce_dtype")}
    for rec in cases.head(MAX_LISTED_FAILURES * 5).to_dict("records"):
        if str(rec.get("check")).startswith("dtype(") and (rec.get("index"), rec.get("column")) in coerced:
            continue  # the same cell already reported as unreadable
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


def load_sources(folder: Path, tables: list[str] | None = None, cache: bool = True) -> Sources:
    """Validate and load every table in folder; raise DataValidationError on any failure.

    With ``cache`` (the default) a table whose file content and loading code are
    unchanged is read from the source cache (``osservatorio.data.cache``) instead of
    being validated again, and a newly validated table is stored there. Only tables of
    a fully valid load are stored, so a bad file raises here every time.
    """
    folder = Path(folder)
    files, failures = locate_tables(folder, tables or list(SCHEMAS))
    root = source_cache.cache_root() if cache else None
    keys = cache_keys(files) if root else {}
    coded = read_cached_tables(root, keys) if root else {}
    validated, problems = validate_tables({t: p for t, p in files.items() if t not in coded})
    raise_for_failures(folder, failures + problems)
    for table, df in validated.items():
        coded[table] = code_table(table, df)
        if root and table in keys:
            store_cached_table(root, table, keys[table], files[table], coded[table])
    return assemble_sources(folder, files, {t: coded[t] for t in files})


@dataclass
class CodedTable:
    """One validated table with ISTAT codes attached: the frame, the rows whose comune
    name did not match one code (None when no row needed matching) and the table's row
    of the match summary (None for a table naming no comuni)."""

    frame: pd.DataFrame
    unmatched: pd.DataFrame | None = None
    counts: dict | None = None


def locate_tables(folder: Path, wanted: list[str]) -> tuple[dict[str, Path], list[dict]]:
    """The file of each wanted table found in folder, and a failure per missing required one."""
    files, failures = {}, []
    for table in wanted:
        path = find_table_file(folder, table)
        if path is not None:
            files[table] = path
        elif table in REQUIRED_TABLES:
            failures.append({"file": str(folder / f"{table}.csv"), "row": None, "column": None,
                             "reason": "required source table is missing (expected .csv or .xlsx)"})
    return files, failures


def validate_tables(files: dict[str, Path]) -> tuple[dict[str, pd.DataFrame], list[dict]]:
    """Validate every file: the coerced frames and the failures of all of them."""
    validated, failures = {}, []
    for table, path in files.items():
        validated[table], problems = validate_table(table, path)
        failures.extend(problems)
    return validated, failures


def raise_for_failures(folder: Path, failures: list[dict]) -> None:
    """One DataValidationError listing every failure (file, row, column, reason), if any."""
    if failures:
        raise DataValidationError(
            f"{len(failures)} problem(s) in the sources of {folder}:\n" + format_failures(failures), failures
        )


def cache_keys(files: dict[str, Path]) -> dict[str, str]:
    """Cache key of each table from its file's content (a file that cannot be read has none)."""
    keys = {}
    for table, path in files.items():
        try:
            keys[table] = source_cache.entry_key(table, path.name, file_sha256(path))
        except OSError:
            pass  # validation reports it
    return keys


def read_cached_tables(root: Path, keys: dict[str, str]) -> dict[str, CodedTable]:
    """The tables found in the cache (misses are simply absent)."""
    out = {}
    for table, key in keys.items():
        hit = source_cache.read_entry(root, key)
        if hit is not None:
            frames, meta = hit
            out[table] = CodedTable(frames["table"], frames.get("unmatched"), meta["counts"])
    return out


def store_cached_table(root: Path, table: str, key: str, path: Path, coded: CodedTable) -> None:
    """Store a table under its key, unless its file changed while it was being loaded."""
    try:
        if source_cache.entry_key(table, path.name, file_sha256(path)) != key:
            return
    except OSError:
        return
    frames = {"table": coded.frame}
    if coded.unmatched is not None:
        frames["unmatched"] = coded.unmatched
    source_cache.write_entry(root, key, frames, {"file": path.name, "counts": coded.counts})


def assemble_sources(folder: Path, files: dict[str, Path], coded: dict[str, CodedTable]) -> Sources:
    """The Sources of the coded tables, with the match report and summary across them."""
    report, summary = match_report(coded)
    return Sources(folder=folder, tables={t: c.frame for t, c in coded.items()}, files=files,
                   match_report=report, match_summary=summary)


REPORT_COLUMNS: Final = ["tabella", "righe", "n_righe", "nome", "provincia", "stato", "metodo", "candidati", "nota"]


def attach_codes(tables: dict[str, pd.DataFrame]) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, pd.DataFrame]:
    """Fill ``codice_istat`` from comune names (and the ``provincia`` column when there
    is one) wherever a table names comuni without coding them.

    Returns the tables, the match report (one row per distinct name not matched to one
    code, with the file lines where it occurs and the candidate comuni) and a summary
    per table (rows coded in the file, matched by name, ambiguous, unmatched).
    """
    coded = {name: code_table(name, df) for name, df in tables.items()}
    return {t: c.frame for t, c in coded.items()}, *match_report(coded)


def code_table(name: str, df: pd.DataFrame) -> CodedTable:
    """Attach codes to one table. Reads only this table and the reference comuni, which
    is why each table can be cached on its own file's content."""
    from osservatorio.data.names import match_comuni

    if "comune" not in df.columns and "codice_istat" not in df.columns:
        return CodedTable(df)
    df = df.copy()
    if "codice_istat" not in df.columns:
        df["codice_istat"] = pd.Series(pd.NA, index=df.index, dtype="str")
    need = df["codice_istat"].isna() & (df["comune"].notna() if "comune" in df.columns else False)
    counts = {"tabella": name, "righe": len(df), "con_codice": int(df["codice_istat"].notna().sum()),
              "abbinati_per_nome": 0, "ambigui": 0, "non_trovati": 0}
    if not need.any():
        return CodedTable(df, None, counts)
    prov = df.loc[need, "provincia"].tolist() if "provincia" in df.columns else None
    matched = match_comuni(df.loc[need, "comune"].tolist(), province=prov)
    matched.index = df.index[need]
    df.loc[need, "codice_istat"] = matched["codice_istat"].to_numpy()
    counts.update(abbinati_per_nome=int((matched["stato"] == "matched").sum()),
                  ambigui=int((matched["stato"] == "ambiguous").sum()),
                  non_trovati=int((matched["stato"] == "unmatched").sum()))
    bad = matched[matched["stato"] != "matched"].assign(tabella=name, riga=matched.index[matched["stato"] != "matched"] + 2)
    return CodedTable(df, bad, counts)


def match_report(coded: dict[str, CodedTable]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The match report and summary across tables (see ``attach_codes``)."""
    reports = [c.unmatched for c in coded.values() if c.unmatched is not None]
    report = _group_report(pd.concat(reports, ignore_index=True)) if reports else pd.DataFrame(columns=REPORT_COLUMNS)
    return report, pd.DataFrame([c.counts for c in coded.values() if c.counts is not None])


def _group_report(bad: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct (table, name, province): the file lines (first 10) and their count."""
    if bad.empty:
        return pd.DataFrame(columns=REPORT_COLUMNS)
    keys = ["tabella", "nome", "provincia", "stato", "metodo", "candidati", "nota"]
    g = bad.fillna({k: "" for k in keys}).groupby(keys, sort=False)["riga"]
    out = g.agg(righe=lambda r: ", ".join(map(str, list(r)[:10])) + (" ..." if len(r) > 10 else ""),
                n_righe="size").reset_index()
    return out[REPORT_COLUMNS].replace({"": None})


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
