"""Stage 30: the design objects on the demo data, without papermill, and the display helpers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from osservatorio.data.sources import load_sources
from osservatorio.indicators.panel import build_panel
from osservatorio.evaluate import designs
from osservatorio.themes import load_theme


@pytest.fixture(scope="module")
def anziani(project_root):
    theme = load_theme("coprogettazione-anziani")
    return theme, build_panel(load_sources(project_root / "data" / "demo"), theme)


def test_estimates_and_frames_of_the_staggered_design(anziani):
    theme, panel = anziani
    ev = designs.for_theme(theme).estimate(panel)
    out, frames = ev.to_dict(), ev.frames
    assert ev.staggered is not None and len(ev.staggered.aggregate("cohort")) == len(frames["cohorts"])
    assert out["options"]["comparison"] == theme.comparison
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
    het = designs.for_theme(theme).heterogeneity(panel)
    table, tests = het.table, het.tests
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
    het = designs.for_theme(theme).heterogeneity(build_panel(load_sources(project_root / "data" / "demo"), theme))
    assert het.table.empty and het.tests == []


@pytest.mark.parametrize("kind", ["callaway_santanna", "comparative_its", "twfe_wild_cluster_bootstrap",
                                  "randomization_inference", "synthetic_control", "twfe", "sdid_placebo",
                                  "sdid_bootstrap", "sdid_jackknife"])
def test_inference_column_is_in_the_report_language(kind):
    from osservatorio.evaluate.show import _inference_text

    r = {"n_clusters": 107, "inference": "analytic influence function, t(106) critical values"}
    it, en = _inference_text(kind, r, "it"), _inference_text(kind, r, "en")
    assert it != en and "{" not in it + en
    if kind != "synthetic_control" and not kind.startswith("sdid"):
        assert "107 cluster" in it and "107 clusters" in en
    assert _inference_text("callaway_santanna", {"n_clusters": 900, "inference": "normal"}, "it").endswith("(come R did)")


def test_cohorts_with_one_treated_cluster_are_named():
    from osservatorio.evaluate.designs import cohorts_one_cluster
    from osservatorio.evaluate.show import limit_texts

    panel = pd.DataFrame({"unit": ["a", "a", "b", "c", "d", "e"], "time": [1, 2, 1, 1, 1, 1],
                          "cohort": [24253, 24253, 24253, 24254, 24254, 0],
                          "cluster": ["P1", "P1", "P1", "P1", "P2", "P3"]})
    assert cohorts_one_cluster(panel) == [24253]  # 2021-02: units a and b, both in P1
    theme = load_theme("case-comunita")
    texts = limit_texts(designs.for_theme(theme), {"cohorts_one_cluster": [24253], "n_treated_clusters": 20},
                        theme, "it")
    assert len(texts) == 2 and "2021-02" in texts[1]
