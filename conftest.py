"""Shared fixtures. Tests that run the workbench use a temporary project root.

``OSSERVATORIO_ROOT`` is pointed at a temporary copy of the project's notebooks and
params with freshly generated demo data, before any test (or nbval kernel) starts, so
tests never touch the repository's own ``outputs/`` or ``data/demo``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent


def make_project(root: Path, demo_from: Path | None = None) -> Path:
    """A runnable project folder: notebooks, params, demo data (copied or generated)."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "notebooks", root / "notebooks", dirs_exist_ok=True)
    shutil.copytree(REPO / "params", root / "params", dirs_exist_ok=True)
    (root / "data" / "raw").mkdir(parents=True, exist_ok=True)
    if demo_from is not None and (demo_from / "ground_truth.json").is_file():
        shutil.copytree(demo_from, root / "data" / "demo", dirs_exist_ok=True)
    else:
        from osservatorio.data.demo import generate_demo

        generate_demo(root / "data" / "demo")
    return root


def pytest_configure(config):
    if os.environ.get("OSSERVATORIO_TEST_ROOT"):
        return
    root = Path(tempfile.mkdtemp(prefix="osservatorio-test-"))
    make_project(root)
    os.environ["OSSERVATORIO_TEST_ROOT"] = str(root)
    os.environ["OSSERVATORIO_ROOT"] = str(root)
    config._osservatorio_root = root


def pytest_unconfigure(config):
    root = getattr(config, "_osservatorio_root", None)
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def project_root() -> Path:
    """The session's temporary project (demo data generated once)."""
    return Path(os.environ["OSSERVATORIO_ROOT"])


@pytest.fixture
def fresh_project(tmp_path, project_root, monkeypatch) -> Path:
    """A new temporary project for one test (demo data copied from the session's)."""
    root = make_project(tmp_path / "project", demo_from=project_root / "data" / "demo")
    monkeypatch.setenv("OSSERVATORIO_ROOT", str(root))
    return root
