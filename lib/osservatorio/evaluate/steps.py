"""Stage 30 steps: choose the estimator from the theme's design, estimate, diagnose.

Designs and headline estimators:
- ``staggered_did``: Callaway-Sant'Anna ATT(g,t), simple aggregation (comparison from the
  theme: never or not-yet treated), analytic influence-function errors clustered.
- ``did_few_treated``: TWFE DiD with a restricted wild cluster bootstrap (Webb weights)
  and randomization inference as a check.
- ``event_study_its``: event study (Callaway-Sant'Anna by event time) for the pre-trend
  diagnosis, and as headline a comparative interrupted time series aligned on adoption
  (treated minus not-yet-treated districts, own pre-trend extrapolated).
- ``synthetic_control``: synthetic control with in-space placebos.

Pre-trend test (every design with leads): Wald statistic on the event-study leads
-event_window..-1 referred to a restricted wild cluster bootstrap (``leads_pretrend``);
the ITS design adds a clustered test of a linear pre-adoption trend (``_its_pretrend``).
``estimate_design`` and ``heterogeneity_table`` compute without I/O or display; the
other steps write the run folder and display.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from osservatorio.publishing import show
from osservatorio.evaluate.results import EffectResult
from osservatorio.running.stage import StageContext
from osservatorio.publishing.text import fmt_number, fmt_p

N_BOOT = 999
SYNTH_RMSPE_CUTOFF = 5.0  # Abadie et al. (2010): drop placebos fitting 5x worse before treatment


def _effect_dict(r: EffectResult) -> dict:
    d = r.to_dict()
    d["extra"] = {k: v for k, v in d["extra"].items() if isinstance(v, (int, float, str, bool, type(None)))}
    return d


def _treated_clusters(panel: pd.DataFrame) -> int:
    return int(panel.loc[panel["cohort"] > 0, "cluster"].nunique())


def _baseline(panel: pd.DataFrame) -> float:
    """Weighted mean outcome of the treated units before adoption."""
    pre = panel[(panel["cohort"] > 0) & (panel["time"] < panel["cohort"])]
    return float(np.average(pre["y"], weights=pre["w"])) if len(pre) else float("nan")


def estimate_design(theme, panel: pd.DataFrame) -> tuple[dict, dict[str, pd.DataFrame]]:
    """Run the design's estimators on the analysis panel: no I/O, no display.

    Returns the estimates (the dict written to ``estimates.json``: headline, pre-trend
    test, design-specific extras, plain TWFE for comparison) and the frames to save
    (name -> frame: event study, cohorts, ITS series, synthetic-control fit).
    """
    design = theme.design
    out: dict = {"design": design, "baseline": _baseline(panel), "n_treated_clusters": _treated_clusters(panel),
                 "n_units": int(panel["unit"].nunique()), "n_treated": int(panel.loc[panel["cohort"] > 0, "unit"].nunique()),
                 "caveats": []}
    if design != "synthetic_control":
        out["cohorts_one_cluster"] = _cohorts_one_cluster(panel)
    run = {"staggered_did": _staggered, "did_few_treated": _few_treated, "event_study_its": _event_study_its,
           "synthetic_control": _synth}[design]
    result, frames = run(theme, panel)
    out.update(result)
    out.update(_twfe_reference(panel))
    return out, frames


def _cohorts_one_cluster(panel: pd.DataFrame) -> list[int]:
    """Adoption cohorts whose treated units all sit in one cluster: their treated part of
    the clustered influence function is zero, so their se and band miss its shocks."""
    treated = panel[panel["cohort"] > 0].drop_duplicates("unit")
    n = treated.groupby("cohort")["cluster"].nunique()
    return [int(g) for g in n.index[n < 2]]


def estimate(ctx: StageContext) -> dict:
    """Run the design's estimators; write data/estimates.json and frames; show the main table."""
    out, frames = estimate_design(ctx.theme, ctx.panel())
    for name, frame in frames.items():
        frame.to_parquet(ctx.data_dir / f"{name}.parquet", index=False)
    ctx.write_json("estimates.json", out)
    _show_estimates(ctx, out)
    return out


def leads_pretrend(res, theme) -> dict:
    """Pre-trend test on the leads -event_window..-1 with the wild cluster bootstrap.

    The chi2 Wald over-rejects when treatment is assigned by cluster with few treated
    clusters per cohort (see ``osservatorio.evaluate.pretrend``); the bootstrap holds
    its size there (benchmarks/calibrate_pretrend.py).
    """
    try:
        return res.pretrend_test(on="event", window=theme.event_window, method="wild_bootstrap",
                                 n_boot=N_BOOT, seed=theme.seed)
    except Exception as exc:  # e.g. no lead with a usable se: say so, do not stop the stage
        return {"statistic": None, "df": 0, "p_value": None, "note": str(exc)[:200]}


def _staggered(t, panel: pd.DataFrame) -> tuple[dict, dict]:
    from osservatorio.evaluate import staggered_did

    res = staggered_did(panel, "y", "unit", "time", "cohort", control=t.comparison, anticipation=t.anticipation,
                        cluster="cluster", n_boot=N_BOOT, seed=t.seed)
    simple = res.aggregate("simple")
    event = res.aggregate("event", min_e=-t.event_window, max_e=t.event_window)
    cohort = res.aggregate("cohort")
    frames = {"event_study": event, "cohorts": cohort, "att_gt": res.att_gt}
    return {"headline": _effect_dict(simple), "estimator": "callaway_santanna",
            "pretrend": leads_pretrend(res, t), "event_source": "callaway_santanna"}, frames


def _few_treated(t, panel: pd.DataFrame) -> tuple[dict, dict]:
    from osservatorio.evaluate import randomization_inference, staggered_did, wild_cluster_bootstrap

    wcr = wild_cluster_bootstrap(panel, "y", "treated", "unit", "time", "cluster", weights_type="webb",
                                 n_boot=9999, seed=t.seed)
    ri = randomization_inference(panel, "y", "treated", "unit", "time", cluster="cluster", n_perm=N_BOOT, seed=t.seed)
    # event study and pre-trend test: cohort DiD against never-treated units (with one
    # adoption date it is the 2x2 DiD of each period), wild bootstrap on the leads
    es = staggered_did(panel, "y", "unit", "time", "cohort", control="never", cluster="cluster",
                       n_boot=N_BOOT, seed=t.seed)
    event = es.aggregate("event", min_e=-t.event_window, max_e=t.event_window)
    return {"headline": _effect_dict(wcr), "estimator": "twfe_wild_cluster_bootstrap",
            "randomization_inference": _effect_dict(ri), "pretrend": leads_pretrend(es, t),
            "event_source": "callaway_santanna"}, {"event_study": event}


def _event_study_its(t, panel: pd.DataFrame) -> tuple[dict, dict]:
    from osservatorio.evaluate import staggered_did
    from osservatorio.evaluate.comparative_its import comparative_its

    res = staggered_did(panel, "y", "unit", "time", "cohort", control=t.comparison, anticipation=t.anticipation,
                        cluster="cluster", n_boot=N_BOOT, seed=t.seed)
    event = res.aggregate("event", min_e=-t.event_window, max_e=t.event_window)
    did_simple = res.aggregate("simple")
    its = comparative_its(panel, "y", "unit", "time", "cohort", cluster="cluster", weight="w", n_boot=N_BOOT,
                          seed=t.seed)
    s = its.series
    its_frame = pd.DataFrame({"e": s["e"], "osservato": s["gap"], "stimato": s["fitted"],
                              "controfattuale": s["counterfactual"]})
    return {"headline": _effect_dict(its.level_change), "estimator": "comparative_its",
            "its_average": _effect_dict(its.average_effect), "its_slope_change": _effect_dict(its.slope_change),
            "did_simple": _effect_dict(did_simple), "pretrend": _its_pretrend(leads_pretrend(res, t), panel),
            "event_source": "callaway_santanna"}, {"event_study": event, "its": its_frame}


def _its_pretrend(leads: dict, panel: pd.DataFrame) -> dict:
    """Leads test combined (Bonferroni) with a test of a linear differential pre-trend.

    With monthly data the event-window leads are one-month differences and have little
    power against a slow differential drift (12 leads: p ~ 0.06 on case-comunita's
    -0.004/month). The second test uses every pre-adoption period: on the observations
    before adoption (never-treated units throughout), the outcome on unit and period
    effects and treated x period, the slope's CRV1 t-test clustered as the theme, t(G-1)
    (the HAC t-test of the ITS gap's own slope over-rejected a true null 20% of the time
    in a simulation on this structure, as its residuals share the comparison mean). The
    decision uses 2 x the smaller p-value (size <= 5%).
    """
    from osservatorio.evaluate import twfe

    pre = panel[(panel["cohort"] == 0) | (panel["time"] < panel["cohort"])]
    pre = pre.assign(treated_trend=(pre["cohort"] > 0) * (pre["time"] - pre["time"].mean()))
    slope = twfe(pre, "y", "treated_trend", "unit", "time", cluster="cluster").effect
    out = dict(leads)
    p_leads = leads.get("p_value")
    out.update({"p_value_leads": p_leads, "trend_per_period": slope.estimate, "trend_se": slope.se,
                "p_value_trend": slope.p_value})
    ps = [slope.p_value] + ([p_leads] if p_leads is not None else [])
    out["p_value"] = min(1.0, len(ps) * min(ps))
    out["method"] = (leads.get("method", "") + "; combined (Bonferroni) with the clustered t-test of a linear "
                     "treated x period trend on all pre-adoption observations")
    return out


def _synth(t, panel: pd.DataFrame) -> tuple[dict, dict]:
    from osservatorio.evaluate import synthetic_control

    treated = panel.loc[panel["cohort"] > 0, ["unit", "cohort"]].drop_duplicates()
    unit, t0 = treated.iloc[0]["unit"], int(treated.iloc[0]["cohort"])
    donors = panel[(panel["cohort"] == 0) | (panel["unit"] == unit)]
    res = synthetic_control(donors, "y", "unit", "time", treated_unit=unit, treatment_time=t0,
                            placebo_rmspe_cutoff=SYNTH_RMSPE_CUTOFF)
    kept = res.placebos.set_index("unit")
    post = res.placebo_gaps.loc[res.placebo_gaps.index >= t0]
    good = [c for c in post.columns if c in kept.index and not bool(kept.loc[c, "excluded"])]
    spread = float(post[good].mean().std(ddof=1)) if len(good) > 1 else float("nan")
    eff = res.effect
    headline = {**_effect_dict(eff), "se": spread, "ci_low": eff.estimate - 1.96 * spread,
                "ci_high": eff.estimate + 1.96 * spread,
                "inference": (f"RMSPE-ratio rank p-value over {len(good) + 1} units (placebos with pre-RMSPE > "
                              f"{SYNTH_RMSPE_CUTOFF}x the treated excluded); interval = estimate +/- 1.96 x SD of "
                              f"the donors' average post-period placebo gaps")}
    frames = {"synth": pd.DataFrame({"time": res.treated.index, "trattato": res.treated.to_numpy(),
                                     "sintetico": res.synthetic.to_numpy()}),
              "synth_weights": res.weights.rename("peso").reset_index()}
    return {"headline": headline, "estimator": "synthetic_control", "treated_unit": unit, "treatment_time": t0,
            "pre_rmspe": res.pre_rmspe, "post_rmspe": res.post_rmspe, "rank": res.rank, "n_placebos": len(good),
            "pretrend": {"statistic": None, "df": 0, "p_value": None}, "event_source": "synthetic_control"}, frames


def _twfe_reference(panel: pd.DataFrame) -> dict:
    """Plain TWFE DiD, shown for comparison (biased under staggered heterogeneous effects)."""
    from osservatorio.evaluate import twfe

    r = twfe(panel, "y", "treated", "unit", "time", cluster="cluster")
    return {"twfe": _effect_dict(r.effect)}


def _show_estimates(ctx: StageContext, out: dict) -> None:
    lang = ctx.lang
    show.heading("eval.title", lang)
    rows = [("eval.row.headline", out["headline"], out["estimator"])]
    for key, label, kind in (("did_simple", "eval.row.did_simple", "callaway_santanna"),
                             ("randomization_inference", "eval.row.ri", "randomization_inference"),
                             ("twfe", "eval.row.twfe", "twfe")):
        if key in out:
            rows.append((label, out[key], kind))
    table = pd.DataFrame([{
        "stima": show_label(label, lang), "effetto": r["estimate"], "errore std.": r["se"],
        "IC basso": r["ci_low"], "IC alto": r["ci_high"], "p": fmt_p(r["p_value"], lang).removeprefix("p ").removeprefix("= "),
        "inferenza": _inference_text(kind, r, lang),
    } for label, r, kind in rows])
    if lang == "en":
        table.columns = ["estimate", "effect", "std. error", "CI low", "CI high", "p", "inference"]
    show.table(table, lang, digits=3)
    h = out["headline"]
    show.para("eval.meaning", lang, effect=fmt_number(h["estimate"], lang, 3), unit=getattr(ctx.theme.outcome_unit, lang),
              lo=fmt_number(h["ci_low"], lang, 3), hi=fmt_number(h["ci_high"], lang, 3), p=fmt_p(h["p_value"], lang),
              base=fmt_number(out["baseline"], lang, 3), rel=fmt_number(100 * h["estimate"] / out["baseline"], lang, 1)
              if out["baseline"] else "n.d.")


def _inference_text(kind: str, r: dict, lang: str) -> str:
    """How the row's interval was obtained, in the report's language (the estimators'
    own ``inference`` strings are English and stay in estimates.json)."""
    from osservatorio.publishing.text import t

    g = r.get("n_clusters")
    if kind == "callaway_santanna" and "t(" not in (r.get("inference") or ""):
        kind = "callaway_santanna_unit"  # clustered by unit: R did's convention, normal quantiles
    return t(f"eval.inference.{kind}", lang, g=g if g is not None else "–", df=g - 1 if g else "–")


def show_label(key: str, lang: str) -> str:
    from osservatorio.publishing.text import t

    return t(key, lang)


def event_study_plot(ctx: StageContext) -> None:
    """Effects by event time with pointwise intervals (and uniform bands when computed)."""
    from osservatorio.publishing.event_plots import plot_event_study
    from osservatorio.publishing.text import t

    lang = ctx.lang
    path = ctx.data_dir / "event_study.parquet"
    _design_charts(ctx)
    show.heading("eval.event.title", lang, level=3)
    if not path.is_file():
        show.para("eval.event.none", lang)
        return
    coefs = pd.read_parquet(path)
    fig = plot_event_study(coefs, title=t("eval.event.plot_title", lang, outcome=getattr(ctx.theme.outcome_label, lang)),
                           xlabel=t("eval.event.xlabel", lang), ylabel=getattr(ctx.theme.outcome_unit, lang),
                           pre_label=t("eval.event.pre", lang), post_label=t("eval.event.post", lang),
                           reference_label=t("eval.event.reference", lang), band_label=t("eval.event.band", lang))
    ctx.save_figure(fig, "event_study")
    show.figure(fig)
    show.para("eval.event.note", lang)


def _design_charts(ctx: StageContext) -> None:
    """The synthetic-control fit, or the interrupted time series, when the design has one."""
    from osservatorio.publishing import charts
    from osservatorio.publishing.text import t

    lang, th = ctx.lang, ctx.theme
    if (ctx.data_dir / "synth.parquet").is_file():
        df = pd.read_parquet(ctx.data_dir / "synth.parquet")
        est = ctx.read_json("estimates.json")
        fig = charts.synth_fit(df, est["treatment_time"], t("eval.synth.treated", lang, unit=est["treated_unit"]),
                               t("eval.synth.synthetic", lang), getattr(th.outcome_unit, lang),
                               t("eval.synth.title", lang))
        ctx.save_figure(fig, "controllo_sintetico")
        show.heading("eval.synth.heading", lang, level=3)
        show.figure(fig)
        w = pd.read_parquet(ctx.data_dir / "synth_weights.parquet")
        show.table(w[w["peso"] > 0.001].sort_values("peso", ascending=False), lang, digits=3)
    if (ctx.data_dir / "its.parquet").is_file():
        df = pd.read_parquet(ctx.data_dir / "its.parquet")
        fig = charts.its_fit(df, t("eval.its.observed", lang), t("eval.its.fitted", lang),
                             t("eval.its.counterfactual", lang), t("eval.event.xlabel", lang),
                             getattr(th.outcome_unit, lang), t("eval.its.title", lang))
        ctx.save_figure(fig, "serie_interrotta")
        show.heading("eval.its.heading", lang, level=3)
        show.figure(fig)


def pretrend(ctx: StageContext) -> dict:
    """Joint test that the pre-adoption effects are zero; a failed test is flagged."""
    est = ctx.read_json("estimates.json")
    test = est.get("pretrend") or {}
    lang = ctx.lang
    show.heading("eval.pretrend.title", lang, level=3)
    p = test.get("p_value")
    if p is None or p != p:
        show.para("eval.pretrend.none", lang)
    else:
        key = "eval.pretrend.failed" if p < 0.05 else "eval.pretrend.passed"
        show.para(key, lang, stat=fmt_number(test.get("statistic"), lang, 2), df=test.get("df"), p=fmt_p(p, lang))
    return test


def _shift_back(panel: pd.DataFrame, k: int) -> pd.DataFrame:
    """Pre-adoption data only, with adoption moved k periods earlier (placebo timing)."""
    last_pre = panel.loc[panel["cohort"] > 0, "cohort"].min()
    df = panel[panel["time"] < last_pre].copy()
    df["cohort"] = np.where(df["cohort"] > 0, df["cohort"] - k, 0)
    df.loc[df["cohort"] <= df["time"].min(), "cohort"] = 0
    df["treated"] = ((df["cohort"] > 0) & (df["time"] >= df["cohort"])).astype("int64")
    return df


def placebo(ctx: StageContext) -> dict:
    """A fake adoption date before the real one, on pre-adoption data: should find nothing."""
    from osservatorio.evaluate import staggered_did, twfe

    t, lang = ctx.theme, ctx.lang
    panel = ctx.panel()
    show.heading("eval.placebo.title", lang, level=3)
    result: dict = {"p_value": None}
    if t.design == "synthetic_control":
        est = ctx.read_json("estimates.json")
        result = {"p_value": est["headline"]["p_value"], "kind": "in_space"}
        show.para("eval.placebo.synth", lang, p=fmt_p(result["p_value"], lang))
    else:
        k = max(1, t.event_window // 2)
        df = _shift_back(panel, k)
        if df.loc[df["cohort"] > 0, "unit"].nunique() == 0 or df["time"].nunique() < 3:
            show.para("eval.placebo.none", lang)
        else:
            if t.design == "did_few_treated":
                r = twfe(df, "y", "treated", "unit", "time", cluster="cluster").effect
            else:
                r = staggered_did(df, "y", "unit", "time", "cohort", control=t.comparison, cluster="cluster",
                                  bootstrap=False).aggregate("simple")
            result = {"p_value": r.p_value, "estimate": r.estimate, "ci_low": r.ci_low, "ci_high": r.ci_high,
                      "shift": k, "kind": "timing"}
            show.para("eval.placebo.result", lang, k=k, effect=fmt_number(r.estimate, lang, 3),
                      lo=fmt_number(r.ci_low, lang, 3), hi=fmt_number(r.ci_high, lang, 3), p=fmt_p(r.p_value, lang))
    est = ctx.read_json("estimates.json")
    est["placebo"] = result
    ctx.write_json("estimates.json", est)
    return result


def _subgroup_effect(data: pd.DataFrame, design: str, comparison: str, cohort: str = "cohort") -> EffectResult:
    """The design's subgroup estimator (cohort DiD, or TWFE for few treated); failures
    become EstimationError so that ``by_moderator`` records them and moves on."""
    from osservatorio.evaluate import staggered_did, twfe
    from osservatorio.exceptions import EstimationError

    try:
        if design == "did_few_treated":
            return twfe(data, "y", "treated", "unit", "time", cluster="cluster").effect
        return staggered_did(data, "y", "unit", "time", cohort, control=comparison, cluster="cluster",
                             bootstrap=False).aggregate("simple")
    except EstimationError:
        raise
    except Exception as exc:  # e.g. a subgroup without comparisons
        raise EstimationError(str(exc)[:120]) from exc


def heterogeneity_table(theme, panel: pd.DataFrame) -> tuple[pd.DataFrame, list[dict]]:
    """Effects by level of each moderator and the test that they are equal (no display).

    Returns one row per moderator level (moderatore, livello, n_trattati, stima, se,
    ci_low, ci_high, p_value, stato) and one equality test per moderator (Wald /
    Cochran Q, chi2 with levels - 1 df, over the levels with at least
    ``disclosure_threshold`` treated units; it treats subgroups as independent, exact
    when no cluster spans two levels).
    """
    from osservatorio.evaluate import by_moderator, equality_test

    rows, tests = [], []
    if theme.design in ("synthetic_control", "event_study_its"):
        return pd.DataFrame(), tests
    for mod in theme.moderators:
        if mod not in panel.columns:
            continue
        frame = by_moderator(_subgroup_effect, panel, mod, design=theme.design, comparison=theme.comparison,
                             cohort="cohort")
        n_tr = panel[panel["cohort"] > 0].groupby(mod, observed=True)["unit"].nunique()
        for r in frame.to_dict("records"):
            rows.append({"moderatore": mod, "livello": str(r[mod]), "n_trattati": int(n_tr.get(r[mod], 0)),
                         "stima": r["estimate"], "se": r["se"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                         "p_value": r["p_value"], "stato": r["status"]})
        # equality test over the levels that are shown: a level with fewer treated units
        # than the disclosure threshold has an unreliable se (few clusters) and is hidden
        ok = [r for r in rows if r["moderatore"] == mod and r["stato"] == "ok"
              and r["n_trattati"] >= theme.disclosure_threshold and np.isfinite(r["se"]) and r["se"] > 0]
        eq = equality_test([r["stima"] for r in ok], [r["se"] for r in ok]) if len(ok) >= 2 else None
        spans = panel.groupby("cluster", observed=True)[mod].nunique().max() > 1
        tests.append({"moderatore": mod, "statistic": None if eq is None else eq.statistic,
                      "df": None if eq is None else eq.df, "p_value": None if eq is None else eq.p_value,
                      "clusters_span_levels": bool(spans)})
    return pd.DataFrame(rows), tests


def heterogeneity(ctx: StageContext) -> pd.DataFrame:
    """The effect by moderator level (size class, macro-area, ...) and the equality test."""
    t, lang = ctx.theme, ctx.lang
    show.heading("eval.het.title", lang, level=3)
    table, tests = heterogeneity_table(t, ctx.panel())
    if table.empty:
        show.para("eval.het.none", lang)
        return table
    table.to_parquet(ctx.data_dir / "heterogeneity.parquet", index=False)
    shown = table[(table["n_trattati"] >= t.disclosure_threshold) & (table["stato"] == "ok")]
    show.table(shown.drop(columns=["stato", "se"]), lang, digits=3)
    show.para("eval.het.note", lang, threshold=t.disclosure_threshold)
    for test in tests:
        if test["p_value"] is None:
            continue
        key = "eval.het.equal_differ" if test["p_value"] < 0.05 else "eval.het.equal_same"
        show.para(key, lang, moderator=test["moderatore"], stat=fmt_number(test["statistic"], lang, 2),
                  df=test["df"], p=fmt_p(test["p_value"], lang))
        if test["clusters_span_levels"]:
            show.para("eval.het.equal_caveat", lang, moderator=test["moderatore"])
    est = ctx.read_json("estimates.json")
    est["heterogeneity_tests"] = tests
    ctx.write_json("estimates.json", est)
    return table


def _one_cluster_args(est: dict, theme) -> dict:
    from osservatorio.indicators.panel import int_to_period

    cohorts = est["cohorts_one_cluster"]
    return {"n": len(cohorts), "cohorts": ", ".join(int_to_period(g, theme.frequency) for g in cohorts)}


def interpretation(ctx: StageContext) -> None:
    """What the estimate means, and what the design cannot rule out (methods file too)."""
    from osservatorio.publishing.text import t as tr

    t, lang = ctx.theme, ctx.lang
    est = ctx.read_json("estimates.json")
    show.heading("eval.limits.title", lang, level=3)
    key = f"eval.limits.{t.design}"
    show.para(key, lang)
    p = (est.get("pretrend") or {}).get("p_value")
    if p is not None and p == p and p < 0.05:
        show.para("eval.limits.pretrend_failed", lang)
    if est.get("n_treated_clusters", 99) < 10:
        show.para("eval.limits.few_clusters", lang, n=est["n_treated_clusters"])
    if est.get("cohorts_one_cluster"):
        show.para("eval.limits.one_cluster_cohorts", lang, **_one_cluster_args(est, t))
    (ctx.data_dir / "methods_30.md").write_text(
        tr("eval.methods." + t.design, lang) + "\n\n" + tr(key, lang), encoding="utf-8")
