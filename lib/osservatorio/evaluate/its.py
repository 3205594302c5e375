"""Interrupted time series: segmented regression with seasonality and HAC errors.

Why it stays without a design using it: it is the single-series ITS of the design
document (one monthly series, no comparison group), checked against R ``sandwich``, for
researchers who have one treated series only; the designs use the comparative ITS
(``comparative_its``), whose HAC errors were too small on the aligned gap.

For one monthly (or yearly) series, e.g. monthly new registrations in a province:

    y_t = a + b t + c post_t + d (t - t0) post_t [+ seasonal terms] + e_t

``t`` counts periods from the first observation, ``t0`` is the first period in which
the intervention is in effect and ``post_t = 1[t >= t0]``. ``c`` is the immediate level
change and ``d`` the change in slope per period. Standard errors are Newey-West HAC
(Bartlett kernel, no prewhitening) from statsmodels, with the small-sample factor
``n / (n - k)`` (statsmodels ``use_correction=True``, R ``sandwich::NeweyWest(...,
prewhite=FALSE, adjust=TRUE)``); intervals and p-values use t with ``n - k`` degrees
of freedom, which is conservative for the short series typical of pilots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd

from osservatorio import distributions as dist
from osservatorio.evaluate.results import EffectResult
from osservatorio.exceptions import EstimationError, InputError

Seasonality = Literal["none", "month_dummies", "fourier"]
FOURIER_HARMONICS = 2  # sin/cos pairs of the 12-month cycle used by seasonality="fourier"


@dataclass(frozen=True)
class ItsResult:
    """Segmented-regression estimates and the series needed for a plot.

    ``effect`` is the average post-period effect (fitted minus counterfactual,
    averaged over post periods, outcome units); ``level_change`` the jump at the
    intervention and ``slope_change`` the change of trend per period. ``fitted``,
    ``counterfactual`` (fitted without the post terms) and ``observed`` share the
    input's PeriodIndex. ``coefficients`` has columns coef, se, t, p_value.
    """

    effect: EffectResult
    level_change: EffectResult
    slope_change: EffectResult
    observed: pd.Series
    fitted: pd.Series
    counterfactual: pd.Series
    coefficients: pd.DataFrame
    hac_lags: int
    seasonality: str


def default_hac_lags(n: int) -> int:
    """Newey-West (1994) rule of thumb ``floor(4 (n / 100)^(2/9))`` (3 for 5 years monthly)."""
    return int(math.floor(4 * (n / 100) ** (2 / 9)))


def interrupted_time_series(
    series: pd.Series,
    intervention: object,
    seasonality: Seasonality = "month_dummies",
    hac_lags: int | None = None,
    control_series: pd.Series | None = None,
    level: float = 0.95,
) -> ItsResult:
    """Fit the segmented regression and return level, slope and average effects.

    ``series`` is indexed by period (PeriodIndex or DatetimeIndex, monthly or yearly,
    consecutive, no gaps, no missing values). ``intervention`` is the first period in
    which the intervention applies (anything ``pd.Period`` accepts at the series'
    frequency). ``seasonality``: "month_dummies" (11 month indicators, January the
    reference), "fourier" (2 sine/cosine pairs of the 12-month cycle) or "none"; only
    "none" is allowed for non-monthly series. ``hac_lags`` defaults to
    ``default_hac_lags(n)``. With ``control_series`` (same index) the model is fitted
    to ``series - control_series`` (comparative ITS: shocks common to both series cancel).
    """
    if seasonality not in get_args(Seasonality):
        raise InputError(f"seasonality must be one of {list(get_args(Seasonality))}, "
                         f"got {seasonality!r}")
    if not 0 < level < 1:
        raise InputError(f"level must be in (0, 1), got {level}")
    y, periods = _as_period_series(series, "series")
    if control_series is not None:
        control, control_periods = _as_period_series(control_series, "control_series")
        if not control_periods.equals(periods):
            raise InputError("control_series must have exactly the index of series")
        y = y - control
    t0 = _intervention_position(periods, intervention)
    if seasonality != "none" and periods.freqstr[0] != "M":
        raise InputError(f"seasonality={seasonality!r} needs a monthly series, got frequency "
                         f"{periods.freqstr!r}; use seasonality='none'")
    design = its_design(periods, t0, seasonality)
    n, k = design.shape
    lags = default_hac_lags(n) if hac_lags is None else int(hac_lags)
    if lags < 0:
        raise InputError(f"hac_lags must be >= 0, got {hac_lags}")
    if n - k < 2:
        raise EstimationError(f"series too short: {n} periods for {k} parameters")
    # imported here: statsmodels imports scipy.stats (a second), which the other designs
    # do not need; not statsmodels.api (0.5 s more of plotting and tsa imports)
    from statsmodels.regression.linear_model import OLS

    fit = OLS(y.to_numpy(float), design).fit(
        cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": True}, use_t=True)
    coef = pd.Series(fit.params, index=design.columns)
    vcov = pd.DataFrame(fit.cov_params(), index=design.columns, columns=design.columns)
    post_mask = design["post"].to_numpy() == 1
    avg_gap = np.zeros(k)
    avg_gap[design.columns.get_loc("post")] = 1.0
    avg_gap[design.columns.get_loc("time_since")] = design["time_since"][post_mask].mean()
    common = {"n_obs": n, "level": level, "method": "segmented regression (ITS)",
              "inference": f"Newey-West HAC, Bartlett, {lags} lags, n/(n-k) factor, t({n - k})"}
    effects = [_linear_effect(coef, vcov, w, fit.df_resid, level, common)
               for w in (avg_gap, _unit(k, design.columns.get_loc("post")),
                         _unit(k, design.columns.get_loc("time_since")))]
    fitted = pd.Series(design.to_numpy() @ coef.to_numpy(), index=periods, name="fitted")
    cf_design = design.assign(post=0.0, time_since=0.0)
    counterfactual = pd.Series(cf_design.to_numpy() @ coef.to_numpy(), index=periods,
                               name="counterfactual")
    table = pd.DataFrame({"coef": coef, "se": np.sqrt(np.diag(vcov)),
                          "t": fit.tvalues, "p_value": fit.pvalues}, index=design.columns)
    return ItsResult(effect=effects[0], level_change=effects[1], slope_change=effects[2],
                     observed=pd.Series(y.to_numpy(float), index=periods, name="observed"),
                     fitted=fitted, counterfactual=counterfactual, coefficients=table,
                     hac_lags=lags, seasonality=seasonality)


def its_design(periods: pd.PeriodIndex, t0: int, seasonality: str) -> pd.DataFrame:
    """Design matrix: const, time, post, time_since (= (t - t0) post), seasonal terms."""
    t = np.arange(len(periods), dtype=float)
    post = (t >= t0).astype(float)
    cols = {"const": np.ones_like(t), "time": t, "post": post, "time_since": (t - t0) * post}
    if seasonality == "month_dummies":
        month = np.asarray(periods.month)
        for m in range(2, 13):
            cols[f"month_{m:02d}"] = (month == m).astype(float)
    elif seasonality == "fourier":
        angle = 2 * np.pi * np.asarray(periods.month, dtype=float) / 12
        for h in range(1, FOURIER_HARMONICS + 1):
            cols[f"sin_{h}"] = np.sin(h * angle)
            cols[f"cos_{h}"] = np.cos(h * angle)
    design = pd.DataFrame(cols, index=periods)
    return design.loc[:, design.abs().sum() > 0]  # e.g. a month absent from a short series


def _as_period_series(series: pd.Series, name: str) -> tuple[pd.Series, pd.PeriodIndex]:
    if not isinstance(series, pd.Series):
        raise InputError(f"{name} must be a pandas Series indexed by period")
    idx = series.index
    if isinstance(idx, pd.DatetimeIndex):
        freq = idx.freqstr or pd.infer_freq(idx)
        if freq is None:
            raise InputError(f"{name}: cannot infer the frequency of the DatetimeIndex")
        target = {"M": "M", "Q": "Q", "Y": "Y", "A": "Y"}.get(freq[0])
        if target is None:
            raise InputError(f"{name}: frequency {freq!r} is not monthly, quarterly or yearly")
        idx = idx.to_period(target)
    if not isinstance(idx, pd.PeriodIndex):
        raise InputError(f"{name} must have a PeriodIndex or DatetimeIndex")
    if len(idx) < 3 or not idx.is_monotonic_increasing:
        raise InputError(f"{name} must be sorted by period with at least 3 periods")
    expected = pd.period_range(idx[0], periods=len(idx), freq=idx.freq)
    if not idx.equals(expected):
        raise InputError(f"{name} must have consecutive periods without gaps")
    if series.isna().any():
        raise InputError(f"{name} has missing values; impute or shorten the series")
    return pd.Series(series.to_numpy(float), index=idx), idx


def _intervention_position(periods: pd.PeriodIndex, intervention: object) -> int:
    try:
        start = pd.Period(intervention, freq=periods.freq)
    except (ValueError, TypeError) as err:
        raise InputError(f"intervention {intervention!r} is not a period") from err
    pos = int(np.searchsorted(periods, start))
    if pos < 2 or pos > len(periods) - 2:
        raise InputError(f"intervention {start} must leave at least 2 periods before and "
                         f"2 after it (series {periods[0]} to {periods[-1]})")
    return pos


def _unit(k: int, j: int) -> np.ndarray:
    out = np.zeros(k)
    out[j] = 1.0
    return out


def _linear_effect(coef: pd.Series, vcov: pd.DataFrame, w: np.ndarray, df: float,
                   level: float, common: dict) -> EffectResult:
    est = float(w @ coef.to_numpy())
    se = float(np.sqrt(w @ vcov.to_numpy() @ w))
    q = dist.t.ppf(0.5 + level / 2, df)
    p = float(2 * dist.t.sf(abs(est / se), df)) if se > 0 else float("nan")
    return EffectResult(estimate=est, se=se, ci_low=est - q * se, ci_high=est + q * se,
                        p_value=p, **common)
