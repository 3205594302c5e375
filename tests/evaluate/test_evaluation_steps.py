"""Stage 30 computations (steps.evaluation) on the demo data, without papermill."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from osservatorio.data.sources import load_sources
from osservatorio.indicators.panel import build_panel
from osservatorio.evaluate.steps import estimate_design, heterogeneity_table
from osservatorio.themes import load_theme


@pytest.fixture(scope="module")
def anziani(project_root):
    theme = load_theme("coprogettazione-anziani")
    return theme, build_panel(load_sources(project_root / "data" / "demo"), theme)


def test_estimates_and_frames_of_the_staggered_design(anziani):
    theme, panel = anziani
    out, frames = estimate_design(theme, panel)
    assert set(frames) == {"event_study", "cohorts", "att_gt"}
    ev = frames["event_study"]
    assert ev["event_time"].tolist() == list(range(-theme.event_window, theme.event_window + 1))
    assert np.all(ev["cband_low"] <= ev["ci_low"]) and np.all(ev["cband_high"] >= ev["ci_high"])
    pre = out["pretrend"]
    assert pre["leads"] == list(range(-theme.event_window, 0)) and "wild cluster bootstrap" in pre["method"]
    assert 0 <= pre["p_value"] <= 1 and pre["n_treated_clusters"] == out["n_treated_clusters"] == 70
    h = out["headline"]
    assert "t(" in h["inference"] and h["n_clusters"] == panel["cluster"].nunique()
    json.dumps(out)  # what estimate() writes must be JSON


def test_heterogeneity_finds_the_small_comune_multiplier(anziani, project_root):
    """Truth: the effect is 1.5x in comuni <= 5,000 (ground_truth notes)."""
    theme, panel = anziani
    table, tests = heterogeneity_table(theme, panel)
    small = table[table["moderatore"] == "piccolo_comune"].set_index("livello")["stima"]
    assert small["True"] / small["False"] == pytest.approx(1.5, abs=0.3)
    test = next(t for t in tests if t["moderatore"] == "piccolo_comune")
    assert test["df"] == 1 and test["p_value"] < 0.01
    # levels below the disclosure threshold are left out of the equality test
    size = table[table["moderatore"] == "classe_ampiezza"]
    shown = ((size["n_trattati"] >= theme.disclosure_threshold) & (size["stato"] == "ok")).sum()
    assert next(t for t in tests if t["moderatore"] == "classe_ampiezza")["df"] == shown - 1
    assert set(table.columns) >= {"moderatore", "livello", "n_trattati", "stima", "ci_low", "ci_high", "p_value"}


def test_designs_without_subgroups_return_an_empty_table(project_root):
    theme = load_theme("citta-pilota")
    table, tests = heterogeneity_table(theme, build_panel(load_sources(project_root / "data" / "demo"), theme))
    assert table.empty and tests == []


@pytest.mark.parametrize("kind", ["callaway_santanna", "comparative_its", "twfe_wild_cluster_bootstrap",
                                  "randomization_inference", "synthetic_control", "twfe"])
def test_inference_column_is_in_the_report_language(kind):
    from osservatorio.evaluate.steps import _inference_text

    r = {"n_clusters": 107, "inference": "analytic influence function, t(106) critical values"}
    it, en = _inference_text(kind, r, "it"), _inference_text(kind, r, "en")
    assert it != en and "{" not in it + en
    if kind != "synthetic_control":
        assert "107 cluster" in it and "107 clusters" in en
    assert _inference_text("callaway_santanna", {"n_clusters": 900, "inference": "normal"}, "it").endswith("(come R did)")


def test_cohorts_with_one_treated_cluster_are_named():
    from osservatorio.evaluate.steps import _cohorts_one_cluster, _one_cluster_args
    from osservatorio.publishing.text import t

    panel = pd.DataFrame({"unit": ["a", "a", "b", "c", "d", "e"], "time": [1, 2, 1, 1, 1, 1],
                          "cohort": [24253, 24253, 24253, 24254, 24254, 0],
                          "cluster": ["P1", "P1", "P1", "P1", "P2", "P3"]})
    assert _cohorts_one_cluster(panel) == [24253]  # 2021-02: units a and b, both in P1
    args = _one_cluster_args({"cohorts_one_cluster": [24253]}, load_theme("case-comunita"))
    assert args == {"n": 1, "cohorts": "2021-02"}
    assert "2021-02" in t("eval.limits.one_cluster_cohorts", "it", **args)
