"""Random-effects meta-analysis and meta-regression of site-level effects.

Pools effects estimated at several sites (comuni, cohorts, themes) into one estimate
with its between-site heterogeneity (tau2, I2), a prediction interval for a new site,
and, with study-level moderators, a mixed-effects meta-regression telling where the
practice transfers (`predict_effect` at given moderator values). Conventions follow
R's metafor (`rma.uni`, `predict.rma`, `confint` Q-profile, `leave1out`), against which
the tests compare every quantity.

Why not statsmodels' `combine_effects` for the intercept-only model: its
DerSimonian-Laird tau2 is not truncated at 0 (a negative tau2 then enters the
weights), its Paule-Mandel iteration stops at |Q - df| < 1e-5, and it has no
meta-regression. One generalised-Q solver here covers DL, PM and REML with and
without moderators; the tests check that `combine_effects` agrees where it applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import pandas as pd

from osservatorio import distributions as dist
from osservatorio.exceptions import EstimationError, InputError

Method = Literal["dl", "pm", "reml"]
_METHODS: tuple[str, ...] = get_args(Method)
PiType = Literal["default", "t", "riley"]
_PI_TYPES: tuple[str, ...] = get_args(PiType)
_MAX_DOUBLINGS = 200


@dataclass(frozen=True, eq=False)
class MetaResult:
    """Pooled random-effects estimate, heterogeneity and (optionally) meta-regression.

    Effects are in the units of the input (e.g. log risk ratio, percentage points).
    With moderators, `estimate` .. `p_value` and the prediction interval refer to the
    intercept, i.e. the effect at a site with every moderator at 0 (centre the
    moderators to make it the effect at an average site); `coefficients` holds them all.
    `z` is a t statistic (with `df` degrees of freedom) under Knapp-Hartung.
    """

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    z: float
    p_value: float
    tau2: float  # between-site variance (residual with moderators), >= 0
    tau: float
    i2: float  # share 0-1 of total variability due to heterogeneity, >= 0
    h2: float  # total / sampling variability, >= 1
    q: float  # Cochran's Q (QE: residual heterogeneity with moderators)
    q_df: int
    q_p_value: float
    pi_low: float  # prediction interval for the true effect at a new site
    pi_high: float
    tau2_ci_low: float  # Q-profile confidence interval of tau2 (Viechtbauer 2007)
    tau2_ci_high: float
    i2_ci_low: float
    i2_ci_high: float
    h2_ci_low: float
    h2_ci_high: float
    k: int
    method: str
    level: float
    knapp_hartung: bool
    pi_type: str
    df: int | None  # t degrees of freedom under Knapp-Hartung, else None
    weights: np.ndarray  # share 0-1 of each study in the fit
    coefficients: pd.DataFrame  # estimate, se, z, p_value, ci_low, ci_high per term
    vcov: pd.DataFrame
    qm: float | None = None  # omnibus test of the moderators (F under Knapp-Hartung)
    qm_df: int | None = None
    qm_p_value: float | None = None
    r2: float | None = None  # share 0-1 of tau2 explained by the moderators
    moderator_spec: tuple = ()  # how moderators were encoded, for predict_effect
    extra: dict = field(default_factory=dict)


def meta_analysis(
    effects,
    variances,
    method: Method = "reml",
    moderators=None,
    level: float = 0.95,
    knapp_hartung: bool = False,
    pi_type: PiType = "default",
) -> MetaResult:
    """Random-effects meta-analysis (or mixed-effects meta-regression with `moderators`).

    `effects` and `variances` (squared standard errors) are one value per site.
    `moderators` is a frame, series or array of site-level covariates (non-numeric
    columns become treatment dummies, first sorted level as reference); an intercept is
    added. tau2 is estimated by DerSimonian-Laird ("dl"), Paule-Mandel ("pm") or
    restricted maximum likelihood ("reml"), truncated at 0.

    The prediction interval is estimate +/- crit * sqrt(se^2 + tau2) with crit, as in
    metafor's `predict.rma(pi.type=...)`: "default" the normal quantile (Student t with
    k - p df under Knapp-Hartung); "t" Student t with k - p df; "riley" Student t with
    k - p - 1 df (at least 1), for one intercept the t_{k-2} of Higgins et al. (2009),
    which covers better with few sites.
    """
    if method not in _METHODS:
        raise InputError(f"method must be one of {_METHODS}, got {method!r}")
    if not 0 < level < 1:
        raise InputError(f"level must be in (0, 1), got {level!r}")
    if pi_type not in _PI_TYPES:
        raise InputError(f"pi_type must be one of {_PI_TYPES}, got {pi_type!r}")
    y, v = _check_effects(effects, variances)
    X, names, spec = _design_matrix(moderators, len(y))
    k, p = X.shape
    if k - p < 1:
        raise EstimationError(
            f"meta-analysis needs more studies than coefficients: k={k}, p={p}"
        )
    tau2 = _estimate_tau2(y, v, X, method)
    res = _fit_given_tau2(y, v, X, names, tau2, level, knapp_hartung, pi_type)
    res.update(_heterogeneity(y, v, X, tau2, level))
    if p > 1:
        res.update(_moderator_test(res["_b"], res["_vb"], k - p, knapp_hartung))
        tau2_re = _estimate_tau2(y, v, np.ones((k, 1)), method)
        res["r2"] = 0.0 if tau2_re <= 0 else float(np.clip((tau2_re - tau2) / tau2_re, 0, 1))
        res["extra"] = {"tau2_intercept_only": tau2_re}
    res.pop("_b")
    res.pop("_vb")
    return MetaResult(method=method, level=level, knapp_hartung=knapp_hartung, k=k,
                      pi_type=pi_type, moderator_spec=spec, **res)


def leave_one_out(
    effects,
    variances,
    method: Method = "reml",
    level: float = 0.95,
    knapp_hartung: bool = False,
    labels=None,
) -> pd.DataFrame:
    """Refit the intercept-only model leaving out each site in turn (influence check).

    Returns one row per omitted site (index: `labels` or 0..k-1) with estimate, se, z,
    p_value, ci_low, ci_high, q, q_p_value, tau2, i2, h2, pi_low, pi_high.
    """
    y, v = _check_effects(effects, variances)
    if len(y) < 3:
        raise EstimationError(f"leave-one-out needs at least 3 studies, got {len(y)}")
    labels = list(range(len(y))) if labels is None else list(labels)
    if len(labels) != len(y):
        raise InputError(f"labels has {len(labels)} entries for {len(y)} studies")
    cols = ["estimate", "se", "z", "p_value", "ci_low", "ci_high", "q", "q_p_value",
            "tau2", "i2", "h2", "pi_low", "pi_high"]
    rows = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        r = meta_analysis(y[keep], v[keep], method=method, level=level,
                          knapp_hartung=knapp_hartung)
        rows.append([getattr(r, c) for c in cols])
    return pd.DataFrame(rows, columns=cols, index=pd.Index(labels, name="omitted"))


def predict_effect(result: MetaResult, new_moderators=None) -> pd.DataFrame:
    """Predicted mean effect, its CI and the prediction interval at given moderator values.

    `new_moderators` has the same columns (or array layout) as the moderators of the fit,
    one row per context (e.g. a macro-area and size class where the practice might be
    transferred); None predicts the pooled effect of an intercept-only fit. Returns
    pred, se, ci_low, ci_high, pi_low, pi_high, as metafor's `predict.rma`.
    """
    if new_moderators is None:
        if result.moderator_spec:
            raise InputError("new_moderators is required for a meta-regression fit")
        X = np.ones((1, 1))
    else:
        if not result.moderator_spec:
            raise InputError("the fit has no moderators: call with new_moderators=None")
        X, _ = _encode(_as_frame(new_moderators), result.moderator_spec)
    vb = result.vcov.to_numpy()
    b = result.coefficients["estimate"].to_numpy()
    if X.shape[1] != len(b):
        raise InputError(f"new_moderators encode {X.shape[1] - 1} terms, the fit has {len(b) - 1}")
    if result.knapp_hartung:
        crit = float(dist.t.isf((1 - result.level) / 2, result.df))
    else:
        crit = float(dist.norm.isf((1 - result.level) / 2))
    pred = X @ b
    var = np.einsum("ij,jk,ik->i", X, vb, X)
    se = np.sqrt(var)
    pi_crit = _pi_crit(crit, result.pi_type, result.level, result.k, len(b))
    half_pi = pi_crit * np.sqrt(var + result.tau2)
    return pd.DataFrame({"pred": pred, "se": se, "ci_low": pred - crit * se,
                         "ci_high": pred + crit * se, "pi_low": pred - half_pi,
                         "pi_high": pred + half_pi})


# --- input -------------------------------------------------------------------------


def _check_effects(effects, variances) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(effects, dtype=float).ravel()
    v = np.asarray(variances, dtype=float).ravel()
    if y.shape != v.shape:
        raise InputError(f"effects ({y.size}) and variances ({v.size}) differ in length")
    if y.size < 2:
        raise EstimationError(f"meta-analysis needs at least 2 studies, got {y.size}")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v))):
        raise InputError("effects and variances must be finite (no NaN)")
    if np.any(v <= 0):
        raise InputError("variances must be strictly positive")
    return y, v


def _design_matrix(moderators, k: int) -> tuple[np.ndarray, list[str], tuple]:
    """Intercept plus moderators; strings/categories become treatment dummies.

    Also returns the encoding spec ((column, None) for numeric, (column, levels) for
    categorical) so that `predict_effect` can encode new moderator values the same way.
    """
    if moderators is None:
        return np.ones((k, 1)), ["intercept"], ()
    frame = _as_frame(moderators)
    if len(frame) != k:
        raise InputError(f"moderators has {len(frame)} rows for {k} studies")
    spec = []
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_numeric_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype):
            spec.append((col, None))
        else:
            if s.isna().any():
                raise InputError(f"moderator {col!r} has missing values")
            spec.append((col, tuple(sorted(s.astype(str).unique()))))
    X, names = _encode(frame, tuple(spec))
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise EstimationError("moderators are collinear with each other or the intercept")
    return X, names, tuple(spec)


def _as_frame(moderators) -> pd.DataFrame:
    if isinstance(moderators, pd.Series):
        return moderators.to_frame(moderators.name or "x1").reset_index(drop=True)
    if isinstance(moderators, pd.DataFrame):
        return moderators.reset_index(drop=True)
    arr = np.asarray(moderators)
    arr = arr.reshape(-1, 1) if arr.ndim == 1 else arr
    return pd.DataFrame(arr, columns=[f"x{j + 1}" for j in range(arr.shape[1])])


def _encode(frame: pd.DataFrame, spec: tuple) -> tuple[np.ndarray, list[str]]:
    parts, names = [], []
    for col, levels in spec:
        if col not in frame.columns:
            raise InputError(f"moderator column {col!r} is missing")
        s = frame[col]
        if levels is None:
            parts.append(s.to_numpy(dtype=float))
            names.append(str(col))
        else:
            unknown = set(s.astype(str)) - set(levels)
            if unknown:
                raise InputError(f"moderator {col!r}: unknown levels {sorted(unknown)}, "
                                 f"allowed {list(levels)}")
            for lev in levels[1:]:
                parts.append((s.astype(str) == lev).to_numpy(dtype=float))
                names.append(f"{col}[{lev}]")
    X = np.column_stack([np.ones(len(frame)), *parts])
    if not np.all(np.isfinite(X)):
        raise InputError("moderators must be finite (no NaN)")
    return X, ["intercept", *names]


# --- tau2 estimators ---------------------------------------------------------------


def _p_matrix(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """P = W - W X (X'WX)^-1 X'W: residual-maker of weighted least squares."""
    WX = X * w[:, None]
    return np.diag(w) - WX @ np.linalg.solve(X.T @ WX, WX.T)


def _estimate_tau2(y, v, X, method: str) -> float:
    if method == "dl":
        return _tau2_dl(y, v, X)
    if method == "pm":
        return _tau2_pm(y, v, X)
    return _tau2_reml(y, v, X)


def _tau2_dl(y, v, X) -> float:
    """DerSimonian-Laird moment estimator (generalised to meta-regression)."""
    P = _p_matrix(X, 1 / v)
    k, p = X.shape
    return max(0.0, float((y @ P @ y - (k - p)) / np.trace(P)))


def _tau2_pm(y, v, X) -> float:
    """Paule-Mandel: the tau2 at which the generalised Q equals its df (k - p)."""
    k, p = X.shape

    def gen_q(t: float) -> float:
        return float(y @ _p_matrix(X, 1 / (v + t)) @ y) - (k - p)

    return _root_from_zero(gen_q, y)


def _tau2_reml(y, v, X) -> float:
    """REML: root of the restricted-likelihood score, truncated at 0."""

    def score(t: float) -> float:
        P = _p_matrix(X, 1 / (v + t))
        Py = P @ y
        return float(Py @ Py - np.trace(P))

    tau2 = _root_from_zero(score, y)
    if tau2 > 0 and _reml_loglik(y, v, X, 0.0) > _reml_loglik(y, v, X, tau2):
        return 0.0  # as metafor's ll0check: keep the boundary if it is the maximum
    return tau2


def _reml_loglik(y, v, X, t: float) -> float:
    w = 1 / (v + t)
    _, logdet = np.linalg.slogdet(X.T @ (X * w[:, None]))
    return -0.5 * (np.sum(np.log(v + t)) + logdet + float(y @ _p_matrix(X, w) @ y))


def _root_from_zero(f, y) -> float:
    """Smallest-bracket root of a decreasing estimating function on [0, inf); 0 if f(0)<=0."""
    if f(0.0) <= 0:
        return 0.0
    hi = max(1.0, 10 * float(np.var(y)))
    for _ in range(_MAX_DOUBLINGS):
        if f(hi) < 0:
            break
        hi *= 2
    else:
        raise EstimationError("tau2 estimating equation has no root below 2^200")
    return brentq(f, 0.0, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)


def brentq(f, xa: float, xb: float, xtol: float, rtol: float, maxiter: int) -> float:
    """Brent's root of ``f`` between ``xa`` and ``xb`` (signs opposite): scipy's
    ``optimize.brentq`` (its C code, Zeros/brentq.c, step for step, so the same iterates
    and root: tests check the two agree exactly). Here because importing scipy.optimize
    costs 0.3 s in every stage 40, for this one function."""
    from math import copysign

    xpre, xcur = float(xa), float(xb)
    xblk = fblk = spre = scur = 0.0
    fpre, fcur = float(f(xpre)), float(f(xcur))
    if fpre == 0:
        return xpre
    if fcur == 0:
        return xcur
    if (copysign(1.0, fpre) < 0) == (copysign(1.0, fcur) < 0):
        raise EstimationError("brentq: f(a) and f(b) must have different signs")
    for _ in range(maxiter):
        if fpre != 0 and fcur != 0 and (copysign(1.0, fpre) < 0) != (copysign(1.0, fcur) < 0):
            xblk, fblk = xpre, fpre
            spre = scur = xcur - xpre
        if abs(fblk) < abs(fcur):
            xpre, xcur, xblk = xcur, xblk, xcur
            fpre, fcur, fblk = fcur, fblk, fcur
        delta = (xtol + rtol * abs(xcur)) / 2
        sbis = (xblk - xcur) / 2
        if fcur == 0 or abs(sbis) < delta:
            return xcur
        if abs(spre) > delta and abs(fcur) < abs(fpre):
            if xpre == xblk:  # interpolate
                stry = -fcur * (xcur - xpre) / (fcur - fpre)
            else:  # extrapolate
                dpre = (fpre - fcur) / (xpre - xcur)
                dblk = (fblk - fcur) / (xblk - xcur)
                stry = -fcur * (fblk * dblk - fpre * dpre) / (dblk * dpre * (fblk - fpre))
            if 2 * abs(stry) < min(abs(spre), 3 * abs(sbis) - delta):  # good short step
                spre, scur = scur, stry
            else:  # bisect
                spre = scur = sbis
        else:  # bisect
            spre = scur = sbis
        xpre, fpre = xcur, fcur
        xcur += scur if abs(scur) > delta else (delta if sbis > 0 else -delta)
        fcur = float(f(xcur))
    raise EstimationError(f"brentq: no convergence in {maxiter} iterations")


# --- fit and statistics ------------------------------------------------------------


def _fit_given_tau2(y, v, X, names, tau2, level, knapp_hartung, pi_type) -> dict:
    """Weighted least squares at the given tau2, tests, CIs and prediction interval."""
    k, p = X.shape
    w = 1 / (v + tau2)
    vb = np.linalg.inv(X.T @ (X * w[:, None]))
    b = vb @ (X.T @ (w * y))
    if knapp_hartung:
        s2 = float(np.sum(w * (y - X @ b) ** 2) / (k - p))
        vb = vb * s2
        df = k - p
        crit = float(dist.t.isf((1 - level) / 2, df))
    else:
        df = None
        crit = float(dist.norm.isf((1 - level) / 2))
    se = np.sqrt(np.diag(vb))
    zval = b / se
    pval = 2 * (dist.t.sf(np.abs(zval), df) if knapp_hartung else dist.norm.sf(np.abs(zval)))
    coefs = pd.DataFrame(
        {"estimate": b, "se": se, "z": zval, "p_value": pval,
         "ci_low": b - crit * se, "ci_high": b + crit * se},
        index=pd.Index(names, name="term"),
    )
    half_pi = _pi_crit(crit, pi_type, level, k, p) * np.sqrt(vb[0, 0] + tau2)
    return {
        "estimate": float(b[0]), "se": float(se[0]), "z": float(zval[0]),
        "p_value": float(pval[0]), "ci_low": float(b[0] - crit * se[0]),
        "ci_high": float(b[0] + crit * se[0]),
        "tau2": float(tau2), "tau": float(np.sqrt(tau2)),
        "pi_low": float(b[0] - half_pi), "pi_high": float(b[0] + half_pi),
        "df": df, "weights": w / w.sum(), "coefficients": coefs,
        "vcov": pd.DataFrame(vb, index=names, columns=names), "_b": b, "_vb": vb,
    }


def _pi_crit(crit: float, pi_type: str, level: float, k: int, p: int) -> float:
    """Critical value of the prediction interval (metafor's pi.type)."""
    if pi_type == "t":
        return float(dist.t.isf((1 - level) / 2, k - p))
    if pi_type == "riley":
        return float(dist.t.isf((1 - level) / 2, max(1, k - p - 1)))
    return crit


def _heterogeneity(y, v, X, tau2, level) -> dict:
    """Cochran's Q (residual QE), I2 and H2 from tau2, and their Q-profile intervals.

    I2 = tau2 / (vt + tau2) and H2 = tau2 / vt + 1 with vt the "typical" within-study
    variance (k - p) / tr(P) (Higgins & Thompson 2002; metafor's definition). The
    Q-profile interval inverts the generalised Q statistic, chi2 with k - p df
    (Viechtbauer 2007), as metafor's `confint`.
    """
    k, p = X.shape
    P0 = _p_matrix(X, 1 / v)
    q = float(y @ P0 @ y)
    vt = (k - p) / np.trace(P0)
    lo, hi = _tau2_qprofile_ci(y, v, X, level)
    return {
        "q": q, "q_df": k - p, "q_p_value": float(dist.chi2.sf(q, k - p)),
        "i2": float(max(0.0, tau2 / (vt + tau2))), "h2": float(tau2 / vt + 1),
        "tau2_ci_low": lo, "tau2_ci_high": hi,
        "i2_ci_low": lo / (vt + lo), "i2_ci_high": hi / (vt + hi),
        "h2_ci_low": lo / vt + 1, "h2_ci_high": hi / vt + 1,
    }


def _tau2_qprofile_ci(y, v, X, level) -> tuple[float, float]:
    """tau2 values where the generalised Q crosses its chi2 quantiles (0 if below)."""
    k, p = X.shape

    def gen_q(t: float) -> float:
        return float(y @ _p_matrix(X, 1 / (v + t)) @ y)

    crit_u = float(dist.chi2.isf((1 - level) / 2, k - p))
    crit_l = float(dist.chi2.ppf((1 - level) / 2, k - p))
    lo = _root_from_zero(lambda t: gen_q(t) - crit_u, y)
    hi = _root_from_zero(lambda t: gen_q(t) - crit_l, y)
    return lo, hi


def _moderator_test(b, vb, df_resid: int, knapp_hartung: bool) -> dict:
    """Wald test that every moderator coefficient is 0 (F-test under Knapp-Hartung)."""
    m = len(b) - 1
    bm = b[1:]
    qm = float(bm @ np.linalg.solve(vb[1:, 1:], bm))
    if knapp_hartung:
        qm /= m
        p = float(dist.f.sf(qm, m, df_resid))
    else:
        p = float(dist.chi2.sf(qm, m))
    return {"qm": qm, "qm_df": m, "qm_p_value": p}
