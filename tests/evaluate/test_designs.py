"""The design objects: one interface, options from the theme, early checks of feasibility."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from osservatorio.evaluate import designs
from osservatorio.themes import load_theme

THEMES = {"coprogettazione-anziani": "staggered_did", "finanza-sociale-neet": "did_few_treated",
          "case-comunita": "event_study_its", "citta-pilota": "synthetic_did"}


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
    assert set(designs.DESIGNS) == {"staggered_did", "did_few_treated", "event_study_its", "synthetic_control",
                                    "synthetic_did"}
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
    sdid = designs.SyntheticDiD().check(_panel(n_units=6, cohorts=(0, 5)))
    assert any("3 never-treated unit(s) for 3 treated" in p for p in sdid)
    assert any("1 period(s) before the first adoption" in p
               for p in designs.SyntheticDiD().check(_panel(cohorts=(0,) * 9 + (2,))))
    assert any("unbalanced" in p for p in designs.SyntheticDiD().check(_panel().iloc[1:]))
    donors = _panel(n_units=2 * designs.MAX_SYNTH_DONORS + 4, cohorts=(0,) * 400 + (5,))
    assert any("donor units" in p for p in designs.SyntheticControl().check(donors))


def test_a_design_that_passes_its_check_estimates():
    panel = _panel(n_times=16, cohorts=(0, 8, 10))
    for name, cls in designs.DESIGNS.items():
        if name in ("synthetic_control", "did_few_treated", "synthetic_did"):  # one or few treated units
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


# --- diagnostics: computed, not applicable, failed -------------------------------------


def _raise(*args, **kwargs):
    from osservatorio.exceptions import EstimationError

    raise EstimationError("pretrend_test: no pre-period cells with a usable standard error (planted)")


def test_a_pretrend_test_that_raises_is_recorded_as_failed_with_the_message(monkeypatch):
    from osservatorio.evaluate.staggered import StaggeredResult

    panel = _panel(cohorts=(0, 4, 6))
    design = designs.StaggeredDiD(n_boot=99, event_window=2)
    ok = design.estimate(panel).pretrend
    assert ok["status"] == "computed" and ok["reason"] is None and 0 <= ok["p_value"] <= 1
    monkeypatch.setattr(StaggeredResult, "pretrend_test", _raise)
    ev = design.estimate(panel)
    assert ev.pretrend["status"] == "failed" and ev.pretrend["p_value"] is None
    assert ev.pretrend["reason"] == "pretrend_test: no pre-period cells with a usable standard error (planted)"
    assert "pre-trend failed" in repr(ev)
    assert json.loads(json.dumps(ev.to_dict()))["pretrend"]["status"] == "failed"  # as in estimates.json
    keys = [k for k, _ in design.limits(ev)]
    assert "eval.limits.pretrend_not_computed" in keys and "eval.limits.pretrend_failed" not in keys


def test_its_pretrend_is_failed_when_either_part_fails(monkeypatch):
    from osservatorio.evaluate.staggered import StaggeredResult

    panel = _panel(n_times=16, cohorts=(0, 8, 10))
    design = designs.EventStudyITS(n_boot=99)
    assert design.estimate(panel).pretrend["status"] == "computed"
    monkeypatch.setattr(StaggeredResult, "pretrend_test", _raise)
    pre = design.estimate(panel).pretrend
    assert pre["status"] == "failed" and pre["reason"].startswith("leads test: pretrend_test: no pre-period")
    assert pre["p_value"] is None and pre["p_value_trend"] is not None  # the part that ran is kept
    monkeypatch.undo()
    import osservatorio.evaluate

    def singular(*args, **kwargs):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(osservatorio.evaluate, "twfe", singular)  # the linear-trend part
    leads = {"status": "computed", "reason": None, "p_value": 0.5, "method": "leads"}
    pre = designs.EventStudyITS.its_pretrend(leads, panel)
    assert pre["status"] == "failed" and pre["reason"] == "linear pre-trend test: LinAlgError: Singular matrix"


def test_placebo_states(monkeypatch):
    panel = _panel(cohorts=(0, 5))
    design = designs.StaggeredDiD(n_boot=99, event_window=4)
    ok = design.placebo(panel)
    assert ok["status"] == "computed" and ok["kind"] == "timing" and ok["shift"] == 2 and 0 <= ok["p_value"] <= 1
    # too few periods before the first adoption: could not be computed, counts as failed (see Design.placebo)
    short = design.placebo(_panel(cohorts=(0, 3)))
    assert short["status"] == "failed" and short["p_value"] is None
    assert short["reason"].startswith("too few periods before the first adoption for a timing placebo: 2, 3 needed")
    # an estimator that raises, or a degenerate p-value: failed, with why
    monkeypatch.setattr(designs.StaggeredDiD, "_placebo_effect", lambda self, df: 1 / 0)
    bad = design.placebo(panel)
    assert bad["status"] == "failed" and bad["reason"] == "ZeroDivisionError: division by zero"
    from dataclasses import replace

    monkeypatch.setattr(designs.StaggeredDiD, "_placebo_effect",
                        lambda self, df: replace(designs.Design._placebo_effect(self, df), p_value=float("nan")))
    nan = design.placebo(panel)
    assert nan["status"] == "failed" and "undefined" in nan["reason"] and nan["p_value"] is None


def test_synthetic_control_has_no_pretrend_test_by_construction():
    panel = _panel(n_units=12, n_times=10, cohorts=(0,) * 11 + (6,), clusters=12)
    design = designs.SyntheticControl()
    ev = design.estimate(panel)
    assert ev.pretrend["status"] == "not_applicable" and "no leads" in ev.pretrend["reason"]
    placebo = design.placebo(panel, ev)
    assert placebo["kind"] == "in_space" and placebo["status"] == "computed"
    assert placebo["p_value"] == ev.headline.p_value


def test_a_failure_reason_is_one_line_and_short():
    from osservatorio.evaluate.results import REASON_CHARS, diagnostic_failed

    long = diagnostic_failed(ValueError("line one\nline two " + "x" * 500))
    assert "\n" not in long["reason"] and len(long["reason"]) == REASON_CHARS
    assert long["reason"].startswith("ValueError: line one line two") and long["reason"].endswith("…")
    assert diagnostic_failed(KeyError("cluster"))["reason"] == "KeyError: 'cluster'"


def test_synthetic_did_leads_with_sc_and_did_beside_it_from_the_same_code():
    panel = _panel(n_units=30, n_times=12, cohorts=(0,) * 29 + (8,), clusters=30)
    design = designs.SyntheticDiD()
    assert design.check(panel) == []
    ev = design.estimate(panel)
    assert ev.estimator == "synthetic_did" and ev.sdid is not None
    assert abs(ev.headline.estimate - 2.0) < 1.5 and ev.headline.ci_low < ev.headline.estimate < ev.headline.ci_high
    assert set(ev.comparisons) == {"sc_sdid", "did_sdid"}
    assert ev.pretrend["status"] == "not_applicable" and ev.cohorts_one_cluster is None
    assert {"sdid", "sdid_weights", "sdid_time_weights"} <= set(ev.frames)
    assert ev.frames["sdid_weights"]["peso"].sum() == pytest.approx(1.0)
    placebo = design.placebo(panel, ev)
    assert placebo["kind"] == "timing" and placebo["status"] == "computed"
    record = ev.to_dict()
    assert record["event_source"] == "synthetic_did" and record["options"]["n_reps"] == designs.SDID_REPS
    json.dumps(record)
    assert design.sensitivity(panel, ev)["status"] == "not_applicable"  # no event study


def test_sensitivity_of_an_event_study_records_the_breakdown_value():
    panel = _panel(n_units=60, n_times=10, cohorts=(0, 6), clusters=30)
    design = designs.StaggeredDiD(n_boot=99, event_window=3)
    ev = design.estimate(panel)
    sens = design.sensitivity(panel, ev)
    assert sens["status"] == "computed" and sens["restriction"] == "relative_magnitudes"
    assert [r["m"] for r in sens["rows"]] == list(designs.HONEST_MBAR)
    # a true effect of 2 with no pre-trend: significant, and robust to some divergence
    assert sens["original_lb"] > 0 and sens["breakdown"] > 0
    lbs = [r["lb"] for r in sens["rows"]]
    assert all(a >= b - 1e-9 for a, b in zip(lbs, lbs[1:]))  # intervals widen with Mbar
    json.dumps(sens)
    record = {**ev.to_dict(), "sensitivity": sens, "pretrend": {"status": "computed", "p_value": 0.01}}
    keys = [k for k, _ in design.limits(record)]
    assert "eval.limits.breakdown" in keys


def test_a_sensitivity_analysis_that_raises_is_failed(monkeypatch):
    import osservatorio.evaluate.honest as honest

    panel = _panel(n_units=40, n_times=8, cohorts=(0, 5))
    design = designs.StaggeredDiD(n_boot=99, event_window=2)
    ev = design.estimate(panel)

    def boom(*a, **k):
        raise ValueError("singular covariance")

    monkeypatch.setattr(honest, "honest_sensitivity", boom)
    sens = design.sensitivity(panel, ev)
    assert sens["status"] == "failed" and "singular covariance" in sens["reason"]
