"""The demo themes' published numbers do not move when the code around them changes.

``tests/reference/demo/headline.json`` holds the headline, interval, p-values, breakdown
value and padlocks of a batch run (its ``source`` says which); here stage 30 is recomputed with the
design objects, without papermill, and compared at a relative 1e-9. The e2e batch test
compares the padlocks of the themes it runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from osservatorio.data.sources import load_sources
from osservatorio.evaluate import designs
from osservatorio.indicators.panel import build_panel
from osservatorio.themes import load_theme

REFERENCE = json.loads((Path(__file__).parent / "reference" / "demo" / "headline.json").read_text(encoding="utf-8"))
TOL = 1e-9


@pytest.fixture(scope="module")
def sources(project_root):
    return load_sources(project_root / "data" / "demo")


@pytest.mark.parametrize("tid", sorted(REFERENCE["themes"]))
def test_stage_30_numbers_equal_the_reference(sources, tid):
    ref = REFERENCE["themes"][tid]
    theme = load_theme(tid)
    panel = build_panel(sources, theme)
    design = designs.for_theme(theme)
    ev = design.estimate(panel)
    placebo = design.placebo(panel, ev)
    sensitivity = design.sensitivity(panel, ev)
    h = ev.headline
    got = {"effetto": h.estimate, "ci_low": h.ci_low, "ci_high": h.ci_high, "p_value": h.p_value,
           "pretrend_p": ev.pretrend.get("p_value"), "placebo_p": placebo.get("p_value"),
           "valore_rottura_mbar": sensitivity.get("breakdown")}
    for key, value in got.items():
        if ref[key] is None:
            assert value is None, key
        else:
            assert value == pytest.approx(ref[key], rel=TOL, abs=1e-12), key
    assert ev.n_treated == ref["n_trattati"] and ev.n_units - ev.n_treated == ref["n_confronto"]
    assert h.n_clusters == ref["n_cluster"]
