"""Power, MDE and ICC of the planned pilot design.

References: statsmodels' TTestIndPower (noncentral t, two-sided) for the power and
MDE of a cluster comparison translated into effective sample sizes; statsmodels MixedLM
(REML, which equals the ANOVA estimator on balanced data when positive) for the ICC;
simulations with known truth for the power of the post-only and DiD designs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.power import TTestIndPower

from osservatorio.selection.power import design_effect, design_table, icc_anova, mde, panel_icc, power, standard_error


def test_power_matches_statsmodels_without_clustering():
    for d, n1, n2 in [(0.5, 20, 20), (0.3, 40, 80), (0.8, 6, 9)]:
        got = power(d, 1.0, 0.0, n1, n2, m_post=1)
        want = TTestIndPower().power(d, n1, 0.05, ratio=n2 / n1)
        assert got == pytest.approx(want, abs=1e-10)


def test_cluster_power_equals_statsmodels_with_effective_sizes():
    """Post-only design = t test on n*m/deff observations per group (same df convention)."""
    sigma2, icc, m, nt, nc = 4.0, 0.3, 5, 15, 25
    deff = design_effect(m, icc)
    assert deff == pytest.approx(2.2)
    n1, n2 = nt * m / deff, nc * m / deff
    for effect in (0.3, 0.9, 1.5):
        got = power(effect, sigma2, icc, nt, nc, m, df=n1 + n2 - 2)
        want = TTestIndPower().power(effect / np.sqrt(sigma2), n1, 0.05, ratio=n2 / n1)
        assert got == pytest.approx(want, abs=1e-10)
    got = mde(sigma2, icc, nt, nc, m, df=n1 + n2 - 2)
    want = TTestIndPower().solve_power(None, nobs1=n1, alpha=0.05, power=0.8, ratio=n2 / n1) * np.sqrt(sigma2)
    assert got == pytest.approx(want, rel=1e-7)


def test_did_variance_formula_and_more_clusters_lower_mde():
    se = standard_error(2.0, 0.6, 10, 10, m_post=3, m_pre=4, design="did")
    assert se == pytest.approx(np.sqrt(2.0 * 0.4 * (1 / 4 + 1 / 3) * 0.2), rel=1e-12)
    assert mde(1, 0.5, 40, 40, 3, 3, "did") < mde(1, 0.5, 10, 10, 3, 3, "did")
    # With a high ICC, DiD beats the post-only comparison; with ICC 0 it does not
    assert mde(1, 0.8, 20, 20, 3, 3, "did") < mde(1, 0.8, 20, 20, 3, 3, "post")
    assert mde(1, 0.0, 20, 20, 3, 3, "did") > mde(1, 0.0, 20, 20, 3, 3, "post")
    with pytest.raises(ValueError, match="design"):
        standard_error(1, 0, 2, 2, 1, design="other")


def _simulate(rng, reps, nt, nc, m_pre, m_post, icc, sigma2, effect):
    n = nt + nc
    u = rng.normal(0, np.sqrt(icc * sigma2), (reps, n, 1))
    e = rng.normal(0, np.sqrt((1 - icc) * sigma2), (reps, n, m_pre + m_post))
    y = u + e
    y[:, :nt, m_pre:] += effect
    return y


def _t_reject(vals, nt, alpha=0.05):
    from scipy import stats

    res = stats.ttest_ind(vals[:, :nt], vals[:, nt:], axis=1)
    return np.mean(res.pvalue < alpha)


@pytest.mark.parametrize("design", ["post", "did"])
def test_simulated_power_at_the_mde_is_80_percent(design):
    """Units with random intercepts (known ICC 0.4): at the computed MDE the unit-level
    t test rejects in 80% of 4,000 replications (MC SE 0.6 pp; tolerance 2.5 pp)."""
    rng = np.random.default_rng(7)
    nt, nc, m_pre, m_post, icc, sigma2 = 12, 18, 3, 4, 0.4, 2.5
    delta = mde(sigma2, icc, nt, nc, m_post, m_pre, design)
    y = _simulate(rng, 4000, nt, nc, m_pre, m_post, icc, sigma2, delta)
    vals = y[:, :, m_pre:].mean(axis=2) if design == "post" else y[:, :, m_pre:].mean(axis=2) - y[:, :, :m_pre].mean(
        axis=2)
    assert _t_reject(vals, nt) == pytest.approx(0.80, abs=0.025)
    y0 = _simulate(rng, 4000, nt, nc, m_pre, m_post, icc, sigma2, 0.0)
    vals0 = y0[:, :, m_pre:].mean(axis=2)
    assert _t_reject(vals0, nt) == pytest.approx(0.05, abs=0.012)


def test_icc_anova_equals_mixedlm_on_balanced_data():
    import statsmodels.formula.api as smf

    rng = np.random.default_rng(3)
    k, m = 40, 6
    g = np.repeat(np.arange(k), m)
    y = rng.normal(0, 1.0, k)[g] + rng.normal(0, 1.5, k * m)
    ours = icc_anova(y, g)
    fit = smf.mixedlm("y ~ 1", pd.DataFrame({"y": y, "g": g}), groups="g").fit(reml=True)
    s2b, s2w = float(fit.cov_re.iloc[0, 0]), float(fit.scale)
    assert ours["sigma2_between"] == pytest.approx(s2b, rel=1e-4)
    assert ours["sigma2_within"] == pytest.approx(s2w, rel=1e-4)
    assert ours["icc"] == pytest.approx(s2b / (s2b + s2w), rel=1e-4)


def test_icc_by_hand_and_clamped():
    # groups {1,3} and {5,7}: MSB = 2*(2-4)^2*2/1 = 16, MSW = (1+1+1+1)/2 = 2, n0 = 2
    got = icc_anova(np.array([1.0, 3, 5, 7]), np.array([0, 0, 1, 1]))
    assert got["sigma2_between"] == pytest.approx(7.0) and got["sigma2_within"] == pytest.approx(2.0)
    assert got["icc"] == pytest.approx(7 / 9)
    flat = icc_anova(np.array([1.0, 3, 1, 3]), np.array([0, 0, 1, 1]))
    assert flat["icc"] == 0.0 and flat["sigma2_between"] == 0.0


def test_panel_icc_recovers_truth_and_ignores_treated_periods():
    rng = np.random.default_rng(11)
    k, T, icc = 600, 8, 0.35  # SD of the estimate about 0.018
    unit = np.repeat(np.arange(k), T)
    time = np.tile(np.arange(T), k)
    y = rng.normal(0, np.sqrt(icc), k)[unit] + rng.normal(0, np.sqrt(1 - icc), k * T) + 0.5 * time
    cohort = np.where(unit < 50, 5, 0)
    y = y + np.where((cohort > 0) & (time >= cohort), rng.normal(0, 5, k * T), 0.0)  # noisy treated periods
    est = panel_icc(pd.DataFrame({"unit": unit, "time": time, "y": y, "cohort": cohort}))
    assert est["icc"] == pytest.approx(icc, abs=0.05)
    assert est["sigma2"] == pytest.approx(1.0, abs=0.1)


def test_design_table():
    tab = design_table(1.0, 0.5, 10, 20, 3, 3).set_index("disegno")
    assert tab.loc["post", "effetto_disegno"] == pytest.approx(2.0)
    assert tab.loc["post", "n_efficace_trattati"] == pytest.approx(15.0)
    assert tab.loc["did", "mde"] == pytest.approx(mde(1.0, 0.5, 10, 20, 3, 3, "did"))
