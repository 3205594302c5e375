"""Outcome generators of the six demo themes: adoption, potential outcomes, true effects.

Each generator takes the real comuni (with the synthetic ambiti/distretti mapping) and
its own random generator, and returns a :class:`ThemeOutcome`: the comune-level panel
with the untreated potential outcome ``y0`` and the true effect ``effetto`` of every
cell, who adopted when, and the ground truth summarised at the theme's analysis level.
Everything is vectorised numpy over units x periods; no I/O happens here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from osservatorio.data.reference import population_by_age

NORD_CENTRO: Final = ("Nord-ovest", "Nord-est", "Centro")
SUD_ISOLE: Final = ("Sud", "Isole")
# Central/southern Apennine regions (Umbria, Marche, Lazio, Abruzzo, Molise).
APPENNINO_CENTRALE: Final = ("10", "11", "12", "13", "14")
FIRST_MONTH: Final = np.datetime64("2014-01", "M")


@dataclass(frozen=True)
class ThemeOutcome:
    """What one demo theme generator produces.

    panel: comune-level cells with columns unita (6-digit code), periodo, valore,
        denominatore, y0 (untreated potential outcome; for Poisson outcomes its
        expectation) and effetto (true effect of the cell, 0 when untreated).
    adoption: one row per treated comune with unita (the analysis unit: comune or
        district code), codice_istat (where the act or pilot lives), coorte (first
        treated period, "YYYY" or "YYYY-MM") and data (adoption date, YYYY-MM-DD).
    truth: the ground-truth record of the theme for ``ground_truth.json``.
    """

    theme: str
    indicatore: str
    panel: pd.DataFrame
    adoption: pd.DataFrame
    truth: dict


def gumbel_top_k(rng: np.random.Generator, log_weight: np.ndarray, k: int) -> np.ndarray:
    """Indices of k units drawn without replacement with probability ~ exp(log_weight)."""
    keys = np.asarray(log_weight, dtype=float) + rng.gumbel(size=len(log_weight))
    return np.sort(np.argsort(-keys, kind="stable")[:k])


def dates_in_years(rng: np.random.Generator, years: np.ndarray, max_day: int = 180) -> np.ndarray:
    """Random dates (YYYY-MM-DD strings) in the first ``max_day`` days of each year."""
    start = (np.asarray(years, dtype="int64") - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    return (start + rng.integers(0, max_day, size=len(start))).astype(str)


def dates_in_months(rng: np.random.Generator, month_index: np.ndarray) -> np.ndarray:
    """Random dates (YYYY-MM-DD) within each month, months counted from 2014-01."""
    start = (FIRST_MONTH + np.asarray(month_index, dtype="int64")).astype("datetime64[D]")
    return (start + rng.integers(0, 28, size=len(start))).astype(str)


def month_labels(n_months: int) -> np.ndarray:
    """Period labels "YYYY-MM" for n_months from 2014-01."""
    return (FIRST_MONTH + np.arange(n_months)).astype(str)


def summarise_effects(
    unit: np.ndarray, cohort: np.ndarray, event_time: np.ndarray, effect: np.ndarray
) -> dict:
    """ATT simple, by event time and by cohort over treated unit x post-period cells.

    Each cell counts once (the estimand of Callaway-Sant'Anna's simple aggregation and
    of a pooled post-period average); by event time and by cohort are cell means.
    """
    cells = pd.DataFrame({"unit": unit, "g": cohort, "e": event_time, "tau": effect})
    by_e = cells.groupby("e", sort=True)["tau"].mean()
    by_g = cells.groupby("g", sort=True)["tau"].mean()
    return {
        "att_simple": round(float(cells["tau"].mean()), 6),
        "att_by_event_time": {str(int(e)): round(float(v), 6) for e, v in by_e.items()},
        "att_by_cohort": {str(g): round(float(v), 6) for g, v in by_g.items()},
        "n_treated_cells": int(len(cells)),
    }


def _panel(codes: np.ndarray, periods: np.ndarray, **cols: np.ndarray) -> pd.DataFrame:
    """Unit-major long panel from N x T matrices (or N-vectors repeated over periods)."""
    n, t = len(codes), len(periods)
    out = {"unita": np.repeat(codes, t), "periodo": np.tile(periods.astype(str), n)}
    for name, values in cols.items():
        values = np.asarray(values)
        out[name] = np.repeat(values, t) if values.ndim == 1 else values.reshape(-1)
    return pd.DataFrame(out)


def _cohort_counts(cohort_labels: np.ndarray) -> dict[str, int]:
    labels, counts = np.unique(np.asarray(cohort_labels).astype(str), return_counts=True)
    return {str(g): int(n) for g, n in zip(labels, counts)}


def _year_cells(years: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Event time (N x T) and post-adoption mask for adoption years g (0 = never)."""
    e = years[None, :] - g[:, None]
    return e, (g[:, None] > 0) & (e >= 0)


def _truth_from_matrix(
    codes: np.ndarray, g_label: np.ndarray, e: np.ndarray, post: np.ndarray, tau: np.ndarray
) -> dict:
    rows, cols = np.nonzero(post)
    return summarise_effects(codes[rows], g_label[rows], e[rows, cols], tau[rows, cols])


def _staggered_adoption(rng: np.random.Generator, log_weight: np.ndarray, k: int, first: int,
                        last: int) -> tuple[np.ndarray, np.ndarray]:
    """Pick k adopters by weight; uniform adoption years first..last; an adoption date each.

    Returns the adoption year per unit (0 = never) and the date (empty when never).
    """
    sel = gumbel_top_k(rng, log_weight, k)
    g = np.zeros(len(log_weight), dtype="int64")
    g[sel] = rng.integers(first, last + 1, size=len(sel))
    dates = np.full(len(log_weight), "", dtype=object)
    dates[sel] = dates_in_years(rng, g[sel])
    return g, dates


def _yearly_outcome(
    theme_id: str, indicatore: str, codes: np.ndarray, years: np.ndarray, g: np.ndarray,
    dates: np.ndarray, y0: np.ndarray, tau: np.ndarray, denominatore: np.ndarray, meta: dict,
) -> ThemeOutcome:
    """Panel, adoption table and ground truth of a yearly comune-level theme.

    ``meta`` holds the theme-specific truth keys (effect_unit, design, notes, ...),
    inserted around the common ones in the order the ground truth file shows them.
    """
    e, post = _year_cells(years, g)
    panel = _panel(codes, years, valore=y0 + tau, denominatore=denominatore, y0=y0, effetto=tau)
    treated = g > 0
    adoption = pd.DataFrame(
        {
            "unita": codes[treated],
            "codice_istat": codes[treated],
            "coorte": g[treated].astype(str),
            "data": dates[treated].astype(str),
        }
    )
    head = {k: v for k, v in meta.items() if k != "notes"}
    truth = {
        "indicatore": indicatore,
        **{k: head.pop(k) for k in ("effect_unit",) if k in head},
        "unit_level": "comune",
        **{k: head.pop(k) for k in ("population",) if k in head},
        "frequency": "yearly",
        "event_time_unit": "years",
        "periods": [str(years[0]), str(years[-1])],
        **head,
        "cohorts": _cohort_counts(adoption["coorte"]),
        "treated_units": adoption["unita"].tolist(),
        **_truth_from_matrix(codes, g.astype(str), e, post, tau),
        "notes": meta["notes"],
    }
    return ThemeOutcome(theme_id, indicatore, panel, adoption, truth)


def coprogettazione_anziani(base: pd.DataFrame, rng: np.random.Generator) -> ThemeOutcome:
    """Art. 55 co-design of home care, adopted by whole social districts (ambiti), 2017-21.

    Outcome: share of over-65 residents in home care (ADI), percentage points, yearly.
    """
    years = np.arange(2014, 2024)
    amb = base.groupby("ambito_sociale", sort=True).agg(
        pop=("popolazione", "sum"), area=("ripartizione", "first")
    )
    log_w = np.log(amb["pop"].to_numpy() / 75_000) + 0.8 * amb["area"].isin(NORD_CENTRO).to_numpy()
    sel = gumbel_top_k(rng, log_w, 70)
    # Larger ambiti tend to adopt earlier: rank on log size plus noise, five equal cohorts.
    rank = np.argsort(-(np.log(amb["pop"].to_numpy()[sel]) + rng.normal(0, 1, len(sel))), kind="stable")
    cohort = np.empty(len(sel), dtype="int64")
    cohort[rank] = 2017 + np.arange(len(sel)) * 5 // len(sel)
    amb_dates = dates_in_years(rng, cohort)
    amb_g = pd.Series(0, index=amb.index, dtype="int64")
    amb_g.iloc[sel] = cohort
    amb_date = pd.Series("", index=amb.index, dtype=object)
    amb_date.iloc[sel] = amb_dates

    codes = base["codice_istat"].to_numpy()
    pop = base["popolazione"].to_numpy(float)
    pop65 = np.maximum(base["popolazione_65_piu"].to_numpy(float), 1.0)
    small = pop <= 5_000
    area_fe = base["ripartizione"].map(
        {"Nord-est": 4.5, "Nord-ovest": 3.6, "Centro": 3.5, "Sud": 2.8, "Isole": 2.4}
    ).to_numpy(float)
    alpha = area_fe + 0.25 * np.log10(pop / 5_000) + rng.normal(0, 0.5, len(base))
    year_fe = 0.12 * (years - 2014) + rng.normal(0, 0.1, len(years)) - 0.3 * (years == 2020)
    sd = 0.5 * np.clip(np.sqrt(2_000 / pop65), 1.0, 3.0)
    y0 = alpha[:, None] + year_fe[None, :] + sd[:, None] * rng.normal(size=(len(base), len(years)))
    y0 = np.maximum(y0, 0.05)

    g = base["ambito_sociale"].map(amb_g).to_numpy("int64")
    e, post = _year_cells(years, g)
    tau = np.where(post, (0.4 + 0.2 * e) * np.where(small, 1.5, 1.0)[:, None], 0.0)
    panel = _panel(codes, years, valore=y0 + tau, denominatore=pop65.astype("int64"), y0=y0, effetto=tau)

    treated = g > 0
    adoption = pd.DataFrame(
        {
            "unita": codes[treated],
            "codice_istat": codes[treated],
            "ambito_sociale": base["ambito_sociale"].to_numpy()[treated],
            "coorte": g[treated].astype(str),
            "data": base["ambito_sociale"].map(amb_date).to_numpy()[treated].astype(str),
        }
    )
    truth = {
        "indicatore": "copertura_adi_over65",
        "effect_unit": "punti percentuali (quota di residenti over 65 in ADI)",
        "unit_level": "comune",
        "cluster_level": "ambito_sociale",
        "frequency": "yearly",
        "event_time_unit": "years",
        "periods": [str(years[0]), str(years[-1])],
        "design": "staggered DiD; adoption by whole ambiti; selection on ambito size and Nord/Centro",
        "cohorts": _cohort_counts(adoption["coorte"]),
        "cohorts_ambiti": _cohort_counts(cohort),
        "treated_units": adoption["unita"].tolist(),
        "treated_ambiti": amb.index[sel].tolist(),
        **_truth_from_matrix(codes, g.astype(str), e, post, tau),
        "notes": [
            "parallel trends hold: comune fixed effects + common year shocks + noise",
            "true effect tau = (0.4 + 0.2*e) pp at event time e >= 0, x1.5 in comuni <= 5,000",
            "selection: probability ~ exp(log(pop_ambito/75,000) + 0.8*Nord/Centro); larger ambiti adopt earlier",
            "denominatore = residents aged 65+ (2023)",
        ],
    }
    return ThemeOutcome("coprogettazione-anziani", "copertura_adi_over65", panel, adoption, truth)


def patti_beni_comuni(base: pd.DataFrame, rng: np.random.Generator) -> ThemeOutcome:
    """Regulation on the commons + collaboration pacts, ~500 comuni in cohorts 2015-22.

    Outcome: active civic volunteers per 1,000 inhabitants, yearly.
    """
    years = np.arange(2014, 2024)
    codes = base["codice_istat"].to_numpy()
    pop = base["popolazione"].to_numpy(float)
    area = base["ripartizione"].to_numpy().astype(str)
    nord = np.isin(area, ("Nord-ovest", "Nord-est"))
    log_w = 0.9 * np.log(pop / 5_000) + 1.0 * nord + 0.3 * (area == "Centro")
    g, dates = _staggered_adoption(rng, log_w, 500, 2015, 2022)

    area_fe = pd.Series(area).map(
        {"Nord-est": 24.0, "Nord-ovest": 20.0, "Centro": 15.0, "Sud": 9.0, "Isole": 8.0}
    ).to_numpy(float)
    alpha = area_fe + rng.normal(0, 4, len(base))
    year_fe = 0.3 * (years - 2014) + rng.normal(0, 0.3, len(years)) - 2.0 * (years == 2020)
    sd = np.clip(np.sqrt(5_000 / pop), 1.0, 6.0)
    y0 = np.maximum(alpha[:, None] + year_fe[None, :] + sd[:, None] * rng.normal(size=(len(base), len(years))), 0.0)
    e, post = _year_cells(years, g)
    boost = np.where(area == "Nord-est", 1.4, 1.0)
    tau = np.where(post, np.minimum(1.0 + 0.25 * e, 2.5) * boost[:, None], 0.0)
    meta = {
        "effect_unit": "volontari civici per 1.000 abitanti",
        "design": "staggered DiD; selection on size and Nord",
        "notes": [
            "parallel trends hold",
            "true effect tau = min(1.0 + 0.25*e, 2.5) per 1,000 at event time e >= 0, x1.4 in Nord-est",
            "selection: probability ~ exp(0.9*log(pop/5,000) + 1.0*Nord + 0.3*Centro)",
            "adoption = date of the 'regolamento' act; patti follow it",
        ],
    }
    return _yearly_outcome("patti-beni-comuni", "volontari_civici_per_1000", codes, years, g, dates, y0, tau,
                           pop.astype("int64"), meta)


def finanza_sociale_neet(base: pd.DataFrame, rng: np.random.Generator) -> ThemeOutcome:
    """Pay-by-result social impact bonds in 18 provincial capitals from 2019: NO effect.

    Outcome: NEET rate 15-29, percent, yearly 2013-2023, capoluoghi only. The noise has an
    AR(1) component (rho = 0.5) so standard errors ignoring serial correlation over-reject.
    """
    years = np.arange(2013, 2024)
    cap = base[base["capoluogo"]].reset_index(drop=True)
    codes = cap["codice_istat"].to_numpy()
    pop = cap["popolazione"].to_numpy(float)
    area = cap["ripartizione"].to_numpy().astype(str)
    sel = gumbel_top_k(rng, 1.2 * np.log(pop / 100_000) + 1.0 * np.isin(area, NORD_CENTRO), 18)
    g = np.zeros(len(cap), dtype="int64")
    g[sel] = 2019
    dates = np.full(len(cap), "", dtype=object)
    dates[sel] = dates_in_years(rng, g[sel])

    age = population_by_age()
    young = age[(age["eta"] >= 15) & (age["eta"] <= 29)].groupby("codice_istat")["totale"].sum()
    denom = young.reindex(codes).fillna(0).to_numpy("int64")
    area_fe = pd.Series(area).map(
        {"Nord-est": 16.0, "Nord-ovest": 17.0, "Centro": 20.0, "Sud": 32.0, "Isole": 34.0}
    ).to_numpy(float)
    alpha = area_fe + rng.normal(0, 2.0, len(cap))
    year_fe = -0.6 * (years - 2013) + rng.normal(0, 0.4, len(years)) + 1.5 * (years == 2020)
    rho, sd_innov = 0.5, 1.2
    shocks = rng.normal(0, sd_innov, size=(len(cap), len(years)))
    ar = np.empty_like(shocks)
    ar[:, 0] = shocks[:, 0] / np.sqrt(1 - rho**2)  # stationary start
    for t in range(1, len(years)):
        ar[:, t] = rho * ar[:, t - 1] + shocks[:, t]
    y0 = np.clip(alpha[:, None] + year_fe[None, :] + ar, 2.0, 60.0)
    tau = np.zeros_like(y0)
    meta = {
        "effect_unit": "punti percentuali (tasso NEET 15-29)",
        "population": "capoluoghi di provincia",
        "design": "DiD with few treated units (18 capoluoghi, one cohort): wild cluster bootstrap",
        "notes": [
            "TRUE EFFECT IS ZERO at every event time",
            "capoluogo noise is AR(1) with rho = 0.5 (innovation sd 1.2 pp): errors not clustered by unit over-reject",
            "selection: probability ~ exp(1.2*log(pop/100,000) + 1.0*Nord/Centro)",
            "denominatore = residents aged 15-29 (2023)",
        ],
    }
    return _yearly_outcome("finanza-sociale-neet", "tasso_neet_15_29", codes, years, g, dates, y0, tau, denom, meta)


# Relative level of avoidable hospitalisations by calendar month (winter peak, August low).
SEASONALITY: Final = np.array([1.25, 1.15, 1.05, 0.97, 0.93, 0.92, 0.90, 0.85, 0.92, 0.98, 1.05, 1.18])
PRETREND_PER_MONTH: Final = -0.004
CASE_EFFECT: Final = -0.15


def case_comunita(base: pd.DataFrame, rng: np.random.Generator) -> ThemeOutcome:
    """Community health houses by health district, monthly cohorts 2021-07..2022-12.

    Outcome: avoidable hospitalisations per 1,000 residents aged 65+ per month, monthly
    2014-01..2023-12 for every comune, Poisson counts. Parallel trends are VIOLATED:
    treated districts drift by PRETREND_PER_MONTH per month relative to the others over
    the whole period; the true effect is the level shift CASE_EFFECT from adoption.
    """
    n_months = 120
    months = np.arange(n_months)
    dis = base.groupby("distretto_sanitario", sort=True).agg(
        pop=("popolazione", "sum"), area=("ripartizione", "first")
    )
    n_treated = int(round(0.3 * len(dis)))
    log_w = 0.8 * np.log(dis["pop"].to_numpy() / dis["pop"].median()) + 0.7 * dis["area"].isin(NORD_CENTRO).to_numpy()
    sel = gumbel_top_k(rng, log_w, n_treated)
    first_cohort = (np.datetime64("2021-07", "M") - FIRST_MONTH).astype("int64")
    dis_g = pd.Series(-1, index=dis.index, dtype="int64")
    dis_g.iloc[sel] = first_cohort + rng.integers(0, 18, size=len(sel))
    # The casa della comunità sits in the most populous comune of the district.
    host = base.sort_values(["popolazione", "codice_istat"], ascending=[False, True]).groupby(
        "distretto_sanitario", sort=True
    )["codice_istat"].first()

    codes = base["codice_istat"].to_numpy()
    pop65 = np.maximum(base["popolazione_65_piu"].to_numpy(float), 1.0)
    district = base["distretto_sanitario"].to_numpy()
    g = pd.Series(district).map(dis_g).to_numpy("int64")
    treated_unit = g >= 0
    area_fe = base["ripartizione"].map(
        {"Nord-est": -0.10, "Nord-ovest": -0.05, "Centro": 0.0, "Sud": 0.15, "Isole": 0.10}
    ).to_numpy(float)
    level = np.clip(2.0 * np.exp(area_fe + rng.normal(0, 0.15, len(base))), 1.0, 4.0)
    national = SEASONALITY[months % 12] * np.exp(-0.015 * months / 12)
    drift = PRETREND_PER_MONTH * (months - 60)  # centred on 2019-01
    mu0 = level[:, None] * national[None, :] + treated_unit[:, None] * drift[None, :]
    e = months[None, :] - g[:, None]
    post = treated_unit[:, None] & (e >= 0)
    tau = np.where(post, CASE_EFFECT, 0.0)
    exposure = pop65 / 1_000
    counts = rng.poisson((mu0 + tau) * exposure[:, None])
    valore = counts / exposure[:, None]
    panel = _panel(
        codes, month_labels(n_months), valore=valore, denominatore=pop65.astype("int64"), y0=mu0, effetto=tau
    )

    t_dis = dis.index[sel].to_numpy()
    g_dis = dis_g.iloc[sel].to_numpy()
    g_label = month_labels(n_months)[g_dis]
    adoption = pd.DataFrame(
        {
            "unita": t_dis,
            "codice_istat": host.reindex(t_dis).to_numpy(),
            "coorte": g_label,
            "data": dates_in_months(rng, g_dis),
        }
    )
    # District-level truth: the effect is the same in every comune, so the district's
    # (65+-weighted) effect is CASE_EFFECT in every post-adoption month.
    e_dis = months[None, :] - g_dis[:, None]
    post_dis = e_dis >= 0
    rows, cols = np.nonzero(post_dis)
    summary = summarise_effects(t_dis[rows], g_label[rows], e_dis[rows, cols], np.full(len(rows), CASE_EFFECT))
    did_bias = PRETREND_PER_MONTH * float(np.mean(e_dis[rows, cols] + 1))
    truth = {
        "indicatore": "ospedalizzazioni_evitabili_over65",
        "effect_unit": "ricoveri evitabili per 1.000 residenti over 65 al mese",
        "unit_level": "distretto_sanitario",
        "frequency": "monthly",
        "event_time_unit": "months",
        "periods": ["2014-01", "2023-12"],
        "design": "event study + interrupted time series; adoption by health district; parallel trends violated",
        "cohorts": _cohort_counts(g_label),
        "treated_units": t_dis.tolist(),
        "host_comuni": adoption["codice_istat"].tolist(),
        **summary,
        "pretrend_per_month": PRETREND_PER_MONTH,
        "did_bias_from_pretrend": round(did_bias, 6),
        "notes": [
            f"parallel trends VIOLATED: treated districts have a differential linear trend of "
            f"{PRETREND_PER_MONTH} per 1,000 per month relative to the others over the whole "
            "period (2014-01..2023-12), continuing after adoption",
            f"true effect: level shift of {CASE_EFFECT} per 1,000 per month from the adoption month "
            "beyond the continuing differential trend (an ITS on the treated series with its own trend recovers it)",
            "a DiD/ATT(g,t) with base period g-1 is biased by pretrend_per_month*(e+1) at event time e; "
            "did_bias_from_pretrend is that bias averaged over the treated post-period cells",
            "national seasonality (Jan x1.25, Aug x0.85) and a national decline of 1.5% a year",
            "values are Poisson counts / (residents 65+/1,000): small comuni are noisy; y0 is the expected rate",
            "selection: probability ~ exp(0.8*log(pop/median) + 0.7*Nord/Centro); cohort month uniform",
            "denominatore = residents aged 65+ (2023); aggregate comuni to districts weighting by it",
        ],
    }
    return ThemeOutcome("case-comunita", "ospedalizzazioni_evitabili_over65", panel, adoption, truth)


BOLOGNA: Final = "037006"


def citta_pilota(base: pd.DataFrame, rng: np.random.Generator) -> ThemeOutcome:
    """Shared administration in Bologna from 2015 against the other comuni > 100,000.

    Outcome: share of residents active in civic associations, percent, yearly 2005-2023,
    from a three-factor model in which Bologna's loadings and level are a convex
    combination of five donors' (so a synthetic control can reproduce its path).
    """
    years = np.arange(2005, 2024)
    pool = base[(base["popolazione"] > 100_000) | (base["codice_istat"] == BOLOGNA)].reset_index(drop=True)
    codes = pool["codice_istat"].to_numpy()
    is_bo = codes == BOLOGNA
    n, t = len(pool), len(years)
    area_fe = pool["ripartizione"].map(
        {"Nord-est": 16.0, "Nord-ovest": 14.0, "Centro": 13.0, "Sud": 9.0, "Isole": 8.5}
    ).to_numpy(float)
    mu = area_fe + rng.normal(0, 1.5, n)
    loadings = np.column_stack([rng.normal(1.0, 0.3, n), rng.normal(0, 1, n), rng.normal(0, 1, n)])
    steps = np.arange(t)
    factors = np.column_stack(
        [
            0.12 * steps + np.cumsum(rng.normal(0, 0.15, t)),
            np.sin(2 * np.pi * steps / 7) + rng.normal(0, 0.2, t),
            np.cumsum(rng.normal(0, 0.3, t)),
        ]
    )
    candidates = np.flatnonzero(~is_bo & np.isin(pool["ripartizione"].to_numpy().astype(str), NORD_CENTRO))
    donors = np.sort(rng.choice(candidates, size=5, replace=False))
    weights = rng.dirichlet(np.ones(5))
    i_bo = int(np.flatnonzero(is_bo)[0])
    mu[i_bo] = weights @ mu[donors]
    loadings[i_bo] = weights @ loadings[donors]
    y0 = mu[:, None] + loadings @ factors.T + rng.normal(0, 0.15, size=(n, t))
    g = np.where(is_bo, 2015, 0)
    e, post = _year_cells(years, g)
    tau = np.where(post, 0.5 + 1.5 * e / 8, 0.0)
    denom = pool["popolazione"].to_numpy("int64")
    panel = _panel(codes, years, valore=y0 + tau, denominatore=denom, y0=y0, effetto=tau)
    adoption = pd.DataFrame(
        {"unita": [BOLOGNA], "codice_istat": [BOLOGNA], "coorte": ["2015"], "data": ["2015-01-15"]}
    )
    summary = _truth_from_matrix(codes, g.astype(str), e, post, tau)
    truth = {
        "indicatore": "indice_partecipazione_civica",
        "effect_unit": "punti percentuali (quota di residenti attivi in associazioni civiche)",
        "unit_level": "comune",
        "frequency": "yearly",
        "event_time_unit": "years",
        "periods": [str(years[0]), str(years[-1])],
        "design": "synthetic control: one treated city (Bologna) against the other comuni > 100,000",
        "cohorts": {"2015": 1},
        "treated_units": [BOLOGNA],
        "donor_units": codes[~is_bo].tolist(),
        **summary,
        "effect_by_year": {str(y): round(float(v), 6) for y, v in zip(years[post[i_bo]], tau[i_bo, post[i_bo]])},
        "true_donor_weights": {str(codes[d]): round(float(w), 6) for d, w in zip(donors, weights)},
        "notes": [
            "Bologna's regulation on the commons dates from 2014; the first treated year is 2015",
            "true effect rises linearly from 0.5 (2015) to 2.0 points (2023)",
            "three-factor model; Bologna's level and loadings are the convex combination "
            "true_donor_weights of five donors, so its untreated path is close to a synthetic control",
            "idiosyncratic noise sd 0.15 points a year in every city; only 10 pre-treatment years, "
            "so placebo cities can be over-fitted by 43 donors (in-space placebo p-values vary by seed)",
        ],
    }
    return ThemeOutcome("citta-pilota", "indice_partecipazione_civica", panel, adoption, truth)


def cooperative_aree_interne(base: pd.DataFrame, rng: np.random.Generator) -> ThemeOutcome:
    """Community cooperatives in ~250 small comuni, cohorts 2016-2021.

    Outcome: net migration per 1,000 inhabitants, yearly 2014-2023, all comuni.
    """
    years = np.arange(2014, 2024)
    codes = base["codice_istat"].to_numpy()
    pop = base["popolazione"].to_numpy(float)
    area = base["ripartizione"].to_numpy().astype(str)
    quota = base["quota_over65"].to_numpy(float)
    old = base["indice_vecchiaia"].to_numpy(float)
    old = np.where(np.isfinite(old), old, np.nanmax(old))
    small = pop <= 5_000
    z_old = (np.log(old) - np.log(old[small]).mean()) / np.log(old[small]).std()
    apennine = np.isin(base["codice_regione"].to_numpy().astype(str), APPENNINO_CENTRALE)
    log_w = (
        -0.6 * np.log(pop / 1_000) + 0.8 * z_old + 2.0 * np.isin(area, SUD_ISOLE) + 1.5 * apennine
    )
    log_w = np.where(small, log_w, -np.inf)
    g, dates = _staggered_adoption(rng, log_w, 250, 2016, 2021)

    area_fe = pd.Series(area).map(
        {"Nord-est": 4.0, "Nord-ovest": 3.0, "Centro": 2.0, "Sud": -4.0, "Isole": -4.0}
    ).to_numpy(float)
    alpha = area_fe - 2.0 * small + rng.normal(0, 3.0, len(base))
    year_fe = rng.normal(0, 1.0, len(years))
    sd = np.minimum(15.0, 1.5 * np.sqrt(np.maximum(1.0, 5_000 / pop)))
    y0 = alpha[:, None] + year_fe[None, :] + sd[:, None] * rng.normal(size=(len(base), len(years)))
    e, post = _year_cells(years, g)
    moderator = np.clip(1 + 3 * (quota - 0.28), 0.5, 2.0)
    tau = np.where(post, (1.5 + 0.15 * e) * moderator[:, None], 0.0)
    meta = {
        "effect_unit": "saldo migratorio per 1.000 abitanti",
        "design": "staggered DiD; small comuni selected on size, old-age index and Sud/Apennines",
        "notes": [
            "parallel trends hold",
            "true effect tau = (1.5 + 0.15*e) * clip(1 + 3*(quota_over65 - 0.28), 0.5, 2) per 1,000 "
            "at event time e >= 0 (quota_over65 as a share 0-1): larger where the population is older",
            "selection among comuni <= 5,000: probability ~ exp(-0.6*log(pop/1,000) + 0.8*z(log old-age index) "
            "+ 2.0*Sud/Isole + 1.5*central Apennine region)",
            "noise sd 1.5*sqrt(5,000/pop) per 1,000 (capped at 15): tiny comuni are very noisy",
        ],
    }
    return _yearly_outcome("cooperative-aree-interne", "saldo_migratorio_per_1000", codes, years, g, dates, y0, tau,
                           pop.astype("int64"), meta)


THEMES: Final = {
    "coprogettazione-anziani": coprogettazione_anziani,
    "patti-beni-comuni": patti_beni_comuni,
    "finanza-sociale-neet": finanza_sociale_neet,
    "case-comunita": case_comunita,
    "citta-pilota": citta_pilota,
    "cooperative-aree-interne": cooperative_aree_interne,
}
