"""Stage 40's cost-and-value step on a simulated run folder: the numbers against a
computation by hand, the not-defined ratio and the contract of a null effect, the
finding's cost fields and their disclosure control."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from openpyxl import load_workbook

from osservatorio.running.stage import StageContext
from osservatorio.synthesis import steps
from osservatorio.synthesis.findings import Finding, suppress
from osservatorio.themes import Theme, load_theme

PILOT = pd.DataFrame({"id_pilota": ["P1", "P2", "X9"], "tema": ["finanza-sociale-neet"] * 2 + ["altro"],
                      "codice_istat": ["037006", "058091", "001272"], "comune": ["Bologna", "Roma", "Torino"],
                      "costo_euro": [300000.0, 150000.0, 1e9], "beneficiari": [100.0, 50.0, 1.0]})
COSTI = pd.DataFrame({"id_pilota": ["P1", "P1", "P1", "P2", "X9"], "anno": [2020.0, 2020.0, 2021.0, 2021.0, 2021.0],
                      "voce": ["personale", "servizi", "personale", "personale", "personale"],
                      "importo_euro": [100000.0, 50000.0, 150000.0, 150000.0, 1e9],
                      "fonte": ["investitori privati", "comune", "investitori privati", "comune", "comune"],
                      "beneficiari": [60.0, 60.0, 40.0, 50.0, 1.0]})


def _contracts(soglia: float) -> pd.DataFrame:
    return pd.DataFrame({"id": ["F1", "F2"], "codice_istat": ["037006", "001272"], "comune": ["Bologna", "Torino"],
                         "tipo": "social impact bond", "metrica_esito": "tasso_neet_15_29",
                         "capitale_euro": [200000.0, 1e6], "soglia_esito": soglia, "prezzo_unitario_euro": 1000.0,
                         "tetto_euro": 300000.0, "durata_anni": 4.0, "unita_per_effetto": 100.0,
                         "pagatore": "comune"})


def _ctx(tmp_path, estimate, ci_low, ci_high, se, soglia=1.0) -> StageContext:
    run = tmp_path / "run"
    (run / "data").mkdir(parents=True)
    (run / "data" / "estimates.json").write_text(json.dumps({"headline": {
        "estimate": estimate, "ci_low": ci_low, "ci_high": ci_high, "se": se, "level": 0.95}}))
    theme = Theme.model_validate(load_theme("finanza-sociale-neet").notebook_parameters())
    ctx = StageContext(theme=theme, run_dir=run)
    ctx._tables.update(pilot=PILOT, costi_pilota=COSTI, strumenti_finanza_sociale=_contracts(soglia))
    return ctx


def test_costs_ratio_and_curve_by_hand(tmp_path):
    # NEET rate: lower is better; an effect of -2 points (interval -3 to -1) is a gain of 2 (1 to 3)
    ctx = _ctx(tmp_path, -2.0, -3.0, -1.0, 0.5)
    out = steps.cost_and_value(ctx)
    assert out["totale"] == 450000 and out["fonti"] == {"investitori privati": 250000, "comune": 200000}
    per_unit_year = (300000 / 2 + 150000 / 1) / 2  # P1: 2 years, P2: 1 year
    assert out["per_unita_anno"] == pytest.approx(per_unit_year)
    assert out["per_beneficiario_anno"] == pytest.approx(450000 / (60 + 40 + 50))
    ce = out["costo_efficacia"]
    assert ce["stato"] == "definito"
    assert ce["euro"] == pytest.approx(per_unit_year / 2)
    # Fieller with a known cost and the estimator's critical value ((3 - 1) / (2 x 0.5) = 2): C/3 to C/1
    assert (ce["low"], ce["high"]) == (pytest.approx(per_unit_year / 3), pytest.approx(per_unit_year / 1))
    curve = out["curva_accettabilita"]
    assert [c["prob"] for c in curve] == sorted(c["prob"] for c in curve)  # rises with the amount
    dense = out["curva_figura"]  # the figure's curve: from well below to well above the ratio
    assert dense["prob"] == sorted(dense["prob"]) and dense["prob"][0] < 0.05 and dense["prob"][-1] > 0.95
    assert (ctx.run_dir / "figures" / "curva_accettabilita.png").stat().st_size > 5000
    assert out["regioni"] == ["Emilia-Romagna", "Lazio"]
    # only the Bologna contract: Torino is no pilot of this theme
    assert [c["comune"] for c in out["contratti"]] == ["Bologna"]
    book = load_workbook(ctx.run_dir / "costi.xlsx", read_only=True)
    assert book.sheetnames == ["costi_per_anno", "fonti", "curva_accettabilita", "contratti"]


def test_band_follows_the_rule_table(tmp_path):
    from osservatorio.synthesis.costs import cost_rating

    out = steps.cost_and_value(_ctx(tmp_path, -2.0, -3.0, -1.0, 0.5))
    assert out["fascia"] == cost_rating(450000, 150, 1).band == 4  # 3,000 euro: above 1,500, up to 5,000


def test_a_null_effect_has_no_ratio_and_a_contract_that_rarely_pays(tmp_path):
    ctx = _ctx(tmp_path, 0.1, -0.9, 1.1, 0.5)
    out = steps.cost_and_value(ctx)
    assert out["costo_efficacia"]["stato"] == "non_definito" and out["costo_efficacia"]["euro"] is None
    agg = out["contratti_sintesi"]
    # gain ~ N(-0.1, 0.51): P(gain >= 1) = P(z >= 2.16), about 1.5%
    assert agg["prob_pagamento"] == pytest.approx(0.0155, abs=0.004)
    assert agg["prob_perdita"] > 0.98
    finding = Finding.model_validate({**_finding_base(), **steps._value_fields(out)})
    assert finding.costo_efficacia_stato == "non_definito" and finding.contratti_n == 1
    assert finding.contratto_prob_pagamento == agg["prob_pagamento"]


def test_without_yearly_costs_the_ratio_is_not_computable(tmp_path):
    ctx = _ctx(tmp_path, -2.0, -3.0, -1.0, 0.5)

    def missing(name):
        if name == "costi_pilota":
            raise KeyError(name)
        return {"pilot": PILOT, "strumenti_finanza_sociale": _contracts(1.0)}[name]

    ctx.table = missing
    out = steps.cost_and_value(ctx)
    assert out["totale"] == 450000 and out["per_unita_anno"] is None and out["costo_efficacia"] is None
    assert steps._value_fields(out)["costo_efficacia_stato"] == "non_calcolabile"


def _finding_base() -> dict:
    return dict(tema="t", titolo="t", pratica="p", esito="e", esito_etichetta="e", unita_misura="u",
                livello_unita="comune", disegno="d", stimatore="s", effetto=1.0, effetto_relativo=None,
                valore_base=None, ci_low=0.5, ci_high=1.5, p_value=0.01, metodo_inferenza="m", n_trattati=10,
                n_confronto=10, n_cluster=10, periodo_inizio="2015", periodo_fine="2020", pretrend_p=None,
                placebo_p=None, livello_maryland=3, lucchetti=3, lucchetti_senza_limite_sintetico=3,
                verdetto="efficace", costo_totale_euro=1000.0, beneficiari=3, costo_per_beneficiario_euro=333.3,
                dati_sintetici=True, lingua="it", id_run="r")


def test_disclosure_blanks_the_cost_per_beneficiary_year_and_its_band():
    f = Finding.model_validate({**_finding_base(), "costo_per_beneficiario_anno_euro": 333.3, "fascia_costo": 2,
                                "costo_per_unita_anno_euro": 500.0})
    done = suppress(f, 5)
    assert done.costo_per_beneficiario_anno_euro is None and done.fascia_costo is None
    assert done.costo_per_unita_anno_euro == 500.0  # a comune's budget, not people
