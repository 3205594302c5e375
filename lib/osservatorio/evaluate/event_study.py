"""TWFE event study with leads and lags, a joint pre-trend test and placebo timing.

Why it stays without a design using it: it is the event study of a single adoption date
(the reference tools' ``feols(y ~ i(rel_time) | unit + time)``, checked against them),
for researchers who want it beside the staggered estimator; the designs use the
Callaway-Sant'Anna event aggregation, which is not biased under staggered adoption.

``event_study`` regresses the outcome on event-time indicators ``1[t - cohort = k]``
for treated units, with unit and period effects absorbed (see ``twfe``), omitting the
reference period ``ref`` (default -1, the period before adoption). Never-treated units
(cohort 0 or missing) have all indicators zero. ``time`` and ``cohort`` are integer
periods on the same scale: years (2019), or months numbered consecutively (e.g.
``year * 12 + month - 1``), so that ``time - cohort`` counts periods since adoption.

Caveat: under staggered adoption with effects that differ across cohorts or evolve
over time, TWFE event-study coefficients mix effects of other event times and other
cohorts (Sun and Abraham 2021) and the pre-trend test can mislead; use
``osservatorio.evaluate.staggered`` (Callaway-Sant'Anna) for the headline and keep
this as a diagnostic or for a single adoption date.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from osservatorio import distributions as dist
from osservatorio.evaluate.results import EffectResult
from osservatorio.evaluate.twfe import coef_table, describe_inference, fit_absorbed, twfe
from osservatorio.exceptions import EstimationError, InputError


@dataclass(frozen=True)
class PretrendTest:
    """Joint Wald test that all lead coefficients (except the reference) are zero.

    ``statistic`` is F = W / q with the covariance used for the coefficients; the
    p-value is from F(q, df_den), df_den = G - 1 for clustered errors (as pyfixest).
    """

    statistic: float
    df_num: int
    df_den: int
    p_value: float
    terms: list[int]


@dataclass(frozen=True)
class EventStudyResult:
    """Event-study coefficients by event time and their diagnostics.

    ``coefs`` has one row per event time in [-leads, lags] (the reference row has
    estimate 0 and missing se): event_time, estimate, se, ci_low, ci_high, p_value,
    is_reference. Estimates are in outcome units relative to the reference period.
    """

    coefs: pd.DataFrame
    pretrend: PretrendTest | None
    vcov: np.ndarray
    n_obs: int
    n_clusters: int | None
    n_units: int
    n_treated_units: int
    n_dropped_missing: int
    n_dropped_singletons: int
    n_dropped_window: int
    leads: int
    lags: int
    ref: int
    bin_endpoints: bool
    level: float
    inference: str


def event_study(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    leads: int = 4,
    lags: int = 4,
    cluster: str | None = None,
    ref: int = -1,
    bin_endpoints: bool = True,
    level: float = 0.95,
    covariates: Sequence[str] | None = None,
    weights: str | None = None,
) -> EventStudyResult:
    """Estimate a TWFE event study around the adoption period ``cohort``.

    ``leads``/``lags``: number of pre-periods (-leads..-1) and post-periods (0..lags)
    shown. With ``bin_endpoints=True`` earlier event times are pooled into -leads and
    later ones into lags; with False the treated observations outside the window are
    dropped (counted in ``n_dropped_window``). ``cluster`` defaults to ``unit``.
    """
    _validate(data, outcome, unit, time, cohort, leads, lags, ref, level)
    covariates = list(covariates or [])
    event_time, treated, n_treated_units = _event_time(data, unit, time, cohort)
    inside = (event_time >= -leads) & (event_time <= lags)
    if bin_endpoints:
        event_time = np.clip(event_time, -leads, lags)
        sample = None
        n_window = 0
    else:
        sample = ~treated | inside
        n_window = int((~sample).sum())
    periods = [k for k in range(-leads, lags + 1) if k != ref]
    y = data[outcome].to_numpy(dtype=np.float64, na_value=np.nan)
    if sample is not None:
        y = np.where(sample, y, np.nan)  # dropped rows count as missing, then reported
    X = np.zeros((len(data), len(periods) + len(covariates)), order="F")
    column = np.full(lags + leads + 1, -1)  # event time + leads -> column of X
    column[[k + leads for k in periods]] = np.arange(len(periods))
    rows = np.flatnonzero(treated & inside if not bin_endpoints else treated)
    cols = column[event_time[rows] + leads]
    rows, cols = rows[cols >= 0], cols[cols >= 0]
    X[rows, cols] = 1.0
    for j, name in enumerate(covariates):
        X[:, len(periods) + j] = data[name].to_numpy(dtype=np.float64, na_value=np.nan)
    names = [f"event_{k}" for k in periods] + covariates
    _check_support(cols[np.isfinite(y[rows])], periods)
    fit = fit_absorbed(data, y, X, names, unit, time, cluster or unit, weights)
    table = coef_table(names, fit.beta, fit.vcov, level).iloc[: len(periods)]
    coefs = _event_table(table, periods, ref)
    lead_idx = [j for j, k in enumerate(periods) if k < 0]
    return EventStudyResult(
        coefs=coefs, pretrend=_wald(fit.beta, fit.vcov.matrix, fit.vcov.df, lead_idx, periods),
        vcov=fit.vcov.matrix[: len(periods), : len(periods)], n_obs=int(fit.panel.y.size),
        n_clusters=fit.vcov.n_clusters, n_units=int(fit.panel.unit.max()) + 1,
        n_treated_units=n_treated_units,
        n_dropped_missing=fit.panel.n_dropped_missing - n_window,
        n_dropped_singletons=fit.panel.n_dropped_singletons, n_dropped_window=n_window,
        leads=leads, lags=lags, ref=ref, bin_endpoints=bin_endpoints, level=level,
        inference=describe_inference(fit.vcov, cluster or unit),
    )


def placebo_timing(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    shift: int = 2,
    cluster: str | None = None,
    level: float = 0.95,
    weights: str | None = None,
) -> EffectResult:
    """TWFE estimate of a fake adoption ``shift`` periods before the real one.

    Uses only pre-adoption observations of treated units (plus all never-treated
    observations) so the real effect cannot leak in; a clearly non-zero placebo
    estimate signals diverging pre-trends or anticipation.
    """
    if not isinstance(shift, (int, np.integer)) or shift < 1:
        raise InputError(f"shift must be an integer >= 1, got {shift!r}")
    _validate(data, outcome, unit, time, cohort, 0, 0, 0, level)
    event_time, treated, _ = _event_time(data, unit, time, cohort)
    pre = ~treated | (event_time < 0)
    subset = data.loc[pre, [c for c in {outcome, unit, time, cluster, weights} if c]].copy()
    subset["_placebo_d"] = (treated[pre] & (event_time[pre] >= -shift)).astype(np.float64)
    if not subset["_placebo_d"].any():
        raise EstimationError(f"no pre-adoption observations within {shift} periods of adoption")
    res = twfe(subset, outcome, "_placebo_d", unit, time, cluster=cluster, weights=weights,
               level=level)
    eff = res.effect
    return EffectResult(
        estimate=eff.estimate, se=eff.se, ci_low=eff.ci_low, ci_high=eff.ci_high,
        p_value=eff.p_value, n_obs=eff.n_obs, n_clusters=eff.n_clusters,
        n_treated=eff.n_treated, n_control=eff.n_control,
        method=f"placebo timing: adoption moved {shift} periods earlier, pre-adoption data",
        inference=eff.inference, level=level, extra={"shift": int(shift)},
    )


def _validate(data, outcome, unit, time, cohort, leads, lags, ref, level) -> None:
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    missing = [c for c in (outcome, unit, time, cohort) if c not in data.columns]
    if missing:
        raise InputError(f"column(s) not in data: {missing}; available: {list(data.columns)}")
    for name, value in (("leads", leads), ("lags", lags)):
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise InputError(f"{name} must be an integer >= 0, got {value!r}")
    if not isinstance(ref, (int, np.integer)) or not -leads <= ref <= lags:
        raise InputError(
            f"ref must be an integer in [-leads, lags] = [{-leads}, {lags}], got {ref!r}"
        )
    if not 0 < level < 1:
        raise InputError(f"level must be strictly between 0 and 1, got {level}")
    for col in (time, cohort):
        if not pd.api.types.is_numeric_dtype(data[col]):
            raise InputError(
                f"column '{col}' must hold integer periods, got dtype {data[col].dtype}"
            )


def _event_time(data: pd.DataFrame, unit: str, time: str,
                cohort: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Event time (periods since adoption; 0 for untreated rows), treated flag, count."""
    t = data[time].to_numpy(dtype=np.float64, na_value=np.nan)
    g = data[cohort].to_numpy(dtype=np.float64, na_value=np.nan)
    for name, arr in ((time, t), (cohort, g)):
        finite = arr[np.isfinite(arr)]
        if np.any(finite != np.round(finite)):
            raise InputError(f"column '{name}' must hold integer periods (e.g. years, or "
                             "months numbered consecutively)")
    treated = np.isfinite(g) & (g != 0)
    codes = pd.factorize(data[unit])[0]
    first = np.full(int(codes.max()) + 1, np.nan)
    ok = codes >= 0
    first[codes[ok]] = np.where(treated, g, 0.0)[ok]
    if not np.array_equal(first[codes[ok]], np.where(treated, g, 0.0)[ok]):
        raise InputError(f"column '{cohort}' must be constant within each {unit}")
    event_time = np.where(treated, t - np.where(treated, g, 0.0), 0.0)
    event_time = np.where(np.isfinite(event_time), event_time, 0.0)
    n_treated_units = int(np.unique(codes[ok & treated]).size)
    if n_treated_units == 0:
        raise EstimationError(f"no treated units: '{cohort}' is 0 or missing everywhere")
    return event_time.astype(np.int64), treated, n_treated_units


def _check_support(cols: np.ndarray, periods: list[int]) -> None:
    """Raise if some event-time indicator has no observation with an outcome."""
    counts = np.bincount(cols, minlength=len(periods))
    empty = [k for j, k in enumerate(periods) if counts[j] == 0]
    if empty:
        raise EstimationError(
            f"no treated observations at event time(s) {empty}; reduce leads/lags"
        )


def _event_table(table: pd.DataFrame, periods: list[int], ref: int) -> pd.DataFrame:
    out = pd.DataFrame({
        "event_time": periods, "estimate": table["estimate"].to_numpy(),
        "se": table["se"].to_numpy(), "ci_low": table["ci_low"].to_numpy(),
        "ci_high": table["ci_high"].to_numpy(), "p_value": table["p_value"].to_numpy(),
        "is_reference": False,
    })
    ref_row = pd.DataFrame({"event_time": [ref], "estimate": [0.0], "se": [np.nan],
                            "ci_low": [np.nan], "ci_high": [np.nan], "p_value": [np.nan],
                            "is_reference": [True]})
    return pd.concat([out, ref_row]).sort_values("event_time").reset_index(drop=True)


def _wald(beta: np.ndarray, vcov: np.ndarray, df: int, idx: list[int],
          periods: list[int]) -> PretrendTest | None:
    if not idx:
        return None
    b = beta[idx]
    w = float(b @ np.linalg.solve(vcov[np.ix_(idx, idx)], b))
    q = len(idx)
    return PretrendTest(statistic=w / q, df_num=q, df_den=int(df),
                        p_value=float(dist.f.sf(w / q, q, df)),
                        terms=[periods[j] for j in idx])
