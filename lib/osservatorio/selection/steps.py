"""Stage 20 steps: eligible units, ranked stratified proposal, matched comparisons with
balance, power and minimum detectable effect of the planned design, export."""

from __future__ import annotations

import numpy as np
import pandas as pd

from osservatorio.publishing import show
from osservatorio.publishing.safe import write_csv
from osservatorio.publishing.workbook import write_xlsx
from osservatorio.indicators.tables import aggregate, comune_indicators
from osservatorio.selection.power import design_table, panel_icc, power
from osservatorio.selection.matching import (BALANCE_COLUMNS, DEFAULT_CALIPER, MATCH_COVARIATES, balance_table, eligibility, exclusion_counts,
                         km_from_capoluogo, match, rank_by_need, stratified_proposal, unit_outcomes)
from osservatorio.running.stage import StageContext
from osservatorio.publishing.text import fmt_number, t
from osservatorio.indicators.steps import headers

UNIT_CONTEXT = ["ripartizione", "classe_ampiezza", "popolazione", "quota_over65", "regione", "provincia"]


def _show(df: pd.DataFrame, lang: str, **kw) -> None:
    show.table(headers(df, lang), lang, **kw)


def _periods_per_year(ctx: StageContext) -> int:
    return 12 if ctx.theme.frequency == "month" else 1


def _comune_indicators(ctx: StageContext) -> pd.DataFrame:
    path = ctx.data_dir / "indicatori_comuni.parquet"
    if path.is_file():
        return pd.read_parquet(path)
    return comune_indicators(ctx.sources.tables, ctx.theme.pilot_tema)


def _units(ctx: StageContext) -> pd.DataFrame:
    """One row per analysis unit: context, recent outcome and trend, Third Sector
    density, distance from the nearest provincial capital, a display name."""
    th = ctx.theme
    panel = ctx.panel()
    units = panel.groupby("unit")[[c for c in UNIT_CONTEXT if c in panel.columns]].first()
    units = units.join(unit_outcomes(panel, _periods_per_year(ctx)))
    ind = _comune_indicators(ctx)
    dist = ind["codice_istat"].map(km_from_capoluogo())
    if th.unit_level == "comune":
        by = ind.set_index("codice_istat")
        units["ets_per_10000"] = by["ets_per_10000"].reindex(units.index)
        units["distanza_capoluogo_km"] = dist.set_axis(ind["codice_istat"]).reindex(units.index)
        units["nome"] = by["comune"].reindex(units.index) + " (" + by["sigla_provincia"].reindex(units.index) + ")"
    else:
        level = th.unit_level
        area = aggregate(ind, level).set_index(level)
        units["ets_per_10000"] = area["ets_per_10000"].reindex(units.index)
        w = ind["popolazione"].fillna(0)
        ok = ind[level].notna()
        units["distanza_capoluogo_km"] = ((dist * w)[ok].groupby(ind[level][ok]).sum()
                                          / w[ok].groupby(ind[level][ok]).sum()).reindex(units.index)
        big = ind[ok].sort_values("popolazione", ascending=False).groupby(level)["comune"]
        units["nome"] = units.index.to_series().map(big.agg(lambda s: ", ".join(s.head(3)) + (" ..." if len(s) > 3 else "")))
    units["log_popolazione"] = np.log(units["popolazione"])
    return units.rename_axis("unit").reset_index()


def _treated_and_prior(ctx: StageContext, units: pd.DataFrame) -> tuple[set[str], set[str]]:
    """Units that already have the practice (pilots of the theme, whenever they start)
    and units with a prior act of the excluded type (districts: any of their comuni)."""
    th = ctx.theme
    panel = ctx.panel()
    treated = set(panel.loc[panel["cohort"] > 0, "unit"])
    pil = ctx.sources["pilot"]
    codes = set(pil.loc[pil["tema"] == th.pilot_tema, "codice_istat"].dropna())
    acts = ctx.sources.tables.get("atti_amministrazione_condivisa")
    prior = set()
    if th.selection.exclude_prior_act and acts is not None:
        prior = set(acts.loc[acts["tipo"] == th.selection.exclude_prior_act, "codice_istat"].dropna())
    if th.unit_level != "comune":
        amb = ctx.sources["ambiti"].dropna(subset=["codice_istat"]).set_index("codice_istat")[th.unit_level]
        codes = set(amb.reindex(list(codes)).dropna())
        prior = set(amb.reindex(list(prior)).dropna())
    return treated | codes, prior


def candidates(ctx: StageContext) -> pd.DataFrame:
    """Eligibility rules of the theme, how many units each excludes, eligible by stratum."""
    th, lang = ctx.theme, ctx.lang
    show.heading("sel.title", lang)
    units = _units(ctx)
    treated, prior = _treated_and_prior(ctx, units)
    flags = eligibility(units, th.selection, treated, prior)
    flags.to_parquet(ctx.data_dir / "ammissibilita.parquet", index=False)
    cand = rank_by_need(flags[flags["ammissibile"]], th.higher_is_better)
    cand.to_parquet(ctx.data_dir / "candidati.parquet", index=False)
    show.para("sel.candidates", lang, n=len(cand), total=len(units), level=t(f"unit.{th.unit_level}", lang),
              rules=_rules_text(th.selection, lang))
    counts = exclusion_counts(flags)
    counts["regola"] = counts["regola"].map(lambda r: t(f"sel.rule.{r}", lang))
    _show(counts, lang, digits=0, caption=t("sel.excluded", lang))
    if th.selection.inner_area_min_km is not None:
        show.para("sel.inner_area", lang, km=fmt_number(th.selection.inner_area_min_km, lang, 0))
    summary = cand.groupby(["ripartizione", "classe_ampiezza"], observed=True).size().unstack(fill_value=0)
    _show(summary.reset_index(), lang, digits=0, caption=t("sel.strata", lang))
    return cand


def _rules_text(rules, lang: str) -> str:
    parts = []
    if rules.min_population is not None:
        parts.append(t("sel.rt.min_pop", lang, v=fmt_number(rules.min_population, lang, 0)))
    if rules.max_population is not None:
        parts.append(t("sel.rt.max_pop", lang, v=fmt_number(rules.max_population, lang, 0)))
    if rules.macro_areas:
        parts.append(t("sel.rt.macro", lang, v=", ".join(rules.macro_areas)))
    if rules.regions:
        parts.append(t("sel.rt.regions", lang, v=", ".join(rules.regions)))
    if rules.size_classes:
        parts.append(t("sel.rt.classes", lang, v=", ".join(rules.size_classes)))
    if rules.min_share_over65 is not None:
        parts.append(t("sel.rt.over65", lang, v=fmt_number(100 * rules.min_share_over65, lang, 1)))
    if rules.inner_area_min_km is not None:
        parts.append(t("sel.rt.inner", lang, v=fmt_number(rules.inner_area_min_km, lang, 0)))
    if rules.exclude_prior_act:
        parts.append(t("sel.rt.act", lang, v=rules.exclude_prior_act))
    return "; ".join(parts) if parts else t("sel.rt.none", lang)


def _reason(r: pd.Series, th, lang: str) -> str:
    return t("sel.reason", lang, stratum=r["strato"], k=int(r["posti_strato"]), n=int(r["ammissibili_strato"]),
             rank=int(r["rango_strato"]), value=fmt_number(r["esito_base"], lang, 2),
             median=fmt_number(r["mediana_strato"], lang, 2), rules=_rules_text(th.selection, lang))


def proposal(ctx: StageContext, candidates: pd.DataFrame) -> pd.DataFrame:
    """The stratified proposal among the ranked ``candidates``, with the reason each unit was chosen."""
    th, lang = ctx.theme, ctx.lang
    cand = candidates
    prop = stratified_proposal(cand, th.selection.n_pilots)
    prop["motivo"] = [_reason(r, th, lang) for _, r in prop.iterrows()]
    prop.to_parquet(ctx.data_dir / "proposta.parquet", index=False)
    show.heading("sel.proposal.title", lang, level=3)
    show.para("sel.proposal", lang, n=len(prop), asked=th.selection.n_pilots, strata=prop["strato"].nunique(),
              outcome=getattr(th.outcome_label, lang), better=t(f"sel.better.{th.higher_is_better}", lang))
    _show(prop[["unit", "nome", "strato", "popolazione", "esito_base", "rango_strato", "motivo"]], lang)
    return prop


def comparisons(ctx: StageContext, candidates: pd.DataFrame, proposal: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Matched comparison units for the ``proposal`` among the other ``candidates``, and the
    balance table before/after matching: ``{"confronti": ..., "bilanciamento": ...}``."""
    th, lang = ctx.theme, ctx.lang
    sel = th.selection
    cand, prop = candidates, proposal
    covs = [c for c in MATCH_COVARIATES if cand[c].notna().all() and cand[c].std() > 0]
    pool = cand[~cand["unit"].isin(prop["unit"])].reset_index(drop=True)
    if prop.empty or pool.empty or not covs:  # e.g. pilots proposed in one small region only
        show.heading("sel.match.title", lang, level=3)
        show.para("sel.match.too_few", lang, k=len(prop), n=len(pool))
        matched = pd.DataFrame(columns=["unit_pilota", "unit_confronto", "distanza", "nome_pilota", "nome_confronto"])
        bal = pd.DataFrame(columns=BALANCE_COLUMNS)
        matched.to_parquet(ctx.data_dir / "confronti.parquet", index=False)
        matched.to_csv(ctx.run_dir / "confronti.csv", index=False)
        bal.to_csv(ctx.run_dir / "bilanciamento.csv", index=False)
        return {"confronti": matched, "bilanciamento": bal}
    matched = match(prop, pool, covs, sel.matching, sel.caliper, sel.n_matches)
    names = cand.set_index("unit")["nome"]
    matched["nome_pilota"] = matched["unit_pilota"].map(names)
    matched["nome_confronto"] = matched["unit_confronto"].map(names)
    matched.to_parquet(ctx.data_dir / "confronti.parquet", index=False)
    write_csv(matched, ctx.run_dir / "confronti.csv")
    show.heading("sel.match.title", lang, level=3)
    caliper = sel.caliper if sel.caliper is not None else DEFAULT_CALIPER[sel.matching]
    show.para(f"sel.match.{sel.matching}", lang, n=len(matched), k=len(prop), caliper=fmt_number(caliper, lang, 2),
              unmatched=len(prop) - matched["unit_pilota"].nunique(), covs=", ".join(t(f"col.{c}", lang) for c in covs))
    _show(matched[["nome_pilota", "nome_confronto", "distanza"]], lang, digits=3)
    bal = balance_table(prop, pool, matched, covs)
    bal["variabile"] = bal["variabile"].map(lambda c: t(f"col.{c}", lang))
    write_csv(bal, ctx.run_dir / "bilanciamento.csv")
    _show(bal, lang, digits=3, caption=t("sel.balance", lang))
    worst = bal["smd_dopo"].abs().max()
    show.para("sel.balance.ok" if worst < 0.1 else "sel.balance.warn", lang, worst=fmt_number(worst, lang, 2))
    return {"confronti": matched, "bilanciamento": bal}


def power_analysis(ctx: StageContext, candidates: pd.DataFrame, proposal: pd.DataFrame,
                   matches: dict[str, pd.DataFrame]) -> dict:
    """Power and MDE of the planned design: proposed and matched units, the theme's
    planned periods, ICC and variance estimated on the eligible units' outcome data.
    Returns ``{"tabella": MDE by design, "sintesi": the figures exported}``."""
    import matplotlib.pyplot as plt

    th, lang = ctx.theme, ctx.lang
    sel = th.selection
    prop, matched, cand = proposal, matches["confronti"], candidates[["unit"]]
    panel = ctx.panel()
    show.heading("sel.power.title", lang, level=3)
    if len(prop) + len(matched) <= 2:  # a t test needs n_t + n_c > 2
        show.para("sel.power.none", lang, nt=len(prop), nc=len(matched))
        result = {"n_trattate": len(prop), "n_confronto": len(matched)}
        ctx.write_json("potenza.json", result)
        return {"tabella": pd.DataFrame(columns=["disegno", "mde", "mde_su_media"]), "sintesi": result}
    try:
        est = panel_icc(panel[panel["unit"].isin(cand["unit"])])  # the units the design would draw from
    except ValueError:  # too few eligible units (one small region): every unit of the panel
        est = panel_icc(panel)
        show.para("sel.power.all_units", lang, n=len(cand))
    n_t, n_c = len(prop), max(len(matched), 1)
    m_pre = min(sel.pre_periods, est["periods"])
    tab = design_table(est["sigma2"], est["icc"], n_t, n_c, sel.post_periods, m_pre, sel.alpha, sel.target_power)
    base = float(np.average(prop["esito_base"])) if len(prop) else np.nan
    tab["mde_su_media"] = tab["mde"] / abs(base) if base else np.nan
    result = {"icc": est["icc"], "sigma2": est["sigma2"], "unita_stima": est["clusters"], **{
        f"mde_{r.disegno}": r.mde for r in tab.itertuples()}, "media_base_pilota": base, "n_trattate": n_t,
        "n_confronto": n_c, "periodi_prima": m_pre, "periodi_dopo": sel.post_periods, "alpha": sel.alpha,
        "potenza_obiettivo": sel.target_power}
    ctx.write_json("potenza.json", result)
    show.para("sel.power.intro", lang, icc=fmt_number(est["icc"], lang, 3), sd=fmt_number(np.sqrt(est["sigma2"]), lang, 3),
              units=est["clusters"], level=t(f"unit.{th.unit_level}", lang), nt=n_t, nc=n_c, pre=m_pre,
              post=sel.post_periods, alpha=fmt_number(sel.alpha, lang, 2),
              power=fmt_number(100 * sel.target_power, lang, 0))
    tab_show = tab.assign(disegno=tab["disegno"].map(lambda d: t(f"sel.design.{d}", lang)))
    _show(tab_show, lang, digits=3)
    show.para("sel.power.read", lang, mde=fmt_number(tab.set_index("disegno").at["did", "mde"], lang, 3),
              unit=getattr(th.outcome_unit, lang),
              rel=fmt_number(100 * tab.set_index("disegno").at["did", "mde_su_media"], lang, 1))
    fig, ax = plt.subplots(figsize=(7, 3.6))
    top = 2.0 * tab["mde"].max()
    x = np.linspace(0, top, 200)
    for design, colour in (("did", "#d62728"), ("post", "#1f77b4")):
        ax.plot(x, power(x, est["sigma2"], est["icc"], n_t, n_c, sel.post_periods, m_pre, design, sel.alpha),
                color=colour, label=t(f"sel.design.{design}", lang))
    ax.axhline(sel.target_power, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel(t("sel.power.x", lang, unit=getattr(th.outcome_unit, lang)))
    ax.set_ylabel(t("sel.power.y", lang))
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    ctx.save_figure(fig, "potenza")
    show.figure(fig)
    return {"tabella": tab, "sintesi": result}


def export(ctx: StageContext, proposal: pd.DataFrame, matches: dict[str, pd.DataFrame], power: dict) -> pd.DataFrame:
    """The proposal with matched comparisons and reasons, as CSV and XLSX, and the methods text."""
    th, lang = ctx.theme, ctx.lang
    prop, matched = proposal, matches["confronti"]
    comp = matched.groupby("unit_pilota").agg(confronto=("unit_confronto", lambda s: "; ".join(s)),
                                              nome_confronto=("nome_confronto", lambda s: "; ".join(s)))
    cols = ["unit", "nome", "regione", "ripartizione", "classe_ampiezza", "popolazione", "quota_over65",
            "distanza_capoluogo_km", "ets_per_10000", "esito_base", "esito_tendenza", "strato", "rango_strato",
            "motivo"]
    out = prop[[c for c in cols if c in prop.columns]].join(comp, on="unit")
    out = out.rename(columns={"unit": "codice_istat" if th.unit_level == "comune" else th.unit_level})
    write_csv(out, ctx.run_dir / "proposta_pilota.csv")
    write_xlsx(ctx.run_dir / "proposta_pilota.xlsx", {
        "proposta": out, "confronti": matched, "bilanciamento": matches["bilanciamento"],
        "potenza": pd.DataFrame([power["sintesi"]])})
    show.para("sel.export", lang)
    (ctx.data_dir / "methods_20.md").write_text(t("sel.methods", lang), encoding="utf-8")
    return out
