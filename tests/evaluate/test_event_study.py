"""event_study against pyfixest reference numbers (tests/reference/event_study)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from osservatorio.evaluate.event_study import event_study, placebo_timing
from osservatorio.exceptions import EstimationError, InputError

REF = Path(__file__).parents[1] / "reference"
REFERENCE = json.loads((REF / "event_study" / "reference.json").read_text())
PANELS = {name: pd.read_csv(REF / "twfe" / f"panel_{name}.csv")
          for name in ("balanced", "unbalanced")}
COEF_TOL = 1e-8
SE_RTOL = 1e-6


@pytest.mark.parametrize("name", sorted(REFERENCE["cases"]))
def test_matches_pyfixest(name):
    case = REFERENCE["cases"][name]
    res = event_study(PANELS[case["panel"]], "y", "unit", "year", "cohort",
                      leads=case["leads"], lags=case["lags"], cluster=case["cluster"],
                      bin_endpoints=case["bin_endpoints"], weights=case["weights"])
    coefs = res.coefs.loc[~res.coefs["is_reference"]]
    assert coefs["event_time"].tolist() == case["event_time"]
    np.testing.assert_allclose(coefs["estimate"], case["estimate"], rtol=COEF_TOL, atol=COEF_TOL)
    np.testing.assert_allclose(coefs["se"], case["se"], rtol=SE_RTOL)
    np.testing.assert_allclose(coefs["ci_low"], case["ci_low"], rtol=SE_RTOL, atol=1e-9)
    np.testing.assert_allclose(coefs["ci_high"], case["ci_high"], rtol=SE_RTOL, atol=1e-9)
    np.testing.assert_allclose(coefs["p_value"], case["p_value"], rtol=1e-5, atol=1e-12)
    assert res.n_obs == case["n_obs"]
    assert res.n_clusters == case["n_clusters"]
    assert res.pretrend.df_num == case["wald_q"]
    assert res.pretrend.df_den == case["n_clusters"] - 1
    assert res.pretrend.statistic == pytest.approx(case["wald_chi2"] / case["wald_q"], rel=SE_RTOL)


def test_reference_row_and_window_accounting():
    data = PANELS["balanced"]
    res = event_study(data, "y", "unit", "year", "cohort", leads=2, lags=2, bin_endpoints=False)
    ref_row = res.coefs.loc[res.coefs["is_reference"]]
    assert ref_row["event_time"].tolist() == [-1]
    assert ref_row["estimate"].tolist() == [0.0]
    assert res.coefs["event_time"].tolist() == [-2, -1, 0, 1, 2]
    assert res.n_obs + res.n_dropped_window == len(data)
    assert res.n_dropped_missing == 0


def simulate(pretrend: float = 0.0, seed: int = 11) -> pd.DataFrame:
    """Single adoption in 2020 for half the units; effect 1 + 0.5 * event time."""
    rng = np.random.default_rng(seed)
    n_units, years = 300, np.arange(2012, 2024)
    unit = np.repeat(np.arange(n_units), years.size)
    year = np.tile(years, n_units)
    cohort = np.repeat(np.where(np.arange(n_units) < n_units // 2, 2020, 0), years.size)
    e = year - cohort
    treated = cohort > 0
    effect = np.where(treated & (e >= 0), 1.0 + 0.5 * e, 0.0)
    trend = np.where(treated, pretrend * (year - 2012), 0.0)
    y = (np.repeat(rng.normal(0, 2, n_units), years.size) + 0.2 * (year - 2012) + effect
         + trend + rng.normal(0, 1, unit.size))
    return pd.DataFrame({"unit": unit, "year": year, "cohort": cohort, "y": y})


def test_known_truth_dynamic_effects_and_flat_pretrends():
    res = event_study(simulate(), "y", "unit", "year", "cohort", leads=4, lags=3)
    post = res.coefs.loc[res.coefs["event_time"] >= 0]
    truth = 1.0 + 0.5 * post["event_time"].to_numpy()
    assert np.all(np.abs(post["estimate"].to_numpy() - truth) < 4 * post["se"].to_numpy())
    assert res.pretrend.p_value > 0.01
    assert res.pretrend.terms == [-4, -3, -2]


def test_pretrend_test_and_placebo_detect_diverging_trends():
    data = simulate(pretrend=0.3)
    assert event_study(data, "y", "unit", "year", "cohort", lags=3).pretrend.p_value < 1e-6
    placebo = placebo_timing(data, "y", "unit", "year", "cohort", shift=2)
    assert placebo.p_value < 1e-3
    assert placebo.estimate > 0


def test_placebo_is_null_under_parallel_trends():
    placebo = placebo_timing(simulate(), "y", "unit", "year", "cohort", shift=3)
    assert abs(placebo.estimate) < 4 * placebo.se
    assert placebo.extra["shift"] == 3
    # pre-adoption rows of treated units only: years 2012-2019 for 150 units
    assert placebo.n_obs == 150 * 12 + 150 * 8


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"ref": 7}, InputError, "ref must be"),
        ({"leads": -1}, InputError, "leads"),
        ({"cohort": "bad_cohort"}, InputError, "constant within"),
        ({"time": "frac_year"}, InputError, "integer periods"),
        ({"cohort": "never"}, EstimationError, "no treated units"),
        ({"lags": 9}, EstimationError, "no treated observations at event time"),
        ({"outcome": "nope"}, InputError, "not in data"),
    ],
)
def test_bad_arguments(kwargs, error, message):
    data = PANELS["balanced"].copy()
    data["bad_cohort"] = np.where(data["year"] == 2015, 2016, data["cohort"])
    data["frac_year"] = data["year"] + 0.5
    data["never"] = 0
    args = {"data": data, "outcome": "y", "unit": "unit", "time": "year", "cohort": "cohort"}
    with pytest.raises(error, match=message):
        event_study(**{**args, **kwargs}, bin_endpoints=False)


def test_plot_event_study_draws_pre_post_and_reference():
    from matplotlib.figure import Figure

    from osservatorio.publishing.event_plots import plot_event_study

    res = event_study(simulate(), "y", "unit", "year", "cohort", leads=3, lags=3)
    fig = plot_event_study(res.coefs, title="t", xlabel="Anni dall'adozione", ylabel="Effetto",
                           pre_label="Prima", post_label="Dopo", reference_label="Rif.")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Anni dall'adozione"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Prima", "Dopo", "Rif."]
    with pytest.raises(InputError, match="lacks column"):
        plot_event_study(res.coefs.drop(columns="ci_low"))
