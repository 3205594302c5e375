"""osservatorio lab: injected copies, a real JupyterLab driven by headless Chromium, git clean.

The browser tests start ``jupyter lab`` on 127.0.0.1 (free port, token) on a temporary
project and drive Debian's Chromium with Playwright (never a downloaded browser). They are
skipped only when ``/usr/bin/chromium`` is missing (``.ci/run`` installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from typer.testing import CliRunner

from conftest import REPO
from osservatorio import paths
from osservatorio.cli import app
from osservatorio.running.kernel import KERNEL_NAME, ensure_kernel, kernel_is_registered
from osservatorio.running.lab import copy_state, prepare_lab
from osservatorio.running.provenance import fingerprint, input_hashes
from osservatorio.themes import STAGE_NOTEBOOKS, load_theme

THEME = "patti-beni-comuni"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def injected(nb_path: Path) -> dict:
    """The values the injected-parameters cell sets."""
    nb = nbformat.read(nb_path, as_version=4)
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    i = next(k for k, t in enumerate(tags) if "injected-parameters" in t)
    assert "parameters" in tags[i - 1], "the injected cell follows the parameters cell"
    values: dict = {}
    exec(nb.cells[i].source, {}, values)
    return values


# --- unit -------------------------------------------------------------------------------

def test_lab_writes_injected_copies(fresh_project):
    copies = prepare_lab(THEME, 30)
    folder = fresh_project / "outputs" / THEME / "interactive" / "notebooks"
    theme = load_theme(THEME)
    assert copies.folder == folder
    assert sorted(p.name for p in folder.glob("*.ipynb")) == sorted(STAGE_NOTEBOOKS[s] for s in theme.stages)
    assert copies.notebook(30) == folder / "30_evaluation.ipynb"
    for path in copies.written:
        assert injected(path) == {"theme_id": THEME, "run_dir": str(paths.interactive_dir(THEME)), "overrides": {}}
        nb = nbformat.read(path, as_version=4)
        assert nb.metadata.kernelspec.name == KERNEL_NAME
        assert all(not c.get("outputs") for c in nb.cells)
    assert not list((fresh_project / "notebooks").glob("*injected*"))


@pytest.mark.parametrize("args", [["lab", "no-such-theme"], ["lab", THEME, "35"]])
def test_lab_refuses_bad_input_before_writing(fresh_project, args):
    result = CliRunner().invoke(app, args + ["--no-browser"])
    assert result.exit_code == 2, result.output
    assert "error" in result.output
    assert not (fresh_project / "outputs").exists()


def test_lab_keeps_edited_copies(fresh_project, monkeypatch):
    prepare_lab(THEME)
    path = paths.interactive_dir(THEME) / "notebooks" / "30_evaluation.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[-1].outputs = [nbformat.v4.new_output("stream", text="ran\n")]
    nbformat.write(nb, path)
    assert copy_state(path) == "unedited"  # outputs are not edits
    again = prepare_lab(THEME)
    assert path in again.unchanged and path.read_text(encoding="utf-8").count("ran\\n") == 1

    nb.cells.append(nbformat.v4.new_code_cell("my_analysis = 1"))
    nbformat.write(nb, path)
    edited = path.read_bytes()
    again = prepare_lab(THEME)
    assert path in again.kept and path.read_bytes() == edited

    started = []
    monkeypatch.setattr("osservatorio.running.lab.start_lab", lambda cmd, cwd: started.append(cmd) or 0)
    result = CliRunner().invoke(app, ["lab", THEME, "30", "--no-browser"])
    assert result.exit_code == 0 and "kept your edited 30_evaluation.ipynb (pass --reset" in result.output
    assert started[0][-1] == "notebooks/30_evaluation.ipynb" and "--no-browser" in started[0]
    result = CliRunner().invoke(app, ["lab", THEME, "--reset", "--no-browser"])
    assert result.exit_code == 0 and "my_analysis" not in path.read_text(encoding="utf-8"), result.output


def test_kernel_registered_idempotently():
    first = ensure_kernel()
    assert ensure_kernel() == first and kernel_is_registered()
    spec = json.loads((first / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable and spec["language"] == "python"


def test_fingerprint_ignores_what_jupyterlab_writes(fresh_project):
    theme = load_theme(THEME)
    before = fingerprint(theme, input_hashes(theme))
    path = fresh_project / "notebooks" / "30_evaluation.ipynb"
    nb = nbformat.read(path, as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("stream", text="x\n")]
    code.execution_count = 7
    code.metadata["scrolled"] = True
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.9", "mimetype": "text/x-python"}
    nb.metadata["kernelspec"] = {"name": "other", "display_name": "Other", "language": "python"}
    nbformat.write(nb, path)
    assert fingerprint(theme, input_hashes(theme)) == before
    code.source += "\n# changed"
    nbformat.write(nb, path)
    assert fingerprint(theme, input_hashes(theme)) != before


def test_tracked_notebooks_are_as_the_git_filter_writes_them():
    """Else checking out and saving an untouched notebook would show it as changed."""
    from osservatorio.running.gitfilter import EXTRA_KEYS

    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        stripped = subprocess.run([sys.executable, "-m", "nbstripout", "--keep-id", "--extra-keys", " ".join(EXTRA_KEYS)],
                                  input=path.read_bytes(), capture_output=True, check=True).stdout
        assert stripped == path.read_bytes(), f"{path.name}: run it through nbstripout --keep-id"
