"""JupyterLab on a theme: untracked copies of the stage notebooks with the theme injected.

``osservatorio lab`` calls ``prepare_lab``: ``load_theme`` (a bad theme fails before
anything is written), ``write_copies`` (the tracked notebooks with an
``injected-parameters`` cell after their ``parameters`` cell, as ``ploomber nb --inject``
and papermill do, into ``outputs/<theme>/interactive/notebooks/``); then ``start_lab``
runs JupyterLab rooted at the project, opening the copy.
A copy the researcher edited is kept unless ``reset``: each copy records the hash of what
was written, so an unedited copy follows the tracked notebook and an edited one is left alone.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from osservatorio import paths
from osservatorio.exceptions import InputError
from osservatorio.running.kernel import DISPLAY_NAME, KERNEL_NAME, ensure_kernel, ensure_server_config
from osservatorio.themes import STAGE_NOTEBOOKS, Theme, load_theme

METADATA_KEY = "osservatorio"  # notebook metadata of a copy: theme and hash of what was written


@dataclass
class LabCopies:
    theme: Theme
    folder: Path  # outputs/<theme>/interactive/notebooks
    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)  # edited by the researcher, left as they are
    unchanged: list[Path] = field(default_factory=list)

    def notebook(self, stage: int | None) -> Path:
        """The copy to open first: the stage asked for, else the theme's first stage."""
        return self.folder / STAGE_NOTEBOOKS[stage if stage is not None else self.theme.stages[0]]


def lab_parameters(theme: str | Path, theme_id: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The parameters cell's values for a theme: id (or file), interactive run folder, overrides."""
    is_file = Path(str(theme)).suffix in (".yaml", ".yml") or Path(str(theme)).is_file()
    return {"theme_id": str(Path(theme).resolve()) if is_file else theme_id,
            "run_dir": str(paths.interactive_dir(theme_id)), "overrides": dict(overrides or {})}


def _content_hash(nb: nbformat.NotebookNode) -> str:
    cells = [[c.cell_type, c.source, sorted(c.get("metadata", {}).get("tags", []))] for c in nb.cells]
    return hashlib.sha256(json.dumps(cells, ensure_ascii=False).encode()).hexdigest()


def inject_parameters(source: Path, parameters: dict[str, Any], theme_id: str) -> nbformat.NotebookNode:
    """A copy of a tracked notebook with an ``injected-parameters`` cell, outputs cleared."""
    from papermill.parameterize import parameterize_notebook

    nb = nbformat.read(source, as_version=4)
    nb.metadata.setdefault("papermill", {})
    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])  # papermill looks for tags in every cell
    nb.metadata["kernelspec"] = {"display_name": DISPLAY_NAME, "language": "python", "name": KERNEL_NAME}
    nb = parameterize_notebook(nb, copy.deepcopy(parameters), kernel_name=KERNEL_NAME, language="python",
                               comment=f"Parameters of theme {theme_id}, injected by `osservatorio lab`")
    for cell in nb.cells:
        if not cell.metadata["tags"]:
            del cell.metadata["tags"]
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata[METADATA_KEY] = {"theme": theme_id, "content_sha256": _content_hash(nb)}
    return nb


def copy_state(path: Path) -> str:
    """'missing', 'unedited' (as written by lab, outputs aside) or 'edited'."""
    if not path.is_file():
        return "missing"
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:  # unreadable: the researcher's problem to see, not ours to overwrite
        return "edited"
    recorded = nb.metadata.get(METADATA_KEY, {}).get("content_sha256")
    return "unedited" if recorded == _content_hash(nb) else "edited"


def write_copies(theme: Theme, parameters: dict[str, Any], reset: bool = False) -> LabCopies:
    """Injected copies of the theme's stage notebooks; edited copies kept unless ``reset``."""
    folder = paths.interactive_dir(theme.id) / "notebooks"
    folder.mkdir(parents=True, exist_ok=True)
    copies = LabCopies(theme, folder)
    for stage in theme.stages:
        name = STAGE_NOTEBOOKS[stage]
        target = folder / name
        new = inject_parameters(paths.notebooks_dir() / name, parameters, theme.id)
        state = copy_state(target)
        if state == "edited" and not reset:
            copies.kept.append(target)
            continue
        if state == "unedited" and _same_content(target, new):
            copies.unchanged.append(target)  # keeps the outputs of the last session
            continue
        tmp = target.with_name(f".{name}.tmp")
        nbformat.write(new, tmp)
        tmp.replace(target)
        copies.written.append(target)
    return copies


def _same_content(path: Path, nb: nbformat.NotebookNode) -> bool:
    return _content_hash(nbformat.read(path, as_version=4)) == _content_hash(nb)


# The top-level metadata of the tracked notebooks, as committed.
TRACKED_METADATA = {"kernelspec": {"display_name": DISPLAY_NAME, "language": "python", "name": KERNEL_NAME},
                    "language_info": {"name": "python"}}
# Cell metadata JupyterLab may add on its own (the user's tags and the rest are kept).
_VOLATILE_CELL_METADATA = ("execution", "collapsed", "scrolled", "jupyter", "ExecuteTime")


def strip_tracked_notebook(model: dict, path: str, contents_manager, **kwargs) -> None:
    """Jupyter pre-save hook: a tracked stage notebook (in the project's notebooks/) is
    saved without outputs, execution counts or the metadata JupyterLab writes, exactly as
    committed; so opening, running and saving one leaves ``git status`` clean (git judges
    a file whose size changed as modified without running the nbstripout filter). The
    outputs stay on screen; copies made by ``osservatorio lab`` keep theirs on disk."""
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    try:
        os_path = Path(contents_manager._get_os_path(path)).resolve()
    except Exception:  # a contents manager without files on disk: nothing tracked there
        return
    if os_path.parent != paths.notebooks_dir().resolve():
        return
    nb = model["content"]
    nb["metadata"] = copy.deepcopy(TRACKED_METADATA)
    for cell in nb.get("cells", []):
        for key in _VOLATILE_CELL_METADATA:
            cell.get("metadata", {}).pop(key, None)
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None


def lab_command(root_dir: Path, open_path: Path | None, port: int | None, browser: bool) -> list[str]:
    """``jupyter lab`` on the interactive folder with the osservatorio kernel as default
    and tracked notebooks stripped on save."""
    ensure_server_config()  # the pre-save hook, for this server and any other started from this environment
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root_dir}",
           f"--MappingKernelManager.default_kernel_name={KERNEL_NAME}"]
    if port is not None:
        cmd += [f"--ServerApp.port={port}", "--ServerApp.port_retries=0"]
    if not browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI run as root
        cmd.append("--allow-root")
    if open_path is not None:
        cmd.append(str(open_path.relative_to(root_dir)))
    return cmd


def lab_environment() -> dict[str, str]:
    """The server's and its kernels' environment: the project root, this env's executables first."""
    env = dict(os.environ)
    env["OSSERVATORIO_ROOT"] = str(paths.project_root())
    bindir = str(Path(sys.executable).parent)  # pylsp for go-to-definition, even without an activated venv
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return env


def start_lab(cmd: list[str], cwd: Path) -> int:
    """Run the server until it exits; Ctrl-C, SIGTERM or SIGHUP stop it and its kernels.

    A Ctrl-C in the terminal reaches the server too, which stops without its usual
    confirmation prompt (``answer_yes``); a signal sent to this process alone is passed on.
    """
    proc = subprocess.Popen(cmd + ["--ServerApp.answer_yes=True"], cwd=cwd, env=lab_environment())

    def stop(signum=None, frame=None) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM))}
    try:
        return proc.wait()
    except KeyboardInterrupt:
        stop()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def prepare_lab(theme: str | Path, stage: int | None = None, reset: bool = False,
                overrides: dict[str, Any] | None = None) -> LabCopies:
    """Validate the theme and stage (InputError before writing anything), write the copies."""
    t = load_theme(theme, overrides)
    if stage is not None and stage not in t.stages:
        allowed = ", ".join(str(s) for s in t.stages)
        raise InputError(f"stage {stage} is not a stage of theme {t.id} (its stages: {allowed})")
    if t.data_source == "demo":
        from osservatorio.running.runner import ensure_demo_data

        ensure_demo_data()
    ensure_kernel()
    return write_copies(t, lab_parameters(theme, t.id, overrides), reset=reset)
