"""Stage 10 steps: sources, crossing on ISTAT codes, indicators, maps, outcome trends."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import show
from ..indicators import aggregate, comune_indicators, largest_gaps, outcome_summary
from ..panel import int_to_period
from ..stage import StageContext
from ..text import t

AREA_COLUMNS = ["ets_per_10000", "volontari_per_1000", "dipendenti_per_1000", "finanza_sociale_euro_per_abitante"]


def intro(ctx: StageContext) -> None:
    th, lang = ctx.theme, ctx.lang
    show.heading("ind.title", lang)
    show.para("ind.intro", lang, question=getattr(th.question, lang), outcome=getattr(th.outcome_label, lang),
              start=th.period_start, end=th.period_end, level=t(f"unit.{th.unit_level}", lang))


def sources_summary(ctx: StageContext) -> pd.DataFrame:
    """Rows per source table and the names that could not be matched to ISTAT codes."""
    lang = ctx.lang
    src = ctx.sources
    rows = [{"tabella": name, "file": src.files[name].name, "righe": len(df)} for name, df in src.tables.items()]
    table = pd.DataFrame(rows)
    show.heading("ind.sources.title", lang, level=3)
    show.table(table, lang, digits=0)
    report = src.match_report
    report.to_csv(ctx.data_dir / "match_report.csv", index=False)
    if len(report):
        show.para("ind.match.problems", lang, n=len(report))
        show.table(report, lang)
    else:
        show.para("ind.match.ok", lang)
    return table


def indicators(ctx: StageContext) -> pd.DataFrame:
    """Indicators per comune (written to the run folder) and by macro-area and region."""
    lang = ctx.lang
    ind = comune_indicators(ctx.sources)
    ind.to_parquet(ctx.data_dir / "indicatori_comuni.parquet", index=False)
    show.heading("ind.table.title", lang, level=3)
    cols = [c for c in AREA_COLUMNS if c in ind.columns]
    show.table(aggregate(ind, "ripartizione", cols), lang, digits=2, caption=t("ind.table.macro", lang))
    show.table(aggregate(ind, "regione", cols), lang, digits=2, caption=t("ind.table.region", lang))
    return ind


def indicator_map(ctx: StageContext) -> None:
    """Choropleth of Third Sector entities per 10,000 inhabitants, pilots outlined."""
    from ..maps import choropleth

    lang = ctx.lang
    ind = pd.read_parquet(ctx.data_dir / "indicatori_comuni.parquet")
    pilots = ctx.sources["pilot"]
    pilots = pilots.loc[pilots["tema"] == ctx.theme.id, "codice_istat"].dropna().tolist()
    values = ind.set_index("codice_istat")["ets_per_10000"].clip(upper=ind["ets_per_10000"].quantile(0.98))
    fig = choropleth(values, t("ind.map.title", lang), t("ind.map.legend", lang), cmap="YlGnBu", highlight=pilots,
                     missing_label=t("ind.map.missing", lang))
    ctx.save_figure(fig, "mappa_ets")
    show.figure(fig)
    show.para("ind.map.note", lang)


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


def gaps(ctx: StageContext) -> pd.DataFrame:
    """Comuni with the largest gaps below the national mean of Third Sector density."""
    lang = ctx.lang
    ind = pd.read_parquet(ctx.data_dir / "indicatori_comuni.parquet")
    table = largest_gaps(ind, "ets_per_10000", n=10)
    show.heading("ind.gaps.title", lang, level=3)
    show.table(table, lang, digits=2)
    return table


def methods(ctx: StageContext) -> None:
    (ctx.data_dir / "methods_10.md").write_text(t("ind.methods", ctx.lang), encoding="utf-8")
