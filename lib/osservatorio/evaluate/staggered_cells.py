"""Wide panel and group-time cells for the staggered-adoption estimator (CS 2021).

Turns a long panel into a units x periods outcome matrix with units sorted by cohort, and
computes each group-time ATT(g,t) of Callaway and Sant'Anna (2021) and its influence
function from column differences and cohort ranges. Pure array code: no I/O.

The influence function of a cell is kept on the scale ``phi = IF / n`` (n = units), so
that the analytic variance is ``sum(phi**2)`` (or the sum of squared cluster sums).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from osservatorio.exceptions import EstimationError, InputError

NEVER = np.inf
_EPS_SE = np.sqrt(np.finfo(float).eps) * 10  # R did treats smaller se as 0 -> NA


@dataclass(frozen=True)
class Panel:
    """Balanced wide panel, units sorted by cohort (never-treated last).

    ``y`` is periods x units (each period's outcomes contiguous).
    ``bounds[c]:bounds[c+1]`` are the rows of cohort ``cohorts[c]``; the never-treated
    units are rows ``bounds[C]:n``. ``x`` holds covariates with an intercept column,
    shaped (periods, units, k), or is None.
    """

    y: np.ndarray
    x: np.ndarray | None
    est_method: str
    times: np.ndarray
    cohorts: np.ndarray
    bounds: np.ndarray
    cluster: np.ndarray | None
    n_clusters: int
    unit_ids: np.ndarray
    n_dropped_unbalanced: int
    n_dropped_early: int
    n_periods_dropped: int

    @property
    def n(self) -> int:
        return self.y.shape[1]

    @property
    def clustered_above_unit(self) -> bool:
        """True when clusters group several units (e.g. comuni in provinces)."""
        return self.cluster is not None and self.n_clusters < self.n

    @property
    def ssc(self) -> float:
        """Small-sample factor G / (G - 1) on the clustered variance, applied only when
        clustering above the unit (CRV1's cluster factor, Cameron and Miller 2015); with
        unit-level errors it is 1, so results equal R ``did``'s."""
        g = self.n_clusters
        return g / (g - 1) if self.clustered_above_unit and g > 1 else 1.0

    @property
    def df(self) -> int | None:
        """Degrees of freedom of the t reference (G - 1) when clustered above the unit."""
        return self.n_clusters - 1 if self.clustered_above_unit and self.n_clusters > 1 else None

    @property
    def cohort_sizes(self) -> np.ndarray:
        """Units per finite cohort, then the never-treated count last."""
        return np.diff(self.bounds)


def build_panel(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    control: str,
    anticipation: int,
    cluster: str | None,
    covariates: list[str] | None,
    est_method: str = "dr",
) -> Panel:
    """Validate the long panel and pivot it to a wide matrix sorted by cohort.

    Rows with a missing outcome or covariate are dropped, then units not observed in
    every period (so the panel is balanced); cohorts 0, NaN or after the last period are
    never treated; units treated in the first period (+ anticipation) are dropped, as in
    R ``did``. Without never-treated units and ``control="notyet"``, periods from the
    last cohort's start (- anticipation) are dropped and that cohort becomes the control,
    as R ``did`` does.
    """
    covariates = list(covariates or [])
    cols = [unit, time, cohort, outcome, *covariates] + ([cluster] if cluster else [])
    missing = [c for c in dict.fromkeys(cols) if c not in data.columns]
    if missing:
        raise InputError(f"staggered_did: columns not in data: {missing}")
    t_raw = _integer_column(data, time, "time", allow_missing=False)
    g_raw = _integer_column(data, cohort, "cohort", allow_missing=True)
    uid, ids = pd.factorize(data[unit].to_numpy(), sort=True)
    times = np.unique(t_raw)
    ti = np.searchsorted(times, t_raw)
    n_all, n_t = len(ids), len(times)
    flat = uid * n_t + ti
    if np.bincount(flat, minlength=n_all * n_t).max() > 1:
        raise InputError(f"staggered_did: duplicated ({unit}, {time}) rows")
    g_wide = _scatter(flat, np.nan_to_num(g_raw, nan=0.0), n_all, n_t)
    if np.any(np.nanmax(g_wide, axis=1) != np.nanmin(g_wide, axis=1)):
        raise InputError(f"staggered_did: cohort {cohort!r} varies within a unit")
    cl_codes = None
    if cluster:
        cl_codes = pd.factorize(data[cluster].to_numpy())[0].astype(float)
        cl_wide = _scatter(flat, cl_codes, n_all, n_t)
        if np.any(np.nanmax(cl_wide, axis=1) != np.nanmin(cl_wide, axis=1)):
            raise InputError(f"staggered_did: cluster {cluster!r} varies within a unit")
    y = _scatter(flat, data[outcome].to_numpy(dtype=float), n_all, n_t)
    xs = [_scatter(flat, data[c].to_numpy(dtype=float), n_all, n_t) for c in covariates]
    complete = np.isfinite(y).all(axis=1)
    for xw in xs:
        complete &= np.isfinite(xw).all(axis=1)
    n_dropped_unbalanced = int(n_all - complete.sum())

    g = np.nanmax(g_wide, axis=1)
    g = np.where((g == 0) | (g > times[-1]), NEVER, g)
    early = complete & (g <= times[0] + anticipation)
    n_dropped_early = int(early.sum())
    keep_u = complete & ~early

    keep_t = np.ones(n_t, dtype=bool)
    if not np.any(g[keep_u] == NEVER):
        if control == "never":
            raise EstimationError("staggered_did: no never-treated units; use control='notyet'")
        last = g[keep_u].max() if keep_u.any() else NEVER
        keep_t = times < last - anticipation
        g = np.where(g == last, NEVER, g)
    n_periods_dropped = int((~keep_t).sum())
    if keep_u.sum() == 0 or keep_t.sum() < 2:
        raise EstimationError("staggered_did: fewer than two periods or no units left")

    order = np.flatnonzero(keep_u)
    order = order[np.argsort(g[order], kind="stable")]
    times = times[keep_t]
    gu = g[order]
    cohorts = np.unique(gu[np.isfinite(gu)])
    if len(cohorts) == 0:
        raise EstimationError("staggered_did: no treated cohort within the panel periods")
    bounds = np.r_[np.searchsorted(gu, np.r_[cohorts, NEVER], side="left"), len(gu)]
    y = np.ascontiguousarray(y[np.ix_(order, keep_t)].T)
    x = None
    if covariates:
        xv = np.stack([xw[np.ix_(order, keep_t)] for xw in xs], axis=2)
        x = np.concatenate([np.ones((len(order), len(times), 1)), xv], axis=2).transpose(1, 0, 2).copy()
    cl, n_cl = None, len(order)
    if cluster:
        cl, uniq = pd.factorize(np.nanmax(cl_wide, axis=1)[order])
        n_cl = len(uniq)
    return Panel(
        y=y, x=x, est_method=est_method, times=times, cohorts=cohorts, bounds=bounds, cluster=cl,
        n_clusters=n_cl, unit_ids=np.asarray(ids)[order], n_dropped_unbalanced=n_dropped_unbalanced,
        n_dropped_early=n_dropped_early, n_periods_dropped=n_periods_dropped,
    )


def _integer_column(data: pd.DataFrame, col: str, what: str, allow_missing: bool) -> np.ndarray:
    """Column as float array, checked to hold integers (NaN allowed only if asked)."""
    vals = pd.to_numeric(data[col], errors="coerce").to_numpy(dtype=float)
    finite = np.isfinite(vals)
    if (not allow_missing and not finite.all()) or np.any(vals[finite] != np.round(vals[finite])):
        raise InputError(f"staggered_did: column {col!r} ({what}) must hold integers")
    return vals


def _scatter(flat: np.ndarray, values: np.ndarray, n: int, n_t: int) -> np.ndarray:
    """Long values to a units x periods matrix (NaN where a unit-period is absent)."""
    out = np.full(n * n_t, np.nan)
    out[flat] = values
    return out.reshape(n, n_t)


def define_cells(panel: Panel, control: str, anticipation: int, base_period: str) -> pd.DataFrame:
    """List the group-time cells: columns compared and which cohorts serve as controls.

    Returns one row per cell with ``gi`` (cohort index), ``t_col`` and ``b_col`` (period
    and base-period columns), ``cs`` (first control cohort index; the never-treated are
    index C), ``post`` and ``ref`` (the universal base period itself, ATT = 0).
    """
    times, cohorts = panel.times, panel.cohorts
    n_coh = len(cohorts)
    rows = []
    for gi, g in enumerate(cohorts):
        before = np.flatnonzero(times < g - anticipation)
        base_g = int(before[-1]) if len(before) else None
        first = 1 if base_period == "varying" else 0
        for ti in range(first, len(times)):
            post = bool(g <= times[ti])
            if base_period == "varying":
                b = base_g if post else ti - 1
            else:
                b = base_g
            if b is None:
                continue
            ref = base_period == "universal" and b == ti
            if control == "never":
                cs = n_coh
            else:
                rel = times[max(ti, b)] + anticipation
                cs = int(np.searchsorted(cohorts, rel, side="right"))
            rows.append((gi, g, times[ti], ti, b, cs, post, ref))
    return pd.DataFrame(rows, columns=["gi", "cohort", "time", "t_col", "b_col", "cs", "post", "ref"])


def control_rows(panel: Panel, gi: int, cs: int) -> slice | np.ndarray:
    """Control units: cohorts from ``cs`` on (never last), minus ``gi``; a slice if contiguous."""
    b, n = panel.bounds, panel.n
    if gi >= cs:
        return np.r_[b[cs]:b[gi], b[gi + 1]:n]
    return slice(int(b[cs]), n)


def _count(rows: slice | np.ndarray) -> int:
    return rows.stop - rows.start if isinstance(rows, slice) else len(rows)


def cell_estimate(panel: Panel, gi: int, t_col: int, b_col: int, ctrl: slice | np.ndarray):
    """ATT(g,t) and its influence function (phi scale) for one cell.

    Without covariates: the 2x2 DiD of mean changes, treated minus controls. With
    covariates (taken in the base period): the doubly-robust DiD or the
    outcome-regression DiD (R ``DRDID::reg_did_panel``), per ``panel.est_method``. Returns
    ``(att, treated_slice, phi_treated, phi_control)``; phi_control is aligned to ``ctrl``.
    """
    s, e = panel.bounds[gi], panel.bounds[gi + 1]
    yt, yb = panel.y[t_col], panel.y[b_col]
    d_t = yt[s:e] - yb[s:e]
    d_c = yt[ctrl] - yb[ctrl]
    n_t, n_c = len(d_t), len(d_c)
    if panel.x is None:
        m_t, m_c = d_t.mean(), d_c.mean()
        return m_t - m_c, slice(s, e), (d_t - m_t) / n_t, -(d_c - m_c) / n_c
    xb = panel.x[b_col]
    if panel.est_method == "dr":
        att, phi = _dr_panel(d_t, d_c, xb[s:e], xb[ctrl])
        return att, slice(s, e), phi[:n_t], phi[n_t:]
    x_t, x_c = xb[s:e], xb[ctrl]
    gram = x_c.T @ x_c
    beta = np.linalg.solve(gram, x_c.T @ d_c)
    r_t = d_t - x_t @ beta
    att = r_t.mean()
    lever = x_c @ np.linalg.solve(gram, x_t.mean(axis=0))
    return att, slice(s, e), (r_t - att) / n_t, -(d_c - x_c @ beta) * lever


def _logit(d: np.ndarray, x: np.ndarray, tol: float = 1e-12, max_iter: int = 100) -> np.ndarray:
    """Maximum-likelihood logit coefficients by Newton-Raphson."""
    beta = np.zeros(x.shape[1])
    for _ in range(max_iter):
        p = 1 / (1 + np.exp(-(x @ beta)))
        step = np.linalg.solve(x.T @ (x * (p * (1 - p))[:, None]), x.T @ (d - p))
        beta += step
        if np.max(np.abs(step)) < tol:
            break
    return beta


def _dr_panel(d_t, d_c, x_t, x_c, trim: float = 0.995):
    """Doubly-robust DiD (Sant'Anna and Zhao 2020, R ``DRDID::drdid_panel``) for one cell.

    Logit propensity score and linear outcome evolution of the controls; controls with
    a score >= ``trim`` get weight 0. Returns the ATT and the influence function on the
    phi scale, treated units first.
    """
    n_t = len(d_t)
    n1 = n_t + len(d_c)
    d = np.r_[np.ones(n_t), np.zeros(len(d_c))]
    dy = np.r_[d_t, d_c]
    x = np.vstack([x_t, x_c])
    ps = np.clip(1 / (1 + np.exp(-(x @ _logit(d, x)))), 1e-6, 1 - 1e-6)
    keep = (d == 1) | (ps < trim)
    x_c = x[n_t:]
    out = x @ np.linalg.solve(x_c.T @ x_c, x_c.T @ d_c)
    w_t = d
    w_c = keep * ps * (1 - d) / (1 - ps)
    res = dy - out
    eta_t = np.mean(w_t * res) / np.mean(w_t)
    eta_c = np.mean(w_c * res) / np.mean(w_c)
    lin_ols = ((1 - d) * res)[:, None] * x @ np.linalg.inv(x.T @ (x * (1 - d)[:, None]) / n1)
    hess = np.linalg.inv(x.T @ (x * (ps * (1 - ps))[:, None])) * n1
    lin_ps = ((d - ps)[:, None] * x) @ hess
    inf_t = (w_t * (res - eta_t) - lin_ols @ np.mean(w_t[:, None] * x, axis=0)) / np.mean(w_t)
    c1 = w_c * (res - eta_c)
    inf_c = (c1 + lin_ps @ np.mean(c1[:, None] * x, axis=0)
             - lin_ols @ np.mean(w_c[:, None] * x, axis=0)) / np.mean(w_c)
    return eta_t - eta_c, (inf_t - inf_c) / n1


def cluster_se(
    panel: Panel, sl: slice, phi_t: np.ndarray, ctrl: slice | np.ndarray, phi_c: np.ndarray
) -> float:
    """Analytic standard error from a cell's influence function (clustered if asked)."""
    if panel.cluster is None:
        return float(np.sqrt(phi_t @ phi_t + phi_c @ phi_c))
    g = panel.n_clusters
    sums = np.bincount(panel.cluster[sl], phi_t, g) + np.bincount(panel.cluster[ctrl], phi_c, g)
    return float(np.sqrt(panel.ssc * (sums @ sums)))


def estimate_cells(panel: Panel, cells: pd.DataFrame) -> pd.DataFrame:
    """Add att, se, n_treated and n_control to the cells; drop cells without controls."""
    att = np.zeros(len(cells))
    se = np.full(len(cells), np.nan)
    n_t = np.diff(panel.bounds)[cells["gi"].to_numpy()]
    n_c = np.zeros(len(cells), dtype=int)
    cache: dict[tuple[int, int], np.ndarray] = {}
    arr = cells[["gi", "t_col", "b_col", "cs"]].to_numpy()
    refs = cells["ref"].to_numpy()
    for k, (gi, t_col, b_col, cs) in enumerate(arr):
        ctrl = cache.get((gi, cs))
        if ctrl is None:
            ctrl = cache[(gi, cs)] = control_rows(panel, gi, cs)
        n_c[k] = _count(ctrl)
        if refs[k] or n_c[k] == 0:
            continue
        a, sl, phi_t, phi_c = cell_estimate(panel, gi, t_col, b_col, ctrl)
        att[k] = a
        s = cluster_se(panel, sl, phi_t, ctrl, phi_c)
        se[k] = s if s > _EPS_SE else np.nan
    out = cells.assign(att=att, se=se, n_treated=n_t, n_control=n_c)
    return out[(out["n_control"] > 0) | out["ref"]].reset_index(drop=True)


def _cell_influence(panel: Panel, cells: pd.DataFrame, idx: np.ndarray):
    """Yield (position in idx, cell row k, treated rows, control rows, phi_t, phi_c) for
    the non-reference cells ``idx``, recomputed on the fly; control rows are cached per
    (cohort, control set)."""
    arr = cells[["gi", "t_col", "b_col", "cs"]].to_numpy()
    refs = cells["ref"].to_numpy()
    cache: dict[tuple[int, int], np.ndarray] = {}
    for j, k in enumerate(idx):
        if refs[k]:
            continue
        gi, t_col, b_col, cs = arr[k]
        ctrl = cache.get((gi, cs))
        if ctrl is None:
            ctrl = cache[(gi, cs)] = control_rows(panel, gi, cs)
        _, sl, phi_t, phi_c = cell_estimate(panel, gi, t_col, b_col, ctrl)
        yield j, k, sl, ctrl, phi_t, phi_c


def cell_phi_matrix(panel: Panel, cells: pd.DataFrame, weights: np.ndarray) -> np.ndarray:
    """Unit-level influence functions of linear combinations of cells (phi scale).

    ``weights`` is (cells x J); returns (units x J) = sum_k phi_k w_k. Cells are
    recomputed on the fly so that no units x cells matrix is ever stored.
    """
    out = np.zeros((panel.n, weights.shape[1]))
    for _, k, sl, ctrl, phi_t, phi_c in _cell_influence(panel, cells, np.flatnonzero(np.any(weights != 0, axis=1))):
        w = weights[k]
        nz = np.flatnonzero(w)
        if len(nz) == 1:
            j = nz[0]
            out[sl, j] += w[j] * phi_t
            out[ctrl, j] += w[j] * phi_c
        else:
            out[sl] += np.outer(phi_t, w)
            out[ctrl] += np.outer(phi_c, w)
    return out


def cluster_sums(panel: Panel, phi: np.ndarray, ssc: bool = True) -> np.ndarray:
    """Sum unit-level influence functions within clusters (identity without clusters).

    With ``ssc`` the sums are scaled by sqrt(G / (G - 1)) when clustering above the
    unit, so that ``sums.T @ sums`` is the variance with the small-sample factor.
    """
    if panel.cluster is None:
        return phi
    n = panel.n
    summer = sp.csr_matrix((np.ones(n), (panel.cluster, np.arange(n))), shape=(panel.n_clusters, n))
    sums = np.asarray(summer @ phi)
    return sums * np.sqrt(panel.ssc) if ssc else sums


def cell_cluster_pieces(
    panel: Panel, cells: pd.DataFrame, idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cluster-level pieces of cells ``idx`` for the studentized wild bootstrap.

    Returns ``(s_t, s_c, f_t, f_c)``, each (clusters x len(idx)): the cluster sums of
    the treated and control parts of each cell's influence function (phi scale, no
    small-sample factor), and each cluster's share of the cell's treated and control
    units (the leverage of the cluster in the two group means). Reference cells get
    zeros. Without clustering, clusters are units.
    """
    g = panel.n_clusters
    cl = panel.cluster if panel.cluster is not None else np.arange(panel.n)
    s_t, s_c, f_t, f_c = (np.zeros((g, len(idx))) for _ in range(4))
    for j, _, sl, ctrl, phi_t, phi_c in _cell_influence(panel, cells, idx):
        s_t[:, j] = np.bincount(cl[sl], phi_t, g)
        s_c[:, j] = np.bincount(cl[ctrl], phi_c, g)
        f_t[:, j] = np.bincount(cl[sl], minlength=g) / len(phi_t)
        f_c[:, j] = np.bincount(cl[ctrl], minlength=g) / len(phi_c)
    return s_t, s_c, f_t, f_c
