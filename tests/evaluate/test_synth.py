"""Tests of osservatorio.evaluate.synth.

Peer: pysyncon 1.7.0 (numbers committed in tests/reference/synth/pysyncon.json by
make_reference.py there). pysyncon solves the inner quadratic programme with SLSQP at
its default tolerance (ftol 1e-6), so its weights are accurate to about 1e-4; ours are
exact up to rounding (active-set KKT solve). Hence: weights to 1e-3 absolute, synthetic
series to 1e-3 relative, and our pre-period objective must not exceed the peer's.
Known truth: a noiseless panel where the treated unit is a convex combination of donors.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from osservatorio.evaluate.synth import simplex_least_squares, synthetic_control
from osservatorio.exceptions import InputError

REF = Path(__file__).resolve().parents[1] / "reference" / "synth"


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return pd.read_csv(REF / "panel.csv")


@pytest.fixture(scope="module")
def peer() -> dict:
    return json.loads((REF / "pysyncon.json").read_text())


@pytest.fixture(scope="module")
def fit(panel):
    return synthetic_control(panel, "y", "unit", "time", "T", 21)


def test_weights_and_synthetic_match_pysyncon(fit, peer):
    ref = peer["outcome_only"]
    w_ref = pd.Series(ref["weights"])[fit.weights.index]
    np.testing.assert_allclose(fit.weights, w_ref, atol=1e-3)
    assert fit.weights.min() >= 0 and fit.weights.sum() == pytest.approx(1, abs=1e-12)
    synth_ref = fit.treated.to_numpy() - np.array(ref["gap"])
    np.testing.assert_allclose(fit.synthetic, synth_ref, rtol=1e-3)
    np.testing.assert_allclose(fit.gaps, ref["gap"], atol=1e-3 * fit.treated.abs().max())
    # exact optimum: never worse than the peer's SLSQP solution
    assert fit.pre_rmspe <= ref["pre_rmspe"] * (1 + 1e-9)
    assert fit.pre_rmspe == pytest.approx(ref["pre_rmspe"], rel=1e-4)


def test_placebos_match_pysyncon(fit, peer):
    table = fit.placebos.set_index("unit")
    for unit, ref in peer["placebos"].items():
        np.testing.assert_allclose(fit.placebo_gaps[unit], ref["gap"], atol=1e-2)
        assert table.loc[unit, "pre_rmspe"] <= ref["pre_rmspe"] * (1 + 1e-9)
        assert table.loc[unit, "pre_rmspe"] == pytest.approx(ref["pre_rmspe"], rel=1e-3)
        assert table.loc[unit, "post_rmspe"] == pytest.approx(ref["post_rmspe"], rel=1e-2)
    ratios = {u: r["post_rmspe"] / r["pre_rmspe"] for u, r in peer["placebos"].items()}
    ratio_t = peer["outcome_only"]["post_rmspe"] / peer["outcome_only"]["pre_rmspe"]
    rank_peer = 1 + sum(r >= ratio_t for r in ratios.values())
    assert fit.rank == rank_peer
    assert fit.effect.p_value == pytest.approx(rank_peer / (len(ratios) + 1))
    assert fit.effect.estimate == pytest.approx(np.mean(peer["outcome_only"]["gap"][20:]),
                                                abs=1e-3)


def test_inner_problem_with_fixed_v_matches_pysyncon(panel, peer):
    ref = peer["predictors"]
    pre = panel[panel["time"] <= 20]
    pred = pre.groupby("unit")[["x1", "x2", "y"]].mean().T
    X = pred.divide(pred.std(axis=1, ddof=1), axis=0)
    donors = [u for u in X.columns if u != "T"]
    v = np.array(ref["fixed_v"])
    w = simplex_least_squares(np.sqrt(v) * X["T"].to_numpy(),
                              np.sqrt(v)[:, None] * X[donors].to_numpy())
    resid = X["T"].to_numpy() - X[donors].to_numpy() @ w
    assert resid @ (v * resid) <= ref["fixed_v_objective"] + 1e-12


def test_nested_v_at_least_as_good_as_pysyncon_v(panel, peer):
    ref = peer["predictors"]
    res = synthetic_control(panel, "y", "unit", "time", "T", 21, predictors=["x1", "x2", "y"],
                            placebos=False)
    assert res.v_weights.sum() == pytest.approx(1) and res.v_weights.min() >= 0
    loss = float(np.mean(res.gaps.to_numpy()[:20] ** 2))
    # the peer's V with an exact inner solve (the peer's own loss uses inexact weights)
    pre = panel[panel["time"] <= 20]
    pred = pre.groupby("unit")[["x1", "x2", "y"]].mean().T
    X = pred.divide(pred.std(axis=1, ddof=1), axis=0)
    donors = [u for u in X.columns if u != "T"]
    root = np.sqrt(np.array(ref["v"]))
    w = simplex_least_squares(root * X["T"].to_numpy(), root[:, None] * X[donors].to_numpy())
    wide = pre.pivot(index="time", columns="unit", values="y")
    loss_peer_v = float(np.mean((wide["T"] - wide[donors].to_numpy() @ w) ** 2))
    assert loss <= loss_peer_v * (1 + 1e-6)
    assert loss <= ref["loss_v"] * 1.05


def test_known_truth_noiseless_convex_combination():
    rng = np.random.default_rng(3)
    T, J, t0, effect = 30, 8, 20, 2.5
    Y0 = np.cumsum(rng.normal(size=(T, J)), axis=0) + rng.uniform(5, 10, J)
    w_true = np.array([0.5, 0.3, 0.2, 0, 0, 0, 0, 0])
    y1 = Y0 @ w_true + np.where(np.arange(T) >= t0, effect, 0.0)
    rows = [{"u": f"d{j}", "t": t, "y": Y0[t, j]} for j in range(J) for t in range(T)]
    rows += [{"u": "treated", "t": t, "y": y1[t]} for t in range(T)]
    res = synthetic_control(pd.DataFrame(rows), "y", "u", "t", "treated", t0)
    np.testing.assert_allclose(res.weights.to_numpy(), w_true, atol=1e-8)
    assert res.effect.estimate == pytest.approx(effect, abs=1e-6)
    np.testing.assert_allclose(res.gaps.to_numpy()[t0:], effect, atol=1e-6)
    assert res.pre_rmspe < 1e-6
    assert res.rank == 1 and res.effect.p_value == pytest.approx(1 / (J + 1))


def test_placebo_cutoff_excludes_poor_fits(panel):
    res = synthetic_control(panel, "y", "unit", "time", "T", 21, placebo_rmspe_cutoff=2.0)
    table = res.placebos
    poor = table["pre_rmspe"] > 2.0 * res.pre_rmspe
    assert poor.any()
    np.testing.assert_array_equal(table["excluded"], poor)
    assert res.effect.p_value == pytest.approx(res.rank / (~poor).sum())


def test_validation(panel):
    with pytest.raises(InputError, match="treated_unit"):
        synthetic_control(panel, "y", "unit", "time", "X", 21)
    with pytest.raises(InputError, match="balanced"):
        synthetic_control(panel.iloc[1:], "y", "unit", "time", "T", 21)
    with pytest.raises(InputError, match="pre_periods"):
        synthetic_control(panel, "y", "unit", "time", "T", 21, pre_periods=[25])
