"""The source files of a data folder and their hashes, without pandas: a run decides
whether it is up to date, and starts its kernel, before the scientific stack is imported."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Final

# The source tables, in the order they are loaded (their schemas: data/schemas.py).
TABLES: Final = ["enti_terzo_settore", "atti_amministrazione_condivisa", "strumenti_finanza_sociale", "pilot",
                 "costi_pilota", "esiti", "ambiti"]

# The files the demo generator writes (data/demo.py FILES): one missing means demo data of
# an older version, regenerated (same seed: the files it already had come out the same).
DEMO_FILES: Final = ["ambiti.csv", "enti_terzo_settore.csv", "atti_amministrazione_condivisa.csv",
                     "strumenti_finanza_sociale.csv", "pilot.csv", "costi_pilota.csv", "esiti.csv",
                     "ground_truth.json", "LEGGIMI.txt"]


def find_table_file(folder: Path, table: str) -> Path | None:
    """``<table>.csv`` (or .csv.gz) or ``<table>.xlsx`` in folder, or None."""
    for suffix in (".csv", ".csv.gz", ".xlsx"):
        path = folder / f"{table}{suffix}"
        if path.is_file():
            return path
    return None


def file_sha256(path: Path) -> str:
    """SHA-256 of the file's bytes. Within a process, a file whose size, modification and
    change times (nanoseconds) and inode are those of its last hashing is not read again
    (as git's index does): a batch prepares six themes on the same 70 MB of sources."""
    st = os.stat(path)
    stamp = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
    known = _HASHED.get(str(path))
    if known is not None and known[0] == stamp:
        return known[1]
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    _HASHED[str(path)] = (stamp, h.hexdigest())
    return h.hexdigest()


_HASHED: dict[str, tuple[tuple[int, ...], str]] = {}


def source_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every source file present in folder (for the run manifest)."""
    out = {}
    for table in TABLES:
        path = find_table_file(Path(folder), table)
        if path is not None:
            out[path.name] = file_sha256(path)
    return out
