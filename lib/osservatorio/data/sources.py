"""Load and validate the Observatory source tables of a data folder.

Every table is read as text (``data/reading.py``: so codes keep their leading zeros),
validated against its pandera schema (``data/validation.py``), and only then coerced.
All failures of all files are counted and collected into one ``DataValidationError``
whose message lists file, row, column and reason (the first ``MAX_LISTED``, then how
many more and where), so the run stops before any notebook starts. Validated tables are
cached by content (``osservatorio.data.cache``), so stages and themes validate a file once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pandas as pd

from osservatorio.data import cache as source_cache
from osservatorio.data import reference
from osservatorio.data.reading import (COLUMN_ALIASES, DATE_COLUMNS, NUMERIC_COLUMNS, UnreadableFile,  # noqa: F401
                                       normalise_header, read_source, read_table)
from osservatorio.data import schemas
from osservatorio.data.files import TABLES, file_sha256, find_table_file, source_hashes  # noqa: F401
from osservatorio.data.schemas import REQUIRED_TABLES
from osservatorio.data.validation import (MAX_LISTED, Failures, check_cells, check_contract_terms, check_costs,
                                          check_structure, check_units)
from osservatorio.exceptions import DataValidationError

MAX_LISTED_FAILURES = MAX_LISTED


@dataclass
class Sources:
    """Validated source tables, keyed by table name, plus the report on name matching
    (names not matched to one ISTAT code) and its summary per table."""

    folder: Path
    tables: dict[str, pd.DataFrame]
    files: dict[str, Path]
    match_report: pd.DataFrame = field(default_factory=pd.DataFrame)
    match_summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.tables[name]


def validate_table(table: str, path: Path) -> tuple[pd.DataFrame, Failures]:
    """Read and validate one file: the table (numbers as float64) and its failures (none
    when valid; ``notes`` says how the file was read when worth saying)."""
    file = str(path)
    try:
        text = read_source(path)
    except UnreadableFile as exc:
        fails = Failures()
        fails.add(file, None, None, str(exc))
        return pd.DataFrame(), fails
    fails = check_structure(file, text, schemas.SCHEMAS[table], required=table in REQUIRED_TABLES)
    if text.note:
        fails.notes[file] = text.note
    if fails:
        return text.frame, fails
    df, problems = check_cells(file, text, schemas.SCHEMAS[table], set(reference.comuni()["codice_istat"]))
    fails.extend(problems)
    return df, fails


def format_failures(failures: Failures) -> str:
    """The failures as message lines (see ``Failures.format``)."""
    return failures.format()


def load_sources(folder: Path, tables: list[str] | None = None, cache: bool = True) -> Sources:
    """Validate and load every table in folder; raise DataValidationError on any failure.

    With ``cache`` (the default) a table whose file content and loading code are
    unchanged is read from the source cache (``osservatorio.data.cache``) instead of
    being validated again, and a newly validated table is stored there. Only tables of
    a fully valid load are stored, so a bad file raises here every time.
    """
    folder = Path(folder)
    files, failures = locate_tables(folder, tables or list(TABLES))
    root = source_cache.cache_root() if cache else None
    keys = cache_keys(files) if root else {}
    memo_key = (str(root), tuple(sorted((t, str(p)) for t, p in files.items())), tuple(sorted(keys.items())))
    if root and not failures and len(keys) == len(files) and _LAST_LOAD.get("key") == memo_key:
        # the same files, same content, as this process's last load (a kernel runs four stages)
        return assemble_sources(folder, files, {t: c.copy() for t, c in _LAST_LOAD["coded"].items()})
    coded = read_cached_tables(root, keys) if root else {}
    validated, problems = validate_tables({t: p for t, p in files.items() if t not in coded})
    failures.extend(problems)
    frames = {**{t: c.frame for t, c in coded.items()}, **validated}
    failures.extend(esiti_units(frames, files))
    failures.extend(cost_checks(frames, files))
    raise_for_failures(folder, failures)
    for table, df in validated.items():
        coded[table] = code_table(table, df)
        coded[table].note = problems.notes.get(str(files[table]))
        if root and table in keys:
            store_cached_table(root, table, keys[table], files[table], coded[table])
    if root and tables is None and len(keys) == len(files):  # a full load: what the next stage will ask
        _LAST_LOAD.update(key=memo_key, coded={t: coded[t].copy() for t in files})
    return assemble_sources(folder, files, {t: coded[t] for t in files})


# The last fully valid load of this process, kept in memory (copies go in and out, so a
# caller changing its frames changes nothing here). Keyed on the files' content hashes,
# computed on every load: a file changed between two loads is read and checked again.
_LAST_LOAD: dict = {}


def forget_loaded() -> None:
    """Drop the in-memory copy of the last load (the next load reads the disk cache, as a
    new process would)."""
    _LAST_LOAD.clear()


@dataclass
class CodedTable:
    """One validated table with ISTAT codes attached: the frame, the rows whose comune
    name did not match one code (None when no row needed matching) and the table's row
    of the match summary (None for a table naming no comuni)."""

    frame: pd.DataFrame
    unmatched: pd.DataFrame | None = None
    counts: dict | None = None
    note: str | None = None  # how the file was read, when worth telling (Windows-1252)

    def copy(self) -> CodedTable:
        """A copy whose frames can be changed without changing this one's."""
        return CodedTable(self.frame.copy(), None if self.unmatched is None else self.unmatched.copy(),
                          None if self.counts is None else dict(self.counts), self.note)


def locate_tables(folder: Path, wanted: list[str]) -> tuple[dict[str, Path], Failures]:
    """The file of each wanted table found in folder, and a failure per missing required one."""
    files, failures = {}, Failures()
    for table in wanted:
        path = find_table_file(folder, table)
        if path is not None:
            files[table] = path
        elif table in REQUIRED_TABLES:
            failures.add(str(folder / f"{table}.csv"), None, None,
                         "required source table is missing (expected .csv, .csv.gz or .xlsx)")
    return files, failures


def validate_tables(files: dict[str, Path]) -> tuple[dict[str, pd.DataFrame], Failures]:
    """Validate every file: the coerced frames and the failures of all of them."""
    validated, failures = {}, Failures()
    for table, path in files.items():
        validated[table], problems = validate_table(table, path)
        failures.extend(problems)
    return validated, failures


def esiti_units(frames: dict[str, pd.DataFrame], files: dict[str, Path]) -> Failures:
    """``esiti.unita`` checked against the comuni and the districts of ``ambiti`` (a check
    across two tables, so made on every load, cached tables included: it is cheap)."""
    esiti = frames.get("esiti")
    if esiti is None or "unita" not in esiti.columns:
        return Failures()
    ambiti = frames.get("ambiti")
    ambiti_path = str(files.get("ambiti", "ambiti.csv"))
    return check_units(esiti, str(files["esiti"]), ambiti, ambiti_path, set(reference.comuni()["codice_istat"]))


def cost_checks(frames: dict[str, pd.DataFrame], files: dict[str, Path]) -> Failures:
    """Contract terms complete or absent in each row of ``strumenti_finanza_sociale``;
    ``costi_pilota`` rows naming pilots of ``pilot`` (made on every load, as esiti_units)."""
    failures = Failures()
    strumenti = frames.get("strumenti_finanza_sociale")
    if strumenti is not None and not strumenti.empty:
        failures.extend(check_contract_terms(strumenti, str(files["strumenti_finanza_sociale"]),
                                             schemas.CONTRACT_COLUMNS))
    costi, pilot = frames.get("costi_pilota"), frames.get("pilot")
    if costi is not None and not costi.empty and "id_pilota" in costi.columns:
        if pilot is not None and (pilot.empty or "id_pilota" not in pilot.columns):
            pilot = None  # a pilot file with its own failure: its ids are not checked against it
        failures.extend(check_costs(costi, str(files["costi_pilota"]), pilot, str(files.get("pilot", "pilot.csv"))))
    return failures


def raise_for_failures(folder: Path, failures: Failures) -> None:
    """One DataValidationError listing the failures (file, row, column, reason), if any:
    the first ``MAX_LISTED``, then how many more (exact) and where."""
    if failures:
        raise DataValidationError(
            f"{failures.total} problem(s) in the sources of {folder}:\n" + format_failures(failures),
            failures.listed())


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
            out[table] = CodedTable(frames["table"], frames.get("unmatched"), meta["counts"], meta.get("note"))
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
    source_cache.write_entry(root, key, frames, {"file": path.name, "counts": coded.counts, "note": coded.note})


def assemble_sources(folder: Path, files: dict[str, Path], coded: dict[str, CodedTable]) -> Sources:
    """The Sources of the coded tables, with the match report and summary across them."""
    report, summary = match_report(coded)
    notes = [f"{files[t]}: {c.note}" for t, c in coded.items() if c.note]
    notes += [f"{files[t]}: no rows (a header line only): the table is used empty" for t, c in coded.items()
              if c.frame.empty]
    return Sources(folder=folder, tables={t: c.frame for t, c in coded.items()}, files=files,
                   match_report=report, match_summary=summary, notes=notes)


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
