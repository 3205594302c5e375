"""Comparative interrupted time series for staggered adoption, with a cluster bootstrap.

Each adoption cohort's outcome is compared with the never-treated units in the same
calendar period (seasonality and national shocks cancel); the cohort gaps are aligned on
adoption (event time e = t - g) and averaged over cohorts, weighted by their size, on the
event times every cohort reaches. A segmented regression of that series,

    gap(e) = a + b e + c [e >= 0] + d e [e >= 0] + noise,

estimates the jump at adoption ``c`` net of the extrapolated pre-adoption differential
trend ``b``. Not HAC errors: the never-treated mean of one calendar month enters the gap
of every cohort at a different event time, so the noise of the aligned series is
correlated far beyond a usual lag window (on the demo, HAC se 0.0071 against a true sd of
0.0107 over redraws of the noise). Inference resamples whole clusters with replacement
and recomputes the statistic, which carries every such correlation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from osservatorio import distributions as dist
from osservatorio.evaluate.results import EffectResult
from osservatorio.exceptions import EstimationError, InputError


@dataclass(frozen=True)
class ComparativeItsResult:
    """Estimates in outcome units (slopes per period); ``series`` has e, gap, fitted,
    counterfactual (the pre-adoption line extended)."""

    level_change: EffectResult
    slope_change: EffectResult
    average_effect: EffectResult
    pretrend_slope: EffectResult
    series: pd.DataFrame
    n_boot: int


def _wide(data: pd.DataFrame, unit: str, time: str, outcome: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    wide = data.pivot_table(index=unit, columns=time, values=outcome, aggfunc="first").sort_index().sort_index(axis=1)
    if wide.isna().to_numpy().any():
        raise EstimationError("comparative ITS needs a balanced panel (every unit in every period)")
    return wide.index.to_numpy(), wide.columns.to_numpy(), wide.to_numpy(float)


def _design(e: np.ndarray) -> np.ndarray:
    post = (e >= 0).astype(float)
    return np.column_stack([np.ones(len(e)), e.astype(float), post, e * post])


def comparative_its(data: pd.DataFrame, outcome: str, unit: str, time: str, cohort: str,
                    cluster: str | None = None, weight: str | None = None, n_boot: int = 499, seed: int = 0,
                    level: float = 0.95, min_pre: int = 6) -> ComparativeItsResult:
    """Jump at adoption of staggered cohorts against never-treated units (see module doc).

    ``cohort`` is the first treated period (0 = never treated), on the integer scale of
    ``time``; ``weight`` a per-unit weight constant over time (e.g. residents over 65);
    ``cluster`` the resampling unit (default: ``unit``). Intervals are normal with the
    bootstrap standard error; p-values two-sided from the same normal reference.
    """
    if not 0 < level < 1:
        raise InputError(f"level must be in (0, 1), got {level!r}")
    if n_boot < 50:
        raise InputError(f"n_boot must be at least 50, got {n_boot}")
    units, times, Y = _wide(data, unit, time, outcome)
    first = data.groupby(unit).first()
    g_of = first[cohort].reindex(units).fillna(0).to_numpy("int64")
    w = first[weight].reindex(units).to_numpy(float) if weight else np.ones(len(units))
    clusters = pd.factorize(first[cluster].reindex(units) if cluster else pd.Series(units))[0]
    control = g_of == 0
    cohorts = np.unique(g_of[~control])
    if control.sum() < 2 or len(cohorts) == 0:
        raise EstimationError("comparative ITS needs treated cohorts and at least 2 never-treated units")
    e = np.arange(max(times[0] - g for g in cohorts), min(times[-1] - g for g in cohorts) + 1)
    if (e < 0).sum() < min_pre or (e >= 0).sum() < 2:
        raise EstimationError(f"too few common pre ({(e < 0).sum()}) or post ({(e >= 0).sum()}) periods")
    position = {t: i for i, t in enumerate(times)}
    cols = np.array([[position[g + k] for k in e] for g in cohorts])
    member = np.searchsorted(cohorts, g_of)  # cohort index of treated units
    X = _design(e)
    solve = np.linalg.pinv(X)
    e_post_mean = e[e >= 0].mean()

    def statistic(mult: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cw = mult * w
        cmean = (cw[control] @ Y[control]) / cw[control].sum()
        gap, total = np.zeros(len(e)), 0.0
        for k in range(len(cohorts)):
            m = (~control) & (member == k)
            size = mult[m].sum()
            if size == 0:
                continue
            tmean = (cw[m] @ Y[m]) / cw[m].sum()
            gap += size * (tmean - cmean)[cols[k]]
            total += size
        gap /= total
        coef = solve @ gap
        return np.array([coef[2], coef[3], coef[2] + coef[3] * e_post_mean, coef[1]]), gap

    est, gap = statistic(np.ones(len(units)))
    rng = np.random.default_rng(seed)
    n_clusters = clusters.max() + 1
    draws = []
    while len(draws) < n_boot:
        times_drawn = np.bincount(rng.integers(0, n_clusters, n_clusters), minlength=n_clusters)
        mult = times_drawn[clusters].astype(float)
        if mult[control].sum() == 0 or mult[~control].sum() == 0:
            continue
        draws.append(statistic(mult)[0])
    se = np.asarray(draws).std(axis=0, ddof=1)
    z = dist.norm.ppf(0.5 + level / 2)
    coef = solve @ gap
    series = pd.DataFrame({"e": e, "gap": gap, "fitted": X @ coef, "counterfactual": X[:, :2] @ coef[:2]})
    how = (f"bootstrap over {n_clusters} clusters ({n_boot} replications, seed {seed}); "
           "normal interval with the bootstrap standard error")

    def result(i: int, what: str) -> EffectResult:
        p = float(2 * dist.norm.sf(abs(est[i] / se[i]))) if se[i] > 0 else float("nan")
        return EffectResult(estimate=float(est[i]), se=float(se[i]), ci_low=float(est[i] - z * se[i]),
                            ci_high=float(est[i] + z * se[i]), p_value=p, n_obs=int(Y.size),
                            n_clusters=int(n_clusters), n_treated=int((~control).sum()),
                            n_control=int(control.sum()), method=f"comparative ITS aligned on adoption: {what}",
                            inference=how, level=level)

    return ComparativeItsResult(level_change=result(0, "level change at adoption"),
                                slope_change=result(1, "slope change after adoption"),
                                average_effect=result(2, "average effect over the common post periods"),
                                pretrend_slope=result(3, "pre-adoption differential trend"),
                                series=series, n_boot=n_boot)
