"""Stage 30 on the demo data recovers the ground truth (data/demo/ground_truth.json).

For each demo theme: build the analysis panel, run the design's estimators as stage 30
does (``designs.for_theme(theme).estimate``, no papermill) and compare with the generator's truth.
"""

from __future__ import annotations

import json

import pytest

from osservatorio.data.sources import load_sources
from osservatorio.indicators.panel import build_panel
from osservatorio.evaluate import designs
from osservatorio.themes import load_theme

THEMES = ["coprogettazione-anziani", "patti-beni-comuni", "finanza-sociale-neet", "case-comunita",
          "citta-pilota", "cooperative-aree-interne"]
PARALLEL_TRENDS_HOLD = ["coprogettazione-anziani", "patti-beni-comuni", "finanza-sociale-neet",
                        "cooperative-aree-interne"]


@pytest.fixture(scope="module")
def demo(project_root):
    demo_dir = project_root / "data" / "demo"
    truth = json.loads((demo_dir / "ground_truth.json").read_text(encoding="utf-8"))["themes"]
    sources = load_sources(demo_dir)
    estimates = {}
    for tid in THEMES:
        theme = load_theme(tid)
        estimates[tid] = designs.for_theme(theme).estimate(build_panel(sources, theme)).to_dict()
    return truth, estimates


@pytest.mark.parametrize("tid", [t for t in THEMES if t != "case-comunita"])
def test_interval_covers_true_simple_att(demo, tid):
    truth, est = demo
    h = est[tid]["headline"]
    assert h["ci_low"] <= truth[tid]["att_simple"] <= h["ci_high"], (tid, h["estimate"], h["ci_low"], h["ci_high"])


def test_null_theme_not_declared_effective(demo):
    truth, est = demo
    assert truth["finanza-sociale-neet"]["att_simple"] == 0.0
    h = est["finanza-sociale-neet"]["headline"]
    assert h["p_value"] >= 0.05 and h["ci_low"] <= 0.0 <= h["ci_high"]


@pytest.mark.parametrize("tid", PARALLEL_TRENDS_HOLD)
def test_parallel_trends_themes_not_flagged(demo, tid):
    pre = demo[1][tid]["pretrend"]
    assert pre["p_value"] is not None and pre["p_value"] >= 0.05, pre


def test_violated_pretrend_is_flagged(demo):
    pre = demo[1]["case-comunita"]["pretrend"]
    assert pre["p_value"] < 0.05
    # the pre-adoption drift found is the generator's (-0.004 per month)
    truth = demo[0]["case-comunita"]["pretrend_per_month"]
    assert pre["trend_per_period"] == pytest.approx(truth, abs=0.001)


@pytest.mark.xfail(strict=True, reason="known miss on the shipped seed: comparative ITS level change -0.175 "
                   "(95% CI -0.195 to -0.154) vs the true -0.15, 2.4 se away. Over 60 other demo draws "
                   "(benchmarks/calibrate_demo.py, seeds 1-60) this interval covers 93.3% with z-scores of mean "
                   "+0.07 and sd 1.06, and all six themes cover together in only 73% of draws: calibrated "
                   "intervals miss on some draws. Not tuned away: the seed stays.")
def test_its_interval_covers_true_level_shift(demo):
    truth, est = demo
    h = est["case-comunita"]["headline"]
    assert h["ci_low"] <= truth["case-comunita"]["att_simple"] <= h["ci_high"]
