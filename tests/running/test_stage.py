"""Interactive stages: the theme loaded by id, overrides on top, results never stale.

In JupyterLab a researcher changes ``overrides`` and reruns; every result must be the one
a fresh batch run with the same parameters gives, never a panel or an estimate made with
other parameters (issue: after changing ``outcome`` the cached panel kept the old one)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from osservatorio import paths
from osservatorio.data.sources import load_sources
from osservatorio.evaluate import designs
from osservatorio.exceptions import StageOrderError, ThemeError
from osservatorio.indicators.panel import build_panel
from osservatorio.running.stage import open_stage
from osservatorio.themes import load_theme

THEME = "patti-beni-comuni"
CHANGED = {"outcome": "copertura_adi_over65", "cluster": "regione"}


def test_theme_is_loaded_by_id_with_overrides(fresh_project):
    stage = open_stage(THEME, "", {"cluster": "regione"})
    assert stage.theme == load_theme(THEME, {"cluster": "regione"})
    assert stage.interactive and stage.run_dir.parent == paths.interactive_dir(THEME)
    manifest = json.loads((stage.run_dir / "manifest.json").read_text())
    assert manifest["overrides"] == {"cluster": "regione"} and manifest["parameters"]["cluster"] == "regione"
    assert manifest["synthetic_data"] is True and manifest["inputs"]["esiti.csv"]


def test_bad_override_names_the_key(fresh_project):
    with pytest.raises(ThemeError, match="cluster.*not allowed.*regione"):
        open_stage(THEME, "", {"cluster": "quartiere"})


def test_changed_outcome_and_cluster_never_reuse_the_old_panel(fresh_project):
    """The first open caches a panel; the changed parameters open another folder whose
    panel and estimate equal those of a fresh computation with the new parameters."""
    first = open_stage(THEME)
    old = first.panel()
    assert (first.data_dir / "panel.parquet").is_file()
    changed = open_stage(THEME, "", CHANGED, stage=30)
    assert changed.run_dir != first.run_dir
    panel = changed.panel()
    theme = load_theme(THEME, CHANGED)
    fresh = build_panel(load_sources(paths.demo_dir()), theme)
    pd.testing.assert_frame_equal(panel, fresh)
    assert abs(panel["y"].mean() - old["y"].mean()) > 1  # another outcome indeed
    ev = designs.for_theme(changed.theme).estimate(panel)
    assert ev.headline.n_clusters == 20 == panel["cluster"].nunique()  # regions, not the 107 provinces
    assert ev.options["design"] == theme.design and ev.to_dict()["options"]["seed"] == theme.seed
    # reopening with the same parameters finds the same folder (its panel is reused)
    assert open_stage(THEME, "", dict(CHANGED)).run_dir == changed.run_dir


def test_data_change_opens_a_new_folder(fresh_project):
    before = open_stage(THEME).run_dir
    esiti = paths.demo_dir() / "esiti.csv"
    esiti.write_text(esiti.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert open_stage(THEME).run_dir != before


def test_stage_40_refuses_estimates_of_other_parameters(fresh_project):
    from osservatorio.synthesis import steps

    stage = open_stage(THEME, "", stage=40)
    with pytest.raises(StageOrderError, match="run 30_evaluation.ipynb first"):
        steps.evidence(stage)
    # estimates written by stage 30 with other parameters, planted in this folder
    other = load_theme(THEME, {"cluster": "regione"}).notebook_parameters()
    stage.write_json("estimates.json", {"theme_options": {"parameters": other}, "headline": {}})
    with pytest.raises(StageOrderError, match="other values of cluster"):
        steps.evidence(stage)


@pytest.mark.e2e
def test_interactive_notebook_with_overrides_equals_a_batch_run(fresh_project):
    """Stage 30 run interactively (papermill on the notebook, run_dir empty) after the
    outcome and cluster were changed gives the estimates of a batch run with the same
    overrides."""
    import papermill as pm

    from osservatorio.running.kernel import KERNEL_NAME, ensure_kernel
    from osservatorio.running.runner import run_theme

    ensure_kernel()
    open_stage(THEME).panel()  # a panel of the theme's own parameters is already cached
    out = fresh_project / "outputs" / "30.ipynb"
    pm.execute_notebook(str(paths.notebooks_dir() / "30_evaluation.ipynb"), str(out), kernel_name=KERNEL_NAME,
                        parameters={"theme_id": THEME, "run_dir": "", "overrides": CHANGED}, progress_bar=False)
    interactive = json.loads((open_stage(THEME, "", CHANGED).data_dir / "estimates.json").read_text())
    batch = run_theme(THEME, overrides=CHANGED)
    assert batch.status == "success", batch.error
    ran = json.loads((batch.run_dir / "data" / "estimates.json").read_text())
    assert interactive["headline"] == ran["headline"] and interactive["pretrend"] == ran["pretrend"]
    assert ran["headline"]["n_clusters"] == 20 and ran["theme_options"]["overrides"] == CHANGED
    assert interactive["options"] == ran["options"]


def test_one_table_alone_equals_the_same_table_of_a_full_load(fresh_project, tmp_path, monkeypatch):
    from osservatorio.data import sources as sources_module

    alone = open_stage("coprogettazione-anziani", tmp_path / "a")
    loads = []
    real = sources_module.load_sources
    monkeypatch.setattr("osservatorio.running.stage.load_sources",
                        lambda *a, **k: (loads.append(k.get("tables")), real(*a, **k))[1])
    for name in ("pilot", "ambiti", "pilot"):
        got = alone.table(name)
        pd.testing.assert_frame_equal(got, real(paths.sources_dir("demo"))[name], check_exact=True)
    assert loads == [["pilot"], ["ambiti"]]  # each table once, alone
    full = open_stage("coprogettazione-anziani", tmp_path / "b")
    full.sources  # noqa: B018 - loaded first: table() reads from it
    assert full.table("pilot") is full.sources["pilot"] and loads[-1] is None
