"""Stage 20 steps: eligible comuni, stratified pilot proposal, matched comparisons."""

from __future__ import annotations

import pandas as pd

from .. import show
from ..panel import unit_frame
from ..selection import balance_table, eligible, mahalanobis_match, stratified_proposal
from ..stage import StageContext
from ..text import t


def _baseline(ctx: StageContext) -> pd.Series:
    """Outcome per comune in the first period of the theme (the need before pilots)."""
    esiti = ctx.sources["esiti"]
    e = esiti[esiti["indicatore"] == ctx.theme.outcome]
    first = e["periodo"].min()
    return e[e["periodo"] == first].groupby("unita")["valore"].mean()


def candidates(ctx: StageContext) -> pd.DataFrame:
    th, lang = ctx.theme, ctx.lang
    show.heading("sel.title", lang)
    units = unit_frame(th, ctx.sources["ambiti"])
    pilots = ctx.sources["pilot"]
    treated = set(pilots.loc[pilots["tema"] == th.id, "codice_istat"].dropna())
    prior = set(treated)
    acts = ctx.sources.tables.get("atti_amministrazione_condivisa")
    if th.selection.exclude_prior_act and acts is not None:
        prior |= set(acts.loc[acts["tipo"] == th.selection.exclude_prior_act, "codice_istat"].dropna())
    cand = eligible(units, _baseline(ctx), th.selection, prior)
    cand.to_parquet(ctx.data_dir / "candidati.parquet", index=False)
    show.para("sel.candidates", lang, n=len(cand), total=len(units), excluded=len(prior))
    summary = cand.groupby(["ripartizione", "classe_ampiezza"], observed=True).size().unstack(fill_value=0)
    show.table(summary.reset_index(), lang, digits=0)
    return cand


def proposal(ctx: StageContext) -> pd.DataFrame:
    th, lang = ctx.theme, ctx.lang
    cand = pd.read_parquet(ctx.data_dir / "candidati.parquet")
    prop = stratified_proposal(cand, th.selection.n_pilots, th.higher_is_better)
    prop["motivo"] = prop.apply(lambda r: t("sel.reason", lang, stratum=r["strato"], k=r["posti_strato"]), axis=1)
    cols = ["codice_istat", "comune", "sigla_provincia", "ripartizione", "classe_ampiezza", "popolazione", "esito_base", "motivo"]
    export = prop[cols]
    export.to_csv(ctx.run_dir / "proposta_pilota.csv", index=False)
    export.to_excel(ctx.run_dir / "proposta_pilota.xlsx", index=False)
    show.heading("sel.proposal.title", lang, level=3)
    show.para("sel.proposal", lang, n=len(prop), outcome=getattr(th.outcome_label, lang))
    show.table(export, lang)
    prop.to_parquet(ctx.data_dir / "proposta.parquet", index=False)
    return prop


def comparisons(ctx: StageContext) -> pd.DataFrame:
    th, lang = ctx.theme, ctx.lang
    cand = pd.read_parquet(ctx.data_dir / "candidati.parquet")
    prop = pd.read_parquet(ctx.data_dir / "proposta.parquet")
    pool = cand[~cand["codice_istat"].isin(prop["codice_istat"])].reset_index(drop=True)
    matched = mahalanobis_match(prop, pool, n_matches=th.selection.n_matches)
    names = cand.set_index("codice_istat")["comune"]
    matched["comune_pilota"] = matched["codice_istat_pilota"].map(names)
    matched["comune_confronto"] = matched["codice_istat_confronto"].map(names)
    matched.to_csv(ctx.run_dir / "confronti.csv", index=False)
    show.heading("sel.match.title", lang, level=3)
    show.para("sel.match", lang, n=len(matched), k=len(prop))
    show.table(matched[["comune_pilota", "comune_confronto", "distanza"]], lang)
    bal = balance_table(prop, cand, matched)
    show.table(bal, lang, digits=3, caption=t("sel.balance", lang))
    (ctx.data_dir / "methods_20.md").write_text(t("sel.methods", lang), encoding="utf-8")
    return matched
