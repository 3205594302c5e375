"""Stage 40: the transferability step on a simulated run folder, and the catalogue's
ranking of the demo practices against the demo ground truth."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from osservatorio.synthesis.findings import Finding, verdict
from osservatorio.publishing.site import assessment, catalogue_findings
from osservatorio.running.stage import StageContext
from osservatorio.synthesis import steps as step
from osservatorio.synthesis import ci_width_ratio, maryland_level, not_applicable, padlocks
from osservatorio.themes import Theme, load_theme

AREAS = ["Nord-ovest", "Nord-est", "Centro", "Sud", "Isole"]


def _run_folder(tmp_path, lang="it"):
    """A run folder with a simulated panel: the effect is 1 everywhere and 2 in Nord-est."""
    rng = np.random.default_rng(11)
    periods = np.arange(2014, 2024)
    rows, units = [], []
    for s in range(50):
        area = AREAS[s % 5]
        g = int(rng.choice([2017, 2018, 2019]))
        theta = 2.0 if area == "Nord-est" else 1.0
        for u in range(3):
            code = f"{s:03d}{u:03d}"
            units.append((code, area, g))
            y = rng.normal(0, 0.5, len(periods)) + theta * (periods >= g)
            rows += [(code, t, v, g, f"P{s:02d}") for t, v in zip(periods, y, strict=True)]
    for n in range(150):
        code = f"9{n:05d}"
        units.append((code, AREAS[n % 5], 0))
        rows += [(code, t, v, 0, f"N{n:03d}") for t, v in zip(periods, rng.normal(0, 0.5, len(periods)), strict=True)]
    panel = pd.DataFrame(rows, columns=["unit", "time", "y", "cohort", "cluster"])
    info = pd.DataFrame(units, columns=["unit", "ripartizione", "g"]).drop(columns="g")
    info["popolazione"] = rng.lognormal(8.5, 1, len(info)).round()
    info["quota_over65"] = rng.uniform(0.18, 0.32, len(info))
    info["classe_ampiezza"] = np.where(info["popolazione"] > 5000, "5.001-10.000", "1.001-5.000")
    info["regione"] = "Regione"
    panel = panel.merge(info, on="unit")
    run = tmp_path / "run"
    (run / "data").mkdir(parents=True)
    panel.to_parquet(run / "data" / "panel.parquet", index=False)
    pd.DataFrame({"codice_istat": info["unit"], "comune": "Comune " + info["unit"],
                  "ets_per_10000": rng.uniform(2, 20, len(info))}).to_parquet(
        run / "data" / "indicatori_comuni.parquet", index=False)
    theme = Theme.model_validate({**load_theme("patti-beni-comuni").notebook_parameters(), "cluster": "provincia",
                                  "language": lang, "event_window": 4})
    return StageContext(theme=theme, run_dir=run)


@pytest.mark.parametrize("lang", ["it", "en"])
def test_transferability_step_finds_where_it_worked_and_exports_the_list(tmp_path, lang):
    ctx = _run_folder(tmp_path, lang)
    summary = step.transferability(ctx)
    assert summary["k"] == 50 and summary["efficace_tra_siti"]
    assert summary["moderators"] == ["ripartizione", "log10_popolazione"]  # 50 sites: 5 terms, area takes 4
    assert summary["pi_type"] == "default"
    assert "Nord-est" in summary["contesti_efficaci"]
    out = pd.read_csv(ctx.run_dir / "trasferibilita.csv", dtype={"codice": str})
    assert len(out) == 150 and out["posizione"].tolist() == list(range(1, 151))
    # Nord-est, where the effect is twice as large, heads the list
    assert (out.head(20)["ripartizione"] == "Nord-est").all()
    assert out["motivi"].str.len().min() > 50
    word = "Effetto previsto" if lang == "it" else "Predicted effect"
    assert out["motivi"].str.startswith(word).all()
    xlsx = pd.read_excel(ctx.run_dir / "trasferibilita.xlsx", sheet_name=None)
    assert set(xlsx) == {"trasferibilita", "codebook"} and len(xlsx["trasferibilita"]) == 150
    assert xlsx["codebook"]["significato"].str.len().min() > 3
    assert (ctx.data_dir / "methods_40.md").read_text(encoding="utf-8").count("Riley") == 1
    saved = json.loads((ctx.data_dir / "transfer.json").read_text())
    assert saved["comuni_simili"] == out["nome"].head(5).tolist()


# --- catalogue ranking against the demo ground truth ------------------------------------

def _demo_finding(theme: str, design: str, est: float, lo: float, hi: float, p: float, pretrend_p,
                  n_clusters: int, higher_is_better: bool = True) -> Finding:
    """A finding graded by the real rules from the diagnostics a demo run produces (the
    pre-trend test of a synthetic control does not apply; placebo and pooling are not
    simulated here)."""
    level = maryland_level(design)
    rating = padlocks(level, n_treated_clusters=n_clusters,
                      pretrend_p=not_applicable("no leads") if design == "synthetic_control" else pretrend_p,
                      placebo_p=not_applicable("not simulated"), i2=not_applicable("not simulated"),
                      ci_width_ratio=ci_width_ratio(est, lo, hi), breakdown=not_applicable("not simulated"),
                      synthetic_data=True)
    return Finding(
        tema=theme, titolo=theme, pratica=theme, esito="y", esito_etichetta="y", unita_misura="u",
        livello_unita="comune", disegno=design, stimatore="x", effetto=est, effetto_relativo=est / 10,
        valore_base=10.0, ci_low=lo, ci_high=hi, p_value=p, metodo_inferenza="x", n_trattati=n_clusters,
        n_confronto=100, n_cluster=n_clusters, periodo_inizio="2014", periodo_fine="2023", pretrend_p=pretrend_p,
        placebo_p=None, livello_maryland=level, lucchetti=rating.padlocks,
        lucchetti_senza_limite_sintetico=rating.uncapped, motivi_lucchetti=rating.codes,
        verdetto=verdict(lo, hi, higher_is_better, p), costo_totale_euro=None, beneficiari=None,
        costo_per_beneficiario_euro=None, dati_sintetici=True, lingua="it", id_run="r")


def test_catalogue_ranks_demo_practices_consistently_with_ground_truth(project_root):
    """Diagnostics as in the demo (ground_truth.json): the null practice is never
    presented as effective, the violated pre-trend gets a low rating, and the practices
    with a true effect rank above both."""
    truth = json.loads((project_root / "data" / "demo" / "ground_truth.json").read_text())["themes"]
    assert truth["finanza-sociale-neet"]["att_simple"] == 0
    assert "violated" in truth["case-comunita"]["design"]
    findings = [
        _demo_finding("patti-beni-comuni", "staggered_did", 1.94, 1.79, 2.09, 1e-9, 0.14, 106),
        _demo_finding("cooperative-aree-interne", "staggered_did", 1.96, 1.07, 2.84, 1e-5, 0.31, 46),
        _demo_finding("coprogettazione-anziani", "staggered_did", 1.10, 1.00, 1.19, 1e-9, 0.21, 70),
        _demo_finding("citta-pilota", "synthetic_control", 1.37, 0.10, 2.64, 0.02, None, 1),
        # the null practice: a positive but insignificant estimate
        _demo_finding("finanza-sociale-neet", "did_few_treated", 0.42, -0.36, 1.22, 0.28, 0.77, 18,
                      higher_is_better=False),
        # violated pre-trends: a precise, 'significant' estimate that is biased
        _demo_finding("case-comunita", "event_study_its", -0.20, -0.22, -0.18, 1e-9, 1e-12, 70,
                      higher_is_better=False),
    ]
    ranked = catalogue_findings([{"theme": f.tema, "findings": [f], "manifest": None} for f in reversed(findings)])
    order = [f.tema for f in ranked]
    by = {f.tema: f for f in ranked}
    null, pre = by["finanza-sociale-neet"], by["case-comunita"]
    assert null.verdetto != "efficace" and assessment(null) == "non_dimostrata"
    assert pre.lucchetti_senza_limite_sintetico <= 1 and assessment(pre) == "debole"
    assert all(f.lucchetti == 0 for f in ranked)  # synthetic data carry no evidence
    effective = ["patti-beni-comuni", "cooperative-aree-interne", "coprogettazione-anziani", "citta-pilota"]
    assert max(order.index(t) for t in effective) < order.index("case-comunita") < order.index("finanza-sociale-neet")
    assert all(assessment(by[t]) in ("solida", "moderata") for t in effective)


def test_weak_evidence_names_no_context_where_it_worked(tmp_path, monkeypatch):
    """Pre-trends rejected (0 padlocks on real data): sites inherit the bias, so no context
    is presented as one where the practice works, though the list is still exported. The
    report says why once, and does not also claim the pooled effect is unfavourable."""
    ctx = _run_folder(tmp_path)
    grade = {"maryland": 2, "padlocks": 0, "uncapped": 0, "reasons": []}
    shown = []
    real_para = step.show.para
    monkeypatch.setattr(step.show, "para", lambda key, *a, **k: (shown.append(key), real_para(key, *a, **k)))
    summary = step.transferability(ctx, grade)
    assert summary["evidenza_debole"] and summary["contesti_efficaci"] == []
    assert summary["efficace_tra_siti"] and "syn.transfer.weak" in shown
    assert "syn.transfer.worked_none" not in shown and "syn.transfer.worked_no_group" not in shown
    out = pd.read_csv(ctx.run_dir / "trasferibilita.csv")
    assert len(out) == 150 and not out["motivi"].str.contains("dove la pratica ha funzionato").any()


def test_reason_text_names_the_cap_not_a_zero_removal():
    rating = padlocks(2, n_treated_clusters=50, pretrend_p=0.01, placebo_p=0.5, ci_width_ratio=0.2, i2=0.1,
                      breakdown=0.2, synthetic_data=True)  # 2 - 2 = 0, then the cap removes nothing
    texts = [step._reason_text(r, "it") for r in rating.reasons]
    assert texts[0].endswith("(−2)") and texts[1].endswith("(massimo 0)"), texts
    assert step._reason_text(rating.reasons[1], "en").endswith("(at most 0)")


@pytest.mark.parametrize("design", ["did_few_treated", "event_study_its", "synthetic_control"])
def test_no_cohort_effects_is_not_called_a_single_cohort(tmp_path, monkeypatch, design):
    """ITS, few-treated and synthetic-control designs write no cohorts.parquet: the report
    says the design estimates no effect per cohort (case-comunita has 18 cohorts), and the
    heterogeneity rule does not apply."""
    ctx = _run_folder(tmp_path)
    ctx.theme = ctx.theme.model_copy(update={"design": design})
    shown = []
    monkeypatch.setattr(step.show, "para", lambda key, *a, **k: shown.append(key))
    pooled = step.pool_cohorts(ctx)
    assert pooled["status"] == "not_applicable" and "no effect per adoption cohort" in pooled["reason"]
    assert shown == ["syn.pool.not_estimated"]
    assert step._pooling_check(ctx, None).status == "not_applicable"


def _cohorts(ctx, se) -> None:
    pd.DataFrame({"cohort": range(2017, 2017 + len(se)), "estimate": [1.0, 1.2, 0.9][:len(se)], "se": se,
                  "ci_low": 0.0, "ci_high": 2.0}).to_parquet(ctx.data_dir / "cohorts.parquet", index=False)


@pytest.mark.parametrize(
    "se,status,reason,key",
    [
        (None, "failed", "stage 30 wrote no effects per cohort", "syn.pool.failed"),
        ([0.1], "not_applicable", "a single adoption cohort", "syn.pool.none"),
        ([0.1, np.nan, 0.0], "failed", "1 of 3 cohorts have a standard error, 2 needed", "syn.pool.failed"),
        ([0.1, 0.2, 0.15], "computed", None, "syn.pool.result"),
    ],
)
def test_pooling_of_cohorts_states(tmp_path, monkeypatch, se, status, reason, key):
    """A staggered design pools its cohorts: a single cohort has nothing to pool (not
    applicable); missing cohort effects or standard errors are a failed pooling, which the
    evidence rules count as high heterogeneity."""
    ctx = _run_folder(tmp_path)
    if se is not None:
        _cohorts(ctx, se)
    shown = []
    monkeypatch.setattr(step.show, "para", lambda key, *a, **kw: shown.append((key, kw.get("reason"))))
    monkeypatch.setattr(step.show, "figure", lambda *a, **k: None)
    pooled = step.pool_cohorts(ctx)
    assert pooled["status"] == status and shown[0][0] == key
    if reason is not None:
        assert pooled["reason"].startswith(reason) and shown[0][1] == pooled["reason"]
    check = step._pooling_check(ctx, pooled)
    assert check.status == status and (status != "computed" or check.value == pooled["i2"])
    assert step._pooling_check(ctx, None).status == "failed"  # a staggered design whose cohorts were not pooled


def test_a_pooling_that_raises_is_failed_with_the_message(tmp_path, monkeypatch):
    from osservatorio.exceptions import EstimationError
    import osservatorio.synthesis

    ctx = _run_folder(tmp_path)
    _cohorts(ctx, [0.1, 0.2, 0.15])

    def boom(*args, **kwargs):
        raise EstimationError("meta-analysis did not converge (planted)")

    monkeypatch.setattr(osservatorio.synthesis, "meta_analysis", boom)
    monkeypatch.setattr(step.show, "para", lambda *a, **k: None)
    pooled = step.pool_cohorts(ctx)
    assert pooled == {"status": "failed", "reason": "meta-analysis did not converge (planted)"}


# --- a diagnostic that fails, from stage 30 to the finding and the report ---------------


def _evaluated_run(tmp_path, lang: str) -> StageContext:
    """A run folder with a simulated staggered panel (40 treated comuni in 20 provinces,
    two cohorts, effect 2) and a theme on real-data rules (no synthetic-data cap)."""
    rng = np.random.default_rng(5)
    rows = []
    for i in range(60):
        g = (0, 2018, 2020)[i % 3]
        for t in range(2012, 2024):
            on = g > 0 and t >= g
            rows.append({"unit": f"{i:06d}", "time": t, "cohort": g, "treated": int(on), "y": rng.normal() + 2.0 * on,
                         "w": 1.0, "cluster": f"P{i % 30:02d}", "ripartizione": AREAS[i % 5]})
    run = tmp_path / f"run-{lang}"
    (run / "data").mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(run / "data" / "panel.parquet", index=False)
    theme = Theme.model_validate({**load_theme("patti-beni-comuni").notebook_parameters(), "language": lang,
                                  "data_source": "raw", "event_window": 3, "moderators": []})
    ctx = StageContext(theme=theme, run_dir=run)
    ctx.__dict__["sources"] = {"pilot": pd.DataFrame({"tema": [theme.id], "costo_euro": [np.nan],
                                                      "beneficiari": [np.nan]})}
    return ctx


def _stages_30_40(ctx: StageContext, n_boot: int = 99):
    """Stage 30 (design.estimate, placebo, show.save) then stage 40 (pool, evidence,
    finding), as the notebooks call them; the markdown they display, rendered as the
    report renders it."""
    from IPython.display import Markdown

    from osservatorio.evaluate import designs
    from osservatorio.evaluate import show as eval_show
    from osservatorio.publishing import show as pub_show
    from osservatorio.publishing.report import md_to_html

    shown: list[str] = []
    mp = pytest.MonkeyPatch()
    mp.setattr(pub_show, "display", lambda obj: shown.append(md_to_html(obj.data)) if isinstance(obj, Markdown)
               else None)
    try:
        design = designs.for_theme(ctx.theme)
        design.n_boot = n_boot
        panel = ctx.panel()
        ev = design.estimate(panel)
        eval_show.pretrend(ev, ctx)
        placebo = design.placebo(panel, ev)
        eval_show.save(ctx, ev, placebo=placebo)
        grade = step.evidence(ctx, step.pool_cohorts(ctx))
        finding = step.write_findings(ctx, grade)
    finally:
        mp.undo()
    return grade, finding, "\n".join(shown)


PLANTED = "pretrend_test: no pre-period cells with a usable standard error (planted)"


@pytest.mark.parametrize("lang", ["it", "en"])
def test_a_pretrend_test_that_raises_lowers_the_grade_and_the_finding_says_why(tmp_path, monkeypatch, lang):
    """The pre-trend computation raises inside design.estimate(): the finding loses the
    padlocks of a failed pre-trend test (never more than with a failing p-value), and the
    stage 30 text, the finding's reasons, the report's headline and caveats say why."""
    from osservatorio.exceptions import EstimationError
    from osservatorio.evaluate.staggered import StaggeredResult
    from osservatorio.publishing.report import headline_markdown, md_to_html, methods_html

    clean_grade, clean, _ = _stages_30_40(_evaluated_run(tmp_path / "clean", lang))
    assert clean.pretrend_stato == "calcolato" and clean.placebo_stato == "calcolato"
    assert not any("pretrend" in c for c in clean_grade["codes"])

    def planted(*args, **kwargs):
        raise EstimationError(PLANTED)

    monkeypatch.setattr(StaggeredResult, "pretrend_test", planted)
    ctx = _evaluated_run(tmp_path / "failed", lang)
    grade, finding, text = _stages_30_40(ctx)
    assert grade["uncapped"] == clean_grade["uncapped"] - 2 == finding.lucchetti
    assert grade["codes"][0] == "pretrend_failed [failed] (-2)"
    assert finding.pretrend_p is None and finding.pretrend_stato == "non_calcolabile"
    said = {"it": f"test pre-trend non calcolabile: {PLANTED} — conta come non superato (−2)",
            "en": f"pre-trend test could not be computed: {PLANTED} — counts as failed (−2)"}[lang]
    assert finding.motivi_lucchetti[0] == said
    # the same estimates with a pre-trend test that ran and rejected: the same grade
    est = ctx.read_json("estimates.json")
    est["pretrend"] = {**est["pretrend"], "status": "computed", "reason": None, "p_value": 0.001}
    ctx.write_json("estimates.json", est)
    rejected = step.evidence(ctx, step.pool_cohorts(ctx))
    assert (rejected["padlocks"], rejected["uncapped"]) == (grade["padlocks"], grade["uncapped"])
    # the report: stage 30's pre-trend section, the headline, the caveats of the methods
    assert PLANTED in text and ("conta come non superato" if lang == "it" else "counts as failed") in text
    assert said[:1].upper() + said[1:] in md_to_html(headline_markdown(finding, lang))
    assert PLANTED in methods_html(ctx.run_dir, ctx.theme)
    from osservatorio.synthesis.findings import to_frame

    row = to_frame([finding]).iloc[0]
    assert row["pretrend_stato"] == "non_calcolabile" and PLANTED in row["motivi_lucchetti"]
