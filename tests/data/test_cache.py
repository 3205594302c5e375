"""The source cache: a cached load equals an uncached one exactly, a changed file
invalidates its own entry only, a corrupt entry is rebuilt without a word, a bad file
is never cached, and two processes loading at once both succeed."""

from __future__ import annotations

import json
import multiprocessing
import shutil
from pathlib import Path

import pandas as pd
import pytest

from osservatorio import paths
from osservatorio.data import cache, sources
from osservatorio.data.sources import Sources, file_sha256, load_sources
from osservatorio.exceptions import DataValidationError

NAMES_EXAMPLE = Path(__file__).resolve().parents[2] / "data" / "examples" / "nomi"


def assert_same_sources(a: Sources, b: Sources) -> None:
    assert list(a.tables) == list(b.tables)
    assert a.files == b.files
    for table in a.tables:
        pd.testing.assert_frame_equal(a.tables[table], b.tables[table], check_exact=True, obj=table)
    pd.testing.assert_frame_equal(a.match_report, b.match_report, check_exact=True)
    pd.testing.assert_frame_equal(a.match_summary, b.match_summary, check_exact=True)


def entries() -> set[str]:
    root = paths.cache_dir() / "sources"
    return {p.name for p in root.iterdir() if not p.name.startswith(".")} if root.is_dir() else set()


def entry_of(folder: Path, table: str) -> Path:
    path = sources.find_table_file(folder, table)
    return paths.cache_dir() / "sources" / cache.entry_key(table, path.name, file_sha256(path))


@pytest.fixture
def names_folder(fresh_project) -> Path:
    """The 'nomi' examples (XLSX, ';' CSV, unmatched names) in a project with an empty cache."""
    return Path(shutil.copytree(NAMES_EXAMPLE, fresh_project / "data" / "raw" / "nomi"))


@pytest.fixture
def validated(monkeypatch) -> list[str]:
    """The tables validated from their files (not taken from the cache), in order."""
    calls: list[str] = []
    real = sources.validate_table

    def spy(table, path):
        calls.append(table)
        return real(table, path)

    monkeypatch.setattr(sources, "validate_table", spy)
    return calls


def test_demo_cached_load_equals_uncached(fresh_project, validated):
    demo = fresh_project / "data" / "demo"
    uncached = load_sources(demo, cache=False)
    assert entries() == set()  # cache=False neither reads nor writes
    cold, warm = load_sources(demo), load_sources(demo)
    assert_same_sources(uncached, cold)
    assert_same_sources(uncached, warm)
    assert len(validated) == 2 * len(uncached.tables)  # the third load validated nothing
    assert len(entries()) == len(uncached.tables)


def test_names_cached_load_equals_uncached(names_folder, validated):
    uncached = load_sources(names_folder, cache=False)
    assert len(uncached.match_report) > 0  # unmatched names: the report goes through the cache
    load_sources(names_folder)
    assert_same_sources(uncached, load_sources(names_folder))
    subset = load_sources(names_folder, tables=["pilot", "esiti"])
    assert_same_sources(load_sources(names_folder, tables=["pilot", "esiti"], cache=False), subset)


def test_changed_file_invalidates_only_its_entry(names_folder, validated):
    load_sources(names_folder)
    before = entries()
    path = names_folder / "strumenti_finanza_sociale.csv"
    path.write_text(path.read_text(encoding="utf-8").replace("300.000,00", "350.000,00"), encoding="utf-8")
    validated.clear()
    src = load_sources(names_folder)
    assert validated == ["strumenti_finanza_sociale"]
    assert 350_000.0 in set(src["strumenti_finanza_sociale"]["importo_euro"])
    assert len(entries() - before) == 1 and before <= entries()
    assert_same_sources(load_sources(names_folder, cache=False), src)


def test_file_changed_during_load_is_not_stored(names_folder, monkeypatch):
    real = sources.validate_table
    path = names_folder / "esiti.csv"

    def edit_after_reading(table, file):
        out = real(table, file)
        if table == "esiti":
            path.write_text(path.read_text(encoding="utf-8") + "037006,2030,esempio_esito,1,500\n", encoding="utf-8")
        return out

    monkeypatch.setattr(sources, "validate_table", edit_after_reading)
    src = load_sources(names_folder)
    monkeypatch.setattr(sources, "validate_table", real)
    assert len(entries()) == len(src.tables) - 1  # every table but the one edited mid-load
    assert_same_sources(load_sources(names_folder, cache=False), load_sources(names_folder))


def test_changed_code_changes_every_key(monkeypatch):
    before = cache.entry_key("pilot", "pilot.csv", "0" * 64)
    monkeypatch.setattr(cache, "SCHEMA_VERSION", cache.SCHEMA_VERSION + 1)
    cache.code_fingerprint.cache_clear()
    try:
        assert cache.entry_key("pilot", "pilot.csv", "0" * 64) != before
    finally:
        monkeypatch.undo()
        cache.code_fingerprint.cache_clear()
    assert cache.entry_key("pilot", "pilot.xlsx", "0" * 64) != before


def _truncate(entry: Path) -> None:
    data = (entry / "table.parquet").read_bytes()
    (entry / "table.parquet").write_bytes(data[: len(data) // 2])


def _flip_byte(entry: Path) -> None:
    data = bytearray((entry / "table.parquet").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (entry / "table.parquet").write_bytes(bytes(data))


def _garble_json(entry: Path) -> None:
    (entry / "entry.json").write_text('{"schema_version": 1, "frames": {', encoding="utf-8")


def _wrong_json(entry: Path) -> None:
    record = json.loads((entry / "entry.json").read_text(encoding="utf-8"))
    del record["meta"]
    (entry / "entry.json").write_text(json.dumps(record), encoding="utf-8")


CORRUPTIONS = {
    "truncated parquet": _truncate,
    "flipped byte": _flip_byte,
    "garbled json": _garble_json,
    "json without a field": _wrong_json,
    "missing parquet": lambda entry: (entry / "table.parquet").unlink(),
    "missing json": lambda entry: (entry / "entry.json").unlink(),
    "missing report": lambda entry: (entry / "unmatched.parquet").unlink(),
}


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_corrupt_entry_is_rebuilt(names_folder, validated, capsys, corrupt):
    uncached = load_sources(names_folder, cache=False)
    load_sources(names_folder)
    entry = entry_of(names_folder, "atti_amministrazione_condivisa")
    assert (entry / "unmatched.parquet").is_file()  # this table has unmatched names
    corrupt(entry)
    validated.clear()
    sources.forget_loaded()  # as a new process: the disk cache is read
    assert_same_sources(uncached, load_sources(names_folder))
    assert validated == ["atti_amministrazione_condivisa"]  # rebuilt, never trusted
    validated.clear()
    sources.forget_loaded()
    assert_same_sources(uncached, load_sources(names_folder))
    assert validated == []  # the rebuilt entry is good
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err


def test_bad_file_raises_every_time_and_is_never_cached(fresh_project):
    folder = Path(shutil.copytree(fresh_project / "data" / "demo", fresh_project / "data" / "raw" / "bad"))
    df = pd.read_csv(folder / "pilot.csv", dtype=str, keep_default_na=False)
    df.loc[3, "data_avvio"] = "2020/05/01"
    df.to_csv(folder / "pilot.csv", index=False)
    for _ in range(2):
        with pytest.raises(DataValidationError) as exc:
            load_sources(folder)
        assert "pilot.csv, row 5, column 'data_avvio'" in str(exc.value) and "2020/05/01" in str(exc.value)
    assert not paths.cache_dir().exists()  # not even the valid tables: only a successful load is stored


def test_unwritable_outputs_load_without_cache(names_folder):
    shutil.rmtree(paths.outputs_dir(), ignore_errors=True)
    paths.outputs_dir().write_text("not a folder")  # outputs/.cache cannot be created
    assert_same_sources(load_sources(names_folder, cache=False), load_sources(names_folder))
    assert paths.outputs_dir().read_text() == "not a folder"


def test_losing_writer_discards_its_copy(names_folder):
    load_sources(names_folder)
    root = paths.cache_dir() / "sources"
    key = entry_of(names_folder, "pilot").name
    frames, meta = cache.read_entry(root, key)
    other = {"table": frames["table"].iloc[:1]}  # a different copy, as if from another process
    assert not cache.write_entry(root, key, other, meta)
    assert cache.read_entry(root, key)[0]["table"].equals(frames["table"])
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temporary folder left


def _load_in_process(folder: str, root: str, barrier, results) -> None:
    import os

    os.environ["OSSERVATORIO_ROOT"] = root
    from osservatorio.data.sources import load_sources

    barrier.wait()
    results.put(load_sources(Path(folder)))


def test_two_processes_loading_at_once(names_folder, fresh_project):
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_load_in_process, args=(str(names_folder), str(fresh_project), barrier, results))
             for _ in range(2)]
    for p in procs:
        p.start()
    loaded = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    uncached = load_sources(names_folder, cache=False)
    for src in loaded:
        assert_same_sources(uncached, src)
    root = paths.cache_dir() / "sources"
    assert len(entries()) == len(uncached.tables)
    assert not [p for p in root.iterdir() if p.name.startswith(".")]
    assert_same_sources(uncached, load_sources(names_folder))


def test_tables_listed_in_schema_order():
    from osservatorio.data import schemas

    assert schemas.TABLES == list(schemas.SCHEMAS)


def test_loading_from_the_cache_imports_no_pandera(project_root):
    """A stage kernel loads the sources from the cache: the validation library (0.4 s of
    imports) is not needed there."""
    import subprocess
    import sys

    code = ("import sys\nfrom osservatorio import paths\nfrom osservatorio.data.sources import load_sources\n"
            "load_sources(paths.project_root() / 'data' / 'demo')\n"  # warms the cache if cold
            "import osservatorio.indicators.steps, osservatorio.evaluate.designs\n"
            "print('pandera' in sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=600)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"


def test_a_process_reloads_from_memory_only_what_did_not_change(names_folder, validated, monkeypatch):
    """A kernel runs four stages, each loading the sources: after the first, the same
    content comes from memory (copies: a stage changing its frames changes nothing for the
    next), and a file changed in between is read and checked again."""
    reads: list[str] = []
    real = cache.read_entry
    monkeypatch.setattr(cache, "read_entry", lambda root, key: (reads.append(key), real(root, key))[1])
    first = load_sources(names_folder)
    first["esiti"].loc[:, "valore"] = -1.0
    reads.clear()
    second = load_sources(names_folder)
    assert reads == [] and validated == list(first.tables)  # validated once, by the first load
    assert_same_sources(load_sources(names_folder, cache=False), second)
    path = names_folder / "strumenti_finanza_sociale.csv"
    path.write_text(path.read_text(encoding="utf-8").replace("300.000,00", "350.000,00"), encoding="utf-8")
    validated.clear()
    third = load_sources(names_folder)
    assert validated == ["strumenti_finanza_sociale"]
    assert 350_000.0 in set(third["strumenti_finanza_sociale"]["importo_euro"])
    path.write_text("codice_fiscale;nome\n", encoding="utf-8")  # now invalid: refused, not remembered
    with pytest.raises(Exception, match="strumenti_finanza_sociale"):
        load_sources(names_folder)
