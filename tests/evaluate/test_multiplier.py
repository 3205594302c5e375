"""Uniform (sup-t) bands of staggered_did aggregations (osservatorio.evaluate.multiplier).

By unit the band divides each multiplier draw by the analytic se, as R ``did``. When
treatment and clustering are above the unit, the band is a wild cluster bootstrap-t:
each draw is divided by its own se, re-estimated from the perturbed influence functions
re-centred on the re-estimated group means. Checked here: that re-centring algebra
against a literal re-estimation on perturbed data, where the small-sample factor
enters, and joint coverage in a seeded simulation with few treated clusters.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from osservatorio.evaluate import staggered_aggregate as agg
from osservatorio.evaluate.multiplier import (
    draw_multipliers,
    studentized_sup_t_critical_value,
    sup_t_critical_value,
)
from osservatorio.evaluate.staggered import staggered_did
from osservatorio.evaluate.staggered_cells import cell_estimate, cluster_sums, control_rows
from osservatorio.exceptions import InputError


def cluster_panel(seed: int, n_cl: int = 40, per: int = 4, periods: int = 7) -> pd.DataFrame:
    """Treatment assigned by cluster: 6 treated clusters in each of cohorts 4, 5, 6, 22
    never treated; unit effects, cluster x period shocks, dynamic effects 0.5 + 0.2 e."""
    rng = np.random.default_rng(seed)
    g_cl = rng.permutation(np.r_[np.full(6, 4), np.full(6, 5), np.full(6, 6), np.zeros(n_cl - 18, int)])
    cl = np.repeat(np.arange(n_cl), per)
    g = g_cl[cl]
    t = np.arange(1, periods + 1)
    e = t[None, :] - g[:, None]
    eff = np.where((g[:, None] > 0) & (e >= 0), 0.5 + 0.2 * e, 0.0)
    y = (rng.normal(size=len(cl))[:, None] + 0.3 * t[None, :] + rng.normal(size=(len(cl), periods))
         + 0.7 * rng.normal(size=(n_cl, periods))[cl] + eff)
    return pd.DataFrame({"id": np.repeat(np.arange(len(cl)), periods), "t": np.tile(t, len(cl)),
                         "g": np.repeat(g, periods), "cl": np.repeat(cl, periods), "y": y.ravel()})


def test_recentring_equals_reestimation_on_perturbed_data():
    """One draw v: re-estimating every cell on changes d* = group mean + v_c * residual
    (and the cohort-share term at the new cell estimates) gives the bootstrap cluster
    sums of CellPieces.perturbed_sums, and the deviation v @ sums."""
    res = staggered_did(cluster_panel(0), "y", "id", "t", "g", control="notyet", cluster="cl", bootstrap=False)
    panel, cells = res._panel, res._cells
    pieces = agg.cell_pieces(panel, cells, "event", -np.inf, np.inf)
    pg = agg.cohort_shares(panel)
    _, weights, estimated = agg.aggregation_weights(cells, "event", pg, -np.inf, np.inf)
    assert estimated
    used = np.flatnonzero(weights.any(axis=1))
    w = weights[used]
    cl, g = panel.cluster, panel.n_clusters
    v = draw_multipliers(np.random.default_rng(1), (1, g), "webb")[0]
    att_star, sums_star = np.zeros(len(used)), np.zeros((g, len(used)))
    for m, k in enumerate(used):
        gi, t_col, b_col, cs = cells.loc[k, ["gi", "t_col", "b_col", "cs"]]
        ctrl = control_rows(panel, gi, cs)
        y = panel.y.copy()
        d = y[t_col] - y[b_col]
        for rows in (slice(panel.bounds[gi], panel.bounds[gi + 1]), ctrl):
            mean = d[rows].mean()
            d[rows] = mean + v[cl[rows]] * (d[rows] - mean)
        y[t_col] = y[b_col] + d
        att_star[m], sl, phi_t, phi_c = cell_estimate(replace(panel, y=y), gi, t_col, b_col, ctrl)
        sums_star[:, m] = np.bincount(cl[sl], phi_t, g) + np.bincount(cl[ctrl], phi_c, g)
    gk = cells["gi"].to_numpy()[used]
    att = cells["att"].to_numpy()[used]
    share = cluster_sums(panel, agg.share_correction(panel, gk, w, att, pg), ssc=False)
    share_star = cluster_sums(panel, agg.share_correction(panel, gk, w, att_star, pg), ssc=False)
    direct = sums_star @ w + v[:, None] * share + (share_star - share)
    sums = pieces.observed_sums()
    a, b = v[None] @ pieces.s_t, v[None] @ pieces.s_c
    theta_star = (a + b) @ pieces.weights
    formula = np.column_stack([pieces.perturbed_sums(v[None], sums, j, a, b, theta_star)[0]
                               for j in range(w.shape[1])])
    np.testing.assert_allclose(formula, direct, atol=1e-12)
    np.testing.assert_allclose(v @ sums, (att_star - att) @ w + v @ share, atol=1e-12)


def test_small_sample_factor_in_both_bands():
    """Analytic-se band: draws and se carry G/(G-1) alike, so c is free of it and the
    band scales with the se. Studentized band: the factor multiplies the analytic se and
    each draw's re-estimated se alike, so the band estimate +/- c * se is free of it."""
    res = staggered_did(cluster_panel(2), "y", "id", "t", "g", control="notyet", cluster="cl", bootstrap=False)
    panel = res._panel
    pieces = agg.cell_pieces(panel, res._cells, "event", -np.inf, np.inf)
    sums = pieces.observed_sums()
    se0 = np.sqrt(np.sum(sums**2, axis=0))
    plain, student = [], []
    for factor in (1.0, panel.ssc, 2.0):
        se = np.sqrt(factor) * se0
        plain.append(sup_t_critical_value(np.sqrt(factor) * sums, se, n_boot=199, seed=5))
        student.append(studentized_sup_t_critical_value(pieces, factor, se, n_boot=199, seed=5) * se)
    assert plain[1] == pytest.approx(plain[0], rel=1e-12) and plain[2] == pytest.approx(plain[0], rel=1e-12)
    np.testing.assert_allclose(student[1], student[0], rtol=1e-12)
    np.testing.assert_allclose(student[2], student[0], rtol=1e-12)


def test_studentized_band_uses_the_panels_small_sample_factor():
    """The band staggered_did reports is c * se with c from the panel's own G/(G-1): a
    direct call with that factor gives the same critical value, a call with 1 does not."""
    res = staggered_did(cluster_panel(2), "y", "id", "t", "g", control="notyet", cluster="cl", n_boot=199, seed=5)
    ev = res.aggregate("event")
    pieces = agg.cell_pieces(res._panel, res._cells, "event", -np.inf, np.inf)
    se = ev["se"].to_numpy()
    direct = studentized_sup_t_critical_value(pieces, res._panel.ssc, se, n_boot=199, weights="webb", seed=5)
    assert ev.attrs["critical_value"] == pytest.approx(max(direct, stats.t.ppf(0.975, res._panel.df)), rel=1e-12)
    wrong = studentized_sup_t_critical_value(pieces, 1.0, se, n_boot=199, weights="webb", seed=5)
    assert wrong != pytest.approx(direct, rel=1e-6)


def test_which_band_and_default_weights():
    """By unit: the R did band (analytic se, Mammen), unchanged. Clustered above the unit
    without covariates: the studentized band with Webb weights by default."""
    df = cluster_panel(3)
    unit = staggered_did(df, "y", "id", "t", "g", control="notyet", n_boot=199, seed=4)
    assert unit.info["boot_weights"] == "mammen"
    ev = unit.aggregate("event")
    labels, _, phi = agg.aggregate_phi(unit._panel, unit._cells, "event", -np.inf, np.inf)
    plain = sup_t_critical_value(phi, ev["se"].to_numpy(), 0.95, 199, "mammen", 4)
    assert ev.attrs["critical_value"] == max(plain, stats.norm.ppf(0.975))
    assert ev.attrs["band_method"].startswith("multiplier bootstrap, analytic se")
    clus = staggered_did(df, "y", "id", "t", "g", control="notyet", cluster="cl", n_boot=199, seed=4)
    assert clus.info["boot_weights"] == "webb"
    band = clus.aggregate("cohort")
    assert band.attrs["band_method"].startswith("wild cluster bootstrap-t")
    assert (band["cband_low"] <= band["ci_low"]).all() and (band["cband_high"] >= band["ci_high"]).all()
    with pytest.raises(InputError, match="boot_weights"):
        staggered_did(df, "y", "id", "t", "g", boot_weights="normal")
    with pytest.warns(UserWarning, match="Mammen weights in the studentized"):
        staggered_did(df, "y", "id", "t", "g", control="notyet", cluster="cl", boot_weights="mammen")


def test_band_covers_jointly_with_few_treated_clusters():
    """Seeded simulation, 300 panels of 40 clusters with 6 treated clusters per cohort,
    not-yet-treated controls, 8 event times: the 95% band must cover all true event-time
    effects jointly in at least 0.95 - 3 * 0.0126 = 0.912 of the panels (0.0126 is the
    Monte Carlo sd of a 95% proportion over 300 draws) and at most 0.99 (not a uselessly
    wide band). Dividing draws by the analytic se (Mammen weights) covered 0.845 on seeds 100-499."""
    reps, covered = 300, 0
    for r in range(reps):
        res = staggered_did(cluster_panel(100 + r), "y", "id", "t", "g", control="notyet", cluster="cl",
                            n_boot=199, seed=r)
        ev = res.aggregate("event")
        e = ev["event_time"].to_numpy()
        truth = np.where(e >= 0, 0.5 + 0.2 * e, 0.0)
        covered += bool(np.all((ev["cband_low"] <= truth) & (truth <= ev["cband_high"])))
    assert len(e) == 8
    assert 0.912 <= covered / reps <= 0.99
