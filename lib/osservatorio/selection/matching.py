"""Stage 20: eligible units, a ranked and stratified proposal of pilots, matched comparisons.

Units are the theme's analysis units (comuni, or districts for district themes) that
have not adopted the practice. Eligibility applies the theme's rules one by one, so
the report can say how many units each rule excludes. Within each stratum (size class
x macro-area) units are ranked by need: the least favourable recent outcome first.
Pilots are allocated to strata in proportion to the eligible units (largest remainders).
Comparison units are the nearest not-chosen eligible units, without replacement, within
the same macro-area, by Mahalanobis distance on the matching covariates or by the logit
of a propensity score (statsmodels Logit), with a caliper. Balance is the standardized
mean difference, with the pre-matching pooled SD as the fixed denominator.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MATCH_COVARIATES = ["log_popolazione", "quota_over65", "esito_base", "esito_tendenza", "ets_per_10000"]
DEFAULT_CALIPER = {"propensity": 0.2, "mahalanobis": 3.0}
RULES = ["gia_trattata", "popolazione_min", "popolazione_max", "ripartizione", "regione", "classe_ampiezza", "quota_over65",
         "area_interna", "atto_precedente", "esito_mancante"]


def unit_outcomes(panel: pd.DataFrame, periods_per_year: int) -> pd.DataFrame:
    """Per unit: ``esito_base`` = weighted mean outcome of the last year of the panel
    (the current need), ``esito_tendenza`` = OLS slope of the outcome per year."""
    last = panel["time"].max()
    recent = panel[panel["time"] > last - periods_per_year]
    g = recent.assign(yw=recent["y"] * recent["w"]).groupby("unit")
    base = g["yw"].sum() / g["w"].sum()
    t = panel["time"] - panel.groupby("unit")["time"].transform("mean")
    y = panel["y"] - panel.groupby("unit")["y"].transform("mean")
    num = (t * y).groupby(panel["unit"]).sum()
    den = (t * t).groupby(panel["unit"]).sum()
    slope = (num / den.where(den > 0)) * periods_per_year
    return pd.DataFrame({"esito_base": base, "esito_tendenza": slope})


def km_from_capoluogo() -> pd.Series:
    """Straight-line distance (km) from each comune's centroid to the nearest provincial
    capital's centroid (ETRS89-LAEA, EPSG:3035); 0 for capitals. A rough proxy of
    remoteness, not the SNAI inner-area classification (which needs travel times to
    service poles, not in the data)."""
    from scipy.spatial import cKDTree

    from osservatorio.data import reference
    from osservatorio.publishing.maps import comuni_centroids

    c = comuni_centroids()  # cached with the map geometry
    xy = c[["x_3035", "y_3035"]].to_numpy()
    cap = set(reference.comuni().loc[lambda d: d["capoluogo"], "codice_istat"])
    is_cap = c.index.isin(cap)
    dist, _ = cKDTree(xy[is_cap]).query(xy)
    return pd.Series(dist / 1000.0, index=c.index.to_numpy(), name="distanza_capoluogo_km")


def eligibility(units: pd.DataFrame, rules, treated: set[str], prior_act: set[str]) -> pd.DataFrame:
    """``units`` (one row per unit, column ``unit``) with a boolean column ``escl_<rule>``
    per rule that excludes it (see ``RULES``) and ``ammissibile``. Rules left unset exclude nothing."""
    df = units.copy()
    f = pd.DataFrame(False, index=df.index, columns=RULES)
    f["gia_trattata"] = df["unit"].isin(treated)
    if rules.min_population is not None:
        f["popolazione_min"] = ~(df["popolazione"] >= rules.min_population)
    if rules.max_population is not None:
        f["popolazione_max"] = ~(df["popolazione"] <= rules.max_population)
    if rules.macro_areas:
        f["ripartizione"] = ~df["ripartizione"].isin(rules.macro_areas)
    if getattr(rules, "regions", None):
        f["regione"] = ~df["regione"].isin(rules.regions)
    if rules.size_classes:
        f["classe_ampiezza"] = ~df["classe_ampiezza"].astype(str).isin(rules.size_classes)
    if rules.min_share_over65 is not None:
        f["quota_over65"] = ~(df["quota_over65"] >= rules.min_share_over65)
    if rules.inner_area_min_km is not None:
        f["area_interna"] = ~(df["distanza_capoluogo_km"] >= rules.inner_area_min_km)
    f["atto_precedente"] = df["unit"].isin(prior_act)
    f["esito_mancante"] = df["esito_base"].isna()
    df[[f"escl_{r}" for r in RULES]] = f.to_numpy()
    df["ammissibile"] = ~f.any(axis=1)
    return df


def exclusion_counts(flags: pd.DataFrame) -> pd.DataFrame:
    """Units excluded by each rule (a unit may fail several) and by that rule alone."""
    f = flags[[f"escl_{r}" for r in RULES]].set_axis(RULES, axis=1)
    only = f & (f.sum(axis=1) == 1).to_numpy()[:, None]
    out = pd.DataFrame({"regola": RULES, "escluse": f.sum().to_numpy(), "escluse_solo_da_questa": only.sum().to_numpy()})
    return out[out["escluse"] > 0].reset_index(drop=True)


def rank_by_need(candidates: pd.DataFrame, higher_is_better: bool) -> pd.DataFrame:
    """Rank within stratum (1 = neediest: lowest outcome when higher is better) and the
    stratum median of the outcome, for the reason given to each proposed unit."""
    df = candidates.copy()
    df["strato"] = df["classe_ampiezza"].astype(str) + " / " + df["ripartizione"].astype(str)
    df["rango_strato"] = df.groupby("strato")["esito_base"].rank(method="first", ascending=higher_is_better).astype(int)
    df["mediana_strato"] = df.groupby("strato")["esito_base"].transform("median")
    df["ammissibili_strato"] = df.groupby("strato")["unit"].transform("size")
    return df


def allocate(sizes: pd.Series, n: int) -> pd.Series:
    """Proportional allocation of ``n`` places to strata of ``sizes`` by largest
    remainders (Hamilton), never more than a stratum holds."""
    n = min(n, int(sizes.sum()))
    quota = sizes / sizes.sum() * n
    alloc = np.floor(quota).astype(int)
    order = (quota - alloc).sort_values(ascending=False, kind="stable").index
    for key in order:
        if alloc.sum() >= n:
            break
        if alloc[key] < sizes[key]:
            alloc[key] += 1
    return alloc


def stratified_proposal(ranked: pd.DataFrame, n: int) -> pd.DataFrame:
    """The ``posti_strato`` neediest units of each stratum (see ``allocate``)."""
    if ranked.empty:
        return ranked.assign(posti_strato=pd.Series(dtype="int64"))
    alloc = allocate(ranked.groupby("strato").size(), n)
    df = ranked.assign(posti_strato=ranked["strato"].map(alloc))
    return df[df["rango_strato"] <= df["posti_strato"]].sort_values(["strato", "rango_strato"], ignore_index=True)


def propensity_logit(treated: pd.DataFrame, pool: pd.DataFrame, covariates: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Linear predictor (logit) of P(chosen | covariates) from a statsmodels Logit of
    treated vs pool, for treated and pool. Standardized covariates; an L2-penalised fit
    is used only if the plain fit fails (separation)."""
    from statsmodels.discrete.discrete_model import Logit
    from statsmodels.tools.tools import add_constant

    X = pd.concat([treated[covariates], pool[covariates]]).to_numpy(float)
    mu, sd = X.mean(axis=0), X.std(axis=0)
    X = add_constant((X - mu) / np.where(sd > 0, sd, 1.0), has_constant="add")
    y = np.r_[np.ones(len(treated)), np.zeros(len(pool))]
    try:
        fit = Logit(y, X).fit(disp=0, maxiter=200)
        params = fit.params
        if not np.all(np.isfinite(params)):
            raise np.linalg.LinAlgError
    except Exception:  # perfect separation or singular design
        params = Logit(y, X).fit_regularized(alpha=1.0, disp=0).params
    lin = X @ params
    return lin[: len(treated)], lin[len(treated):]


def match(treated: pd.DataFrame, pool: pd.DataFrame, covariates: list[str], method: str = "mahalanobis",
          caliper: float | None = None, n_matches: int = 1, exact: str | None = "ripartizione") -> pd.DataFrame:
    """Greedy nearest-neighbour matching without replacement, hardest first (the treated
    unit whose nearest comparison is farthest chooses first, so easy units do not take
    the only close match of a hard one).

    Distance: Mahalanobis on ``covariates`` (covariance of treated and pool together), or
    |difference of logit propensity scores|; pairs beyond the caliper (Mahalanobis
    units, or SD of the logit score) are not made. Returns unit_pilota, unit_confronto,
    distanza, one row per pair; treated units without a match have no row.
    """
    if method not in DEFAULT_CALIPER:
        raise ValueError(f"matching={method!r} is not allowed; allowed: 'mahalanobis', 'propensity'")
    treated = treated.reset_index(drop=True)
    pool = pool.reset_index(drop=True)
    cal = DEFAULT_CALIPER[method] if caliper is None else caliper
    if method == "propensity":
        lt, lp = propensity_logit(treated, pool, covariates)
        cal = cal * np.std(np.r_[lt, lp], ddof=1)
    else:
        Xp = pool[covariates].to_numpy(float)
        Xt = treated[covariates].to_numpy(float)
        vi = np.linalg.pinv(np.atleast_2d(np.cov(np.vstack([Xt, Xp]), rowvar=False)))
    used = np.zeros(len(pool), bool)
    same = (lambda i: (pool[exact] == treated.at[i, exact]).to_numpy()) if exact else (lambda i: np.ones(len(pool), bool))

    def distances(i, ok):
        if method == "propensity":
            return np.abs(lp[ok] - lt[i])
        d = Xp[ok] - Xt[i]
        return np.sqrt(np.einsum("ij,jk,ik->i", d, vi, d))

    # hardest first: treated units whose nearest comparison is farthest choose first
    first = [distances(i, np.flatnonzero(same(i))).min(initial=np.inf) for i in range(len(treated))]
    rows = []
    order = np.argsort(first, kind="stable")[::-1]
    for _ in range(n_matches):  # k:1 in rounds: every treated unit gets its 1st match before any its 2nd
        for i in order:
            ok = np.flatnonzero(same(i) & ~used)
            if not len(ok):
                continue
            dist = distances(i, ok)
            j = int(np.argmin(dist))
            if dist[j] > cal:
                continue
            used[ok[j]] = True
            rows.append({"unit_pilota": treated.at[i, "unit"], "unit_confronto": pool.at[ok[j], "unit"],
                         "distanza": float(dist[j])})
    return pd.DataFrame(rows, columns=["unit_pilota", "unit_confronto", "distanza"])


BALANCE_COLUMNS = ["variabile", "media_pilota", "media_altri", "media_confronto", "smd_prima", "smd_dopo",
                   "rapporto_varianze_dopo"]


def balance_table(treated: pd.DataFrame, pool: pd.DataFrame, matched: pd.DataFrame,
                  covariates: list[str]) -> pd.DataFrame:
    """SMD of treated vs the whole pool (before) and of matched treated vs their matches
    (after), both over the before-matching pooled SD sqrt((s_t^2 + s_p^2)/2); |SMD| <
    0.1 is the usual threshold. Also the variance ratio after matching."""
    comp = pool.set_index("unit").loc[matched["unit_confronto"]]
    tr_m = treated.set_index("unit").loc[matched["unit_pilota"].unique()]
    rows = []
    for c in covariates:
        a, b = treated[c].astype(float), pool[c].astype(float)
        sd = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
        after = (tr_m[c].mean() - comp[c].mean()) / sd if len(comp) and sd > 0 else np.nan
        vr = tr_m[c].var(ddof=1) / comp[c].var(ddof=1) if len(comp) > 1 and comp[c].var(ddof=1) > 0 else np.nan
        rows.append({"variabile": c, "media_pilota": a.mean(), "media_altri": b.mean(),
                     "media_confronto": comp[c].mean() if len(comp) else np.nan,
                     "smd_prima": (a.mean() - b.mean()) / sd if sd > 0 else 0.0, "smd_dopo": after,
                     "rapporto_varianze_dopo": vr})
    return pd.DataFrame(rows, columns=BALANCE_COLUMNS)
