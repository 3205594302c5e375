"""Stage 10 steps: sources and name matching, indicators per comune and area, maps,
governance network, health districts, outcome trends and gaps."""

from __future__ import annotations

import pandas as pd

from osservatorio.publishing import show
from osservatorio.publishing.safe import write_csv
from osservatorio.publishing.workbook import write_xlsx
from osservatorio.indicators.shared import shared_indicators
from osservatorio.indicators.tables import (AREA_LEVELS, aggregate, largest_gaps, outcome_by_unit, outcome_summary,
                                            theme_comune_indicators)
from osservatorio.indicators.panel import int_to_period
from osservatorio.running.stage import StageContext
from osservatorio.publishing.text import fmt_number, labels, t

MAIN_COLUMNS = ["comuni", "popolazione", "ets_per_10000", "volontari_per_1000", "dipendenti_per_1000", "atti_n",
                "finanza_sociale_euro_per_abitante", "copertura_pilota_popolazione", "esito_inizio", "esito_fine"]
SHEETS = {"ambito_sociale": "ambiti_sociali", "distretto_sanitario": "distretti_sanitari", "provincia": "province",
          "regione": "regioni", "ripartizione": "ripartizioni"}


def headers(df: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Columns renamed with their ``col.<name>`` label where one exists."""
    known = labels()
    return df.rename(columns={c: t(f"col.{c}", lang) for c in df.columns if f"col.{c}" in known})


def _show(df: pd.DataFrame, lang: str, **kw) -> None:
    show.table(headers(df, lang), lang, **kw)


def intro(ctx: StageContext) -> None:
    th, lang = ctx.theme, ctx.lang
    show.heading("ind.title", lang)
    show.para("ind.intro", lang, question=getattr(th.question, lang), outcome=getattr(th.outcome_label, lang),
              start=th.period_start, end=th.period_end, level=t(f"unit.{th.unit_level}", lang))


def sources_summary(ctx: StageContext) -> pd.DataFrame:
    """Rows per source table, how their comuni were coded, and the names that could not
    be matched to one ISTAT code (exported as abbinamento_comuni.csv/.xlsx)."""
    lang, src = ctx.lang, ctx.sources
    table = pd.DataFrame([{"tabella": name, "file": src.files[name].name, "righe": len(df)}
                          for name, df in src.tables.items()])
    if len(src.match_summary):
        table = table.merge(src.match_summary.drop(columns="righe"), on="tabella", how="left")
    show.heading("ind.sources.title", lang, level=3)
    _show(table, lang, digits=0)
    report = src.match_report
    write_csv(report, ctx.data_dir / "match_report.csv")
    write_csv(report, ctx.run_dir / "abbinamento_comuni.csv")
    write_xlsx(ctx.run_dir / "abbinamento_comuni.xlsx", {"Sheet1": report})
    if len(report):
        show.para("ind.match.problems", lang, n=int(report["n_righe"].sum()), names=len(report))
        _show(report.assign(stato=report["stato"].map(lambda v: t(f"ind.stato.{v}", lang))), lang, digits=0)
    else:
        show.para("ind.match.ok", lang)
    return table


def _outcomes(ctx: StageContext) -> pd.DataFrame:
    th = ctx.theme
    return outcome_by_unit(ctx.sources["esiti"], th.outcome, th.period_start, th.period_end)


def indicators(ctx: StageContext) -> dict[str, pd.DataFrame]:
    """Indicators per comune and per area: a frame per level (``"comune"`` and the five
    area levels), written to the run folder and to indicatori.xlsx; tables by macro-area
    and region."""
    th, lang = ctx.theme, ctx.lang
    outcome = _outcomes(ctx)
    tables = ctx.sources.tables
    shared = shared_indicators(tables)  # the theme-independent part, computed once per data version
    ind = theme_comune_indicators(shared.comuni, tables.get("pilot"), th.pilot_tema, outcome)
    ind.to_parquet(ctx.data_dir / "indicatori_comuni.parquet", index=False)
    areas = {level: aggregate(ind, level, outcome_by_area=outcome, sums=shared.sums[level]) for level in AREA_LEVELS}
    for level, df in areas.items():
        df.to_parquet(ctx.data_dir / f"indicatori_{level}.parquet", index=False)
    write_xlsx(ctx.run_dir / "indicatori.xlsx", {"comuni": ind, **{SHEETS[lv]: df for lv, df in areas.items()}})
    show.heading("ind.table.title", lang, level=3)
    show.para("ind.table.note", lang, outcome=getattr(th.outcome_label, lang), start=th.period_start[:4],
              end=th.period_end[:4])
    for level, key in (("ripartizione", "ind.table.macro"), ("regione", "ind.table.region")):
        df = areas[level]
        _show(df[[level, *[c for c in MAIN_COLUMNS if c in df.columns]]], lang, digits=2, caption=t(key, lang))
    macro = areas["ripartizione"].set_index("ripartizione")
    sections = [c for c in macro.columns if c.startswith("ets_") and c.endswith("_per_10000") and c != "ets_per_10000"]
    _show(macro[sections].reset_index(), lang, digits=2, caption=t("ind.table.sections", lang))
    acts = [c for c in macro.columns if c.startswith("atti_") and c.endswith("_n")]
    _show(macro[acts].reset_index(), lang, digits=0, caption=t("ind.table.acts", lang))
    return {"comune": ind, **areas}


def _unit_values(indicators: dict[str, pd.DataFrame], level: str, column: str) -> pd.Series:
    """``column`` at the theme's unit level, painted on the comuni (codice_istat index)."""
    ind = indicators["comune"]
    if level == "comune":
        return ind.set_index("codice_istat")[column]
    area = indicators[level].set_index(level)[column]
    return ind.set_index("codice_istat")[level].map(area)


def indicator_map(ctx: StageContext, indicators: dict[str, pd.DataFrame]) -> None:
    """Choropleths on the 2023 boundaries: Third Sector density and the theme's outcome
    at the end of the window (pilots outlined), from the frames of ``indicators``."""
    from osservatorio.publishing.maps import choropleth

    th, lang = ctx.theme, ctx.lang
    ind = indicators["comune"]
    pilots = ind.loc[ind["pilota_n"] > 0, "codice_istat"].tolist() if "pilota_n" in ind.columns else []
    show.heading("ind.map.heading", lang, level=3)
    if "ets_per_10000" in ind.columns:
        values = ind.set_index("codice_istat")["ets_per_10000"]
        fig = choropleth(values.clip(upper=values.quantile(0.98)), t("ind.map.title", lang), t("ind.map.legend", lang),
                         cmap="YlGnBu", highlight=pilots, missing_label=t("ind.map.missing", lang))
        ctx.save_figure(fig, "mappa_ets")
        show.figure(fig)
    outcome = _unit_values(indicators, th.unit_level, "esito_fine").dropna()
    if len(outcome):
        lo, hi = outcome.quantile([0.02, 0.98])
        fig = choropleth(outcome.clip(lo, hi), t("ind.map.outcome", lang, outcome=getattr(th.outcome_label, lang),
                                                 year=th.period_end[:4]),
                         getattr(th.outcome_unit, lang), cmap="RdYlGn" if th.higher_is_better else "RdYlGn_r",
                         highlight=pilots, missing_label=t("ind.map.missing", lang))
        ctx.save_figure(fig, "mappa_esito")
        show.figure(fig)
    show.para("ind.map.note", lang)


def network(ctx: StageContext, indicators: dict[str, pd.DataFrame]) -> dict:
    """Governance network of the theme (acts with tema == theme id; all acts if none):
    measures, the most connected entities, and a map of comuni sharing partners."""
    from osservatorio.publishing.maps import network_map
    from osservatorio.indicators.network import comune_links, comune_measures, entity_measures, partner_edges, summary

    th, lang = ctx.theme, ctx.lang
    acts = ctx.sources.tables.get("atti_amministrazione_condivisa")
    show.heading("ind.net.title", lang, level=3)
    if acts is None:
        show.para("ind.net.none", lang)
        return {}
    edges, scope = partner_edges(acts, tema=th.pilot_tema), "theme"
    if edges.empty:
        edges, scope = partner_edges(acts), "all"
    stats = summary(edges)
    ctx.write_json("rete.json", {"ambito": scope, **stats})
    if edges.empty:
        show.para("ind.net.none", lang)
        return stats
    names = ind_names(indicators)
    per_comune = comune_measures(edges)
    write_csv(per_comune.rename_axis("codice_istat").reset_index().assign(
        comune=lambda d: d["codice_istat"].map(names)), ctx.run_dir / "rete_comuni.csv")
    entities = entity_measures(edges)
    write_csv(entities, ctx.run_dir / "rete_enti.csv")
    write_csv(edges, ctx.data_dir / "rete_legami.csv")
    shown = {k: fmt_number(v, lang, 0) if isinstance(v, int) else v for k, v in stats.items()}
    shown.update(quota_enti_condivisi=fmt_number(100 * stats["quota_enti_condivisi"], lang, 1) + "%",
                 partner_medi_per_comune=fmt_number(stats["partner_medi_per_comune"], lang, 1),
                 densita=fmt_number(stats["densita"], lang, 4))
    show.para(f"ind.net.summary.{scope}", lang, **shown)
    links = comune_links(edges)
    fig = network_map(per_comune["partner"], links, t("ind.net.fig", lang), t("ind.net.nodes", lang),
                      t("ind.net.links", lang))
    ctx.save_figure(fig, "rete_governance")
    show.figure(fig)
    ets = ctx.sources.tables.get("enti_terzo_settore")
    top = entities[entities["comuni"] > 1].head(10)
    if ets is not None:
        info = ets.drop_duplicates("codice_fiscale").set_index("codice_fiscale")
        top = top.assign(denominazione=top["codice_fiscale"].map(info["denominazione"]),
                         sezione=top["codice_fiscale"].map(info["sezione"]))
    if len(top):
        _show(top, lang, digits=0, caption=t("ind.net.top", lang))
    top_c = per_comune.sort_values(["partner", "legami_atti"], ascending=False).head(10)
    _show(top_c.rename_axis("codice_istat").reset_index().assign(comune=lambda d: d["codice_istat"].map(names)),
          lang, digits=0, caption=t("ind.net.top_comuni", lang))
    return stats


def ind_names(indicators: dict[str, pd.DataFrame]) -> pd.Series:
    return indicators["comune"].set_index("codice_istat")["comune"]


def districts(ctx: StageContext, indicators: dict[str, pd.DataFrame]) -> pd.DataFrame | None:
    """For themes analysed by health or social district: each district with its comuni
    and the district-level indicators (nothing for comune-level themes)."""
    th, lang = ctx.theme, ctx.lang
    level = th.unit_level
    if level == "comune":
        return None
    ind = indicators["comune"]
    area = indicators[level].copy()
    members = ind.dropna(subset=[level]).sort_values("popolazione", ascending=False).groupby(level)["comune"]
    area["elenco_comuni"] = area[level].map(members.agg(lambda s: ", ".join(s.head(6)) + (" ..." if len(s) > 6 else "")))
    panel = ctx.panel()
    cohorts = panel.groupby("unit")["cohort"].first()
    area["avvio_pratica"] = area[level].map(cohorts).map(
        lambda c: int_to_period(c, th.frequency) if pd.notna(c) and c > 0 else None)
    cols = [level, "comuni", "elenco_comuni", "popolazione", "quota_over65", "ets_per_10000", "volontari_per_1000",
            "atti_n", "avvio_pratica", "esito_inizio", "esito_fine"]
    out = area[[c for c in cols if c in area.columns]].sort_values(["avvio_pratica", level], na_position="last")
    write_csv(out, ctx.run_dir / f"{level}_comuni.csv")
    show.heading("ind.districts.title", lang, level=3, level_name=t(f"unit.{level}", lang))
    show.para("ind.districts.intro", lang, n=len(area), treated=int(out["avvio_pratica"].notna().sum()),
              level_name=t(f"unit.{level}", lang), median=int(area["comuni"].median()), file=f"{level}_comuni.csv")
    _show(out, lang, digits=2)
    return out


def outcome_trends(ctx: StageContext) -> pd.DataFrame:
    """The analysis panel, and the mean outcome of future pilots vs the others."""
    import matplotlib.pyplot as plt

    th, lang = ctx.theme, ctx.lang
    panel = ctx.panel()
    summary = outcome_summary(panel)
    show.heading("ind.trend.title", lang, level=3)
    show.para("ind.trend.panel", lang, units=panel["unit"].nunique(), treated=panel.loc[panel["cohort"] > 0, "unit"].nunique(),
              periods=panel["time"].nunique(), level=t(f"unit.{th.unit_level}", lang))
    fig, ax = plt.subplots(figsize=(8, 3.8))
    x = [int_to_period(v, th.frequency) for v in summary["time"]]
    for col, colour in (("trattati", "#d62728"), ("confronto", "#1f77b4")):
        if col in summary.columns:
            ax.plot(range(len(x)), summary[col], color=colour, label=t(f"ind.trend.{col}", lang))
    step = max(1, len(x) // 10)
    ax.set_xticks(range(0, len(x), step), x[::step], rotation=45, ha="right")
    ax.set_ylabel(getattr(th.outcome_unit, lang))
    ax.set_title(getattr(th.outcome_label, lang))
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    ctx.save_figure(fig, "andamento_esito")
    show.figure(fig)
    return summary


def gaps(ctx: StageContext, indicators: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Units with the largest gaps: on the theme's outcome (unfavourable side of the
    weighted mean, end of the window) and on Third Sector density."""
    th, lang = ctx.theme, ctx.lang
    ind = indicators["comune"]
    show.heading("ind.gaps.title", lang, level=3)
    level = th.unit_level
    table = ind if level == "comune" else indicators[level]
    key = ["codice_istat", "comune", "sigla_provincia"] if level == "comune" else [level, "comuni"]
    min_pop = 5_000 if level == "comune" else 0
    out = largest_gaps(table, "esito_fine", th.higher_is_better, n=10, min_population=min_pop, weight="esito_peso")
    if len(out):
        show.para("ind.gaps.outcome", lang, outcome=getattr(th.outcome_label, lang), year=th.period_end[:4],
                  level=t(f"unit.{level}", lang))
        _show(out[[*key, "popolazione", "esito_inizio", "esito_fine", "divario"]], lang, digits=2)
    ets = largest_gaps(ind, "ets_per_10000", True, n=10)
    show.para("ind.gaps.ets", lang)
    _show(ets[["codice_istat", "comune", "sigla_provincia", "popolazione", "ets_per_10000", "divario"]], lang, digits=2)
    return out


def methods(ctx: StageContext) -> None:
    (ctx.data_dir / "methods_10.md").write_text(t("ind.methods", ctx.lang), encoding="utf-8")
