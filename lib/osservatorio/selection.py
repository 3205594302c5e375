"""Stage 20: eligible comuni, a stratified proposal of pilots, matched comparisons.

Ranking favours need: the comuni with the worst baseline outcome (lowest when higher is
better) come first within each stratum (size class x macro-area). Comparison comuni are
nearest neighbours in Mahalanobis distance on log population, share over 65 and the
baseline outcome, within the same macro-area, without replacement.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MATCH_COVARIATES = ["log_popolazione", "quota_over65", "esito_base"]


def eligible(units: pd.DataFrame, baseline: pd.Series, rules, prior_act_units: set[str] | None = None) -> pd.DataFrame:
    """Comuni passing the theme's eligibility rules, with the reason they are eligible."""
    df = units.dropna(subset=["popolazione"]).copy()
    df["esito_base"] = df["codice_istat"].map(baseline)
    df = df.dropna(subset=["esito_base"])
    if rules.min_population is not None:
        df = df[df["popolazione"] >= rules.min_population]
    if rules.max_population is not None:
        df = df[df["popolazione"] <= rules.max_population]
    if rules.macro_areas:
        df = df[df["ripartizione"].isin(rules.macro_areas)]
    if prior_act_units:
        df = df[~df["codice_istat"].isin(prior_act_units)]
    df["log_popolazione"] = np.log(df["popolazione"])
    return df.reset_index(drop=True)


def stratified_proposal(candidates: pd.DataFrame, n: int, higher_is_better: bool) -> pd.DataFrame:
    """Allocate ``n`` pilots across size class x macro-area strata proportionally
    (largest remainders), picking the neediest comuni within each stratum."""
    strata = candidates.groupby(["classe_ampiezza", "ripartizione"], observed=True)
    sizes = strata.size()
    n = min(n, int(sizes.sum()))
    quota = sizes / sizes.sum() * n
    alloc = np.floor(quota).astype(int)
    remainder = (quota - alloc).sort_values(ascending=False)
    for key in remainder.index[: n - alloc.sum()]:
        alloc[key] += 1
    picks = []
    for key, group in strata:
        k = int(alloc.get(key, 0))
        if k:
            ordered = group.sort_values("esito_base", ascending=higher_is_better)
            picks.append(ordered.head(k).assign(strato=" / ".join(map(str, key)), posti_strato=k))
    out = pd.concat(picks, ignore_index=True) if picks else candidates.head(0)
    return out


def mahalanobis_match(treated: pd.DataFrame, pool: pd.DataFrame, exact: str = "ripartizione",
                      caliper: float = 3.0, n_matches: int = 1) -> pd.DataFrame:
    """Nearest comparison comuni without replacement; pairs beyond ``caliper`` (in
    Mahalanobis units) are dropped and reported with an empty match."""
    X = pool[MATCH_COVARIATES].to_numpy(float)
    vi = np.linalg.pinv(np.cov(np.vstack([X, treated[MATCH_COVARIATES].to_numpy(float)]), rowvar=False))
    used: set[int] = set()
    rows = []
    for _, t in treated.iterrows():
        mask = (pool[exact] == t[exact]).to_numpy() & ~pool.index.isin(list(used))
        idx = np.flatnonzero(mask)
        d = X[idx] - t[MATCH_COVARIATES].to_numpy(float)
        dist = np.sqrt(np.einsum("ij,jk,ik->i", d, vi, d)) if len(idx) else np.array([])
        order = np.argsort(dist)[:n_matches]
        for o in order:
            if dist[o] <= caliper:
                used.add(pool.index[idx[o]])
                rows.append({"codice_istat_pilota": t["codice_istat"], "codice_istat_confronto":
                             pool.iloc[idx[o]]["codice_istat"], "distanza": float(dist[o])})
    return pd.DataFrame(rows, columns=["codice_istat_pilota", "codice_istat_confronto", "distanza"])


def standardized_differences(treated: pd.DataFrame, control: pd.DataFrame, columns: list[str]) -> pd.Series:
    """Standardized mean differences (pooled SD), the usual balance measure (|SMD| < 0.1 good)."""
    out = {}
    for c in columns:
        a, b = treated[c].astype(float), control[c].astype(float)
        sd = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
        out[c] = (a.mean() - b.mean()) / sd if sd > 0 else 0.0
    return pd.Series(out)


def balance_table(proposal: pd.DataFrame, candidates: pd.DataFrame, matched: pd.DataFrame) -> pd.DataFrame:
    """SMD of pilots vs all other eligible comuni (before) and vs matched comuni (after)."""
    rest = candidates[~candidates["codice_istat"].isin(proposal["codice_istat"])]
    comp = candidates[candidates["codice_istat"].isin(matched["codice_istat_confronto"])]
    return pd.DataFrame({
        "variabile": MATCH_COVARIATES,
        "smd_prima": standardized_differences(proposal, rest, MATCH_COVARIATES).to_numpy(),
        "smd_dopo": standardized_differences(proposal, comp, MATCH_COVARIATES).to_numpy() if len(comp) > 1
        else np.nan,
    })
