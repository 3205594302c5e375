"""Transferability: where a practice worked, and which untreated units resemble those places.

A **site** is one treated cluster in one adoption cohort (the theme's `cluster` level:
social district, province, health authority, or the comune itself). Clusters are the
level at which the evaluation lets shocks be correlated, so sites are the finest units
that can be treated as independent in a meta-analysis; splitting a cluster by cohort
keeps each site's exposure time well defined.

Per-site effect (`site_effects`): a long two-by-two difference-in-differences on the
*gap* between the site's treated units (unweighted mean) and the never-treated units
(unweighted mean), g_t = y_site,t - y_never,t:

    effect = mean(g_t, event time 0..window) - mean(g_t, event time -window..-1-anticipation)
    variance = s2 * (1/n_pre + 1/n_post)

with s2 the pooled residual variance of g_t around its pre and post means (n_pre +
n_post - 2 degrees of freedom). Differencing against the never-treated removes common
shocks and seasonality; the gap's own time noise is the site's sampling error, and the
estimate is unbiased under parallel trends. Serial correlation of the gap is not
modelled (variances are then too small); dynamic effects inflate s2 (too large).

Moderators are the context of each site (mean over its treated units): size (log10
residents), macro-area, share of residents over 65 (percent) and Third Sector entities
per 10,000 residents. `choose_moderators` keeps at most one model term per
`SITES_PER_TERM` sites (Cochrane Handbook 10.11.5.1), in a fixed order decided before
seeing the data, so that the meta-regression is not fished.

Ranking (`rank_candidates`): each untreated unit gets the effect the meta-regression
predicts at its context, with the prediction interval for a new site, the probability
that the effect at a new site with that context is on the good side (the predictive
distribution behind the interval), and a distance to the nearest site where the
practice worked (standardised Euclidean on the numeric moderators, in standard deviations
over the theme's units, plus 1 when the macro-area differs). The list is ordered by the cautious end
of the prediction interval, then by distance; units whose context lies outside the range
of the sites are flagged (extrapolation) and ranked after the others.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import pandas as pd

from osservatorio import distributions as dist
from osservatorio.exceptions import EstimationError, InputError
from osservatorio.synthesis.meta import MetaResult, Method, meta_analysis, predict_effect

SITES_PER_TERM = 10  # at most one meta-regression term per 10 sites
SMALL_K = 20  # below this many sites the prediction interval uses Riley's t_{k-p-1}
MEZZOGIORNO = ("Sud", "Isole")
# Moderator columns in the order they enter the model when the budget allows.
NUMERIC_MODERATORS = ("log10_popolazione", "quota_over65_pct", "ets_per_10000")
AREA = "ripartizione"
AREA_BINARY = "mezzogiorno"
SIZE_CLASS = "classe_ampiezza"
Side = Literal["higher", "lower"]


# --- site effects ------------------------------------------------------------------


def site_effects(panel: pd.DataFrame, window: int, anticipation: int = 0,
                 site_col: str = "cluster") -> pd.DataFrame:
    """Effect and sampling variance per site (treated `site_col` x cohort), in outcome units.

    `panel` has columns unit, time (integer periods), y, cohort (0 = never treated) and
    `site_col`. Returns one row per site with site, cluster, cohort, n_units (treated
    units), n_pre, n_post, estimate, variance, se. Sites with fewer than 2 pre periods
    or no post period are dropped.
    """
    need = {"unit", "time", "y", "cohort", site_col}
    if missing := need - set(panel.columns):
        raise InputError(f"panel lacks columns {sorted(missing)}")
    if window < 1:
        raise InputError(f"window must be >= 1, got {window}")
    never = panel[panel["cohort"] == 0]
    if never.empty:
        raise EstimationError("site effects need never-treated units as comparisons")
    ref = never.groupby("time")["y"].mean()
    treated = panel[panel["cohort"] > 0]
    rows = []
    for (cl, g), part in treated.groupby([site_col, "cohort"], sort=True, observed=True):
        site_mean = part.groupby("time")["y"].mean()
        gap = (site_mean - ref.reindex(site_mean.index)).dropna()
        e = gap.index.to_numpy() - g
        pre = gap[(e >= -window) & (e <= -1 - anticipation)].to_numpy()
        post = gap[(e >= 0) & (e <= window)].to_numpy()
        if len(pre) < 2 or len(post) < 1:
            continue
        dof = len(pre) + len(post) - 2
        s2 = (np.sum((pre - pre.mean()) ** 2) + np.sum((post - post.mean()) ** 2)) / dof
        var = s2 * (1 / len(pre) + 1 / len(post))
        if not var > 0:
            continue
        rows.append({"site": f"{cl} · {g}", "cluster": str(cl), "cohort": int(g),
                     "n_units": int(part["unit"].nunique()), "n_pre": len(pre),
                     "n_post": len(post), "estimate": float(post.mean() - pre.mean()),
                     "variance": float(var), "se": float(np.sqrt(var))})
    return pd.DataFrame(rows, columns=["site", "cluster", "cohort", "n_units", "n_pre", "n_post",
                                       "estimate", "variance", "se"])


def unit_context(units: pd.DataFrame) -> pd.DataFrame:
    """Moderators per unit from population, macro-area, share over 65 and ETS counts.

    `units` has unit, popolazione (residents), ripartizione, quota_over65 (share 0-1)
    and optionally ets_per_10000. Adds log10_popolazione, quota_over65_pct (percent)
    and mezzogiorno (1 for Sud and Isole).
    """
    out = units.copy()
    out["log10_popolazione"] = np.log10(out["popolazione"].astype(float).clip(lower=1))
    out["quota_over65_pct"] = 100 * out["quota_over65"].astype(float)
    out[AREA_BINARY] = out[AREA].isin(MEZZOGIORNO).astype(float)
    return out


def site_context(panel: pd.DataFrame, context: pd.DataFrame, sites: pd.DataFrame,
                 site_col: str = "cluster") -> pd.DataFrame:
    """Sites with the mean numeric moderators and the modal macro-area and size class of
    their treated units (`context` from `unit_context`, one row per unit)."""
    treated = panel.loc[panel["cohort"] > 0, ["unit", site_col, "cohort"]].drop_duplicates()
    treated = treated.assign(cluster=treated[site_col].astype(str)).merge(context, on="unit", how="left")
    numeric = [c for c in (*NUMERIC_MODERATORS, AREA_BINARY) if c in context.columns]
    agg = treated.groupby(["cluster", "cohort"])[numeric].mean()
    for col in (AREA, SIZE_CLASS):
        if col in treated.columns:
            agg[col] = treated.groupby(["cluster", "cohort"])[col].agg(_mode)
    ctx = agg.reset_index()
    return sites.merge(ctx, on=["cluster", "cohort"], how="left")


def _mode(s: pd.Series):
    s = s.dropna().astype(str)
    return s.mode().iloc[0] if len(s) else None


# --- meta-regression ---------------------------------------------------------------


def choose_moderators(sites: pd.DataFrame, per_term: int = SITES_PER_TERM) -> list[str]:
    """Moderator columns for the meta-regression, at most one term per `per_term` sites.

    Fixed order: macro-area (all its levels as dummies when the budget allows, else the
    Mezzogiorno indicator), log10 population, share over 65, ETS per 10,000. A
    moderator without variation across the sites (or missing) is skipped.
    """
    budget = len(sites) // per_term
    chosen: list[str] = []
    if AREA in sites.columns and sites[AREA].notna().all():
        n_levels = sites[AREA].nunique()
        if 1 < n_levels and n_levels - 1 <= budget and sites[AREA].value_counts().min() >= 2:
            chosen.append(AREA)
            budget -= n_levels - 1
        elif budget >= 1 and AREA_BINARY in sites.columns and sites[AREA_BINARY].nunique() > 1:
            chosen.append(AREA_BINARY)
            budget -= 1
    for col in NUMERIC_MODERATORS:
        if budget < 1:
            break
        if col in sites.columns and sites[col].notna().all() and sites[col].std() > 0:
            chosen.append(col)
            budget -= 1
    return chosen


def fit_transfer(sites: pd.DataFrame, moderators: list[str], method: Method = "reml",
                 level: float = 0.95) -> MetaResult:
    """Mixed-effects meta-regression of site effects (Knapp-Hartung inference).

    The prediction interval uses Riley's t with k - p - 1 df when there are fewer than
    `SMALL_K` sites, which covers a new site better when k is small; else t with k - p df.
    """
    k = len(sites)
    pi_type = "riley" if k < SMALL_K else "default"
    mods = sites[moderators] if moderators else None
    return meta_analysis(sites["estimate"].to_numpy(), sites["variance"].to_numpy(), method=method,
                         moderators=mods, level=level, knapp_hartung=True, pi_type=pi_type)


def moderator_tests(sites: pd.DataFrame, columns: list[str], method: Method = "reml") -> pd.DataFrame:
    """One-moderator meta-regressions: slope (per unit of the moderator), CI, p, R2.

    For a categorical column, one row per non-reference level (difference from the
    reference level). Knapp-Hartung inference; needs at least 3 sites.
    """
    rows = []
    for col in columns:
        if col not in sites.columns or sites[col].isna().any() or sites[col].nunique() < 2 or len(sites) < 3:
            continue
        try:
            fit = fit_transfer(sites, [col], method=method)
        except EstimationError:
            continue
        for term, r in fit.coefficients.iloc[1:].iterrows():
            rows.append({"moderatore": col, "termine": term, "coefficiente": r["estimate"], "se": r["se"],
                         "ci_low": r["ci_low"], "ci_high": r["ci_high"], "p_value": r["p_value"],
                         "r2": fit.r2, "k": fit.k})
    return pd.DataFrame(rows, columns=["moderatore", "termine", "coefficiente", "se", "ci_low", "ci_high",
                                       "p_value", "r2", "k"])


def subgroup_effects(sites: pd.DataFrame, by: str, method: Method = "reml",
                     level: float = 0.95) -> pd.DataFrame:
    """Pooled effect of the sites in each level of `by` (random effects; one site: itself).

    Returns livello, k (sites), n_units (treated units), estimate, ci_low, ci_high.
    """
    z = float(dist.norm.isf((1 - level) / 2))
    rows = []
    for lev, part in sites.groupby(by, sort=True, observed=True):
        if len(part) >= 2:
            m = meta_analysis(part["estimate"], part["variance"], method=method, level=level)
            est, lo, hi = m.estimate, m.ci_low, m.ci_high
        else:
            est = float(part["estimate"].iloc[0])
            lo, hi = est - z * float(part["se"].iloc[0]), est + z * float(part["se"].iloc[0])
        rows.append({"livello": str(lev), "k": len(part), "n_units": int(part["n_units"].sum()),
                     "estimate": est, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows, columns=["livello", "k", "n_units", "estimate", "ci_low", "ci_high"])


# --- ranking -----------------------------------------------------------------------


def predictive_df(result: MetaResult) -> float:
    """Degrees of freedom of the predictive distribution behind `result`'s PI (inf: normal)."""
    p = len(result.coefficients)
    if result.pi_type == "riley":
        return float(max(1, result.k - p - 1))
    if result.pi_type == "t" or result.knapp_hartung:
        return float(result.k - p)
    return np.inf


def benefit_probability(pred, se, tau2: float, df: float, side: Side) -> np.ndarray:
    """P(true effect at a new site is on the good side of 0) under pred + sqrt(se2 + tau2) T_df."""
    if side not in get_args(Side):
        raise InputError(f"side must be one of {get_args(Side)}, got {side!r}")
    scale = np.sqrt(np.asarray(se, dtype=float) ** 2 + tau2)
    zs = np.asarray(pred, dtype=float) / scale
    cdf = dist.norm.cdf(zs) if np.isinf(df) else dist.t.cdf(zs, df)
    return cdf if side == "higher" else 1 - cdf


def context_distance(candidates: pd.DataFrame, sites: pd.DataFrame, scale: pd.Series,
                     numeric: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Distance of each candidate to its nearest site and that site's row position.

    d = sqrt(sum_j ((x_j - s_j) / scale_j)^2 + [macro-area differs]); `scale` holds a
    standard deviation per numeric column (national, over all units).
    """
    if sites.empty:
        raise InputError("context_distance needs at least one site")
    sc = scale[numeric].to_numpy(dtype=float)
    sc = np.where(sc > 0, sc, 1.0)
    a = candidates[numeric].to_numpy(dtype=float) / sc
    b = sites[numeric].to_numpy(dtype=float) / sc
    d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)
    if AREA in candidates.columns and AREA in sites.columns:
        d2 = d2 + (candidates[AREA].to_numpy()[:, None] != sites[AREA].to_numpy()[None, :])
    nearest = np.argmin(d2, axis=1)
    return np.sqrt(d2[np.arange(len(a)), nearest]), nearest


def worked_mask(sites: pd.DataFrame, higher_is_better: bool, level: float = 0.95) -> np.ndarray:
    """Sites whose own confidence interval lies entirely on the good side of zero."""
    z = float(dist.norm.isf((1 - level) / 2))
    lo = sites["estimate"] - z * sites["se"]
    hi = sites["estimate"] + z * sites["se"]
    return (lo > 0).to_numpy() if higher_is_better else (hi < 0).to_numpy()


def rank_candidates(result: MetaResult | None, sites: pd.DataFrame, candidates: pd.DataFrame,
                    moderators: list[str], higher_is_better: bool, scale: pd.Series,
                    effective: bool = True) -> pd.DataFrame:
    """Untreated units ranked by how likely the practice is to work there.

    Returns `candidates` with pred, se, ci_low, ci_high, pi_low, pi_high,
    effetto_prudente (the end of the prediction interval on the unfavourable side: the
    effect a new site would exceed with 97.5% probability), prob_beneficio (0-1),
    distanza, sito_simile (label of the nearest site where it worked, or of the nearest
    site when none did), sito_ha_funzionato, fuori_supporto (moderators outside the
    sites' range, ' | '-joined), rank (1 = first). Sorted by: within support first, then
    effetto_prudente (most favourable first: it rewards both a larger predicted effect
    and a narrower interval, and unlike the probability of benefit it does not saturate
    at 100%), then distance (which alone orders units when the model has no moderators).
    With `result` None (a single site: nothing to pool) distance alone ranks.
    With `effective` False (the pooled effect is not clearly favourable) no site is
    called one "where it worked": a few sites clear zero by chance when the practice
    does nothing, and the distance is then to the nearest site of any kind.
    """
    cand = candidates.reset_index(drop=True).copy()
    ok = np.ones(len(cand), dtype=bool)
    outside = [[] for _ in range(len(cand))]
    for col in moderators:
        if col == AREA:
            bad = ~cand[AREA].isin(set(sites[AREA]))
        else:
            bad = (cand[col] < sites[col].min()) | (cand[col] > sites[col].max())
            ok &= cand[col].notna().to_numpy()
        for i in np.flatnonzero(bad.to_numpy()):
            outside[i].append(col)
    unseen_area = (~cand[AREA].isin(set(sites[AREA]))).to_numpy() if AREA in moderators else np.zeros(len(cand), bool)
    predictable = ok & ~unseen_area if result is not None else np.zeros(len(cand), dtype=bool)
    pred = pd.DataFrame(np.nan, index=cand.index, columns=["pred", "se", "ci_low", "ci_high", "pi_low", "pi_high"])
    if predictable.any():
        if moderators:
            pred.loc[predictable] = predict_effect(result, cand.loc[predictable, moderators]).to_numpy()
        else:
            p = predict_effect(result, None).to_numpy()
            pred.loc[predictable] = np.repeat(p, predictable.sum(), axis=0)
    cand[pred.columns] = pred
    if result is not None:
        side = "higher" if higher_is_better else "lower"
        cand["prob_beneficio"] = benefit_probability(cand["pred"], cand["se"], result.tau2,
                                                     predictive_df(result), side)
    else:
        cand["prob_beneficio"] = np.nan
    numeric = [c for c in NUMERIC_MODERATORS if c in cand.columns and c in sites.columns
               and sites[c].notna().all()]
    worked = worked_mask(sites, higher_is_better) & effective
    ref = sites[worked] if worked.any() else sites
    filled = cand.copy()
    for c in numeric:
        filled[c] = filled[c].fillna(scale.get(f"mean_{c}", 0.0))
    dist, nearest = context_distance(filled, ref, scale, numeric)
    cand["distanza"] = dist
    cand["sito_simile"] = ref["site"].to_numpy()[nearest]
    cand["sito_ha_funzionato"] = bool(worked.any())
    cand["fuori_supporto"] = [" | ".join(o) for o in outside]
    cand["effetto_prudente"] = cand["pi_low"] if higher_is_better else cand["pi_high"]
    favourable = cand["pi_low"] if higher_is_better else -cand["pi_high"]
    key = pd.DataFrame({"out": cand["fuori_supporto"] != "", "bound": -favourable, "dist": cand["distanza"]})
    order = key.sort_values(["out", "bound", "dist"], na_position="last", kind="mergesort").index
    cand = cand.loc[order].reset_index(drop=True)
    cand.insert(0, "rank", np.arange(1, len(cand) + 1))
    return cand


def national_scale(context: pd.DataFrame) -> pd.Series:
    """Standard deviation (and mean, as mean_<col>) of each numeric moderator over all the
    units given (the theme's universe: every comune, the capoluoghi, or the districts)."""
    out = {}
    for c in NUMERIC_MODERATORS:
        if c in context.columns:
            out[c] = float(context[c].std())
            out[f"mean_{c}"] = float(context[c].mean())
    return pd.Series(out, dtype=float)
