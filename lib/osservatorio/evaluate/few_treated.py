"""Inference for a two-way fixed-effects DiD with few (treated) clusters.

Two tools for the case where cluster-robust t tests over-reject because only a handful
of clusters (regions, provinces, pilot sites) are treated:

- ``wild_cluster_bootstrap``: the restricted wild cluster bootstrap (WCR, Cameron,
  Gelbach & Miller 2008; MacKinnon & Webb 2017) of the CRV1 t statistic of the TWFE
  coefficient, computed with the "fast and wild" algebra of Roodman, MacKinnon,
  Nielsen & Webb (2019): after a one-off precomputation of G x G matrices, each draw
  costs O(G) (no refit, no pass over the N observations), and the confidence interval
  is obtained by inverting the bootstrap test.
- ``randomization_inference``: permutes which units (or clusters) are treated,
  keeping the adoption calendar (how many adopt in each period), and compares the
  observed TWFE coefficient with its placebo distribution (Fisher exact test of the
  sharp null, with the interval obtained by inverting it under a constant effect).

Unit and period fixed effects are absorbed by demeaning (Frisch-Waugh-Lovell) with
``osservatorio.evaluate.demean.demean``; the CRV1 standard error follows
``osservatorio.evaluate.covariance.vcov_crv1`` (pyfixest/fixest small-sample factor).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd

from osservatorio import distributions as dist
from osservatorio.evaluate.covariance import is_nested, vcov_crv1
from osservatorio.evaluate.demean import demean
from osservatorio.evaluate.results import EffectResult
from osservatorio.exceptions import EstimationError, InputError

WeightsType = Literal["rademacher", "webb"]
Statistic = Literal["twfe"]

_WEBB = np.sqrt(np.array([1.5, 1.0, 0.5, 0.5, 1.0, 1.5])) * np.array([-1, -1, -1, 1, 1, 1])
_TIE_RTOL = 1e-10  # |t*| equal to |t| up to rounding counts as a tie (not "more extreme")
_MAX_COLS_PER_DEMEAN = 4_000_000  # cells of the N x G block demeaned at once (32 MB)


@dataclass(frozen=True)
class _Panel:
    """Demeaned TWFE regression of ``y`` on a 0/1 treatment ``d``."""

    y: np.ndarray  # demeaned outcome (n,)
    x: np.ndarray  # demeaned treatment (n,)
    d: np.ndarray  # raw treatment 0/1 (n,)
    fe: np.ndarray  # (n, 2) unit and time codes
    cluster: np.ndarray  # (n,) codes 0..G-1
    n_clusters: int
    beta: float
    se: float
    ssc: float
    df: int
    unit_codes: np.ndarray
    time_codes: np.ndarray


def wild_cluster_bootstrap(
    data: pd.DataFrame,
    outcome: str,
    treatment: str,
    unit: str,
    time: str,
    cluster: str,
    weights_type: WeightsType = "webb",
    n_boot: int = 9999,
    seed: int = 0,
    level: float = 0.95,
    impose_null: bool = True,
) -> EffectResult:
    """Wild cluster bootstrap p-value and interval for the TWFE DiD coefficient.

    Model: ``outcome ~ treatment | unit + time`` (OLS, fixed effects absorbed).
    The bootstrap t statistic uses the CRV1 standard error clustered by ``cluster``;
    the p-value is symmetric, the share of draws with ``|t*| > |t|`` (ties with the
    observed statistic, e.g. the all-ones draw, are not counted). With Rademacher
    weights and ``2**G <= n_boot`` all ``2**G`` sign vectors are enumerated, so the
    p-value is exact and deterministic. With ``impose_null=True`` (WCR, recommended)
    the null ``beta = beta0`` is imposed in the bootstrap DGP; ``False`` gives WCU.

    The interval is the set of ``beta0`` not rejected at ``1 - level``: starting from
    the estimate, the p-value function is scanned outwards on a grid of a quarter of
    the CRV1 standard error until it drops to ``1 - level``, then the crossing is
    located by Brent's method (p(beta0) is a step function; the root is the jump point,
    found to 1e-9 standard errors). The same weights are used for every ``beta0``. If
    the p-value never falls that low (possible with very few clusters) the bound is
    infinite. ``estimate`` is in outcome units; ``se`` is the CRV1 standard error.
    """
    _check_literal("weights_type", weights_type, WeightsType)
    if n_boot < 1:
        raise InputError(f"n_boot must be a positive integer, got {n_boot}")
    if not 0 < level < 1:
        raise InputError(f"level must be in (0, 1), got {level}")
    panel = _prepare(data, outcome, treatment, unit, time, cluster)
    weights, full = _draw_weights(panel.n_clusters, weights_type, n_boot, seed)
    boot = _WcrBootstrap(panel, weights, impose_null)
    alpha = 1 - level
    p_value = boot.p_value(0.0)
    ci_low, ci_high = boot.confidence_interval(alpha)
    kind = "WCR" if impose_null else "WCU"
    draws = (f"full enumeration of all 2^{panel.n_clusters}={weights.shape[1]} Rademacher "
             "sign vectors" if full else f"B={weights.shape[1]} {weights_type} draws, seed {seed}")
    inference = (f"wild cluster bootstrap {kind}-11 (Roodman et al. 2019), CRV1 t, symmetric "
                 f"p-value, {draws}; interval by test inversion; G={panel.n_clusters}")
    treated_units = np.unique(panel.unit_codes[panel.d == 1])
    n_units = int(panel.unit_codes.max()) + 1
    treated_clusters = np.unique(panel.cluster[panel.d == 1])
    t_crv1 = panel.beta / panel.se
    return EffectResult(
        estimate=panel.beta, se=panel.se, ci_low=ci_low, ci_high=ci_high, p_value=p_value,
        n_obs=int(panel.y.size), n_clusters=panel.n_clusters, n_treated=int(treated_units.size),
        n_control=n_units - int(treated_units.size), method="TWFE DiD (unit + time FE)",
        inference=inference, level=level,
        extra={"t_stat": t_crv1, "p_value_crv1": float(2 * dist.t.sf(abs(t_crv1), panel.df)),
               "n_treated_clusters": int(treated_clusters.size), "n_boot": int(weights.shape[1]),
               "full_enumeration": full, "weights_type": weights_type,
               "impose_null": impose_null},
    )


def randomization_inference(
    data: pd.DataFrame,
    outcome: str,
    treatment: str,
    unit: str,
    time: str,
    cluster: str | None = None,
    n_perm: int = 999,
    seed: int = 0,
    statistic: Statistic = "twfe",
    level: float = 0.95,
) -> EffectResult:
    """Randomization (permutation) inference for the TWFE DiD coefficient.

    The adoption period of each assignment unit (``cluster`` if given, else ``unit``)
    is read from the 0/1 ``treatment`` column, which must be absorbing (staggered
    adoption; never-treated allowed). Placebo assignments shuffle the adoption
    periods among assignment units, so the number of adopters per period is kept. If
    the number of distinct assignments is at most ``n_perm`` all of them are enumerated
    (the observed one included) and the p-value is the exact share with
    ``|placebo| >= |observed|``; otherwise ``n_perm`` random shuffles are drawn and
    ``p = (1 + #{|placebo| >= |observed|}) / (n_perm + 1)``.

    ``statistic="twfe"``: the TWFE coefficient. The interval inverts the test of the
    sharp null ``y_it(1) - y_it(0) = tau0`` (constant additive effect) over ``tau0``;
    each placebo coefficient is linear in ``tau0`` so no refit is needed. ``se`` is the
    standard deviation of the placebo distribution (randomization SE under the null).
    ``extra["placebo"]`` holds the placebo coefficients. Placebo coefficients come from
    a Gram matrix over (assignment unit, adoption period) when that is cheaper than
    demeaning each placebo treatment (e.g. 999 region-level shuffles of a national
    comune x month panel take about a second).
    """
    _check_literal("statistic", statistic, Statistic)
    if n_perm < 1:
        raise InputError(f"n_perm must be a positive integer, got {n_perm}")
    if not 0 < level < 1:
        raise InputError(f"level must be in (0, 1), got {level}")
    level_col = cluster if cluster is not None else unit
    panel = _prepare(data, outcome, treatment, unit, time, level_col)
    adopt = _adoption_periods(panel)
    assignments, exact = _assignments(adopt, n_perm, seed)
    placebo, slope = _placebo_coefficients(panel, adopt, assignments)
    beta = panel.beta

    def p_at(tau0: float) -> float:
        obs = abs(beta - tau0)
        extreme = np.abs(placebo - tau0 * slope) >= obs * (1 - _TIE_RTOL)
        count = int(extreme.sum())
        return count / len(placebo) if exact else (1 + count) / (len(placebo) + 1)

    scale = float(np.std(placebo)) or max(abs(beta), 1.0)
    ci_low, ci_high = _invert(p_at, beta, scale, 1 - level)
    how = (f"exact: all {len(placebo)} distinct assignments" if exact
           else f"{len(placebo)} random shuffles (seed {seed}), p=(1+#)/(P+1)")
    n_assign = int(adopt.size)
    n_treated = int(np.sum(adopt <= panel.time_codes.max()))
    return EffectResult(
        estimate=beta, se=float(np.std(placebo, ddof=1)) if len(placebo) > 1 else float("nan"),
        ci_low=ci_low, ci_high=ci_high, p_value=p_at(0.0), n_obs=int(panel.y.size),
        n_clusters=n_assign, n_treated=n_treated, n_control=n_assign - n_treated,
        method="TWFE DiD (unit + time FE)",
        inference=(f"randomization inference over adoption periods of {level_col!r} ({how}); "
                   "interval by inverting the sharp null of a constant effect"),
        level=level,
        extra={"placebo": placebo, "exact": exact, "assignment_level": level_col},
    )


def _check_literal(name: str, value: object, kind: object) -> None:
    allowed = get_args(kind)
    if value not in allowed:
        raise InputError(f"{name} must be one of {list(allowed)}, got {value!r}")


def _prepare(data: pd.DataFrame, outcome: str, treatment: str, unit: str, time: str,
             cluster: str) -> _Panel:
    """Validate the columns, absorb unit and time effects, fit and CRV1 se."""
    cols = [outcome, treatment, unit, time, cluster]
    missing = [c for c in dict.fromkeys(cols) if c not in data.columns]
    if missing:
        raise InputError(f"columns not found in data: {missing}")
    frame = data[list(dict.fromkeys(cols))]
    if frame.isna().any().any():
        bad = frame.columns[frame.isna().any()].tolist()
        raise InputError(f"missing values in columns {bad}; drop or impute them first")
    y = frame[outcome].to_numpy(dtype=np.float64)
    d = frame[treatment].to_numpy(dtype=np.float64)
    if not np.all((d == 0) | (d == 1)):
        raise InputError(f"treatment column {treatment!r} must be 0/1")
    unit_codes = pd.factorize(frame[unit], sort=True)[0]
    time_codes = pd.factorize(frame[time], sort=True)[0]
    clu = pd.factorize(frame[cluster], sort=True)[0]
    n_clusters = int(clu.max()) + 1
    if n_clusters < 2:
        raise EstimationError(f"at least 2 clusters of {cluster!r} are needed")
    fe = np.column_stack([unit_codes, time_codes])
    yx = demean(np.column_stack([y, d]), fe)
    y_dm, x_dm = yx[:, 0], yx[:, 1]
    xx = float(x_dm @ x_dm)
    if xx <= 1e-10 * max(1.0, float(d.sum())):
        raise EstimationError("the treatment has no variation left after unit and time effects")
    beta = float(x_dm @ y_dm) / xx
    n_units, n_times = int(unit_codes.max()) + 1, int(time_codes.max()) + 1
    nested = [n_units] if is_nested(unit_codes, clu) else []
    if is_nested(time_codes, clu):
        nested.append(n_times)
    vc = vcov_crv1(x_dm, y_dm - beta * x_dm, clu, n_fe_absorbed=n_units + n_times - 1,
                   fe_nested_in_cluster=nested)
    return _Panel(y=y_dm, x=x_dm, d=d, fe=fe, cluster=clu, n_clusters=n_clusters, beta=beta,
                  se=float(np.sqrt(vc.matrix[0, 0])), ssc=vc.ssc, df=vc.df,
                  unit_codes=unit_codes, time_codes=time_codes)


def _draw_weights(n_clusters: int, weights_type: str, n_boot: int,
                  seed: int) -> tuple[np.ndarray, bool]:
    """(G, B) matrix of cluster weights; all sign vectors when 2**G <= n_boot."""
    if weights_type == "rademacher" and n_clusters < 31 and 2 ** n_clusters <= n_boot:
        signs = np.array(list(itertools.product([-1.0, 1.0], repeat=n_clusters)))
        return signs.T.copy(), True
    rng = np.random.default_rng(seed)
    if weights_type == "rademacher":
        return rng.choice([-1.0, 1.0], size=(n_clusters, n_boot)), False
    return rng.choice(_WEBB, size=(n_clusters, n_boot)), False


class _WcrBootstrap:
    """Fast wild cluster bootstrap of the CRV1 t statistic of one coefficient.

    With x, y demeaned (x orthogonal to the fixed effects F) and M the annihilator of
    F, the bootstrap DGP for base coefficient b is ``y* = b x + F + M(y - b x) . v``.
    Its coefficient is ``b + s'v / x'x`` with ``s_g = x_g'(y_g - b x_g)``, and the
    cluster scores of its residuals are ``(A - b C) v - diag(x_g'x_g) (b* - b)``,
    where ``A[g, h] = x_g' M(y . 1_h)`` and ``C[g, h] = x_g' M(x . 1_h)`` are G x G.
    A and C cost one demeaning of an N x G block; the products ``A V`` and ``C V``
    are formed once, after which the p-value at any ``beta0`` costs O(G) per draw.
    """

    def __init__(self, panel: _Panel, weights: np.ndarray, impose_null: bool):
        self.panel = panel
        self.impose_null = impose_null
        g = panel.cluster
        n_g = panel.n_clusters
        self.xx = float(panel.x @ panel.x)
        self.sy = np.bincount(g, weights=panel.x * panel.y, minlength=n_g)
        self.sx = np.bincount(g, weights=panel.x * panel.x, minlength=n_g)
        a_mat = _cross_cluster(panel.x, panel.y, g, n_g, panel.fe)
        c_mat = _cross_cluster(panel.x, panel.x, g, n_g, panel.fe)
        self.av = a_mat @ weights
        self.cv = c_mat @ weights
        self.syv = self.sy @ weights
        self.sxv = self.sx @ weights

    def t_boot(self, beta0: float) -> np.ndarray:
        """Bootstrap t statistics (B,) for the null ``beta = beta0``."""
        b = beta0 if self.impose_null else self.panel.beta
        delta = (self.syv - b * self.sxv) / self.xx  # b* - b, per draw
        scores = self.av - b * self.cv - self.sx[:, None] * delta[None, :]
        se = np.sqrt(self.panel.ssc * np.einsum("gb,gb->b", scores, scores)) / self.xx
        with np.errstate(divide="ignore", invalid="ignore"):
            return delta / se

    def p_value(self, beta0: float) -> float:
        t_obs = abs(self.panel.beta - beta0) / self.panel.se
        t_star = np.abs(self.t_boot(beta0))
        return float(np.mean(t_star > t_obs * (1 + _TIE_RTOL)))

    def confidence_interval(self, alpha: float) -> tuple[float, float]:
        return _invert(self.p_value, self.panel.beta, self.panel.se, alpha)


def _cross_cluster(x: np.ndarray, z: np.ndarray, g: np.ndarray, n_g: int,
                   fe: np.ndarray) -> np.ndarray:
    """G x G matrix ``[g, h] = sum_{i in g} x_i * (M (z . 1_h))_i``."""
    n = x.size
    out = np.empty((n_g, n_g))
    step = max(1, _MAX_COLS_PER_DEMEAN // max(n, 1))
    for start in range(0, n_g, step):
        hs = np.arange(start, min(n_g, start + step))
        block = np.where(g[:, None] == hs[None, :], z[:, None], 0.0)
        block = demean(block, fe) * x[:, None]
        for j, h in enumerate(hs):
            out[:, h] = np.bincount(g, weights=block[:, j], minlength=n_g)
    return out


def _invert(p_at, estimate: float, scale: float, alpha: float,
            max_steps: int = 400) -> tuple[float, float]:
    """Bounds of ``{b : p_at(b) > alpha}`` nearest to ``estimate`` on each side."""
    from scipy import optimize  # imported when used: with scipy.spatial, 0.4 s

    bounds = []
    for sign in (-1.0, 1.0):
        inner, step, outer = estimate, 0.25 * scale, None
        for k in range(max_steps):
            cand = inner + sign * step
            if p_at(cand) <= alpha:
                outer = cand
                break
            inner = cand
            if k >= 40:
                step *= 2.0  # the grid grows geometrically once far in the tails
            if not math.isfinite(cand):
                break
        if outer is None:
            bounds.append(sign * math.inf)
            continue
        lo, hi = sorted((inner, outer))
        root = optimize.brentq(lambda b: p_at(b) - alpha - 1e-15, lo, hi,
                               xtol=1e-9 * scale, rtol=4 * np.finfo(float).eps, maxiter=500)
        bounds.append(float(root))
    return bounds[0], bounds[1]


def _placebo_coefficients(panel: _Panel, adopt: np.ndarray, assignments: list[np.ndarray],
                          method: Literal["auto", "gram", "direct"] = "auto",
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Placebo TWFE coefficients and their slopes in tau0 (see randomization_inference).

    A placebo treatment is ``D_p = sum_a E[a, s_a]`` with ``E[a, s]`` the indicator of
    assignment unit ``a`` from period ``s`` on. With the Gram matrix
    ``Q = E' M E`` over every unit and adoption period (one demeaning per column,
    A x K columns) each placebo costs O(treated^2) instead of a demeaning of N values;
    that is used when it is cheaper ("auto"), else each D_p is demeaned ("direct").
    """
    n_times = int(panel.time_codes.max()) + 1
    cohorts = np.unique(adopt[adopt < n_times])
    n_a = panel.n_clusters
    n_cols = n_a * cohorts.size
    if method == "direct" or (method == "auto" and 2 * n_cols > len(assignments)):
        placebo = np.empty(len(assignments))
        slope = np.empty(len(assignments))
        for i, perm_adopt in enumerate(assignments):
            d_p = (panel.time_codes >= perm_adopt[panel.cluster]).astype(np.float64)
            x_p = demean(d_p, panel.fe)
            xx = float(x_p @ x_p)
            _check_variation(xx, d_p.sum())
            placebo[i] = float(x_p @ panel.y) / xx
            slope[i] = float(x_p @ panel.d) / xx
        return placebo, slope
    # tail sums R[a, k] = sum over i in a with t_i >= cohorts[k] of z_i
    cell = panel.cluster.astype(np.int64) * n_times + panel.time_codes

    def tail_sums(z: np.ndarray) -> np.ndarray:
        sums = np.bincount(cell, weights=z, minlength=n_a * n_times).reshape(n_a, n_times)
        return np.cumsum(sums[:, ::-1], axis=1)[:, ::-1][:, cohorts].ravel()

    gram = np.empty((n_cols, n_cols))
    step = max(1, _MAX_COLS_PER_DEMEAN // max(panel.y.size, 1))
    for start in range(0, n_cols, step):
        cols = np.arange(start, min(n_cols, start + step))
        a_idx, k_idx = np.divmod(cols, cohorts.size)
        block = ((panel.cluster[:, None] == a_idx[None, :])
                 & (panel.time_codes[:, None] >= cohorts[k_idx][None, :])).astype(np.float64)
        block = demean(block, panel.fe)
        for j, col in enumerate(cols):
            gram[:, col] = tail_sums(block[:, j])
    ry = tail_sums(panel.y)
    obs_idx = _columns(adopt, cohorts, n_times)
    placebo = np.empty(len(assignments))
    slope = np.empty(len(assignments))
    for i, perm_adopt in enumerate(assignments):
        idx = _columns(perm_adopt, cohorts, n_times)
        xx = float(gram[np.ix_(idx, idx)].sum())
        _check_variation(xx, idx.size)
        placebo[i] = float(ry[idx].sum()) / xx
        slope[i] = float(gram[np.ix_(idx, obs_idx)].sum()) / xx
    return placebo, slope


def _columns(adopt: np.ndarray, cohorts: np.ndarray, n_times: int) -> np.ndarray:
    """Gram-matrix columns (unit, cohort) of the treated units of an assignment."""
    treated = np.flatnonzero(adopt < n_times)
    return treated * cohorts.size + np.searchsorted(cohorts, adopt[treated])


def _check_variation(xx: float, size: float) -> None:
    if xx <= 1e-12 * max(1.0, float(size)):
        raise EstimationError("a placebo assignment leaves no treatment variation")


def _adoption_periods(panel: _Panel) -> np.ndarray:
    """First treated period (time code) per assignment unit; n_times if never."""
    n_times = int(panel.time_codes.max()) + 1
    n_a = panel.n_clusters
    first = np.full(n_a, n_times, dtype=np.int64)
    treated = panel.d == 1
    np.minimum.at(first, panel.cluster[treated], panel.time_codes[treated])
    implied = panel.time_codes >= first[panel.cluster]
    if not np.array_equal(implied, treated):
        raise InputError("randomization_inference: treatment must be absorbing (0 until the "
                         "adoption period, 1 from then on) and adopted at the same period by "
                         "all units of an assignment cluster")
    return first


def _assignments(adopt: np.ndarray, n_perm: int, seed: int) -> tuple[list[np.ndarray], bool]:
    """Distinct re-assignments of adoption periods (all if few, else random)."""
    values, counts = np.unique(adopt, return_counts=True)
    n_distinct = math.factorial(adopt.size)
    for c in counts:
        n_distinct //= math.factorial(int(c))
    if n_distinct <= n_perm:
        return list(_multiset_permutations(values, counts, adopt.size)), True
    rng = np.random.default_rng(seed)
    return [rng.permutation(adopt) for _ in range(n_perm)], False


def _multiset_permutations(values: np.ndarray, counts: np.ndarray, size: int):
    """Every arrangement of ``values`` repeated ``counts`` times over ``size`` slots."""
    def fill(free: tuple[int, ...], k: int, current: np.ndarray):
        if k == len(values) - 1:
            current = current.copy()
            current[list(free)] = values[k]
            yield current
            return
        for chosen in itertools.combinations(free, int(counts[k])):
            nxt = current.copy()
            nxt[list(chosen)] = values[k]
            rest = tuple(i for i in free if i not in set(chosen))
            yield from fill(rest, k + 1, nxt)

    yield from fill(tuple(range(size)), 0, np.empty(size, dtype=np.int64))
