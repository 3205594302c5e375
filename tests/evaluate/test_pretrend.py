"""Wild cluster bootstrap pre-trend test on event-study leads (evaluate.pretrend)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from osservatorio.evaluate import staggered_did
from osservatorio.exceptions import InputError


def cluster_panel(seed: int, trend: float = 0.0, n_cl: int = 60, per: int = 5, periods: int = 8) -> pd.DataFrame:
    """Treatment assigned by cluster (few treated clusters per cohort); optional treated trend."""
    rng = np.random.default_rng(seed)
    g_cl = rng.choice([0, 5, 6, 7], size=n_cl, p=[0.5, 0.17, 0.17, 0.16])
    cl = np.repeat(np.arange(n_cl), per)
    g = g_cl[cl]
    t = np.arange(1, periods + 1)
    y = (rng.normal(size=len(cl))[:, None] + 0.3 * t[None, :] + rng.normal(size=(len(cl), periods))
         + 0.5 * rng.normal(size=(n_cl, periods))[cl] + trend * (g > 0)[:, None] * t[None, :])
    return pd.DataFrame({"id": np.repeat(np.arange(len(cl)), periods), "t": np.tile(t, len(cl)),
                         "g": np.repeat(g, periods), "cl": np.repeat(cl, periods), "y": y.ravel()})


def test_observed_statistic_is_the_clustered_wald_on_the_leads():
    res = staggered_did(cluster_panel(1), "y", "id", "t", "g", control="notyet", cluster="cl", bootstrap=False)
    chi2 = res.pretrend_test(on="event", window=3)
    boot = res.pretrend_test(on="event", window=3, method="wild_bootstrap", n_boot=199, seed=1)
    ssc = res._panel.ssc  # the chi2 version carries G/(G-1); the bootstrap ratio is free of it
    assert boot["statistic"] == pytest.approx(chi2["statistic"] * ssc, rel=1e-9)
    assert boot["df"] == chi2["df"] == 3 and boot["leads"] == [-3, -2, -1]
    ev = res.aggregate("event", min_e=-3, max_e=-1)
    np.testing.assert_allclose(boot["estimates"], ev["estimate"], rtol=1e-12)
    assert boot == res.pretrend_test(on="event", window=3, method="wild_bootstrap", n_boot=199, seed=1)


def test_unrestricted_bootstrap_with_unit_multipliers_reproduces_the_statistic():
    from osservatorio.evaluate.pretrend import _lead_sums, _observed_sums, lead_components

    res = staggered_did(cluster_panel(2), "y", "id", "t", "g", control="notyet", cluster="cl", bootstrap=False)
    for restricted in (False, True):
        comp = lead_components(res._panel, res._cells, 3, restricted)
        v = np.ones(comp.s_t.shape[0])  # y* = y: the bootstrap world is the data
        a_t, b_c = v @ comp.s_t, -(v @ comp.s_c)
        att_b = a_t - b_c
        s_b = v[:, None] * (comp.s_t + comp.s_c) - comp.f_t * a_t + comp.f_c * b_c
        _, sums_b = _lead_sums(comp, s_b, att_b)
        _, sums = _lead_sums(comp, _observed_sums(comp, restricted), comp.att)
        # unrestricted residuals are centred: v = 1 gives att* = 0 (the centred statistic)
        if restricted:
            np.testing.assert_allclose(att_b, comp.att, atol=1e-12)
            np.testing.assert_allclose(sums_b, sums, atol=1e-12)
        else:
            np.testing.assert_allclose(att_b, 0.0, atol=1e-12)


def test_detects_a_differential_trend_and_options_are_validated():
    res = staggered_did(cluster_panel(3, trend=0.4), "y", "id", "t", "g", control="notyet", cluster="cl",
                        bootstrap=False)
    out = res.pretrend_test(on="event", window=3, method="wild_bootstrap", n_boot=199, seed=0)
    assert out["p_value"] < 0.01 and out["mean_lead"] > 0
    with pytest.raises(InputError, match="on='event'"):
        res.pretrend_test(method="wild_bootstrap")
    with pytest.raises(InputError, match="method"):
        res.pretrend_test(on="event", method="hotelling")
    with pytest.raises(InputError, match="window"):
        res.pretrend_test(on="event", window=0)


def test_size_with_few_treated_clusters_per_cohort():
    """60 clusters, ~10 treated per cohort: the chi2 over-rejects, the bootstrap does not."""
    p_boot, p_chi2 = [], []
    for r in range(150):
        res = staggered_did(cluster_panel(100 + r), "y", "id", "t", "g", control="notyet", cluster="cl",
                            bootstrap=False)
        out = res.pretrend_test(on="event", window=4, method="wild_bootstrap", n_boot=199, seed=r)
        p_boot.append(out["p_value"])
        p_chi2.append(out["p_value_chi2"])
    assert np.mean(np.array(p_boot) < 0.05) <= 0.09  # 5% + 2 binomial sd at 150 reps
    assert np.mean(np.array(p_chi2) < 0.05) > np.mean(np.array(p_boot) < 0.05)
