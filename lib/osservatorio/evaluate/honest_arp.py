"""Relative-magnitudes confidence sets of Rambachan and Roth (2023), as R ``HonestDiD``.

Delta^RM(Mbar): every post-period change of the trend violation, |delta_t - delta_{t-1}|,
is at most Mbar times the largest pre-period change. The set is a union over which
pre-period change s attains the max and its sign; for each (s, sign) the moments are
linear (R ``.create_A_RM``) and theta = l'tau is tested with the conditional
least-favourable hybrid of Andrews, Roth and Pakes (R ``.lp_conditional_test_fn`` with
hybrid_flag "LF", hybrid_kappa = alpha / 10), on the post-period moments only
(R's default ``postPeriodMomentsOnly = TRUE``). The confidence set is the union of the
accepted theta over the 2 * num_pre cases (R ``computeConditionalCS_DeltaRM``).

How this differs from R, and why the intervals agree to R's grid precision:

* R tests 1,000 grid points on [-20, 20] sd(l'beta_post) for every (s, sign). Here the
  least-favourable first stage bounds where anything can be accepted (eta(theta) <= cv
  is an interval, eta convex in theta), cases whose bound lies inside the interval found
  so far are skipped, and the endpoints of the others are found by bisection
  to 1/100 of R's grid step. Within a case the accepted set is taken to be an interval
  around an accepted point (the sample identified set, or the point of least eta);
  R reports min and max of the accepted grid points, which is the same when it is.
* The least-favourable critical value is the 1 - kappa quantile of
  eta(xi), xi ~ N(0, Sigma_Y), over 1,000 seeded draws as R, but eta of each draw is
  computed in closed form: with the post moments of Delta^RM the nuisance directions
  are the post-period changes E_t of tau under one linear constraint w'E = theta
  (w_u = sum_{t >= u} l_t), so the LP separates by period (``_eta_closed_form``;
  checked against the LP in the tests). R's draws are not reproducible here, so the
  critical value differs from R's by Monte Carlo error (1,000 draws).
* The test statistic's LP and its duals come from HiGHS (``scipy.optimize.linprog``).

Pure array code; scipy.optimize is imported inside the functions that need it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from osservatorio import distributions as dist

LF_SIMS = 1000
_TOL_LAMBDA = 1e-6


@dataclass(frozen=True)
class RMCase:
    """Moments of one (s, sign) case, post-period rows only: Y = A betahat, rows (t, +/-)."""

    y: np.ndarray          # A betahat (2T), rows: (t=1..T, +) then (t=1..T, -)
    sigma_y: np.ndarray    # A Sigma A'
    sd: np.ndarray
    lf_cv: float
    pieces: np.ndarray     # P: eta(y) at theta = 0 is max(P @ y); its rows are the LP's dual vertices


def rm_matrix(num_pre: int, num_post: int, mbar: float, s: int, positive: bool) -> np.ndarray:
    """Post-period rows of R ``.create_A_RM``: +/-(delta_t - delta_{t-1}) - Mbar*sign*(delta_s - delta_{s-1}) <= 0.

    Columns: delta_{-num_pre}..delta_{-1}, delta_1..delta_T (delta_0 = 0 dropped).
    ``s`` in -(num_pre - 1)..0 indexes the pre-period change delta_s - delta_{s-1}.
    """
    k, t = num_pre, num_post

    def col(p: int) -> int | None:  # event time -> column (None for the reference 0)
        return p + k if p < 0 else (None if p == 0 else k + p - 1)

    pre = np.zeros(k + t)
    for p, v in ((s, 1.0), (s - 1, -1.0)):
        if col(p) is not None:
            pre[col(p)] += v
    pre *= mbar * (1.0 if positive else -1.0)
    diff = np.zeros((t, k + t))
    for p in range(1, t + 1):
        diff[p - 1, col(p)] = 1.0
        if col(p - 1) is not None:
            diff[p - 1, col(p - 1)] = -1.0
    return np.vstack([diff - pre, -diff - pre])


def post_weights(l_vec: np.ndarray) -> np.ndarray:
    """w_u = sum_{t >= u} l_t: l'tau = w'E with E the period-to-period changes of tau."""
    return np.cumsum(l_vec[::-1])[::-1]


def _eta_closed_form(y: np.ndarray, sd: np.ndarray, w: np.ndarray, theta: float | np.ndarray) -> np.ndarray:
    """min over E with w'E = theta of max_rows (y_i -/+ E_t) / sd_i, for rows (t, +) then (t, -).

    ``y`` may be (..., 2T). At level eta each period allows E_t in
    [y+_t - eta sd+_t, -y-_t + eta sd-_t]; feasible iff every box is non-empty and theta
    lies between min and max of w'E over the boxes, both linear in eta.
    """
    t = len(w)
    yp, ym = y[..., :t], y[..., t:]
    sp, sm = sd[:t], sd[t:]
    eta_box = np.max((yp + ym) / (sp + sm), axis=-1)
    pos, neg = np.clip(w, 0, None), np.clip(w, None, 0)
    p0 = yp @ pos - ym @ neg            # min of w'E over the boxes at eta = 0
    q = sp @ pos - sm @ neg             # ... decreases by q per unit of eta
    r0 = -ym @ pos + yp @ neg           # max of w'E at eta = 0
    q2 = sm @ pos - sp @ neg
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.where(q > 0, (p0 - theta) / q, -np.inf)
        high = np.where(q2 > 0, (theta - r0) / q2, -np.inf)
    return np.maximum(eta_box, np.maximum(low, high))


def accept_bounds(case: RMCase, w: np.ndarray) -> tuple[float, float]:
    """Theta with eta(theta) <= lf_cv: the only theta the hybrid test can accept."""
    t = len(w)
    y, sd, cv = case.y, case.sd, case.lf_cv
    eta_box = np.max((y[:t] + y[t:]) / (sd[:t] + sd[t:]))
    if eta_box > cv:
        return np.inf, -np.inf
    pos, neg = np.clip(w, 0, None), np.clip(w, None, 0)
    lo = y[:t] @ pos - y[t:] @ neg - cv * (sd[:t] @ pos - sd[t:] @ neg)
    hi = -y[t:] @ pos + y[:t] @ neg + cv * (sd[t:] @ pos - sd[:t] @ neg)
    return float(lo), float(hi)


def least_eta_theta(case: RMCase, w: np.ndarray) -> float:
    """Theta minimising eta(theta) (midpoint of the sample identified set when non-empty)."""
    t = len(w)
    y, sd = case.y, case.sd
    pos, neg = np.clip(w, 0, None), np.clip(w, None, 0)
    p0, q = y[:t] @ pos - y[t:] @ neg, sd[:t] @ pos - sd[t:] @ neg
    r0, q2 = -y[t:] @ pos + y[:t] @ neg, sd[t:] @ pos - sd[:t] @ neg
    if q + q2 <= 0:
        return float((p0 + r0) / 2)
    # eta(theta) = max(box, (p0 - theta)/q, (theta - r0)/q2): the two lines cross here
    return float((p0 * q2 + r0 * q) / (q + q2))


def make_case(betahat: np.ndarray, sigma: np.ndarray, a: np.ndarray, w: np.ndarray,
              kappa: float, rng_seed: int) -> RMCase:
    """Moments, their covariance and the least-favourable critical value of one case."""
    y = a @ betahat
    sigma_y = a @ sigma @ a.T
    sd = np.sqrt(np.clip(np.diag(sigma_y), 0, None))
    pieces = piece_matrix(sd, w)
    # eta of each draw xi = chol z is max_j (P chol z)_j; einsum avoids a threaded BLAS call per case
    eta = np.einsum("ij,kj->ik", _standard_draws(rng_seed, len(y)), pieces @ _psd_root(sigma_y)).max(axis=1)
    return RMCase(y=y, sigma_y=sigma_y, sd=sd, lf_cv=float(np.quantile(eta, 1 - kappa)), pieces=pieces)


def piece_matrix(sd: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Rows P_j with ``_eta_closed_form(y, sd, w, 0) = max_j P_j y``.

    One row per period (box non-empty: (y+_t + y-_t) / (sd+_t + sd-_t)) and the two
    rows for the reach of w'E. Each row is >= 0, has sd'P_j = 1 and X'P_j = 0: a vertex
    of the dual of R's LP ``.test_delta_lp_fn``, so the maximising row is a dual solution.
    """
    t = len(w)
    sp, sm = sd[:t], sd[t:]
    pos, neg = np.clip(w, 0, None), np.clip(w, None, 0)
    box = np.hstack([np.diag(1 / (sp + sm)), np.diag(1 / (sp + sm))])
    rows = [box]
    q, q2 = sp @ pos - sm @ neg, sm @ pos - sp @ neg
    if q > 0:
        rows.append(np.concatenate([pos, -neg])[None, :] / q)
    if q2 > 0:
        rows.append(np.concatenate([-neg, pos])[None, :] / q2)
    return np.vstack(rows)


_DRAWS: dict[tuple[int, int], np.ndarray] = {}


def _standard_draws(seed: int, dim: int) -> np.ndarray:
    """The same N(0, I) draws for every case of a given size (R sets the seed in each call)."""
    if (seed, dim) not in _DRAWS:
        _DRAWS[(seed, dim)] = np.random.default_rng(seed).standard_normal((LF_SIMS, dim))
    return _DRAWS[(seed, dim)]


def _psd_root(s: np.ndarray) -> np.ndarray:
    val, vec = np.linalg.eigh(s)
    return vec * np.sqrt(np.clip(val, 0, None))


def nuisance_design(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """E = e0 * theta + N nu with w'N = 0: a particular solution and a basis of the rest."""
    e0 = w / (w @ w)
    _, _, vt = np.linalg.svd(w[None, :])
    return e0, vt[1:].T


def conditional_test(case: RMCase, theta: float, w: np.ndarray, alpha: float, kappa: float) -> bool:
    """True if theta is rejected by the LF hybrid conditional test (R ``.lp_conditional_test_fn``).

    eta and a dual solution gamma come from the piece matrix (no LP); the conditioning
    interval is the dual one of R (``_vlo_vup_dual``), which equals R's primal formula
    when the LP is non-degenerate (``conditional_test_lp`` follows R's branches; the
    tests check both agree).
    """
    t = len(w)
    sign = np.concatenate([np.ones(t), -np.ones(t)])
    y_t = case.y - sign * np.tile(w / (w @ w) * theta, 2)
    vals = case.pieces @ y_t
    j = int(np.argmax(vals))
    eta = float(vals[j])
    if eta > case.lf_cv:
        return True
    return _dual_branch(y_t, case, eta, case.pieces[j], (alpha - kappa) / (1 - kappa), w)


def conditional_test_lp(case: RMCase, theta: float, w: np.ndarray, alpha: float, kappa: float) -> bool:
    """R's branches literally: eta and duals from the LP (HiGHS), primal bounds when non-degenerate."""
    t = len(w)
    e0, basis = nuisance_design(w)
    sign = np.concatenate([np.ones(t), -np.ones(t)])
    # row (t, +): y - E_t ; row (t, -): y + E_t ; E = e0 theta + basis nu
    y_t = case.y - sign * np.tile(e0 * theta, 2)
    x_t = sign[:, None] * np.vstack([basis, basis])
    eta, lam = _eta_lp(y_t, x_t, case.sd)
    if eta > case.lf_cv:
        return True
    mod_size = (alpha - kappa) / (1 - kappa)
    k = x_t.shape[1]
    b_idx = lam > _TOL_LAMBDA
    x_b = x_t[b_idx]
    full_rank = x_b.size > 0 and min(x_b.shape) > 0 and np.linalg.matrix_rank(x_b) == min(x_b.shape)
    if k == 0:
        full_rank = True
    if b_idx.sum() != k + 1 or not full_rank:
        return _dual_branch(y_t, case, eta, lam, mod_size, w)
    sd = case.sd
    m_b = np.column_stack([sd[b_idx], x_b])
    inv = np.linalg.inv(m_b)
    s_b = np.eye(len(sd))[b_idx]
    s_bc = np.eye(len(sd))[~b_idx]
    gamma_b = np.column_stack([sd[~b_idx], x_t[~b_idx]]) @ inv @ s_b - s_bc
    v_b = inv[0] @ s_b
    sigma2_b = float(v_b @ case.sigma_y @ v_b)
    sigma_b = np.sqrt(sigma2_b)
    rho = gamma_b @ case.sigma_y @ v_b / sigma2_b
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = -(gamma_b @ y_t) / rho + v_b @ y_t
    vlo = bound[rho > 0].max() if (rho > 0).any() else -np.inf
    vup = bound[rho < 0].min() if (rho < 0).any() else np.inf
    return _truncated_reject(eta / sigma_b, vlo / sigma_b, min(vup, case.lf_cv) / sigma_b, mod_size)


def _truncated_reject(stat: float, zlo: float, zup: float, mod_size: float) -> bool:
    if not (zlo <= stat <= zup):
        return False
    cval = max(0.0, truncated_normal_quantile(1 - mod_size, zlo, zup))
    return bool(stat > cval)


def truncated_normal_quantile(p: float, lo: float, up: float) -> float:
    """Quantile p of N(0, 1) truncated to [lo, up] (R ``TruncatedNormal::norminvp``), tail-stable."""
    if lo > 0:  # work in upper tails
        s_lo, s_up = dist.norm.sf(lo), dist.norm.sf(up)
        return float(dist.norm.isf(s_lo - p * (s_lo - s_up)))
    c_lo, c_up = dist.norm.cdf(lo), dist.norm.cdf(up)
    return float(dist.norm.ppf(c_lo + p * (c_up - c_lo)))


def _eta_lp(y_t: np.ndarray, x_t: np.ndarray, sd: np.ndarray) -> tuple[float, np.ndarray]:
    """min eta s.t. y - X nu <= eta sd (R ``.test_delta_lp_fn``): value and duals lambda >= 0."""
    from scipy.optimize import linprog

    k = x_t.shape[1]
    if k == 0:
        ratio = y_t / sd
        lam = np.zeros(len(y_t))
        j = int(np.argmax(ratio))
        lam[j] = 1.0 / sd[j]
        return float(ratio[j]), lam
    c = np.zeros(k + 1)
    c[0] = 1.0
    a_ub = -np.column_stack([sd, x_t])
    res = linprog(c, A_ub=a_ub, b_ub=-y_t, bounds=[(None, None)] * (k + 1), method="highs")
    if res.status != 0:
        return -np.inf, np.zeros(len(y_t))  # as R: an LP failure does not reject
    return float(res.fun), -np.asarray(res.ineqlin.marginals)


def _dual_branch(y_t, case: RMCase, eta: float, lam: np.ndarray, mod_size: float, w: np.ndarray) -> bool:
    """Degenerate LP: conditioning bounds from the dual (R ``.lp_dual_fn``, ``.vlo_vup_dual_fn``)."""
    sigma = case.sigma_y
    g = lam
    s2 = float(g @ sigma @ g)
    if abs(s2) < np.finfo(float).eps:
        return bool(eta > 0)
    b = sigma @ g / s2
    s_t = y_t - b * (g @ y_t)
    sig = np.sqrt(s2)
    vlo, vup = _vlo_vup_dual(eta, s_t, b, case.sd, w, sig)
    return _truncated_reject(eta / sig, vlo / sig, min(vup, case.lf_cv) / sig, mod_size)


def _vlo_vup_dual(eta, s_t, b, sd, w, sigma_b):
    """Range of c over which the LP value at s_T + b c equals c (R ``.vlo_vup_dual_fn``).

    R solves the dual LP max over x >= 0, W'x = e1 of (s_T + b c)'x, which is eta at
    s_T + b c by LP duality, checks equality with c to 1e-6 and bisects from +/-100
    (returning -/+inf when equality still holds there). Here eta(s_T + b c) is the max
    of linear functions a_j + b_j c (``piece_matrix``), and it is >= c (the LP's dual
    solution is feasible with value c), so the range is {c: a_j + (b_j - 1) c <= 0 all j},
    computed exactly; beyond R's starting points it is infinite, as R's.
    """
    p = piece_matrix(sd, w)
    a_j, b_j = p @ s_t, p @ b
    tol = 1e-9 * max(1.0, abs(eta))
    if np.max(a_j + b_j * eta) - eta > tol:
        return eta, np.inf
    slope = b_j - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        root = -a_j / slope
    up_roots = root[slope > 1e-12]
    lo_roots = root[slope < -1e-12]
    vup = up_roots.min() if up_roots.size else np.inf
    vlo = lo_roots.max() if lo_roots.size else -np.inf
    if vup >= max(100.0, eta + 20 * sigma_b):
        vup = np.inf
    if vlo <= min(-100.0, eta - 20 * sigma_b):
        vlo = -np.inf
    return float(vlo), float(vup)
