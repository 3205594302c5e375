"""Sensitivity of event-study conclusions to violations of parallel trends (Rambachan and Roth 2023).

``honest_did`` takes event-time coefficients (pre first, reference period excluded, as
R ``HonestDiD``) and their covariance and returns robust confidence intervals for
theta = l'tau_post under

* ``"smoothness"``, Delta^SD(M): the slope of the trend violation changes by at most M
  (outcome units per period) between consecutive periods; fixed-length CI (FLCI, R's
  default for SD), ``honest_flci``;
* ``"relative_magnitudes"``, Delta^RM(Mbar): post-period changes of the violation at
  most Mbar times the largest pre-period change; conditional least-favourable hybrid
  (C-LF, R's default for RM), ``honest_arp``.

``l_vec``: None = the first post period (R's default); ``"average"`` = the mean of the
post coefficients (the workbench's headline); or explicit weights on the post periods.
``honest_sensitivity`` bridges an ``EventStudyResult`` or a ``StaggeredResult`` (its
event aggregation, which must use a universal base period). Numeric code only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from osservatorio import distributions as dist
from osservatorio.evaluate import honest_arp as arp
from osservatorio.evaluate.demean import single_blas_thread
from osservatorio.evaluate.honest_flci import FLCISolver
from osservatorio.exceptions import InputError

Restriction = Literal["smoothness", "relative_magnitudes"]
_RESTRICTIONS = ("smoothness", "relative_magnitudes")
_DEFAULT_M = {"smoothness": None, "relative_magnitudes": (0.0, 0.5, 1.0, 1.5, 2.0)}
RM_BREAKDOWN_CAP = 100.0
SEED = 0


@dataclass(frozen=True)
class HonestResult:
    """Robust confidence intervals for theta = l'tau_post, one row of ``frame`` per M.

    ``frame``: m (M for smoothness, in outcome units per period; Mbar for relative
    magnitudes, unitless), lb, ub, method ("FLCI" or "C-LF"). ``original``: (lb, ub) of
    the usual interval l'betahat_post -/+ z sd, valid under exact parallel trends (R
    ``constructOriginalCS``). ``breakdown``: smallest M at which the robust interval
    contains 0, to ``breakdown_tol``; None when the original interval already contains
    0; ``inf`` when it still excludes 0 at the cap (Mbar = 100; for M, 2^30 sd(theta)).
    ``breakdown_tol``: 0.01 for Mbar, 0.001 sd(theta) for M. ``estimate``: l'betahat_post.
    ``event_times``: the event times of betahat (bridges only). lb = ub = NaN when the
    C-LF test accepts no theta (the data reject Delta^RM(Mbar) itself).
    """

    frame: pd.DataFrame
    original: tuple[float, float]
    breakdown: float | None
    breakdown_tol: float
    restriction: str
    l_vec: np.ndarray
    alpha: float
    num_pre: int
    num_post: int
    estimate: float
    event_times: np.ndarray | None = None


def resolve_l_vec(l_vec: Any, num_post: int) -> np.ndarray:
    """None: first post period (R's default); "average": equal weights 1/num_post."""
    if l_vec is None:
        out = np.zeros(num_post)
        out[0] = 1.0
        return out
    if isinstance(l_vec, str):
        if l_vec != "average":
            raise InputError(f"honest_did: l_vec must be None, 'average' or weights, got {l_vec!r}")
        return np.full(num_post, 1.0 / num_post)
    out = np.asarray(l_vec, dtype=float).ravel()
    if out.shape != (num_post,) or not np.isfinite(out).all() or not out.any():
        raise InputError(f"honest_did: l_vec must be {num_post} finite weights, not all zero")
    return out


def _validate(betahat, sigma, num_pre, num_post, restriction, alpha) -> tuple[np.ndarray, np.ndarray]:
    if restriction not in _RESTRICTIONS:
        raise InputError(f"honest_did: restriction must be one of {_RESTRICTIONS}, got {restriction!r}")
    if int(num_pre) != num_pre or int(num_post) != num_post or num_pre < 1 or num_post < 1:
        raise InputError("honest_did: num_pre and num_post must be integers >= 1")
    b = np.asarray(betahat, dtype=float).ravel()
    s = np.asarray(sigma, dtype=float)
    n = num_pre + num_post
    if b.shape != (n,) or s.shape != (n, n):
        raise InputError(f"honest_did: betahat must have {n} entries and sigma be {n}x{n}")
    if not (np.isfinite(b).all() and np.isfinite(s).all()):
        raise InputError("honest_did: betahat and sigma must be finite")
    if not 0 < alpha < 0.5:
        raise InputError(f"honest_did: alpha must be in (0, 0.5), got {alpha!r}")
    s = (s + s.T) / 2
    if np.linalg.eigvalsh(s).min() < -1e-10 * max(np.abs(s).max(), 1e-300):
        raise InputError("honest_did: sigma is not positive semi-definite")
    return b, s


def honest_did(
    betahat: Sequence[float] | np.ndarray,
    sigma: np.ndarray,
    num_pre: int,
    num_post: int,
    restriction: Restriction = "relative_magnitudes",
    m: Sequence[float] | None = None,
    l_vec: Any = None,
    alpha: float = 0.05,
) -> HonestResult:
    """Robust intervals for l'tau_post for each M in ``m``, the original interval and the breakdown M.

    ``m`` defaults to Mbar = 0, 0.5, 1, 1.5, 2 (relative magnitudes) and to
    0, 0.25, 0.5, 1 times sd(l'betahat_post) (smoothness; M is in outcome units).
    """
    b, s = _validate(betahat, sigma, num_pre, num_post, restriction, alpha)
    lv = resolve_l_vec(l_vec, num_post)
    post = b[num_pre:] @ lv
    sd_theta = float(np.sqrt(lv @ s[num_pre:, num_pre:] @ lv))
    if m is None:
        m = _DEFAULT_M[restriction] or tuple(sd_theta * np.array([0.0, 0.25, 0.5, 1.0]))
    m_arr = np.asarray(m, dtype=float).ravel()
    if m_arr.size == 0 or not np.isfinite(m_arr).all() or (m_arr < 0).any():
        raise InputError("honest_did: m must be non-negative finite values")
    z = float(dist.norm.ppf(1 - alpha / 2))
    original = (post - z * sd_theta, post + z * sd_theta)
    method = "FLCI" if restriction == "smoothness" else "C-LF"
    tol = 0.01 if restriction == "relative_magnitudes" else 1e-3 * sd_theta
    breakdown = None
    # hundreds of small (2 num_post)-square decompositions: one BLAS thread (on a shared
    # machine multi-threaded OpenBLAS made this 4x slower, 8 s instead of 1.9 at 11 + 13)
    with single_blas_thread():
        interval = _interval_fn(b, s, num_pre, num_post, restriction, lv, alpha)
        bounds = np.array([interval(v) for v in m_arr])
        frame = pd.DataFrame({"m": m_arr, "lb": bounds[:, 0], "ub": bounds[:, 1], "method": method})
        if not original[0] <= 0 <= original[1]:
            breakdown = _breakdown(interval, restriction, frame, sd_theta, tol, b, s, num_pre, num_post, lv, alpha)
    return HonestResult(frame=frame, original=(float(original[0]), float(original[1])), breakdown=breakdown,
                        breakdown_tol=tol, restriction=restriction, l_vec=lv, alpha=alpha,
                        num_pre=int(num_pre), num_post=int(num_post), estimate=float(post))


def _interval_fn(b, s, num_pre, num_post, restriction, lv, alpha):
    if restriction == "smoothness":
        solver = FLCISolver(s, num_pre, lv, alpha)
        return lambda v: solver.interval(b, float(v))
    return lambda v: rm_interval(b, s, num_pre, num_post, lv, v, alpha)


def _contains_zero_fn(b, s, num_pre, num_post, restriction, lv, alpha, interval):
    if restriction == "smoothness":
        return lambda v: (lambda lo, hi: lo <= 0 <= hi)(*interval(v))
    return lambda v: rm_accepts(b, s, num_pre, num_post, lv, v, alpha, 0.0)


def _breakdown(interval, restriction, frame, sd_theta, tol, b, s, num_pre, num_post, lv, alpha) -> float:
    """Smallest M whose interval contains 0: bracket from the frame (or doubling), then bisect.

    Assumes the intervals are nested in M. For relative magnitudes "contains 0" is
    tested directly (some (s, sign) case accepts theta = 0), which is what the frame's
    lb <= 0 <= ub means when each case's accepted set is an interval.
    """
    contains = _contains_zero_fn(b, s, num_pre, num_post, restriction, lv, alpha, interval)
    lo, hi = 0.0, None
    for _, row in frame.sort_values("m").iterrows():
        if row["lb"] <= 0 <= row["ub"]:
            hi = float(row["m"])
            break
        lo = float(row["m"])
    if hi is None:
        cap = RM_BREAKDOWN_CAP if restriction == "relative_magnitudes" else 2.0**30 * sd_theta
        hi = max(lo, tol) * 2
        while not contains(hi):
            lo = hi
            if hi >= cap:
                return float("inf")
            hi = min(hi * 2, cap)
    if hi == 0.0:
        return 0.0
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if contains(mid):
            hi = mid
        else:
            lo = mid
    return float(hi)


def _rm_cases(b, s, num_pre, num_post, lv, mbar, alpha):
    kappa = alpha / 10
    w = arp.post_weights(lv)
    combos = [(0, True)] if mbar == 0 else [(si, pos) for si in range(-(num_pre - 1), 1) for pos in (True, False)]
    cases = []
    for si, pos in combos:
        a = arp.rm_matrix(num_pre, num_post, mbar, si, pos)
        cases.append(arp.make_case(b, s, a, w, kappa, SEED))
    return cases, w, kappa


def rm_accepts(b, s, num_pre, num_post, lv, mbar, alpha, theta) -> bool:
    """True if some (s, sign) case of Delta^RM(Mbar) accepts theta."""
    cases, w, kappa = _rm_cases(b, s, num_pre, num_post, lv, mbar, alpha)
    for case in cases:
        lo, hi = arp.accept_bounds(case, w)
        if lo <= theta <= hi and not arp.conditional_test(case, theta, w, alpha, kappa):
            return True
    return False


def rm_interval(b, s, num_pre, num_post, lv, mbar, alpha) -> tuple[float, float]:
    """C-LF confidence interval under Delta^RM(Mbar): min and max accepted theta over all cases."""
    cases, w, kappa = _rm_cases(b, s, num_pre, num_post, lv, mbar, alpha)
    sd_theta = float(np.sqrt(lv @ s[num_pre:, num_pre:] @ lv))
    tol = 40 * sd_theta / 999 * 1e-2  # 1/100 of R's grid step

    def accepts(case, theta):
        return not arp.conditional_test(case, theta, w, alpha, kappa)

    supersets = [arp.accept_bounds(c, w) for c in cases]
    order = np.argsort([-(hi - lo) if hi >= lo else np.inf for lo, hi in supersets])
    lb, ub = np.inf, -np.inf
    for j in order:
        case, (lo, hi) = cases[j], supersets[j]
        if hi < lo or (lo >= lb and hi <= ub):
            continue
        start = _accepted_point(case, w, lo, hi, lb, ub, accepts)
        if start is None:
            continue
        # an interval through ``start`` extends [lb, ub] only if it accepts just beyond it
        if lo < lb and (start < lb or accepts(case, lb - tol)):
            lb = _edge(lambda t: accepts(case, t), min(start, lb - tol) if np.isfinite(lb) else start, lo, tol)
        if hi > ub and (start > ub or accepts(case, ub + tol)):
            ub = _edge(lambda t: accepts(case, t), max(start, ub + tol) if np.isfinite(ub) else start, hi, tol)
    if not np.isfinite(lb):
        return float("nan"), float("nan")
    return float(lb), float(ub)


def _accepted_point(case, w, lo, hi, lb, ub, accepts) -> float | None:
    """An accepted theta of one case: its least-eta point, else a 16-point scan of what lies outside [lb, ub]."""
    theta0 = min(max(arp.least_eta_theta(case, w), lo), hi)
    if accepts(case, theta0):
        return theta0
    for t in np.linspace(lo, hi, 16):
        if (t < lb or t > ub) and accepts(case, t):
            return float(t)
    return None


def _edge(accepts, inside: float, outside: float, tol: float) -> float:
    """Last accepted theta from ``inside`` (accepted) towards ``outside``, by bisection."""
    if accepts(outside):
        return outside
    good, bad = inside, outside
    while abs(bad - good) > tol:
        mid = (good + bad) / 2
        if accepts(mid):
            good = mid
        else:
            bad = mid
    return float(good)


def honest_sensitivity(
    result: Any,
    restriction: Restriction = "relative_magnitudes",
    m: Sequence[float] | None = None,
    l_vec: Any = None,
    alpha: float = 0.05,
    window: int | None = None,
) -> HonestResult:
    """``honest_did`` on an ``EventStudyResult`` or a ``StaggeredResult`` (event aggregation).

    Event times -``window``..``window`` (all by default; the designs' ``event_window``,
    as ``aggregate("event", min_e=-window, max_e=window)``): pre-periods -window..-2,
    post-periods 0..window; the reference period -1 is dropped. A ``StaggeredResult`` must come from
    ``staggered_did(..., base_period="universal")``: with R ``did``'s default varying
    base the pre-period estimates are period-to-period changes, not the cumulative
    deviations from the reference period that Delta^SD and Delta^RM restrict (HonestDiD
    README), and the bridge refuses them.
    """
    if window is not None and (int(window) != window or window < 2):
        raise InputError(f"honest_sensitivity: window must be an integer >= 2, got {window!r}")
    times, est, vcov = _event_inputs(result, window)
    pre = times < -1
    post = times >= 0
    keep = pre | post
    times, est, vcov = times[keep], est[keep], vcov[np.ix_(keep, keep)]
    num_pre, num_post = int(pre[keep].sum()), int(post[keep].sum())
    expected = np.concatenate([np.arange(-num_pre - 1, -1), np.arange(num_post)])
    if num_pre < 1 or num_post < 1 or not np.array_equal(times, expected):
        raise InputError("honest_sensitivity: needs consecutive event times with at least one pre-period "
                         f"before -1 and one post-period, got {times.tolist()}")
    out = honest_did(est, vcov, num_pre, num_post, restriction, m, l_vec, alpha)
    return HonestResult(**{**out.__dict__, "event_times": times})


def _event_inputs(result: Any, window: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from osservatorio.evaluate.event_study import EventStudyResult
    from osservatorio.evaluate.staggered import StaggeredResult

    lo, hi = (-np.inf, np.inf) if window is None else (-int(window), int(window))
    if isinstance(result, EventStudyResult):
        if result.ref != -1:
            raise InputError(f"honest_sensitivity: the event study must use ref=-1, got {result.ref}")
        coefs = result.coefs[~result.coefs["is_reference"].to_numpy(dtype=bool)]
        times = coefs["event_time"].to_numpy(dtype=int)  # vcov rows follow these event times
        keep = (times >= lo) & (times <= hi)
        return times[keep], coefs["estimate"].to_numpy(float)[keep], result.vcov[np.ix_(keep, keep)]
    if isinstance(result, StaggeredResult):
        if result.info.get("base_period") != "universal":
            raise InputError("honest_sensitivity: refit staggered_did with base_period='universal' "
                             "(pre-period estimates must be relative to the period before adoption)")
        if result.info.get("anticipation", 0) != 0:
            raise InputError("honest_sensitivity: anticipation > 0 moves the reference period; not supported")
        times, est, vcov = result.event_covariance(lo, hi)
        return times.astype(int), est, vcov
    raise InputError(f"honest_sensitivity: expected EventStudyResult or StaggeredResult, got {type(result).__name__}")
