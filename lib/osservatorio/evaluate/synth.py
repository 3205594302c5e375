"""Synthetic control for one treated unit (Abadie, Diamond & Hainmueller 2010).

The synthetic unit is a convex combination of donor units (weights >= 0, summing to 1)
that reproduces the treated unit before the intervention. Two ways to choose it:

- ``predictors=None`` (default): the weights minimise the squared distance between
  the treated and synthetic outcome over the fitting periods (``pre_periods``, by
  default every pre-treatment period). This is a convex quadratic programme, solved
  by non-negative least squares and then an exact active-set solve of its KKT
  conditions (SLSQP as fallback), so the solution is accurate to rounding.
- ``predictors=[columns]``: Abadie's nested problem. Each predictor is the unit's mean
  of that column over the fitting periods, rows scaled by their standard deviation
  across units; for a diagonal V (non-negative, summing to 1) the inner weights
  minimise ``(X1 - X0 w)' V (X1 - X0 w)``, and V is chosen by Nelder-Mead to minimise
  the pre-period outcome MSPE of the resulting synthetic unit (as R ``Synth`` and
  ``pysyncon`` do), from equal weights and from each predictor dominating; the best
  is kept. This outer problem is not convex (V is a local optimum), and with fewer
  predictors than donors the inner weights are often not unique: prefer the default.

Inference is by in-space placebos: each donor in turn is treated as if it had been
treated, with the remaining donors (not the treated unit) as its pool. The statistic is
the ratio of post- to pre-treatment RMSPE; the p-value is the rank of the treated
unit's ratio among all ratios divided by J + 1 (Abadie et al. 2010, section 4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from osservatorio.evaluate.results import EffectResult
from osservatorio.exceptions import EstimationError, InputError


@dataclass(frozen=True)
class SynthResult:
    """Synthetic-control fit of one treated unit with its placebo distribution.

    ``effect.estimate`` is the average post-treatment gap (treated minus synthetic, in
    outcome units) and ``effect.p_value`` the RMSPE-ratio rank p-value; ``se`` and the
    interval are NaN (no sampling model). ``gaps``, ``treated`` and ``synthetic`` are
    indexed by period. ``placebos`` has one row per unit (the treated first) with
    pre_rmspe, post_rmspe, ratio and excluded; ``placebo_gaps`` one column per donor.
    """

    effect: EffectResult
    weights: pd.Series
    v_weights: pd.Series | None
    treated: pd.Series
    synthetic: pd.Series
    gaps: pd.Series
    pre_rmspe: float
    post_rmspe: float
    ratio: float
    placebos: pd.DataFrame
    placebo_gaps: pd.DataFrame
    rank: int


def synthetic_control(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    treated_unit: object,
    treatment_time: object,
    predictors: list[str] | None = None,
    pre_periods: list | None = None,
    placebos: bool = True,
    placebo_rmspe_cutoff: float | None = None,
) -> SynthResult:
    """Fit the synthetic control of ``treated_unit`` and run in-space placebos.

    ``data`` is a balanced long panel (one row per unit and period). Periods before
    ``treatment_time`` are pre-treatment; ``pre_periods`` (a subset of them) are the
    periods used to fit the weights (default: all pre-treatment periods). RMSPEs are
    always over all pre- and all post-treatment periods. With ``placebo_rmspe_cutoff=k``
    placebos whose pre-RMSPE exceeds k times the treated unit's are excluded from the
    p-value (Abadie et al. 2010 use k = 20, 5, 2).
    """
    if placebo_rmspe_cutoff is not None and placebo_rmspe_cutoff <= 0:
        raise InputError(f"placebo_rmspe_cutoff must be positive, got {placebo_rmspe_cutoff}")
    wide = _wide(data, outcome, unit, time)
    if treated_unit not in wide.columns:
        raise InputError(f"treated_unit {treated_unit!r} not found in column {unit!r}")
    periods = wide.index
    pre = np.asarray(periods < treatment_time)
    if pre.sum() < 2 or (~pre).sum() < 1:
        raise InputError(f"treatment_time {treatment_time!r} must leave >= 2 pre-treatment "
                         "and >= 1 post-treatment periods")
    fit_rows = pre if pre_periods is None else np.asarray(periods.isin(pre_periods)) & pre
    if pre_periods is not None and fit_rows.sum() != len(set(pre_periods)):
        raise InputError("pre_periods must be pre-treatment periods present in the data")
    pred = None
    if predictors:
        pred = {p: _wide(data, p, unit, time).loc[periods[fit_rows]].mean() for p in predictors}
        pred = pd.DataFrame(pred).T  # predictors x units
    donors = [u for u in wide.columns if u != treated_unit]
    if len(donors) < 2:
        raise EstimationError("at least 2 donor units are needed")

    main = _fit_one(wide, pred, treated_unit, donors, fit_rows, pre)
    rows = [{"unit": treated_unit, **main["stats"], "excluded": False}]
    placebo_gaps = {}
    if placebos:
        for j in donors:
            others = [u for u in donors if u != j]
            fit_j = _fit_one(wide, pred, j, others, fit_rows, pre)
            too_poor = (placebo_rmspe_cutoff is not None and fit_j["stats"]["pre_rmspe"]
                        > placebo_rmspe_cutoff * main["stats"]["pre_rmspe"])
            rows.append({"unit": j, **fit_j["stats"], "excluded": bool(too_poor)})
            placebo_gaps[j] = fit_j["gap"]
    table = pd.DataFrame(rows)
    kept = table[~table["excluded"]]
    ratio = main["stats"]["ratio"]
    rank = int(np.sum(kept["ratio"].to_numpy() >= ratio * (1 - 1e-12)))
    p_value = rank / len(kept) if placebos else float("nan")
    gap = main["gap"]
    effect = EffectResult(
        estimate=float(gap[~pre].mean()), se=float("nan"), ci_low=float("nan"),
        ci_high=float("nan"), p_value=p_value, n_obs=int(wide.size), n_clusters=None,
        n_treated=1, n_control=len(donors),
        method="synthetic control" + (" (predictors, nested V)" if pred is not None else ""),
        inference=(f"in-space placebos: rank of post/pre RMSPE ratio among {len(kept)} units"
                   + (f" (placebos with pre-RMSPE > {placebo_rmspe_cutoff} x treated excluded)"
                      if placebo_rmspe_cutoff is not None else "")) if placebos else "none",
        extra={"pre_rmspe": main["stats"]["pre_rmspe"], "ratio": ratio},
    )
    return SynthResult(
        effect=effect, weights=pd.Series(main["w"], index=donors, name="weight"),
        v_weights=None if pred is None else pd.Series(main["v"], index=pred.index, name="v"),
        treated=wide[treated_unit].rename("treated"),
        synthetic=(wide[treated_unit] - gap).rename("synthetic"), gaps=gap.rename("gap"),
        pre_rmspe=main["stats"]["pre_rmspe"], post_rmspe=main["stats"]["post_rmspe"],
        ratio=ratio, placebos=table, placebo_gaps=pd.DataFrame(placebo_gaps, index=periods),
        rank=rank,
    )


def simplex_least_squares(a: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Weights ``w >= 0``, ``sum(w) = 1`` minimising ``||a - B w||^2``.

    A non-negative least-squares solve (Lawson-Hanson) with the sum-to-one constraint
    as a heavily weighted extra row gives the support; an active-set refinement then
    solves the KKT system on the support exactly (dropping negative weights, adding
    donors whose gradient violates optimality), so the result is exact up to rounding.
    SLSQP is the fallback if the refinement does not settle.
    """
    from scipy import optimize  # imported when used: with scipy.spatial, 0.4 s

    B = np.asarray(B, dtype=float)
    a = np.asarray(a, dtype=float)
    J = B.shape[1]
    scale = max(float(np.abs(B).max()), 1e-300)
    Bs, as_ = B / scale, a / scale
    H = Bs.T @ Bs
    g0 = Bs.T @ as_
    rho = 1e4 * max(1.0, float(np.sqrt(np.trace(H))))
    w0, _ = optimize.nnls(np.vstack([Bs, np.full((1, J), rho)]), np.append(as_, rho),
                          maxiter=50 * J)
    w0 = np.clip(w0, 0, None)
    w0 = w0 / w0.sum() if w0.sum() > 0 else np.full(J, 1 / J)
    w = _active_set_polish(H, g0, w0)
    if w is not None:
        return w
    res = optimize.minimize(
        lambda w: float(w @ H @ w - 2 * g0 @ w), w0,
        jac=lambda w: 2 * (H @ w - g0), method="SLSQP", bounds=[(0, None)] * J,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1, "jac": lambda w: np.ones(J)}],
        options={"maxiter": 2000, "ftol": 1e-15},
    )
    w = np.clip(res.x, 0, None)
    return w / w.sum()


def _active_set_polish(H: np.ndarray, g0: np.ndarray,
                       w_start: np.ndarray) -> np.ndarray | None:
    J = len(g0)
    support = set(np.flatnonzero(w_start > 1e-9 * w_start.max()))
    for _ in range(4 * J):
        s = np.array(sorted(support))
        kkt = np.zeros((len(s) + 1, len(s) + 1))
        kkt[:-1, :-1] = 2 * H[np.ix_(s, s)]
        kkt[:-1, -1] = 1.0
        kkt[-1, :-1] = 1.0
        rhs = np.append(2 * g0[s], 1.0)
        sol = np.linalg.lstsq(kkt, rhs, rcond=None)[0]
        w_s, lam = sol[:-1], sol[-1]
        if np.any(w_s < -1e-14):
            support.discard(int(s[np.argmin(w_s)]))
            continue
        w = np.zeros(J)
        w[s] = np.clip(w_s, 0, None)
        grad = 2 * (H @ w - g0)  # KKT: grad_j + lam >= 0 for every j outside the support
        viol = grad + lam
        outside = np.array([j for j in range(J) if j not in support], dtype=int)
        tol = 1e-10 * max(1.0, float(np.abs(grad).max()))
        if outside.size == 0 or viol[outside].min() >= -tol:
            return w / w.sum()
        support.add(int(outside[np.argmin(viol[outside])]))
    return None  # no exact active set found


def _fit_one(wide: pd.DataFrame, pred: pd.DataFrame | None, target: object, donors: list,
             fit_rows: np.ndarray, pre: np.ndarray) -> dict:
    """Weights, gap series and RMSPE statistics for one (possibly placebo) unit."""
    Y1 = wide[target].to_numpy(float)
    Y0 = wide[donors].to_numpy(float)
    v = None
    if pred is None:
        w = simplex_least_squares(Y1[fit_rows], Y0[fit_rows])
    else:
        w, v = _nested_weights(pred[[*donors, target]], target, donors, Y1[fit_rows],
                               Y0[fit_rows])
    gap = pd.Series(Y1 - Y0 @ w, index=wide.index)
    pre_rmspe = float(np.sqrt(np.mean(gap.to_numpy()[pre] ** 2)))
    post_rmspe = float(np.sqrt(np.mean(gap.to_numpy()[~pre] ** 2)))
    ratio = post_rmspe / pre_rmspe if pre_rmspe > 0 else float("inf")
    return {"w": w, "v": v, "gap": gap,
            "stats": {"pre_rmspe": pre_rmspe, "post_rmspe": post_rmspe, "ratio": ratio}}


def _nested_weights(pred: pd.DataFrame, target: object, donors: list, z1: np.ndarray,
                    z0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Abadie's nested problem with diagonal V chosen to minimise pre-period MSPE."""
    from scipy import optimize  # imported when used: with scipy.spatial, 0.4 s

    sd = pred.std(axis=1, ddof=1).replace(0, 1.0)
    X = pred.divide(sd, axis=0)
    X1 = X[target].to_numpy(float)
    X0 = X[donors].to_numpy(float)
    k = X.shape[0]

    def inner(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v = np.abs(x) / np.sum(np.abs(x))
        root = np.sqrt(v)
        return simplex_least_squares(root * X1, root[:, None] * X0), v

    def loss(x: np.ndarray) -> float:
        if not np.any(x):
            return np.inf
        w, _ = inner(x)
        return float(np.mean((z1 - z0 @ w) ** 2))

    best = None
    starts = [np.full(k, 1 / k)] + [np.where(np.arange(k) == i, 0.9, 0.1 / max(k - 1, 1))
                                    for i in range(k)] if k > 1 else [np.ones(1)]
    for x0 in starts:
        res = optimize.minimize(loss, x0, method="Nelder-Mead",
                                options={"maxiter": 400, "xatol": 1e-6, "fatol": 1e-10})
        if best is None or res.fun < best.fun:
            best = res
    w, v = inner(best.x)
    return w, v


def _wide(data: pd.DataFrame, value: str, unit: str, time: str) -> pd.DataFrame:
    missing = [c for c in (value, unit, time) if c not in data.columns]
    if missing:
        raise InputError(f"columns not found in data: {missing}")
    if data.duplicated([unit, time]).any():
        raise InputError(f"data has more than one row per ({unit}, {time})")
    wide = data.pivot(index=time, columns=unit, values=value).sort_index()
    if wide.isna().any().any():
        raise InputError(f"{value!r} must be observed for every unit and period "
                         "(balanced panel without missing values)")
    return wide.astype(float)
