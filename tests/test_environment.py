"""environment.yml (for conda users) lists exactly the pyproject dependencies."""

from __future__ import annotations

import tomllib

import yaml

from conftest import REPO


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["test"]
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = [p for p in pip if p != "-e ."]
    assert listed == wanted
    assert "-e ." in pip
    assert "python=3.11" in env["dependencies"]
