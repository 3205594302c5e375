"""Stage 40: pool cohorts, grade the evidence, transferability, the theme's finding.

Each step takes the open stage and the results of the steps before it as arguments
(``pooled = pool_cohorts(stage)``, ``grade = evidence(stage, pooled)``, ...), reads only
what stage 30 handed over (``estimates.json``, ``cohorts.parquet``, ...), displays in the
report's language and returns its result; the files it writes are for the report and
the exports, never read back by a later cell of this stage.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from osservatorio.publishing import show
from osservatorio.publishing.workbook import write_xlsx
from osservatorio.publishing.safe import escape_markdown, write_csv
from osservatorio.synthesis.findings import Finding, Subgroup, verdict, write_theme_findings
from osservatorio.running.stage import StageContext
from osservatorio.publishing.text import fmt_number, fmt_p, t

def _pool_state(ctx: StageContext, status: str, reason: object, key: str) -> dict:
    """A pooling that does not apply or could not be computed: said in the report, and
    recorded (``status``, ``reason``) for the evidence rules."""
    from osservatorio.evaluate.results import one_line

    reason = one_line(reason)
    show.para(key, ctx.lang, reason=reason)
    return {"status": status, "reason": reason}


def pool_cohorts(ctx: StageContext) -> dict:
    """Random-effects meta-analysis of the cohort effects (REML), with a forest plot.

    Returns the pooled result (``status`` "computed", ``i2`` ...), or a record with
    ``status`` "not_applicable" (a design without effects per cohort, a single cohort) or
    "failed" (cohorts without a standard error, a fit that raised, an undefined I2) and
    the ``reason``: the evidence rules count a failed pooling as high heterogeneity."""
    from osservatorio.evaluate.designs import DESIGNS
    from osservatorio.synthesis import meta_analysis
    from osservatorio.publishing.synthesis_plots import forest_plot

    lang = ctx.lang
    show.heading("syn.title", lang)
    path = ctx.data_dir / "cohorts.parquet"
    if not DESIGNS[ctx.theme.design].has_cohort_effects:  # ITS, few treated, synthetic control
        return _pool_state(ctx, "not_applicable", "the design estimates no effect per adoption cohort",
                           "syn.pool.not_estimated")
    if not path.is_file():
        return _pool_state(ctx, "failed", "stage 30 wrote no effects per cohort (cohorts.parquet)", "syn.pool.failed")
    cohorts = pd.read_parquet(path)
    coh = cohorts.dropna(subset=["se"])
    coh = coh[coh["se"] > 0]
    if len(cohorts) < 2:
        return _pool_state(ctx, "not_applicable", "a single adoption cohort", "syn.pool.none")
    if len(coh) < 2:
        return _pool_state(ctx, "failed", f"{len(coh)} of {len(cohorts)} cohorts have a standard error, 2 needed",
                           "syn.pool.failed")
    from osservatorio.synthesis.transfer import SMALL_K

    try:
        m = meta_analysis(coh["estimate"].to_numpy(), coh["se"].to_numpy() ** 2, method="reml",
                          pi_type="riley" if len(coh) < SMALL_K else "default")
    except Exception as exc:  # counted as failed by the evidence rules, with the message
        return _pool_state(ctx, "failed", exc, "syn.pool.failed")
    if not math.isfinite(m.i2):
        return _pool_state(ctx, "failed", f"I2 is undefined ({m.i2})", "syn.pool.failed")
    from osservatorio.indicators.panel import int_to_period

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
    if m.pi_type == "riley":
        show.para("syn.pool.riley", lang, small_k=SMALL_K)
    out = {"status": "computed", "reason": None, "estimate": m.estimate, "ci_low": m.ci_low, "ci_high": m.ci_high,
           "tau2": m.tau2, "i2": m.i2, "pi_low": m.pi_low, "pi_high": m.pi_high, "pi_type": m.pi_type, "k": m.k,
           "q_p_value": m.q_p_value}
    ctx.write_json("meta_cohorts.json", out)
    return out


def _none_if_nan(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def _state(record: dict | None, key: str = "p_value") -> str:
    """A stage-30 diagnostic's state in the finding's words (calcolato, non_applicabile, non_calcolabile)."""
    from osservatorio.synthesis import check_from_record
    from osservatorio.synthesis.findings import DIAGNOSTIC_STATES

    return DIAGNOSTIC_STATES[check_from_record(record, key).status]


def _reason_text(reason, lang: str) -> str:
    """A rule that fired, in words (the threat found, or the diagnostic that could not be
    computed and why), with the padlocks it removed or, for a cap, the cap (the
    synthetic-data cap on an already-zero rating removed nothing: "(−0)" read oddly)."""
    from osservatorio.synthesis.evidence import RULES, reason_text

    cap = next(r.cap for r in RULES if r.code == reason.code)
    amount = t("syn.evidence.cap", lang, cap=cap) if cap is not None else f"−{reason.removed}"
    return f"{reason_text(reason, lang)} ({amount})"


def _interval_check(h: dict):
    """Half-width over |estimate| of the headline interval; failed when it is undefined."""
    from osservatorio.synthesis import ci_width_ratio, failed

    if any(_none_if_nan(h.get(k)) is None for k in ("estimate", "ci_low", "ci_high")):
        return failed("the headline has no confidence interval (undefined bounds)")
    return ci_width_ratio(h["estimate"], h["ci_low"], h["ci_high"])


def _pooling_check(ctx: StageContext, pooled: dict | None):
    """I2 of the pooled cohorts: not applicable to a design without effects per cohort;
    failed when a design with them was not pooled (``pooled`` not given)."""
    from osservatorio.evaluate.designs import DESIGNS
    from osservatorio.synthesis import check_from_record, failed, not_applicable

    if not DESIGNS[ctx.theme.design].has_cohort_effects:
        return not_applicable("the design estimates no effect per adoption cohort")
    if pooled is None:
        return failed("the cohorts were not pooled (pass the result of pool_cohorts)")
    return check_from_record(pooled, "i2")


def evidence(ctx: StageContext, pooled: dict | None = None) -> dict:
    """Maryland level and padlocks from the design, the diagnostics of stage 30 and the
    heterogeneity of the pooled cohorts (``pooled``, from ``pool_cohorts``).

    Each diagnostic enters as computed, not applicable (skipped) or failed (counted as a
    failing test, with its reason in the finding's ``motivi_lucchetti``)."""
    from osservatorio.synthesis import check_from_record, maryland_level, padlocks, rules_table

    th, lang = ctx.theme, ctx.lang
    est = _estimates(ctx)
    level = maryland_level(th.design)
    checks = {"n_treated_clusters": est.get("n_treated_clusters"),
              "pretrend_p": check_from_record(est.get("pretrend")),
              "placebo_p": check_from_record(est.get("placebo")),
              "ci_width_ratio": _interval_check(est["headline"]), "i2": _pooling_check(ctx, pooled),
              # the Rambachan-Roth breakdown value: how much a rejected pre-trend costs
              "breakdown": check_from_record(est.get("sensitivity"), "breakdown")}
    rating = padlocks(level, **checks, synthetic_data=th.data_source == "demo")
    out = {"maryland": level, "padlocks": rating.padlocks, "uncapped": rating.uncapped,
           "codes": [f"{r.code}{' [failed]' if r.failed is not None else ''} (-{r.removed})" for r in rating.reasons],
           "reasons": [_reason_text(r, lang) for r in rating.reasons]}
    ctx.write_json("evidence.json", out)
    show.heading("syn.evidence.title", lang, level=3)
    show.para("syn.evidence", lang, locks="🔒" * rating.padlocks + "·" * (5 - rating.padlocks), n=rating.padlocks,
              maryland=level, uncapped=rating.uncapped, reasons="; ".join(out["reasons"]) or "–")
    show.table(rules_table(lang), lang)
    return out


def _value_fields(value: dict | None) -> dict:
    """The finding's cost-and-value fields from ``cost_and_value``'s result."""
    if not value:
        return {}
    ce = value.get("costo_efficacia")
    agg = value.get("contratti_sintesi") or {}
    return {
        "costo_per_unita_anno_euro": value.get("per_unita_anno"),
        "costo_per_beneficiario_anno_euro": value.get("per_beneficiario_anno"),
        "fascia_costo": value.get("fascia"), "costo_fonti": value.get("fonti") or {},
        "costo_efficacia_euro": ce and ce["euro"], "costo_efficacia_low": ce and ce["low"],
        "costo_efficacia_high": ce and ce["high"],
        "costo_efficacia_stato": ce["stato"] if ce else ("non_calcolabile" if value.get("totale") is not None else None),
        "contratti_n": agg.get("n", 0), "contratto_prob_pagamento": agg.get("prob_pagamento"),
        "contratto_pagamento_atteso_euro": agg.get("pagamento_atteso"), "contratto_capitale_euro": agg.get("capitale"),
        "contratto_prob_perdita": agg.get("prob_perdita"), "contratto_tir_atteso": agg.get("tir_atteso"),
        "regioni": value.get("regioni") or [],
    }


def _costs(ctx: StageContext) -> tuple[float | None, int | None]:
    p = ctx.table("pilot")
    p = p[p["tema"] == ctx.theme.pilot_tema]
    cost = float(p["costo_euro"].sum()) if p["costo_euro"].notna().any() else None
    ben = int(p["beneficiari"].sum()) if p["beneficiari"].notna().any() else None
    return cost, ben


def _estimates(ctx: StageContext) -> dict:
    """What stage 30 handed over, checked to come from the same theme parameters."""
    from osservatorio.exceptions import StageOrderError

    est = json.loads(ctx.require("estimates.json", 30).read_text(encoding="utf-8"))
    made = (est.get("theme_options") or {}).get("parameters")
    now = ctx.theme.notebook_parameters()
    if made is not None and made != now:
        changed = sorted(k for k in now if made.get(k) != now[k])
        raise StageOrderError(f"{ctx.data_dir / 'estimates.json'} was made with other values of "
                              f"{', '.join(changed)}: rerun 30_evaluation with these parameters first")
    return est


def _caveats(ctx: StageContext, est: dict) -> list[str]:
    from osservatorio.evaluate import designs
    from osservatorio.evaluate.show import limit_texts

    th, lang = ctx.theme, ctx.lang
    notes = limit_texts(designs.for_theme(th), est, th, lang)
    if th.data_source == "demo":
        notes.append(t("banner.synthetic", lang, seed=th.seed))
    return notes


def write_findings(ctx: StageContext, grade: dict, transfer: dict | None = None, value: dict | None = None) -> Finding:
    """The theme's finding record, suppressed, as findings.json and findings.csv, from
    the evidence grade (``evidence``), the transferability summary (``transferability``)
    and the costs (``cost_and_value``)."""
    th, lang = ctx.theme, ctx.lang
    est = _estimates(ctx)
    ev = grade
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
    transfer = transfer or {}
    from osservatorio.indicators.panel import int_to_period

    finding = Finding(
        tema=th.id, titolo=getattr(th.title, lang), pratica=getattr(th.practice, lang), esito=th.outcome,
        esito_etichetta=getattr(th.outcome_label, lang), unita_misura=getattr(th.outcome_unit, lang),
        livello_unita=th.unit_level, disegno=th.design, stimatore=est["estimator"], effetto=h["estimate"],
        effetto_relativo=h["estimate"] / base if base else None, valore_base=base, ci_low=h["ci_low"],
        ci_high=h["ci_high"], livello_confidenza=h.get("level", 0.95), p_value=_none_if_nan(h["p_value"]),
        metodo_inferenza=h["inference"], n_trattati=est["n_treated"], n_confronto=est["n_units"] - est["n_treated"],
        n_cluster=h.get("n_clusters"), periodo_inizio=int_to_period(panel["time"].min(), th.frequency),
        periodo_fine=int_to_period(panel["time"].max(), th.frequency),
        pretrend_p=_none_if_nan((est.get("pretrend") or {}).get("p_value")), pretrend_stato=_state(est.get("pretrend")),
        placebo_p=_none_if_nan((est.get("placebo") or {}).get("p_value")), placebo_stato=_state(est.get("placebo")),
        valore_rottura_mbar=_none_if_nan((est.get("sensitivity") or {}).get("breakdown")),
        valore_rottura_stato=_state(est.get("sensitivity"), "breakdown"),
        eterogeneita=het, contesti=contexts,
        contesti_efficaci=transfer.get("contesti_efficaci", []), k_siti=transfer.get("k"),
        ip_low=_none_if_nan(transfer.get("pi_low")), ip_high=_none_if_nan(transfer.get("pi_high")),
        ip_tipo=transfer.get("pi_type"), comuni_simili=transfer.get("comuni_simili", []),
        livello_maryland=ev["maryland"], lucchetti=ev["padlocks"], lucchetti_senza_limite_sintetico=ev["uncapped"],
        motivi_lucchetti=ev["reasons"], verdetto=verdict(h["ci_low"], h["ci_high"], th.higher_is_better, _none_if_nan(h["p_value"])),
        costo_totale_euro=cost, beneficiari=ben,
        costo_per_beneficiario_euro=cost / ben if cost is not None and ben else None,
        **_value_fields(value),
        area_esito=th.outcome_area,
        avvertenze=_caveats(ctx, est), dati_sintetici=th.data_source == "demo", lingua=lang,
        id_run=ctx.run_dir.name.removeprefix(".tmp-"),
    )
    finding = write_theme_findings(ctx.run_dir, [finding], th.disclosure_threshold)[0]
    show.heading("syn.finding.title", lang, level=3)
    from osservatorio.publishing.report import headline_markdown

    show.markdown(headline_markdown(finding, lang))
    return finding


# --- transferability ------------------------------------------------------------------

TOP_SHOWN = 15  # rows of the ranking shown in the report
TOP_REASONS = 5  # of which explained in words
WEAK_PADLOCKS = 2  # below this (real-data) rating no context is named as one where the practice worked


def _interval(lo, hi, lang: str, digits: int = 2) -> str:
    return "–" if lo != lo or hi != hi else f"{fmt_number(lo, lang, digits)} – {fmt_number(hi, lang, digits)}"


def _unit_context(ctx: StageContext, panel: pd.DataFrame) -> pd.DataFrame:
    """One row per panel unit: name, population, macro-area, size class, over 65, ETS per 10,000."""
    from osservatorio.synthesis.transfer import unit_context

    th = ctx.theme
    cols = [c for c in ("unit", "popolazione", "ripartizione", "classe_ampiezza", "quota_over65", "regione")
            if c in panel.columns]
    units = panel.drop_duplicates("unit")[cols].copy()
    units["nome"] = units["unit"]
    ind_path = ctx.data_dir / "indicatori_comuni.parquet"
    if ind_path.is_file():
        ind = pd.read_parquet(ind_path)
        if th.unit_level == "comune":
            extra = ind[["codice_istat", "comune", "ets_per_10000"]].rename(columns={"codice_istat": "unit"})
            units = units.drop(columns="nome").merge(extra.rename(columns={"comune": "nome"}), on="unit", how="left")
        else:
            amb = ctx.table("ambiti")[["codice_istat", th.unit_level]].drop_duplicates("codice_istat")
            j = ind[["codice_istat", "ets_n", "popolazione"]].merge(amb, on="codice_istat")
            g = j.groupby(th.unit_level)[["ets_n", "popolazione"]].sum()
            ets = (1e4 * g["ets_n"] / g["popolazione"]).rename("ets_per_10000").reset_index()
            units = units.merge(ets.rename(columns={th.unit_level: "unit"}), on="unit", how="left")
    return unit_context(units)


def _site_label(ctx: StageContext, sites: pd.DataFrame, names: dict) -> pd.Series:
    from osservatorio.indicators.panel import int_to_period

    return pd.Series([f"{names.get(c, c)} ({int_to_period(g, ctx.theme.frequency)})"
                      for c, g in zip(sites["cluster"], sites["cohort"], strict=True)], index=sites.index)


def _reasons(ctx: StageContext, ranked: pd.DataFrame, sites: pd.DataFrame) -> list[str]:
    """Why each unit is ranked where it is, in words. One sentence per unit (thousands of
    comuni), from parts that depend on its site or its out-of-support moderators written
    once per site and per set of moderators."""
    lang, th = ctx.lang, ctx.theme
    unit = getattr(th.outcome_unit, lang)
    about_site = {row["site"]: {"site": row["label"], "site_area": row.get("ripartizione", "–"),
                                "site_class": row.get("classe_ampiezza", "–"),
                                "site_o65": fmt_number(row.get("quota_over65_pct"), lang, 1),
                                "site_ets": fmt_number(row.get("ets_per_10000"), lang, 1)}
                  for row in sites.to_dict("records")}
    supports: dict[str, str] = {}

    def support(mods: str) -> str:
        if mods not in supports:
            supports[mods] = (t("syn.transfer.reason.in_support", lang) if not mods else
                              t("syn.transfer.reason.out_support", lang, mods=", ".join(
                                  t(f"syn.transfer.mod.{m}", lang) for m in mods.split(" | "))))
        return supports[mods]

    nopred, worked = t("syn.transfer.reason.nopred", lang), t("syn.transfer.reason.worked", lang)
    out = []
    for r in ranked.itertuples(index=False):
        if r.pred == r.pred:
            pred_text = t("syn.transfer.reason.pred", lang, pred=fmt_number(r.pred, lang, 2), unit=unit,
                          lo=fmt_number(r.pi_low, lang, 2), hi=fmt_number(r.pi_high, lang, 2),
                          prob=fmt_number(100 * r.prob_beneficio, lang, 0))
        else:
            pred_text = nopred
        out.append(t("syn.transfer.reason", lang, pred_text=pred_text, **about_site[r.sito_simile],
                     worked=worked if r.sito_ha_funzionato else "", support=support(r.fuori_supporto)))
    return out


EXPORT_COLUMNS = ["rank", "unit", "nome", "ripartizione", "regione", "classe_ampiezza", "popolazione",
                  "quota_over65_pct", "ets_per_10000", "pred", "pi_low", "pi_high", "ci_low", "ci_high",
                  "effetto_prudente", "prob_beneficio", "distanza", "sito_simile", "fuori_supporto", "motivi"]
EXPORT_NAMES = {"rank": "posizione", "unit": "codice", "pred": "effetto_previsto", "pi_low": "ip_low",
                "pi_high": "ip_high", "ci_low": "ic_low", "ci_high": "ic_high", "sito_simile": "sito_piu_simile"}


def _contexts_worked(groups: dict[str, pd.DataFrame], higher_is_better: bool, threshold: int,
                     lang: str, unit_level: str = "comune") -> list[str]:
    """Levels whose pooled site effect is clearly favourable and rests on >= threshold units."""
    out = []
    for by, frame in groups.items():
        for r in frame.itertuples(index=False):
            good = r.ci_low > 0 if higher_is_better else r.ci_high < 0
            if good and r.n_units >= threshold:
                out.append(t("syn.transfer.size_class", lang, cls=r.livello, units=t(f"syn.transfer.units.{unit_level}", lang))
                           if by == "classe_ampiezza" else r.livello)
    return out


# --- cost and value -------------------------------------------------------------------

CEAC_POINTS = 7  # amounts of the acceptability curve shown in the report's table
CEAC_FIGURE_POINTS = 80  # and in its figure


def _contracts(ctx: StageContext, pilot: pd.DataFrame) -> pd.DataFrame:
    """The payment-by-results contracts that pay on this theme's outcome in its pilot comuni."""
    from osservatorio.data.schemas import CONTRACT_COLUMNS

    try:
        fin = ctx.table("strumenti_finanza_sociale")
    except KeyError:
        return pd.DataFrame()
    if not set(CONTRACT_COLUMNS) <= set(fin.columns) or "metrica_esito" not in fin.columns:
        return pd.DataFrame()
    keep = (fin[CONTRACT_COLUMNS].notna().all(axis=1) & (fin["metrica_esito"] == ctx.theme.outcome)
            & fin["codice_istat"].isin(set(pilot["codice_istat"].dropna())))
    return fin[keep.to_numpy()]


def cost_and_value(ctx: StageContext) -> dict:
    """What the practice costs and what it buys: the pilots' cost (total, by funding source,
    per treated unit and year, per beneficiary-year and its band), euro per unit of outcome
    gained with Fieller's interval at the estimator's own critical value (not defined when
    the effect's interval reaches zero), the acceptability curve, and each payment-by-results
    contract against the effect's distribution. Written to data/costo_valore.json and
    shown as the report's "costo e valore" section."""
    from osservatorio.data import reference
    from osservatorio.synthesis import costs

    th, lang = ctx.theme, ctx.lang
    h = _estimates(ctx)["headline"]
    pilot = ctx.table("pilot")
    pilot = pilot[pilot["tema"] == th.pilot_tema]
    try:
        costi = ctx.table("costi_pilota")
    except KeyError:
        costi = None
    summary = costs.cost_summary(pilot, costi)
    direction = 1.0 if th.higher_is_better else -1.0
    level = float(h.get("level", 0.95))
    est, lo, hi = (_none_if_nan(h.get(k)) for k in ("estimate", "ci_low", "ci_high"))
    out: dict = {"totale": summary.total, "fonti": summary.by_source, "per_unita_anno": summary.per_unit_year,
                 "anni_pilota": summary.years, "per_beneficiario_anno": summary.per_beneficiary_year,
                 "livello": level, "direzione": direction}
    band = None
    if summary.total is not None and summary.beneficiary_years:
        band = costs.cost_rating(summary.total, summary.beneficiary_years, 1.0)
    out["fascia"] = band.band if band else None
    ratio, curve, evaluations = None, [], []
    if None not in (est, lo, hi) and hi > lo:
        gain, gain_lo, gain_hi = costs.gain_interval(est, lo, hi, direction)
        # draws whose 95% interval is the estimator's (normal, with its half-width)
        draws = costs.effect_draws(gain, (gain_hi - gain_lo) / (2 * costs._critical(level, None)), seed=th.seed)
        if summary.per_unit_year is not None:
            ratio = costs.cost_effectiveness(summary.per_unit_year, est, lo, hi, _none_if_nan(h.get("se")),
                                             direction, level)
            scale = ratio.point if ratio.defined else summary.per_unit_year / max(abs(gain), 1e-12)
            amounts = np.unique(np.round(scale * np.geomspace(0.25, 4, CEAC_POINTS), -1))
            curve = [{"euro": float(a), "prob": float(p)}
                     for a, p in zip(amounts, costs.acceptability_curve(summary.per_unit_year, draws, amounts))]
            dense = scale * np.geomspace(0.1, 10, CEAC_FIGURE_POINTS)  # the figure's curve
            out["curva_figura"] = {"euro": dense.tolist(),
                                   "prob": costs.acceptability_curve(summary.per_unit_year, draws, dense).tolist()}
        for r in _contracts(ctx, pilot).itertuples(index=False):
            contract = costs.Contract(capitale=float(r.capitale_euro), soglia=float(r.soglia_esito),
                                      prezzo_unitario=float(r.prezzo_unitario_euro), tetto=float(r.tetto_euro),
                                      durata_anni=int(r.durata_anni), unita_per_effetto=float(r.unita_per_effetto),
                                      pagatore=str(r.pagatore))
            ev = costs.evaluate_contract(contract, draws, level=level)
            evaluations.append({"id": r.id, "comune": r.comune, "capitale": contract.capitale,
                                "soglia": contract.soglia, "durata_anni": contract.durata_anni,
                                "pagatore": contract.pagatore, "prob_pagamento": ev.prob_pagamento,
                                "pagamento_atteso": ev.pagamento_atteso, "pagamento_low": ev.pagamento_low,
                                "pagamento_high": ev.pagamento_high, "tir_atteso": _none_if_nan(ev.tir_atteso),
                                "prob_perdita": ev.prob_perdita, "risparmio_atteso": ev.risparmio_atteso})
    out["costo_efficacia"] = None if ratio is None else {"stato": "definito" if ratio.defined else "non_definito",
                                                          "euro": ratio.point, "low": ratio.low, "high": ratio.high}
    out["curva_accettabilita"] = curve
    out["contratti"] = evaluations
    if evaluations:
        capital = sum(e["capitale"] for e in evaluations)
        expected = sum(e["pagamento_atteso"] for e in evaluations)
        years = float(np.mean([e["durata_anni"] for e in evaluations]))
        out["contratti_sintesi"] = {
            "n": len(evaluations), "capitale": capital, "pagamento_atteso": expected,
            "prob_pagamento": float(np.mean([e["prob_pagamento"] for e in evaluations])),
            "prob_perdita": float(np.mean([e["prob_perdita"] for e in evaluations])),
            "tir_atteso": (expected / capital) ** (1 / years) - 1 if expected > 0 else None}
    regions = reference.comuni().set_index("codice_istat")["regione"]
    out["regioni"] = sorted(set(regions.reindex(pilot["codice_istat"].dropna()).dropna().astype(str)))
    ctx.write_json("costo_valore.json", out)
    _show_cost_and_value(ctx, out, summary, band)
    _export_costs(ctx, out, costi, pilot)
    return out


def _euro(x, lang: str, digits: int = 0) -> str:
    return "–" if x is None else f"{fmt_number(x, lang, digits)} €"


def _show_cost_and_value(ctx: StageContext, out: dict, summary, band) -> None:
    th, lang = ctx.theme, ctx.lang
    unit = getattr(th.outcome_unit, lang)
    show.heading("syn.cost.title", lang, level=3)
    if summary.total is None:
        show.para("syn.cost.none", lang)
        return
    show.para("syn.cost.summary", lang, total=_euro(summary.total, lang), pilots=summary.pilots,
              per_unit=_euro(summary.per_unit_year, lang) if summary.per_unit_year is not None
              else t("syn.cost.no_years", lang),
              per_ben=_euro(summary.per_beneficiary_year, lang) if summary.per_beneficiary_year else "–",
              band=t(f"syn.cost.band.{band.band}", lang) if band else "–")
    if out["fonti"]:
        frame = pd.DataFrame({t("syn.cost.col.source", lang): list(out["fonti"]),
                              t("syn.cost.col.euro", lang): list(out["fonti"].values())})
        frame[t("syn.cost.col.share", lang)] = 100 * frame.iloc[:, 1] / summary.total
        show.table(frame, lang, digits=0)
    ce = out["costo_efficacia"]
    if ce is None:
        show.para("syn.cost.ratio_uncomputable", lang)
    elif ce["stato"] == "definito":
        show.para("syn.cost.ratio", lang, euro=_euro(ce["euro"], lang), lo=_euro(ce["low"], lang),
                  hi=_euro(ce["high"], lang), unit=unit, level=fmt_number(100 * out["livello"], lang, 0))
    else:
        show.para("syn.cost.ratio_undefined", lang, unit=unit)
    if out["curva_accettabilita"]:
        show.para("syn.cost.ceac", lang, unit=unit)
        from osservatorio.publishing import charts

        fig_curve = out.get("curva_figura") or {}
        fig = charts.acceptability_curve(fig_curve["euro"], fig_curve["prob"],
                                         t("syn.cost.col.amount", lang, unit=unit), t("syn.cost.col.prob", lang),
                                         t("syn.cost.ceac_title", lang),
                                         point=ce["euro"] if ce and ce["stato"] == "definito" else None,
                                         point_label=t("syn.cost.ceac_point", lang), lang=lang)
        ctx.save_figure(fig, "curva_accettabilita")
        show.figure(fig)
        show.table(pd.DataFrame({t("syn.cost.col.amount", lang, unit=unit): [c["euro"] for c in out["curva_accettabilita"]],
                                 t("syn.cost.col.prob", lang): [100 * c["prob"] for c in out["curva_accettabilita"]]}),
                   lang, digits=0)
    if out["contratti"]:
        agg = out["contratti_sintesi"]
        show.heading("syn.contract.title", lang, level=4)
        show.para("syn.contract.summary", lang, n=agg["n"], capital=_euro(agg["capitale"], lang),
                  prob=fmt_number(100 * agg["prob_pagamento"], lang, 1), pay=_euro(agg["pagamento_atteso"], lang),
                  loss=fmt_number(100 * agg["prob_perdita"], lang, 1),
                  irr="–" if agg["tir_atteso"] is None else fmt_number(100 * agg["tir_atteso"], lang, 1) + "%")
        low = agg["prob_pagamento"] < 0.2
        show.para("syn.contract.meaning_low" if low else "syn.contract.meaning", lang,
                  prob=fmt_number(100 * agg["prob_pagamento"], lang, 1),
                  loss=fmt_number(100 * agg["prob_perdita"], lang, 1))
        cols = ["comune", "capitale", "soglia", "durata_anni", "prob_pagamento", "pagamento_atteso", "pagamento_low",
                "pagamento_high", "tir_atteso", "prob_perdita", "risparmio_atteso"]
        frame = pd.DataFrame(out["contratti"])[cols]
        for c in ("prob_pagamento", "prob_perdita", "tir_atteso"):
            frame[c] = 100 * frame[c].astype(float)
        show.table(frame.rename(columns={c: t(f"syn.contract.col.{c}", lang) for c in cols}), lang, digits=1)


def _export_costs(ctx: StageContext, out: dict, costi: pd.DataFrame | None, pilot: pd.DataFrame) -> None:
    """costi.xlsx: the costs by year, item and source, the sources, the acceptability curve
    and the contracts evaluated (when there are any)."""
    sheets: dict[str, pd.DataFrame] = {}
    if costi is not None and len(costi):
        mine = costi[costi["id_pilota"].isin(set(pilot["id_pilota"]))]
        sheets["costi_per_anno"] = (mine.pivot_table(index="anno", columns="voce", values="importo_euro",
                                                     aggfunc="sum", fill_value=0.0).reset_index())
        sheets["fonti"] = pd.DataFrame({"fonte": list(out["fonti"]), "importo_euro": list(out["fonti"].values())})
    if out["curva_accettabilita"]:
        sheets["curva_accettabilita"] = pd.DataFrame(out["curva_accettabilita"]).rename(
            columns={"euro": "euro_per_unita_esito", "prob": "probabilita_costo_inferiore"})
    if out["contratti"]:
        sheets["contratti"] = pd.DataFrame(out["contratti"])
    if sheets:
        write_xlsx(ctx.run_dir / "costi.xlsx", sheets)


def transferability(ctx: StageContext, grade: dict | None = None) -> dict | None:
    """Where the practice worked (meta-regression of site effects on context) and the
    ranked list of untreated units most like those places: trasferibilita.csv/.xlsx.
    With weak evidence (``grade`` from ``evidence``) no context is named as one where
    the practice worked."""
    from osservatorio.synthesis import transfer as tr

    th, lang = ctx.theme, ctx.lang
    (ctx.data_dir / "methods_40.md").write_text(
        t("syn.transfer.methods", lang, small_k=tr.SMALL_K, window=th.event_window, per_term=tr.SITES_PER_TERM),
        encoding="utf-8")
    show.heading("syn.transfer.title", lang, level=3)
    panel = ctx.panel()
    sites = tr.site_effects(panel, window=th.event_window, anticipation=th.anticipation)
    if sites.empty:
        show.para("syn.transfer.none", lang, reason=t("syn.transfer.no_sites", lang))
        return None
    context = _unit_context(ctx, panel)
    sites = tr.site_context(panel, context, sites)
    names = dict(zip(context["unit"], context["nome"], strict=True)) if th.cluster == th.unit_level else {}
    sites["label"] = _site_label(ctx, sites, names)
    sites.to_parquet(ctx.data_dir / "sites.parquet", index=False)
    show.para("syn.transfer.sites", lang, cluster=t(f"syn.transfer.cluster.{th.cluster}", lang), k=len(sites),
              n=int(sites["n_units"].sum()), window=th.event_window)
    fit, mods, summary = _pool_sites(ctx, sites)
    groups = _show_contexts(ctx, sites)
    ev = grade or {}
    weak = ev.get("uncapped") is not None and ev["uncapped"] < WEAK_PADLOCKS
    if weak:  # e.g. pre-trends rejected: the site effects inherit the bias of the design
        show.para("syn.transfer.weak", lang, padlocks=ev["uncapped"])
    summary["evidenza_debole"] = weak
    effective = summary["efficace_tra_siti"] and not weak
    worked = (_contexts_worked(groups, th.higher_is_better, th.disclosure_threshold, lang, th.unit_level)
              if effective else [])
    summary["contesti_efficaci"] = worked
    if worked:
        show.para("syn.transfer.worked_in", lang, contexts=", ".join(worked))
    elif not summary["efficace_tra_siti"]:
        show.para("syn.transfer.worked_none", lang)
    elif not weak:  # weak evidence was explained above; its list is already labelled as similarity
        show.para("syn.transfer.worked_no_group", lang)
    cands = context[context["unit"].isin(panel.loc[panel["cohort"] == 0, "unit"].unique())]
    ranked = tr.rank_candidates(fit, sites, cands, mods, th.higher_is_better, tr.national_scale(context),
                                effective=effective)
    ranked["motivi"] = _reasons(ctx, ranked, sites)
    ranked["sito_simile"] = ranked["sito_simile"].map(sites.set_index("site")["label"])
    out = ranked[[c for c in EXPORT_COLUMNS if c in ranked.columns]].rename(columns=EXPORT_NAMES)
    out["prob_beneficio"] = 100 * out["prob_beneficio"]
    out.insert(0, "tema", th.id)
    out = _export_transfer(ctx, out)
    _show_top(ctx, out)
    summary["comuni_simili"] = [str(x) for x in out["nome"].head(5)]
    ctx.write_json("transfer.json", summary)
    return summary


def _pool_sites(ctx: StageContext, sites: pd.DataFrame):
    """Intercept-only pooling of the sites (shown), then the meta-regression used to predict.

    Returns (fit or None for a single site, moderators, summary dict)."""
    from osservatorio.exceptions import EstimationError
    from osservatorio.synthesis import transfer as tr

    th, lang = ctx.theme, ctx.lang
    summary: dict = {"k": len(sites), "moderators": [], "pi_type": None}
    if len(sites) < 2:
        show.para("syn.transfer.single", lang)
        summary["efficace_tra_siti"] = bool(tr.worked_mask(sites, th.higher_is_better)[0])
        return None, [], summary
    pooled = tr.fit_transfer(sites, [])
    pitype = t(f"syn.transfer.pitype.{'riley' if pooled.pi_type == 'riley' else 'default'}", lang)
    show.para("syn.transfer.pooled", lang, est=fmt_number(pooled.estimate, lang, 3),
              unit=getattr(th.outcome_unit, lang), lo=fmt_number(pooled.ci_low, lang, 3),
              hi=fmt_number(pooled.ci_high, lang, 3), i2=fmt_number(100 * pooled.i2, lang, 0),
              pilo=fmt_number(pooled.pi_low, lang, 3), pihi=fmt_number(pooled.pi_high, lang, 3), pitype=pitype)
    summary.update(estimate=pooled.estimate, ci_low=pooled.ci_low, ci_high=pooled.ci_high, i2=pooled.i2,
                   tau2=pooled.tau2, pi_low=pooled.pi_low, pi_high=pooled.pi_high, pi_type=pooled.pi_type,
                   efficace_tra_siti=bool(pooled.ci_low > 0 if th.higher_is_better else pooled.ci_high < 0))
    mods = tr.choose_moderators(sites)
    try:
        fit = tr.fit_transfer(sites, mods) if mods else pooled
    except EstimationError:
        mods, fit = [], pooled
    if mods:
        show.para("syn.transfer.model", lang, mods=", ".join(t(f"syn.transfer.mod.{m}", lang) for m in mods),
                  per_term=tr.SITES_PER_TERM, qmp=fmt_p(fit.qm_p_value, lang),
                  r2=fmt_number(100 * (fit.r2 or 0), lang, 0))
    else:
        show.para("syn.transfer.model_none", lang, per_term=tr.SITES_PER_TERM)
    summary["moderators"] = mods
    _show_moderator_tests(ctx, sites)
    return fit, mods, summary


def _show_moderator_tests(ctx: StageContext, sites: pd.DataFrame) -> None:
    from osservatorio.synthesis import transfer as tr

    lang = ctx.lang
    tests = tr.moderator_tests(sites, [tr.AREA, *tr.NUMERIC_MODERATORS])
    if tests.empty:
        return
    show.para("syn.transfer.tests", lang)
    show.table(pd.DataFrame({
        t("syn.transfer.col.moderatore", lang): [
            t(f"syn.transfer.mod.{m}", lang) + (f" {term[len(m):]}" if term != m else "")
            for m, term in zip(tests["moderatore"], tests["termine"], strict=True)],
        t("syn.transfer.col.stima", lang): tests["coefficiente"],
        t("syn.transfer.col.ic", lang): [_interval(a, b, lang, 3) for a, b in
                                         zip(tests["ci_low"], tests["ci_high"], strict=True)],
        t("syn.transfer.col.p", lang): [fmt_p(p, lang) for p in tests["p_value"]]}), lang, digits=3)


def _show_contexts(ctx: StageContext, sites: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Pooled effect by macro-area and size class; groups under the threshold suppressed."""
    from osservatorio.synthesis import transfer as tr

    th, lang = ctx.theme, ctx.lang
    groups = {by: tr.subgroup_effects(sites, by) for by in (tr.AREA, tr.SIZE_CLASS)
              if by in sites.columns and sites[by].notna().all()}
    if not groups:
        return groups
    show.para("syn.transfer.contexts", lang, threshold=th.disclosure_threshold)
    frame = pd.concat(groups.values(), ignore_index=True)
    small = frame["n_units"] < th.disclosure_threshold
    show.table(pd.DataFrame({
        t("syn.transfer.col.livello", lang): frame["livello"], t("syn.transfer.col.k", lang): frame["k"],
        t("syn.transfer.col.stima", lang): frame["estimate"].mask(small),
        t("syn.transfer.col.ic", lang): ["–" if sm else _interval(a, b, lang, 3)
                                         for a, b, sm in zip(frame["ci_low"], frame["ci_high"], small, strict=True)]}),
        lang, digits=3)
    return groups


def _show_top(ctx: StageContext, out: pd.DataFrame) -> None:
    """The first units of the list as a table, and the reasons for the first few in words."""
    lang = ctx.lang
    show.para("syn.transfer.top", lang, n=min(TOP_SHOWN, len(out)))
    top = out.head(TOP_SHOWN)
    show.table(pd.DataFrame({
        t("syn.transfer.col.rank", lang): top["posizione"], t("syn.transfer.col.nome", lang): top["nome"],
        t("transfer.codebook.regione", lang): top.get("regione", "–"),
        t("syn.transfer.col.pred", lang): top["effetto_previsto"],
        t("syn.transfer.col.pi", lang): [_interval(a, b, lang) for a, b in zip(top["ip_low"], top["ip_high"],
                                                                                strict=True)],
        t("syn.transfer.col.prudent", lang): top["effetto_prudente"],
        t("syn.transfer.col.prob", lang): top["prob_beneficio"]}), lang, digits=2)
    n = min(TOP_REASONS, len(out))
    show.para("syn.transfer.top_reasons", lang, n=n)
    show.markdown("\n".join(f"{r.posizione}. **{escape_markdown(r.nome)}** — {escape_markdown(r.motivi)}"
                             for r in out.head(n).itertuples()))


def _export_transfer(ctx: StageContext, out: pd.DataFrame) -> pd.DataFrame:
    """trasferibilita.csv (all rows) and trasferibilita.xlsx (list + column notes), rounded."""
    lang = ctx.lang
    digits = {"quota_over65_pct": 1, "ets_per_10000": 1, "distanza": 2, "prob_beneficio": 1}
    out = out.round({c: digits.get(c, 3) for c in out.select_dtypes("number").columns if c != "popolazione"})
    write_csv(out, ctx.run_dir / "trasferibilita.csv")
    notes = pd.DataFrame({"colonna": list(out.columns),
                          "significato": [t(f"transfer.codebook.{c}", lang) for c in out.columns]})
    write_xlsx(ctx.run_dir / "trasferibilita.xlsx", {"trasferibilita": out, "codebook": notes},
               layout={"trasferibilita": {"freeze": (1, 2), "width": 14, "widths": {"motivi": 110}}})
    return out
