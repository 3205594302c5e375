"""Power and minimum detectable effect (MDE) of a planned pilot with comparison units.

Each unit (comune or district) is a cluster observed in several periods. With an
exchangeable correlation ``icc`` between periods of one unit and total variance
``sigma2`` of the outcome (after removing common period effects):

- post-only comparison of unit means over ``m_post`` periods: the variance of a unit
  mean is ``sigma2 * deff / m_post`` with design effect ``deff = 1 + (m_post - 1) icc``;
- difference in differences (unit mean after minus before, compared across groups):
  the unit effect cancels and the variance of a unit's change is
  ``sigma2 * (1 - icc) * (1/m_pre + 1/m_post)`` (McKenzie 2012, J. Dev. Econ. 99).

The difference between ``n_t`` treated and ``n_c`` comparison units has variance
``v_unit * (1/n_t + 1/n_c)``; the two-sided test is a t test on unit-level values with
``n_t + n_c - 2`` degrees of freedom (clusters, not observations), power from the
noncentral t. ICC by the one-way ANOVA estimator (Searle et al. 1992, ch. 3), clamped at 0.
Effects and MDE are in the outcome's unit.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from osservatorio import distributions as dist

PowerDesign = Literal["post", "did"]


def icc_anova(y: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """One-way ANOVA estimate of the intra-cluster correlation.

    Returns icc (clamped to [0, 1]), sigma2_between, sigma2_within, sigma2 (their sum),
    clusters, n0 (the average cluster size of unbalanced ANOVA). Needs 2+ clusters
    and some cluster with 2+ values.
    """
    y = np.asarray(y, float)
    codes, uniq = pd.factorize(np.asarray(groups))
    k, n = len(uniq), len(y)
    sizes = np.bincount(codes, minlength=k).astype(float)
    if k < 2 or n <= k:
        raise ValueError("icc_anova needs at least 2 clusters and more values than clusters")
    means = np.bincount(codes, weights=y, minlength=k) / sizes
    grand = y.mean()
    msb = np.sum(sizes * (means - grand) ** 2) / (k - 1)
    msw = np.sum((y - means[codes]) ** 2) / (n - k)
    n0 = (n - np.sum(sizes**2) / n) / (k - 1)
    s2b = max(0.0, (msb - msw) / n0)
    total = s2b + msw
    return {"icc": s2b / total if total > 0 else 0.0, "sigma2_between": s2b, "sigma2_within": msw,
            "sigma2": total, "clusters": k, "n0": n0}


def panel_icc(panel: pd.DataFrame) -> dict[str, float]:
    """ICC of the outcome across periods within units, from untreated observations
    (never treated, or before adoption) after removing each period's mean (common
    shocks and seasonality are absorbed by period effects in the evaluation too).
    Columns used: unit, time, y, cohort."""
    pre = panel[(panel["cohort"] <= 0) | (panel["time"] < panel["cohort"])].dropna(subset=["y"])
    resid = pre["y"] - pre.groupby("time")["y"].transform("mean")
    out = icc_anova(resid.to_numpy(), pre["unit"].to_numpy())
    out["periods"] = int(pre["time"].nunique())
    return out


def design_effect(m: float, icc: float) -> float:
    """1 + (m - 1) * icc: variance inflation of a mean of m correlated values."""
    return 1.0 + (m - 1.0) * icc


def unit_variance(sigma2: float, icc: float, m_post: int, m_pre: int = 0, design: PowerDesign = "post") -> float:
    """Variance of the unit-level value compared across groups (see module docstring)."""
    if design == "post":
        return sigma2 * design_effect(m_post, icc) / m_post
    if design == "did":
        if m_pre < 1:
            raise ValueError("design 'did' needs m_pre >= 1")
        return sigma2 * (1.0 - icc) * (1.0 / m_pre + 1.0 / m_post)
    raise ValueError(f"design={design!r} is not allowed; allowed: 'post', 'did'")


def standard_error(sigma2: float, icc: float, n_t: int, n_c: int, m_post: int, m_pre: int = 0,
                   design: PowerDesign = "post") -> float:
    """Standard error of the treated - comparison difference (outcome units)."""
    return float(np.sqrt(unit_variance(sigma2, icc, m_post, m_pre, design) * (1.0 / n_t + 1.0 / n_c)))


def power_from_se(effect: float | np.ndarray, se: float, df: float, alpha: float = 0.05) -> np.ndarray:
    """Two-sided power of a t test for ``effect`` with standard error ``se``."""
    from scipy import stats  # the noncentral t (not in osservatorio.distributions); a second of imports

    crit = dist.t.ppf(1 - alpha / 2, df)
    ncp = np.asarray(effect, float) / se
    out = stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp)
    # scipy's noncentral t returns NaN far in the tail (tiny df, huge ncp): use the normal shift there
    approx = dist.norm.sf(crit - ncp) + dist.norm.cdf(-crit - ncp)
    return np.where(np.isnan(out), approx, out)


def power(effect: float | np.ndarray, sigma2: float, icc: float, n_t: int, n_c: int, m_post: int, m_pre: int = 0,
          design: PowerDesign = "post", alpha: float = 0.05, df: float | None = None) -> np.ndarray:
    """Power to detect ``effect`` (outcome units); df defaults to n_t + n_c - 2."""
    se = standard_error(sigma2, icc, n_t, n_c, m_post, m_pre, design)
    return power_from_se(effect, se, n_t + n_c - 2 if df is None else df, alpha)


def mde(sigma2: float, icc: float, n_t: int, n_c: int, m_post: int, m_pre: int = 0, design: PowerDesign = "post",
        alpha: float = 0.05, target_power: float = 0.8, df: float | None = None) -> float:
    """Smallest effect (outcome units, > 0) detected with ``target_power``, solved on the
    noncentral t (close to (t_{1-alpha/2} + t_{power}) * SE)."""
    from scipy import optimize  # imported when used: with scipy.spatial, 0.4 s

    se = standard_error(sigma2, icc, n_t, n_c, m_post, m_pre, design)
    d = n_t + n_c - 2 if df is None else df
    if d <= 0:
        raise ValueError("mde needs n_t + n_c > 2")
    if se == 0:
        return 0.0  # no residual variance: any effect is detected
    f = lambda x: float(power_from_se(x, se, d, alpha)) - target_power  # noqa: E731
    hi = se * (dist.t.ppf(1 - alpha / 2, d) + dist.t.ppf(target_power, d) + 1)
    while f(hi) < 0:
        hi *= 1.5
    return float(optimize.brentq(f, 1e-12 * se, hi, xtol=1e-12 * se))


def design_table(sigma2: float, icc: float, n_t: int, n_c: int, m_post: int, m_pre: int, alpha: float = 0.05,
                 target_power: float = 0.8) -> pd.DataFrame:
    """MDE of the planned design as a post-only comparison and as a DiD, with the
    design effect and the effective number of observations per group."""
    rows = []
    for design in ("post", "did"):
        deff = design_effect(m_post, icc) if design == "post" else np.nan
        rows.append({
            "disegno": design,
            "unita_trattate": n_t,
            "unita_confronto": n_c,
            "periodi_prima": m_pre if design == "did" else 0,
            "periodi_dopo": m_post,
            "effetto_disegno": deff,
            "n_efficace_trattati": n_t * m_post / deff if design == "post" else np.nan,
            "errore_standard": standard_error(sigma2, icc, n_t, n_c, m_post, m_pre, design),
            "mde": mde(sigma2, icc, n_t, n_c, m_post, m_pre, design, alpha, target_power),
        })
    return pd.DataFrame(rows)
