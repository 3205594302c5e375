"""Stage 30 display: the results of a design shown in the report's language.

Each helper takes result objects (an ``Evaluation``, a placebo record, a
``Heterogeneity``) and the open stage (for the language, the theme's labels and the
figures folder), displays through ``osservatorio.publishing.show`` and returns nothing,
so a cell never echoes a raw dict or frame. ``save`` writes what stage 40 reads, once, at
the end of the notebook.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd

from osservatorio.evaluate.designs import Design, Evaluation, Heterogeneity, effect_dict, for_theme
from osservatorio.publishing import show
from osservatorio.publishing.text import fmt_number, fmt_p, t
from osservatorio.running.stage import StageContext


def _inference_text(kind: str, r: dict, lang: str) -> str:
    """How the row's interval was obtained, in the report's language (the estimators'
    own ``inference`` strings are English and stay in estimates.json)."""
    g = r.get("n_clusters")
    if kind == "callaway_santanna" and "t(" not in (r.get("inference") or ""):
        kind = "callaway_santanna_unit"  # clustered by unit: R did's convention, normal quantiles
    return t(f"eval.inference.{kind}", lang, g=g if g is not None else "–", df=g - 1 if g else "–")


def estimates(ev: Evaluation, stage: StageContext) -> None:
    """The headline estimate, the design's comparison estimators and the plain TWFE."""
    lang = stage.lang
    show.heading("eval.title", lang)
    headline_kind = f"sdid_{ev.info['vcov']}" if ev.design == "synthetic_did" else ev.estimator
    rows = [("eval.row.headline", effect_dict(ev.headline), headline_kind)]
    for key, label, kind in (("did_simple", "eval.row.did_simple", "callaway_santanna"),
                             ("randomization_inference", "eval.row.ri", "randomization_inference"),
                             ("sc_sdid", "eval.row.sc_sdid", headline_kind),
                             ("did_sdid", "eval.row.did_sdid", headline_kind)):
        if key in ev.comparisons:
            rows.append((label, effect_dict(ev.comparisons[key]), kind))
    if ev.design != "synthetic_did":  # there plain DiD is a row already, with inference valid for one treated unit
        rows.append(("eval.row.twfe", effect_dict(ev.twfe), "twfe"))
    table = pd.DataFrame([{
        "stima": t(label, lang), "effetto": r["estimate"], "errore std.": r["se"],
        "IC basso": r["ci_low"], "IC alto": r["ci_high"],
        "p": fmt_p(r["p_value"], lang).removeprefix("p ").removeprefix("= "),
        "inferenza": _inference_text(kind, r, lang),
    } for label, r, kind in rows])
    if lang == "en":
        table.columns = ["estimate", "effect", "std. error", "CI low", "CI high", "p", "inference"]
    show.table(table, lang, digits=3)
    h = ev.headline
    show.para("eval.meaning", lang, effect=fmt_number(h.estimate, lang, 3),
              unit=getattr(stage.theme.outcome_unit, lang), lo=fmt_number(h.ci_low, lang, 3),
              hi=fmt_number(h.ci_high, lang, 3), p=fmt_p(h.p_value, lang), base=fmt_number(ev.baseline, lang, 3),
              rel=fmt_number(100 * h.estimate / ev.baseline, lang, 1) if ev.baseline else "n.d.")


def event_study(ev: Evaluation, stage: StageContext) -> None:
    """The design's own chart (synthetic-control fit, interrupted time series), then the
    effects by event time with pointwise intervals and uniform bands when computed."""
    from osservatorio.publishing.event_plots import plot_event_study

    lang = stage.lang
    _design_charts(ev, stage)
    show.heading("eval.event.title", lang, level=3)
    if ev.event_study is None:
        show.para("eval.event.none", lang)
        return
    fig = plot_event_study(ev.event_study,
                           title=t("eval.event.plot_title", lang, outcome=getattr(stage.theme.outcome_label, lang)),
                           xlabel=t("eval.event.xlabel", lang), ylabel=getattr(stage.theme.outcome_unit, lang),
                           pre_label=t("eval.event.pre", lang), post_label=t("eval.event.post", lang),
                           reference_label=t("eval.event.reference", lang), band_label=t("eval.event.band", lang))
    stage.save_figure(fig, "event_study")
    show.figure(fig)
    show.para("eval.event.note", lang)


def _design_charts(ev: Evaluation, stage: StageContext) -> None:
    from osservatorio.publishing import charts

    lang, th = stage.lang, stage.theme
    if "synth" in ev.frames:
        fig = charts.synth_fit(ev.frames["synth"], ev.info["treatment_time"],
                               t("eval.synth.treated", lang, unit=ev.info["treated_unit"]),
                               t("eval.synth.synthetic", lang), getattr(th.outcome_unit, lang),
                               t("eval.synth.title", lang))
        stage.save_figure(fig, "controllo_sintetico")
        show.heading("eval.synth.heading", lang, level=3)
        show.figure(fig)
        w = ev.frames["synth_weights"]
        show.table(w[w["peso"] > 0.001].sort_values("peso", ascending=False), lang, digits=3)
    if ev.sdid is not None:
        from osservatorio.publishing.sdid_plots import plot_synthetic_did

        treated_units = ev.info["treated_unit"].split(", ")
        names = _unit_names([*ev.frames["sdid_weights"]["unit"], *treated_units], th.unit_level)
        treated = ", ".join(names.get(u, str(u)) for u in treated_units)
        fig = plot_synthetic_did(ev.sdid, title=t("eval.sdid.title", lang), overlay=True,
                                 treated_label=t("eval.sdid.treated", lang, unit=treated),
                                 control_label=t("eval.sdid.synthetic", lang),
                                 effect_label=t("eval.sdid.effect", lang),
                                 weights_label=t("eval.sdid.time_weights", lang),
                                 xlabel=t("eval.sdid.xlabel", lang), ylabel=getattr(th.outcome_unit, lang))
        stage.save_figure(fig, "did_sintetica")
        show.heading("eval.sdid.heading", lang, level=3)
        show.figure(fig)
        show.para("eval.sdid.note", lang)
        w = ev.frames["sdid_weights"]
        w = w[w["peso"] > 0.001].sort_values("peso", ascending=False).head(15)
        show.table(pd.DataFrame({t("eval.sdid.col.unit", lang): [names.get(u, str(u)) for u in w["unit"]],
                                 t("eval.sdid.col.weight", lang): w["peso"].to_numpy()}), lang, digits=3)
    if "its" in ev.frames:
        fig = charts.its_fit(ev.frames["its"], t("eval.its.observed", lang), t("eval.its.fitted", lang),
                             t("eval.its.counterfactual", lang), t("eval.event.xlabel", lang),
                             getattr(th.outcome_unit, lang), t("eval.its.title", lang))
        stage.save_figure(fig, "serie_interrotta")
        show.heading("eval.its.heading", lang, level=3)
        show.figure(fig)


def _unit_names(units, unit_level: str) -> dict:
    """Names of comuni by ISTAT code (other unit levels keep their codes)."""
    if unit_level != "comune":
        return {}
    from osservatorio.data import reference

    names = reference.comuni().set_index("codice_istat")["comune"]
    return {u: str(names[u]) for u in units if u in names.index}


def pretrend(ev: Evaluation, stage: StageContext) -> None:
    """The joint test that the pre-adoption effects are zero; a failed test is flagged, a
    test that could not be computed is said so with the reason (it counts as failed), a
    design without the test says so."""
    lang, test = stage.lang, ev.pretrend or {}
    show.heading("eval.pretrend.title", lang, level=3)
    p = test.get("p_value")
    if test.get("status") == "not_applicable":
        show.para("eval.pretrend.none", lang)
    elif test.get("status") == "failed" or p is None or p != p:
        show.para("eval.pretrend.not_computed", lang, reason=test.get("reason") or "–")
    else:
        key = "eval.pretrend.failed" if p < 0.05 else "eval.pretrend.passed"
        show.para(key, lang, stat=fmt_number(test.get("statistic"), lang, 2), df=test.get("df"), p=fmt_p(p, lang))


def sensitivity(result: dict, stage: StageContext) -> None:
    """How large a violation of parallel trends would overturn the effect (Rambachan-Roth):
    the robust intervals against Mbar as a figure and a table, and the breakdown value in
    words. A design without an event study says so; a failed analysis says why."""
    from osservatorio.publishing.honest_plots import plot_honest

    lang = stage.lang
    show.heading("eval.sens.title", lang, level=3)
    status = result.get("status")
    if status == "not_applicable":
        show.para("eval.sens.none", lang)
        return
    if status == "failed":
        show.para("eval.sens.not_computed", lang, reason=result.get("reason") or "–")
        return
    rows = pd.DataFrame(result["rows"])
    drawn = SimpleNamespace(frame=rows, original=(result["original_lb"], result["original_ub"]),
                            restriction=result["restriction"],
                            breakdown=None if result["breakdown_beyond"] else result["breakdown"])
    fig = plot_honest(drawn, title=t("eval.sens.plot_title", lang), xlabel=t("eval.sens.xlabel", lang),
                      ylabel=getattr(stage.theme.outcome_unit, lang), original_label=t("eval.sens.original", lang),
                      robust_label=t("eval.sens.robust", lang), breakdown_label=t("eval.sens.breakdown_label", lang))
    stage.save_figure(fig, "sensibilita_trend")
    show.figure(fig)
    table = rows.rename(columns={"m": "Mbar", "lb": "IC basso" if lang == "it" else "CI low",
                                 "ub": "IC alto" if lang == "it" else "CI high"})
    show.table(table, lang, digits=3)
    k, w = fmt_number(result["breakdown"], lang, 2), stage.theme.event_window
    show.para("eval.sens.estimand", lang, w=w, lo=fmt_number(result["original_lb"], lang, 3),
              hi=fmt_number(result["original_ub"], lang, 3), unit=getattr(stage.theme.outcome_unit, lang))
    if result["breakdown"] == 0:
        show.para("eval.sens.not_significant", lang, w=w)
    elif result["breakdown_beyond"]:
        show.para("eval.sens.beyond", lang, k=k, w=w)
    else:
        show.para("eval.sens.breakdown_low" if result["breakdown"] < 1 else "eval.sens.breakdown_high", lang, k=k, w=w)


def placebo(result: dict, stage: StageContext) -> None:
    """The placebo check: a fake adoption date (or in-space placebos) should find nothing."""
    lang = stage.lang
    show.heading("eval.placebo.title", lang, level=3)
    p = result.get("p_value")
    if result.get("status") == "not_applicable":
        show.para("eval.placebo.none", lang)
    elif result.get("status") == "failed" or p is None or p != p:
        show.para("eval.placebo.not_computed", lang, reason=result.get("reason") or "–")
    elif result.get("kind") == "in_space":
        show.para("eval.placebo.synth", lang, p=fmt_p(p, lang))
    else:
        show.para("eval.placebo.result", lang, k=result["shift"], effect=fmt_number(result["estimate"], lang, 3),
                  lo=fmt_number(result["ci_low"], lang, 3), hi=fmt_number(result["ci_high"], lang, 3),
                  p=fmt_p(result["p_value"], lang))


def heterogeneity(het: Heterogeneity, stage: StageContext) -> None:
    """Effects by moderator level (levels under the disclosure threshold hidden) and the
    test that they are equal."""
    lang = stage.lang
    show.heading("eval.het.title", lang, level=3)
    if het.table.empty:
        show.para("eval.het.none", lang)
        return
    show.table(het.shown.drop(columns=["stato", "se"]), lang, digits=3)
    show.para("eval.het.note", lang, threshold=het.threshold)
    for test in het.tests:
        if test["p_value"] is None:
            continue
        key = "eval.het.equal_differ" if test["p_value"] < 0.05 else "eval.het.equal_same"
        show.para(key, lang, moderator=test["moderatore"], stat=fmt_number(test["statistic"], lang, 2),
                  df=test["df"], p=fmt_p(test["p_value"], lang))
        if test["clusters_span_levels"]:
            show.para("eval.het.equal_caveat", lang, moderator=test["moderatore"])


def limit_texts(design: Design, est: Evaluation | dict, theme, lang: str) -> list[str]:
    """The caveats of an estimate in words (the report's 'what the design cannot show')."""
    from osservatorio.indicators.panel import int_to_period

    out = []
    for key, values in design.limits(est):
        if "k" in values:  # a breakdown value
            values = {**values, "k": fmt_number(values["k"], lang, 2)}
        if "cohorts" in values:
            values = {"n": len(values["cohorts"]),
                      "cohorts": ", ".join(int_to_period(g, theme.frequency) for g in values["cohorts"])}
        out.append(t(key, lang, **values))
    return out


def limits(ev: Evaluation, stage: StageContext, placebo: dict | None = None, sensitivity: dict | None = None) -> None:
    """What the estimate means, and what the design cannot rule out (with the placebo and
    the sensitivity analysis when given: the caveats stage 40 writes into the finding)."""
    show.heading("eval.limits.title", stage.lang, level=3)
    record = ev.to_dict()
    if placebo is not None:
        record["placebo"] = placebo
    if sensitivity is not None:
        record["sensitivity"] = sensitivity
    for text in limit_texts(for_theme(stage.theme), record, stage.theme, stage.lang):
        show.markdown(text)


def save(stage: StageContext, ev: Evaluation, placebo: dict | None = None,
         heterogeneity: Heterogeneity | None = None, sensitivity: dict | None = None) -> None:
    """Hand the stage's results to stage 40 through the run folder: estimates.json (with
    the options that produced them), the frames as parquet, the methods text."""
    for name, frame in ev.frames.items():
        frame.to_parquet(stage.data_dir / f"{name}.parquet", index=False)
    record = ev.to_dict()
    if placebo is not None:
        record["placebo"] = placebo
    if sensitivity is not None:
        record["sensitivity"] = sensitivity
    if heterogeneity is not None and not heterogeneity.table.empty:
        heterogeneity.table.to_parquet(stage.data_dir / "heterogeneity.parquet", index=False)
        record["heterogeneity_tests"] = heterogeneity.tests
    record["theme_options"] = stage.options_record()
    stage.write_json("estimates.json", record)
    lang, name = stage.lang, stage.theme.design
    (stage.data_dir / "methods_30.md").write_text(
        t("eval.methods." + name, lang) + "\n\n" + t(f"eval.limits.{name}", lang), encoding="utf-8")


def read_estimates(stage: StageContext) -> dict:
    """The estimates stage 30 wrote (stage 40 reads them)."""
    return json.loads((stage.data_dir / "estimates.json").read_text(encoding="utf-8"))
