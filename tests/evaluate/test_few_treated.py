"""Tests of osservatorio.evaluate.few_treated.

Peers: the `wildboottest` package (committed numbers in tests/reference/few_treated/,
made by make_reference.py there), pyfixest (CRV1 standard error) and brute-force
refits with explicit unit and period dummies written here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from osservatorio.evaluate import few_treated as ft
from osservatorio.exceptions import InputError

REF = Path(__file__).resolve().parents[1] / "reference" / "few_treated"


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return pd.read_csv(REF / "panel.csv")


@pytest.fixture(scope="module")
def peer() -> dict:
    return json.loads((REF / "wildboottest.json").read_text())


def _dummies(df: pd.DataFrame) -> np.ndarray:
    unit_d = pd.get_dummies(df["unit"], dtype=float).to_numpy()
    time_d = pd.get_dummies(df["time"], dtype=float).to_numpy()[:, 1:]
    return np.column_stack([df["d"].to_numpy(float), unit_d, time_d])


def _crv1_t(X: np.ndarray, y: np.ndarray, clu: np.ndarray, beta0: float, ssc: float) -> float:
    """Brute force: OLS with dummies, CRV1 t of the first coefficient."""
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    e = y - X @ coef
    bread = np.linalg.pinv(X.T @ X)
    scores = np.array([X[clu == g].T @ e[clu == g] for g in np.unique(clu)])
    vcov = ssc * bread @ scores.T @ scores @ bread
    return (coef[0] - beta0) / np.sqrt(vcov[0, 0])


def test_t_boot_matches_wildboottest_enumeration(panel, peer):
    prep = ft._prepare(panel, "y", "d", "unit", "time", "cluster")
    weights, full = ft._draw_weights(prep.n_clusters, "rademacher", 9999, 0)
    assert full and weights.shape == (10, 1024)
    boot = ft._WcrBootstrap(prep, weights, impose_null=True)
    for case in peer["tests"]:
        assert case["full_enumeration"]
        rescale = np.sqrt(case["ssc"] / prep.ssc)  # peer counts every dummy in k
        t_peer = np.array(case["t_boot"]) * rescale
        # same enumeration order (itertools.product) -> draw-by-draw comparison
        np.testing.assert_allclose(boot.t_boot(case["beta0"]), t_peer, rtol=1e-10, atol=1e-10)
        t_obs = (prep.beta - case["beta0"]) / prep.se
        assert t_obs == pytest.approx(case["t_stat"] * rescale, rel=1e-10)
        # p-value with the documented tie rule applied to the peer's own statistics
        p_peer = np.mean(np.abs(t_peer) > abs(t_obs) * (1 + 1e-10))
        assert boot.p_value(case["beta0"]) == pytest.approx(p_peer, abs=1e-12)
        # the peer's raw p-value differs at most by the two exact ties (v = +-1)
        assert abs(boot.p_value(case["beta0"]) - case["p_value"]) <= 2 / 1024 + 1e-12


def test_public_result_rademacher(panel, peer):
    res = ft.wild_cluster_bootstrap(panel, "y", "d", "unit", "time", "cluster",
                                    weights_type="rademacher")
    assert res.extra["full_enumeration"] and res.extra["n_boot"] == 1024
    assert "full enumeration" in res.inference
    assert res.p_value == pytest.approx(34 / 1024, abs=1e-12)
    assert res.n_clusters == 10 and res.extra["n_treated_clusters"] == 4
    assert res.ci_low < res.estimate < res.ci_high


def test_crv1_se_matches_pyfixest(panel):
    pf = pytest.importorskip("pyfixest")
    fit = pf.feols("y ~ d | unit + time", data=panel, vcov={"CRV1": "cluster"})
    res = ft.wild_cluster_bootstrap(panel, "y", "d", "unit", "time", "cluster", n_boot=99)
    assert res.estimate == pytest.approx(float(fit.coef().iloc[0]), rel=1e-10)
    assert res.se == pytest.approx(float(fit.se().iloc[0]), rel=1e-8)


@pytest.mark.parametrize("impose_null", [True, False])
def test_t_boot_matches_brute_force_refits_unbalanced(panel, impose_null):
    """Fast algebra == refitting every bootstrap sample with dummies (Webb draws)."""
    df = panel.drop(index=[3, 17, 40, 41, 99, 150]).reset_index(drop=True)
    prep = ft._prepare(df, "y", "d", "unit", "time", "cluster")
    weights, full = ft._draw_weights(prep.n_clusters, "webb", 60, 3)
    assert not full
    boot = ft._WcrBootstrap(prep, weights, impose_null=impose_null)
    X = _dummies(df)
    y = df["y"].to_numpy(float)
    clu = prep.cluster
    beta0 = 0.4
    b_dgp = beta0 if impose_null else prep.beta
    # restricted (or unrestricted) fit: y - b d on the dummies
    coef, *_ = np.linalg.lstsq(X[:, 1:], y - b_dgp * X[:, 0], rcond=None)
    fitted = b_dgp * X[:, 0] + X[:, 1:] @ coef
    resid = y - fitted
    brute = np.array([_crv1_t(X, fitted + resid * weights[clu, b], clu, b_dgp, prep.ssc)
                      for b in range(weights.shape[1])])
    np.testing.assert_allclose(boot.t_boot(beta0), brute, rtol=1e-8, atol=1e-10)
    assert prep.se == pytest.approx(
        abs((prep.beta - 0.0) / _crv1_t(X, y, clu, 0.0, prep.ssc)), rel=1e-10)


def test_interval_is_test_inversion(panel):
    res = ft.wild_cluster_bootstrap(panel, "y", "d", "unit", "time", "cluster", n_boot=999)
    prep = ft._prepare(panel, "y", "d", "unit", "time", "cluster")
    weights, _ = ft._draw_weights(prep.n_clusters, "webb", 999, 0)
    boot = ft._WcrBootstrap(prep, weights, impose_null=True)
    eps = 1e-6 * res.se
    assert boot.p_value(res.ci_low + eps) > 0.05 >= boot.p_value(res.ci_low - eps)
    assert boot.p_value(res.ci_high - eps) > 0.05 >= boot.p_value(res.ci_high + eps)
    assert res.p_value == pytest.approx(boot.p_value(0.0))


def test_options_are_validated(panel):
    with pytest.raises(InputError, match="weights_type"):
        ft.wild_cluster_bootstrap(panel, "y", "d", "unit", "time", "cluster",
                                  weights_type="mammen")
    with pytest.raises(InputError, match="columns not found"):
        ft.wild_cluster_bootstrap(panel, "yy", "d", "unit", "time", "cluster")
    with pytest.raises(InputError, match="statistic"):
        ft.randomization_inference(panel, "y", "d", "unit", "time", statistic="mean")


def test_randomization_inference_exact_matches_brute_force(panel):
    """All 2520 distinct cluster-level re-assignments, each refit with dummies."""
    res = ft.randomization_inference(panel, "y", "d", "unit", "time", cluster="cluster",
                                     n_perm=5000)
    assert res.extra["exact"] and res.extra["placebo"].size == 2520
    prep = ft._prepare(panel, "y", "d", "unit", "time", "cluster")
    adopt = ft._adoption_periods(prep)
    assigns, exact = ft._assignments(adopt, 5000, 0)
    assert exact and len({tuple(a) for a in assigns}) == 2520
    X = _dummies(panel)
    y = panel["y"].to_numpy(float)
    brute = np.empty(len(assigns))
    for i, a in enumerate(assigns):
        X[:, 0] = prep.time_codes >= a[prep.cluster]
        brute[i] = np.linalg.lstsq(X, y, rcond=None)[0][0]
    np.testing.assert_allclose(res.extra["placebo"], brute, rtol=1e-9, atol=1e-10)
    observed = res.estimate
    p_brute = np.mean(np.abs(brute) >= abs(observed) * (1 - 1e-10))
    assert res.p_value == pytest.approx(p_brute, abs=1e-12)
    assert res.p_value >= 1 / 2520


def test_randomization_inference_random_draws(panel):
    res = ft.randomization_inference(panel, "y", "d", "unit", "time", cluster="cluster",
                                     n_perm=199, seed=5)
    placebo = res.extra["placebo"]
    assert not res.extra["exact"] and placebo.size == 199
    count = np.sum(np.abs(placebo) >= abs(res.estimate) * (1 - 1e-10))
    assert res.p_value == pytest.approx((1 + count) / 200)
    again = ft.randomization_inference(panel, "y", "d", "unit", "time", cluster="cluster",
                                       n_perm=199, seed=5)
    np.testing.assert_array_equal(placebo, again.extra["placebo"])
    assert res.ci_low < res.estimate < res.ci_high


def test_randomization_inference_requires_absorbing_treatment(panel):
    bad = panel.copy()
    bad.loc[(bad["cluster"] == "c00") & (bad["time"] == 2027), "d"] = 0
    with pytest.raises(InputError, match="absorbing"):
        ft.randomization_inference(bad, "y", "d", "unit", "time", cluster="cluster")


def test_placebo_gram_path_equals_direct_demeaning(panel):
    """The Gram-matrix shortcut equals demeaning every placebo (unbalanced panel)."""
    df = panel.drop(index=[5, 33, 34, 120]).reset_index(drop=True)
    prep = ft._prepare(df, "y", "d", "unit", "time", "unit")
    adopt = ft._adoption_periods(prep)
    assigns, _ = ft._assignments(adopt, 50, 2)
    gram = ft._placebo_coefficients(prep, adopt, assigns, method="gram")
    direct = ft._placebo_coefficients(prep, adopt, assigns, method="direct")
    np.testing.assert_allclose(gram[0], direct[0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gram[1], direct[1], rtol=1e-9, atol=1e-12)
