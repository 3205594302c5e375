"""Stage notebooks: thin drivers with one parameters cell holding every theme key.

Their execution on the demo defaults is checked by nbval (``make test`` runs
``pytest tests --nbval-lax notebooks``)."""

from __future__ import annotations

import ast

import nbformat
import pytest

from conftest import REPO
from osservatorio.themes import STAGE_NOTEBOOKS, Theme, load_theme


@pytest.mark.parametrize("name", sorted(STAGE_NOTEBOOKS.values()))
def test_parameters_cell_has_every_theme_key(name):
    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), "the first code cell must be tagged 'parameters'"
    assigned = {t.id for node in ast.parse(code[0].source).body if isinstance(node, ast.Assign) for t in node.targets}
    assert set(Theme.model_fields) | {"run_dir"} == assigned
    params = {}
    exec(code[0].source, {}, params)  # literal defaults only
    params.pop("run_dir")
    assert Theme.model_validate(params) == load_theme("coprogettazione-anziani")


@pytest.mark.parametrize("name", sorted(STAGE_NOTEBOOKS.values()))
def test_notebooks_are_committed_clean_and_thin(name):
    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None
            code = "\n".join(line.split("#")[0] for line in cell.source.splitlines())
            assert "def " not in code and "class " not in code  # logic lives in lib/
            assert "outputs/" not in code and "data/" not in code  # paths come from lib
