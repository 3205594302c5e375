"""Stage 40 steps: pool cohorts, grade the evidence, write the theme's findings."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from .. import show
from ..findings import Finding, Subgroup, suppress, to_frame, verdict
from ..stage import StageContext
from ..text import fmt_number, fmt_p, t

# The design of a theme as the evidence rules name it.
DESIGN_FOR_EVIDENCE = {"staggered_did": "staggered_did", "did_few_treated": "did_few_treated",
                       "event_study_its": "event_study_its", "synthetic_control": "synthetic_control"}


def pool_cohorts(ctx: StageContext) -> dict | None:
    """Random-effects meta-analysis of the cohort effects (REML), with a forest plot."""
    from ..synthesis import meta_analysis
    from ..synthesis.plots import forest_plot

    lang = ctx.lang
    show.heading("syn.title", lang)
    path = ctx.data_dir / "cohorts.parquet"
    if not path.is_file():
        show.para("syn.pool.none", lang)
        return None
    coh = pd.read_parquet(path).dropna(subset=["se"])
    coh = coh[coh["se"] > 0]
    if len(coh) < 2:
        show.para("syn.pool.none", lang)
        return None
    m = meta_analysis(coh["estimate"].to_numpy(), coh["se"].to_numpy() ** 2, method="reml")
    from ..panel import int_to_period

    labels = [t("syn.cohort", lang, period=int_to_period(c, ctx.theme.frequency)) for c in coh["cohort"]]
    fig = forest_plot(labels, coh["estimate"], coh["ci_low"], coh["ci_high"], m,
                      xlabel=getattr(ctx.theme.outcome_unit, lang), title=t("syn.forest", lang),
                      pooled_label=t("syn.pooled", lang))
    ctx.save_figure(fig, "forest_coorti")
    show.figure(fig)
    show.para("syn.pool.result", lang, est=fmt_number(m.estimate, lang, 3), lo=fmt_number(m.ci_low, lang, 3),
              hi=fmt_number(m.ci_high, lang, 3), tau2=fmt_number(m.tau2, lang, 4), i2=fmt_number(100 * m.i2, lang, 0),
              pilo=fmt_number(m.pi_low, lang, 3), pihi=fmt_number(m.pi_high, lang, 3), k=m.k,
              qp=fmt_p(m.q_p_value, lang))
    out = {"estimate": m.estimate, "ci_low": m.ci_low, "ci_high": m.ci_high, "tau2": m.tau2, "i2": m.i2,
           "pi_low": m.pi_low, "pi_high": m.pi_high, "k": m.k, "q_p_value": m.q_p_value}
    ctx.write_json("meta_cohorts.json", out)
    return out


def _none_if_nan(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def evidence(ctx: StageContext) -> dict:
    """Maryland level and padlocks from the design and the diagnostics of stage 30."""
    from ..synthesis import ci_width_ratio, maryland_level, padlocks, rules_table

    th, lang = ctx.theme, ctx.lang
    est = ctx.read_json("estimates.json")
    h = est["headline"]
    level = maryland_level(DESIGN_FOR_EVIDENCE[th.design])
    meta = ctx.read_json("meta_cohorts.json") if (ctx.data_dir / "meta_cohorts.json").is_file() else {}
    rating = padlocks(level, n_treated_clusters=est.get("n_treated_clusters"),
                      pretrend_p=_none_if_nan((est.get("pretrend") or {}).get("p_value")),
                      placebo_p=_none_if_nan((est.get("placebo") or {}).get("p_value")),
                      ci_width_ratio=ci_width_ratio(h["estimate"], h["ci_low"], h["ci_high"]),
                      synthetic_data=th.data_source == "demo", i2=_none_if_nan(meta.get("i2")))
    out = {"maryland": level, "padlocks": rating.padlocks, "uncapped": rating.uncapped,
           "reasons": [f"{r.code} (-{r.removed})" for r in rating.reasons]}
    ctx.write_json("evidence.json", out)
    show.heading("syn.evidence.title", lang, level=3)
    show.para("syn.evidence", lang, locks="🔒" * rating.padlocks + "·" * (5 - rating.padlocks), n=rating.padlocks,
              maryland=level, uncapped=rating.uncapped, reasons="; ".join(out["reasons"]) or "–")
    show.table(rules_table(lang), lang)
    return out


def _costs(ctx: StageContext) -> tuple[float | None, int | None]:
    p = ctx.sources["pilot"]
    p = p[p["tema"] == ctx.theme.id]
    cost = float(p["costo_euro"].sum()) if p["costo_euro"].notna().any() else None
    ben = int(p["beneficiari"].sum()) if p["beneficiari"].notna().any() else None
    return cost, ben


def _caveats(ctx: StageContext, est: dict) -> list[str]:
    th, lang = ctx.theme, ctx.lang
    notes = [t(f"eval.limits.{th.design}", lang)]
    p = (est.get("pretrend") or {}).get("p_value")
    if p is not None and p == p and p < 0.05:
        notes.append(t("eval.limits.pretrend_failed", lang))
    if est.get("n_treated_clusters", 99) < 10:
        notes.append(t("eval.limits.few_clusters", lang, n=est["n_treated_clusters"]))
    if th.data_source == "demo":
        notes.append(t("banner.synthetic", lang, seed=th.seed))
    return notes


def write_findings(ctx: StageContext) -> Finding:
    """The theme's finding record, suppressed, as findings.json and findings.csv."""
    th, lang = ctx.theme, ctx.lang
    est = ctx.read_json("estimates.json")
    ev = ctx.read_json("evidence.json")
    h = est["headline"]
    panel = ctx.panel()
    het = []
    het_path = ctx.data_dir / "heterogeneity.parquet"
    if het_path.is_file():
        for r in pd.read_parquet(het_path).to_dict("records"):
            het.append(Subgroup(moderatore=r["moderatore"], livello=r["livello"], stima=_none_if_nan(r["stima"]),
                                ci_low=_none_if_nan(r["ci_low"]), ci_high=_none_if_nan(r["ci_high"]),
                                n_trattati=int(r["n_trattati"])))
    treated = panel[panel["cohort"] > 0]
    contexts = sorted(set(treated["ripartizione"].dropna().astype(str)))
    if "classe_ampiezza" in treated.columns:
        contexts += sorted(set(treated["classe_ampiezza"].dropna().astype(str)))
    cost, ben = _costs(ctx)
    base = est.get("baseline")
    from ..panel import int_to_period

    finding = Finding(
        tema=th.id, titolo=getattr(th.title, lang), pratica=getattr(th.practice, lang), esito=th.outcome,
        esito_etichetta=getattr(th.outcome_label, lang), unita_misura=getattr(th.outcome_unit, lang),
        livello_unita=th.unit_level, disegno=th.design, stimatore=est["estimator"], effetto=h["estimate"],
        effetto_relativo=h["estimate"] / base if base else None, valore_base=base, ci_low=h["ci_low"],
        ci_high=h["ci_high"], livello_confidenza=h.get("level", 0.95), p_value=_none_if_nan(h["p_value"]),
        metodo_inferenza=h["inference"], n_trattati=est["n_treated"], n_confronto=est["n_units"] - est["n_treated"],
        n_cluster=h.get("n_clusters"), periodo_inizio=int_to_period(panel["time"].min(), th.frequency),
        periodo_fine=int_to_period(panel["time"].max(), th.frequency),
        pretrend_p=_none_if_nan((est.get("pretrend") or {}).get("p_value")),
        placebo_p=_none_if_nan((est.get("placebo") or {}).get("p_value")), eterogeneita=het, contesti=contexts,
        livello_maryland=ev["maryland"], lucchetti=ev["padlocks"], lucchetti_senza_limite_sintetico=ev["uncapped"],
        motivi_lucchetti=ev["reasons"], verdetto=verdict(h["ci_low"], h["ci_high"], th.higher_is_better, _none_if_nan(h["p_value"])),
        costo_totale_euro=cost, beneficiari=ben,
        costo_per_beneficiario_euro=cost / ben if cost is not None and ben else None,
        avvertenze=_caveats(ctx, est), dati_sintetici=th.data_source == "demo", lingua=lang,
        id_run=ctx.run_dir.name.removeprefix(".tmp-"),
    )
    finding = suppress(finding, th.disclosure_threshold)
    payload = {"schema_version": finding.schema_version, "findings": [finding.model_dump()]}
    (ctx.run_dir / "findings.json").write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
    to_frame([finding]).to_csv(ctx.run_dir / "findings.csv", index=False)
    show.heading("syn.finding.title", lang, level=3)
    from ..report import headline_markdown

    show.markdown(headline_markdown(finding, lang))
    return finding
