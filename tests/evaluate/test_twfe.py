"""twfe against pyfixest reference numbers (tests/reference/twfe) and known truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from osservatorio.evaluate.twfe import twfe
from osservatorio.exceptions import EstimationError, InputError

REF_DIR = Path(__file__).parents[1] / "reference" / "twfe"
REFERENCE = json.loads((REF_DIR / "reference.json").read_text())
COEF_TOL = 1e-8  # absolute and relative
SE_RTOL = 1e-6


def load_panel(name: str) -> pd.DataFrame:
    return pd.read_csv(REF_DIR / f"panel_{name}.csv")


PANELS = {name: load_panel(name) for name in ("balanced", "unbalanced")}


def fit_like_reference(case: dict):
    terms = case["formula"].split("~")[1].split("|")[0].split("+")
    terms = [t.strip() for t in terms]
    vcov = case["vcov"]
    if isinstance(vcov, dict):
        kind, cluster = "CRV1", vcov["CRV1"]
    else:
        kind, cluster = {"hetero": "HC1", "iid": "iid"}[vcov], None
    return twfe(PANELS[case["panel"]], "y", terms[0], "unit", "year", cluster=cluster,
                covariates=terms[1:], weights=case["weights"], vcov=kind)


@pytest.mark.parametrize("name", sorted(REFERENCE["cases"]))
def test_matches_pyfixest(name):
    case = REFERENCE["cases"][name]
    res = fit_like_reference(case)
    table = res.coefs.set_index("term")
    for term, coef in case["coef"].items():
        assert table.loc[term, "estimate"] == pytest.approx(coef, rel=COEF_TOL, abs=COEF_TOL)
        assert table.loc[term, "se"] == pytest.approx(case["se"][term], rel=SE_RTOL)
        assert table.loc[term, "ci_low"] == pytest.approx(case["ci_low"][term], rel=SE_RTOL)
        assert table.loc[term, "ci_high"] == pytest.approx(case["ci_high"][term], rel=SE_RTOL)
        assert table.loc[term, "p_value"] == pytest.approx(case["p_value"][term], rel=1e-5,
                                                           abs=1e-12)
    assert res.n_obs == case["n_obs"]
    assert res.n_clusters == case["n_clusters"]
    assert res.estimate == table.iloc[0]["estimate"]


def test_unbalanced_drops_singletons_like_pyfixest():
    res = twfe(PANELS["unbalanced"], "y", "d", "unit", "year")
    assert res.n_dropped_singletons == 2
    kept = twfe(PANELS["unbalanced"], "y", "d", "unit", "year", drop_singletons=False)
    assert kept.n_obs == res.n_obs + 2
    assert kept.estimate == pytest.approx(res.estimate, rel=1e-10)
    assert kept.se != pytest.approx(res.se, rel=1e-9)


def test_missing_rows_are_dropped_and_counted():
    data = PANELS["balanced"].copy()
    data.loc[[3, 50, 51], "y"] = np.nan
    data.loc[[7], "x"] = np.nan
    res = twfe(data, "y", "d", "unit", "year", covariates=["x"])
    assert res.n_dropped_missing == 4
    assert res.n_obs == len(data) - 4


def test_row_order_does_not_matter():
    data = PANELS["balanced"]
    shuffled = data.sample(frac=1.0, random_state=3)
    a = twfe(data, "y", "d", "unit", "year", cluster="district")
    b = twfe(shuffled, "y", "d", "unit", "year", cluster="district")
    assert b.estimate == pytest.approx(a.estimate, rel=1e-12)
    assert b.se == pytest.approx(a.se, rel=1e-10)


def test_known_truth_homogeneous_effect():
    rng = np.random.default_rng(7)
    n_units, n_periods, truth = 400, 12, 2.0
    unit = np.repeat(np.arange(n_units), n_periods)
    period = np.tile(np.arange(n_periods), n_units)
    cohort = np.repeat(rng.choice([0, 4, 6, 8], n_units), n_periods)
    d = ((cohort > 0) & (period >= cohort)).astype(float)
    y = (np.repeat(rng.normal(0, 3, n_units), n_periods) + np.sin(period) + truth * d
         + rng.normal(size=unit.size))
    res = twfe(pd.DataFrame({"u": unit, "t": period, "d": d, "y": y}), "y", "d", "u", "t")
    assert abs(res.estimate - truth) < 4 * res.se
    assert res.se < 0.1
    assert res.ci_low < truth < res.ci_high
    assert res.effect.n_treated + res.effect.n_control == n_units


def test_effect_result_fields():
    res = twfe(PANELS["balanced"], "y", "d", "unit", "year", cluster="district")
    eff = res.effect
    assert eff.n_clusters == 15
    assert "CRV1" in eff.inference and "district" in eff.inference
    assert eff.level == 0.95
    assert eff.n_treated == int((PANELS["balanced"].groupby("unit")["d"].max() > 0).sum())


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"outcome": "nope"}, InputError, "not in data"),
        ({"level": 1.5}, InputError, "level"),
        ({"vcov": "HC3"}, InputError, "vcov must be one of"),
        ({"treatment": "label"}, InputError, "must be numeric"),
        ({"weights": "zero_w"}, InputError, "strictly positive"),
        ({"covariates": ["d"]}, InputError, "distinct"),
        ({"treatment": "common"}, EstimationError, "collinear"),
    ],
)
def test_bad_arguments(kwargs, error, message):
    data = PANELS["balanced"].copy()
    data["label"] = "a"
    data["zero_w"] = 0.0
    data["common"] = (data["year"] >= 2018).astype(float)
    args = {"data": data, "outcome": "y", "treatment": "d", "unit": "unit", "time": "year"}
    with pytest.raises(error, match=message):
        twfe(**{**args, **kwargs})


def test_is_nested():
    from osservatorio.evaluate.covariance import is_nested

    unit = np.repeat(np.arange(50), 4)
    district = unit // 5
    assert is_nested(unit, district)
    assert is_nested(unit, district * 3)  # codes need not be dense
    assert not is_nested(np.tile(np.arange(4), 50), district)
    moved = district.copy()
    moved[-1] = 0  # one row of the last unit in another district
    assert not is_nested(unit, moved)


@pytest.mark.parametrize("name", ["unbalanced_unit", "unbalanced_weights"])
def test_alternating_projections_path_matches_pyfixest(name, monkeypatch):
    import importlib

    dm = importlib.import_module("osservatorio.evaluate.demean")  # the module, not the function
    monkeypatch.setattr(dm, "_MAX_SMALL_LEVELS", 0)  # force alternating projections
    case = REFERENCE["cases"][name]
    res = fit_like_reference(case)
    assert res.estimate == pytest.approx(case["coef"]["d"], rel=COEF_TOL, abs=COEF_TOL)
    assert res.se == pytest.approx(case["se"]["d"], rel=SE_RTOL)
