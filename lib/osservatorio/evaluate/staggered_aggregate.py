"""Aggregations of group-time ATTs, as R ``did::aggte`` (Callaway and Sant'Anna 2021, sec. 3).

Each aggregate is a weighted mean of ATT(g,t) cells. Its influence function is the same
weighted sum of the cells' influence functions plus, where the weights are estimated
cohort shares (simple, event, calendar and the cohort overall), the extra term for
estimating those shares ("wif" in R ``did``). Pure array code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from osservatorio.evaluate.multiplier import CellPieces
from osservatorio.evaluate.staggered_cells import Panel, cell_cluster_pieces, cell_phi_matrix, cluster_sums

_EPS_SE = np.sqrt(np.finfo(float).eps) * 10


def cohort_shares(panel: Panel) -> np.ndarray:
    """Share of all units in each finite cohort (R ``did``'s pg)."""
    return np.diff(panel.bounds)[:-1] / panel.n


def aggregation_weights(
    cells: pd.DataFrame, kind: str, pg: np.ndarray, min_e: float, max_e: float
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Labels (J), weight matrix (cells x J) and whether the weights are estimated shares.

    simple: post cells with t <= g + max_e weighted by cohort size; event: cells with the
    same t - g weighted by cohort size; cohort: a cohort's post cells (t <= g + max_e)
    weighted equally; calendar: cells of period t already treated, by cohort size.
    """
    g = cells["cohort"].to_numpy(float)
    t = cells["time"].to_numpy(float)
    e = t - g
    w_cell = pg[cells["gi"].to_numpy()]
    post = g <= t
    if kind == "simple":
        labels = np.array([0.0])
        masks = [post & (t <= g + max_e)]
    elif kind == "event":
        labels = np.unique(e)
        labels = labels[(labels >= min_e) & (labels <= max_e)]
        masks = [e == v for v in labels]
    elif kind == "cohort":
        labels = np.unique(g)
        masks = [(g == v) & post & (t <= g + max_e) for v in labels]
    else:
        labels = np.unique(t)
        labels = labels[labels >= g.min()]
        masks = [(t == v) & post for v in labels]
    weights = np.zeros((len(cells), len(labels)))
    for j, m in enumerate(masks):
        base = np.ones(m.sum()) if kind == "cohort" else w_cell[m]
        if m.any():
            weights[m, j] = base / base.sum()
    keep = weights.any(axis=0)
    return labels[keep], weights[:, keep], kind != "cohort"


def share_correction(
    panel: Panel, gi: np.ndarray, weights: np.ndarray, att: np.ndarray, pg: np.ndarray
) -> np.ndarray:
    """Extra influence function (phi scale, units x J) from estimating the cohort shares.

    For weights w_k = pg_k / sum(pg) over the kept items k of aggregate j, the term for
    a unit of cohort c is sum_k w_k (att_k - theta_j) (1{c = g_k} - pg_k) / pg_k / n,
    algebraically equal to R ``did``'s ``wif %*% att``.
    """
    n_coh = len(pg)
    theta = att @ weights
    onehot = (np.arange(n_coh + 1)[:, None] == gi[None, :]).astype(float)
    h = (onehot - pg[gi][None, :]) / pg[gi][None, :]
    per_cohort = h @ (weights * (att[:, None] - theta[None, :])) / panel.n
    return np.repeat(per_cohort, np.diff(panel.bounds), axis=0)


def aggregate_phi(
    panel: Panel, cells: pd.DataFrame, kind: str, min_e: float, max_e: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, estimates and unit-level influence functions (units x J) of an aggregation."""
    pg = cohort_shares(panel)
    labels, weights, estimated = aggregation_weights(cells, kind, pg, min_e, max_e)
    att = cells["att"].to_numpy()
    theta = att @ weights
    phi = cell_phi_matrix(panel, cells, weights)
    if estimated:
        phi += share_correction(panel, cells["gi"].to_numpy(), weights, att, pg)
    return labels, theta, phi


def cell_pieces(panel: Panel, cells: pd.DataFrame, kind: str, min_e: float, max_e: float) -> CellPieces:
    """Cluster-level pieces of an aggregation for the studentized wild bootstrap.

    Same labels and weights as ``aggregate_phi``; only the cells that enter an aggregate
    are kept. The share term per cell is the cluster sum of (1{cohort = g_k} - pg_k) /
    pg_k / n (R ``did``'s "wif"), zero when the weights are fixed (cohort).
    """
    pg = cohort_shares(panel)
    _, weights, estimated = aggregation_weights(cells, kind, pg, min_e, max_e)
    used = np.flatnonzero(weights.any(axis=1))
    s_t, s_c, f_t, f_c = cell_cluster_pieces(panel, cells, used)
    gk = cells["gi"].to_numpy()[used]
    h = np.zeros_like(s_t)
    if estimated:
        n_groups = len(panel.bounds) - 1
        cl = panel.cluster if panel.cluster is not None else np.arange(panel.n)
        counts = np.zeros((s_t.shape[0], n_groups))
        np.add.at(counts, (cl, np.repeat(np.arange(n_groups), np.diff(panel.bounds))), 1.0)
        onehot = (np.arange(n_groups)[:, None] == gk[None, :]).astype(float)
        h = counts @ ((onehot - pg[gk][None, :]) / pg[gk][None, :] / panel.n)
    return CellPieces(s_t=s_t, s_c=s_c, f_t=f_t, f_c=f_c, h=h,
                      att=cells["att"].to_numpy()[used], weights=weights[used])


def overall_phi(
    panel: Panel, kind: str, labels: np.ndarray, theta: np.ndarray, phi: np.ndarray
) -> tuple[float, np.ndarray]:
    """Overall summary of an event/cohort/calendar aggregation, as R ``aggte``.

    event: mean over event times >= 0; calendar: mean over periods; cohort: cohort
    ATTs weighted by cohort size, with the share correction.
    """
    if kind == "event":
        keep = labels >= 0
        if not keep.any():
            return float("nan"), np.zeros(panel.n)
        return float(theta[keep].mean()), phi[:, keep].mean(axis=1)
    if kind == "calendar":
        return float(theta.mean()), phi.mean(axis=1)
    pg = cohort_shares(panel)
    gi = np.searchsorted(panel.cohorts, labels)
    w = pg[gi] / pg[gi].sum()
    est = float(theta @ w)
    extra = share_correction(panel, gi, w[:, None], theta, pg)[:, 0]
    return est, phi @ w + extra


def standard_errors(panel: Panel, phi: np.ndarray) -> np.ndarray:
    """Analytic (clustered) standard errors of each column; NaN when numerically zero."""
    sums = cluster_sums(panel, phi)
    se = np.sqrt(np.einsum("ij,ij->j", sums, sums))
    return np.where(se > _EPS_SE, se, np.nan)
