"""Stage notebooks: a parameters cell with the theme id, cells that call the public API.

Their execution on the demo defaults is checked by nbval (``make test`` runs
``pytest tests --nbval-lax notebooks``)."""

from __future__ import annotations

import ast

import nbformat
import pytest

from conftest import REPO
from osservatorio.themes import STAGE_NOTEBOOKS, load_theme


@pytest.mark.parametrize("name", sorted(STAGE_NOTEBOOKS.values()))
def test_parameters_cell_holds_what_a_researcher_changes(name):
    """theme_id, run_dir and overrides; the theme itself is loaded from its file."""
    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), "the first code cell must be tagged 'parameters'"
    assigned = [t.id for node in ast.parse(code[0].source).body if isinstance(node, ast.Assign) for t in node.targets]
    assert assigned == ["theme_id", "run_dir", "overrides"]
    params = {}
    exec(code[0].source, {}, params)  # literal defaults only
    assert params["run_dir"] == "" and params["overrides"] == {}
    assert load_theme(params["theme_id"]).id == "coprogettazione-anziani"
    # one line opens the stage, with the parameters visible
    assert f"stage = open_stage(theme_id, run_dir, overrides, stage={name[:2]})" in code[1].source


def test_evaluation_cells_show_the_public_api():
    nb = nbformat.read(REPO / "notebooks" / "30_evaluation.ipynb", as_version=4)
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for call in ("design = designs.for_theme(stage.theme)", "ev = design.estimate(panel)",
                 "placebo = design.placebo(panel, ev)", "het = design.heterogeneity(panel)",
                 "sens = design.sensitivity(panel, ev)",
                 "show.save(stage, ev, placebo=placebo, heterogeneity=het, sensitivity=sens)"):
        assert call in source


@pytest.mark.parametrize("name", sorted(STAGE_NOTEBOOKS.values()))
def test_no_cell_echoes_a_raw_result(name):
    """A bare expression as a cell's last line would echo a dict or frame into the report;
    only the design object (a one-line repr, not in the report) may stand alone."""
    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    for cell in nb.cells[1:]:
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        last = ast.parse(cell.source).body[-1]
        if isinstance(last, ast.Expr):
            assert isinstance(last.value, ast.Call) or ast.unparse(last.value) == "design", cell.source


@pytest.mark.parametrize("name", sorted(STAGE_NOTEBOOKS.values()))
def test_notebooks_are_committed_clean_and_thin(name):
    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None
            code = "\n".join(line.split("#")[0] for line in cell.source.splitlines())
            assert "def " not in code and "class " not in code  # logic lives in lib/
            assert "outputs/" not in code and "data/" not in code  # paths come from lib
