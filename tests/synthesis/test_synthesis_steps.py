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
from osservatorio.synthesis import ci_width_ratio, maryland_level, padlocks
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
    """A finding graded by the real rules from the diagnostics a demo run produces."""
    level = maryland_level(design)
    rating = padlocks(level, n_treated_clusters=n_clusters, pretrend_p=pretrend_p,
                      ci_width_ratio=ci_width_ratio(est, lo, hi), synthetic_data=True)
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
    rating = padlocks(2, pretrend_p=0.01, synthetic_data=True)  # 2 - 2 = 0, then the cap removes nothing
    texts = [step._reason_text(r, "it") for r in rating.reasons]
    assert texts[0].endswith("(−2)") and texts[1].endswith("(massimo 0)"), texts
    assert step._reason_text(rating.reasons[1], "en").endswith("(at most 0)")


def test_no_cohort_effects_is_not_called_a_single_cohort(tmp_path, monkeypatch):
    """ITS, few-treated and synthetic-control designs write no cohorts.parquet: the report
    says the design estimates no effect per cohort (case-comunita has 18 cohorts)."""
    ctx = _run_folder(tmp_path)
    shown = []
    monkeypatch.setattr(step.show, "para", lambda key, *a, **k: shown.append(key))
    assert step.pool_cohorts(ctx) is None
    assert shown == ["syn.pool.not_estimated"]
