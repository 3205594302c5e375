"""The design objects: one interface, options from the theme, early checks of feasibility."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from osservatorio.evaluate import designs
from osservatorio.themes import load_theme

THEMES = {"coprogettazione-anziani": "staggered_did", "finanza-sociale-neet": "did_few_treated",
          "case-comunita": "event_study_its", "citta-pilota": "synthetic_control"}


def _panel(n_units=40, n_times=8, cohorts=(0, 5), clusters=10, seed=1):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_units):
        g = cohorts[i % len(cohorts)]
        for t in range(1, n_times + 1):
            rows.append({"unit": f"u{i:03d}", "time": t, "cohort": g, "treated": int(g > 0 and t >= g),
                         "y": rng.normal() + 2.0 * (g > 0 and t >= g), "w": 1.0, "cluster": f"c{i % clusters}"})
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("tid", "name"), THEMES.items())
def test_for_theme_picks_the_design_with_the_theme_options(tid, name):
    theme = load_theme(tid)
    design = designs.for_theme(theme)
    assert design.name == name == theme.design
    opts = design.options()
    assert opts["comparison"] == theme.comparison and opts["event_window"] == theme.event_window
    assert opts["seed"] == theme.seed and name in repr(design) or type(design).__name__ in repr(design)


def test_every_design_has_one_place():
    assert set(designs.DESIGNS) == {"staggered_did", "did_few_treated", "event_study_its", "synthetic_control"}
    from typing import get_args

    from osservatorio.themes import Design

    assert set(get_args(Design)) == set(designs.DESIGNS)  # the theme file allows exactly these


def test_checks_name_the_reason_and_what_works():
    mixed = _panel(clusters=5)  # units of one cluster adopt at different dates
    few = designs.FewTreatedDiD().check(mixed)
    assert any("adoption varies within" in p and "staggered_did" in p for p in few)
    assert any("only 5 clusters" in p for p in few)
    synth = designs.SyntheticControl().check(mixed)
    assert any("20 treated units" in p for p in synth)
    its = designs.EventStudyITS().check(mixed)
    assert any("share 4 pre-adoption" in p for p in its)
    assert designs.StaggeredDiD().check(mixed) == []
    none = _panel(cohorts=(0,))
    assert designs.StaggeredDiD().check(none)[0].startswith("no treated unit")
    donors = _panel(n_units=2 * designs.MAX_SYNTH_DONORS + 4, cohorts=(0,) * 400 + (5,))
    assert any("donor units" in p for p in designs.SyntheticControl().check(donors))


def test_a_design_that_passes_its_check_estimates():
    panel = _panel(n_times=16, cohorts=(0, 8, 10))
    for name, cls in designs.DESIGNS.items():
        if name in ("synthetic_control", "did_few_treated"):
            continue
        design = cls(n_boot=99)
        assert design.check(panel) == []
        ev = design.estimate(panel)
        assert abs(ev.headline.estimate - 2.0) < 1.0, name
        json.dumps(ev.to_dict())


def test_evaluation_keeps_the_result_objects_and_options():
    panel = _panel(cohorts=(0, 4, 6))
    ev = designs.StaggeredDiD(n_boot=99, event_window=2).estimate(panel)
    by_cohort = ev.staggered.aggregate("cohort")
    assert sorted(by_cohort["cohort"]) == [4, 6]
    assert len(ev.staggered.aggregate("calendar")) > 0
    assert ev.event_study["event_time"].tolist() == [-2, -1, 0, 1, 2]
    record = ev.to_dict()
    assert record["options"] == {"design": "staggered_did", "comparison": "notyet", "anticipation": 0,
                                 "event_window": 2, "seed": 20261125, "n_boot": 99}
    assert record["headline"]["estimate"] == ev.headline.estimate and "twfe" in record
    assert repr(ev).startswith("<Evaluation staggered_did: callaway_santanna") and len(repr(ev)) < 300


def test_heterogeneity_hides_levels_under_the_threshold():
    panel = _panel(n_units=60, cohorts=(0, 4, 6))
    panel["classe"] = np.where(panel["unit"] < "u004", "piccoli", "grandi")  # 2 treated units in 'piccoli'
    het = designs.StaggeredDiD(moderators=("classe",), disclosure_threshold=5).heterogeneity(panel)
    assert set(het.table["livello"]) == {"piccoli", "grandi"}
    assert list(het.shown["livello"]) == ["grandi"]
    assert "piccoli" not in het._repr_html_() + repr(het)  # a bare cell cannot show the hidden level
