"""The finding record: one practice, one outcome, one estimate with its evidence.

The schema is versioned (``SCHEMA_VERSION``); exports carry the version. Disclosure
control: ``suppress`` blanks every cell that describes fewer units or people than the
theme's threshold, and is applied to every export (JSON, CSV, XLSX, HTML).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict

from osservatorio.publishing.safe import write_csv

SCHEMA_VERSION = "1.4"
# 1.1: contesti_efficaci, ip_low/ip_high/ip_tipo (prediction interval for a new site),
#      k_siti, comuni_simili (transferability, stage 40).
# 1.2: pretrend_stato, placebo_stato (a p-value left empty: not applicable, or failed).
# 1.3: cost and value (stage 40, synthesis/costs.py): costo_per_unita_anno_euro,
#      costo_per_beneficiario_anno_euro, fascia_costo, costo_fonti, costo_efficacia_* (euro
#      per unit of outcome gained, Fieller), contratti_n, contratto_* (payment-by-results
#      contracts against the effect's distribution); regioni, area_esito.
# 1.4: valore_rottura_mbar, valore_rottura_stato (Rambachan-Roth sensitivity of the event
#      study to broken parallel trends, stage 30: evaluate/honest.py).
Verdict = Literal["efficace", "dannosa", "non_dimostrata"]
# costo_efficacia_stato: definito; non_definito (the effect's interval reaches zero, or the
# effect is unfavourable); non_calcolabile (no yearly costs: costi_pilota missing)
RatioState = Literal["definito", "non_definito", "non_calcolabile"]
DiagnosticState = Literal["calcolato", "non_applicabile", "non_calcolabile"]
# a diagnostic's status in estimates.json -> its state in the finding
DIAGNOSTIC_STATES: dict[str, DiagnosticState] = {
    "computed": "calcolato", "not_applicable": "non_applicabile", "failed": "non_calcolabile"}


class Subgroup(BaseModel):
    """An estimate for one level of a moderator (heterogeneity)."""

    model_config = ConfigDict(extra="forbid")
    moderatore: str
    livello: str
    stima: float | None
    ci_low: float | None
    ci_high: float | None
    n_trattati: int | None


class Finding(BaseModel):
    """One finding (see DESIGN.md, Findings). Effects are in the outcome's unit."""

    model_config = ConfigDict(extra="forbid")
    schema_version: str = SCHEMA_VERSION
    tema: str
    titolo: str
    pratica: str
    esito: str
    esito_etichetta: str
    unita_misura: str
    livello_unita: str
    disegno: str
    stimatore: str
    effetto: float | None
    effetto_relativo: float | None  # effect / baseline mean of the treated before adoption
    valore_base: float | None
    ci_low: float | None
    ci_high: float | None
    livello_confidenza: float = 0.95
    p_value: float | None
    metodo_inferenza: str
    n_trattati: int | None
    n_confronto: int | None
    n_cluster: int | None
    periodo_inizio: str
    periodo_fine: str
    pretrend_p: float | None
    placebo_p: float | None
    # non_calcolabile: tried and not computed, counted as failed (why: motivi_lucchetti);
    # non_applicabile: the design has no such test. None: a record older than 1.2.
    pretrend_stato: DiagnosticState | None = None
    placebo_stato: DiagnosticState | None = None
    # breakdown value (Rambachan-Roth, relative magnitudes): the effect averaged over the
    # event study's post-adoption periods stays significant unless post-adoption trend
    # divergences exceed this many times the largest pre-adoption one. 0: not even under
    # exact parallel trends; the search's upper end when never overturned (see the report)
    valore_rottura_mbar: float | None = None
    valore_rottura_stato: DiagnosticState | None = None
    eterogeneita: list[Subgroup] = []
    contesti: list[str] = []  # contexts where the practice was tested (treated units' areas, classes)
    contesti_efficaci: list[str] = []  # contexts whose pooled site effect is clearly favourable
    k_siti: int | None = None  # sites (treated cluster x cohort) pooled for transferability
    ip_low: float | None = None  # prediction interval for the effect at a new site
    ip_high: float | None = None
    ip_tipo: str | None = None  # "riley" (t, k - 2 df, few sites) or "default"
    comuni_simili: list[str] = []  # first untreated units of the transferability list
    livello_maryland: int | None
    lucchetti: int | None
    lucchetti_senza_limite_sintetico: int | None
    motivi_lucchetti: list[str] = []
    verdetto: Verdict
    costo_totale_euro: float | None
    beneficiari: int | None
    costo_per_beneficiario_euro: float | None
    costo_per_unita_anno_euro: float | None = None  # mean yearly cost of a treated unit's pilot
    costo_per_beneficiario_anno_euro: float | None = None  # total / people reached summed over years
    fascia_costo: int | None = None  # 1 (molto basso) - 5 (molto alto), costs.COST_BANDS
    costo_fonti: dict[str, float] = {}  # euro by funding source
    costo_efficacia_euro: float | None = None  # euro per unit of outcome gained, per unit and year
    costo_efficacia_low: float | None = None
    costo_efficacia_high: float | None = None
    costo_efficacia_stato: RatioState | None = None
    contratti_n: int = 0  # payment-by-results contracts on this outcome in the pilot comuni
    contratto_prob_pagamento: float | None = None  # mean over the contracts of P(threshold reached)
    contratto_pagamento_atteso_euro: float | None = None  # sum of the payers' expected payments
    contratto_capitale_euro: float | None = None  # sum of the capital raised
    contratto_prob_perdita: float | None = None  # mean over the contracts of P(investors lose capital)
    contratto_tir_atteso: float | None = None  # IRR of the summed capital and summed expected payment
    regioni: list[str] = []  # regions of the treated units
    area_esito: str | None = None  # the theme's outcome area (themes.OutcomeArea)
    avvertenze: list[str] = []
    dati_sintetici: bool
    lingua: str
    id_run: str
    soppressioni: list[str] = []


def verdict(ci_low: float | None, ci_high: float | None, higher_is_better: bool,
            p_value: float | None = None, alpha: float = 0.05) -> Verdict:
    """Effective when the whole interval lies on the good side of zero and, when a
    p-value is given (it may come from another procedure, e.g. placebo ranks), p < alpha."""
    if ci_low is None or ci_high is None or math.isnan(ci_low) or math.isnan(ci_high):
        return "non_dimostrata"
    if p_value is not None and not math.isnan(p_value) and p_value >= alpha:
        return "non_dimostrata"
    good_side = ci_low > 0 if higher_is_better else ci_high < 0
    bad_side = ci_high < 0 if higher_is_better else ci_low > 0
    return "efficace" if good_side else "dannosa" if bad_side else "non_dimostrata"


def suppress(finding: Finding, threshold: int) -> Finding:
    """Blank every count or estimate describing fewer than ``threshold`` units or people.

    Suppressed: people counts (beneficiari) and the cost per beneficiary derived from
    them; subgroup estimates resting on fewer treated units than the threshold. The
    headline estimate is kept for a design with fewer treated units when those units are
    public bodies (comuni, districts) whose residents number far more than the
    threshold; that choice is recorded in ``soppressioni``.
    """
    data = finding.model_dump()
    notes = list(data["soppressioni"])
    if data["beneficiari"] is not None and data["beneficiari"] < threshold:
        data["beneficiari"] = None
        data["costo_per_beneficiario_euro"] = None
        # derived from the same people: euro per beneficiary-year and its band
        data["costo_per_beneficiario_anno_euro"] = None
        data["fascia_costo"] = None
        notes.append(f"beneficiari < {threshold}")
    groups = []
    for g in data["eterogeneita"]:
        if g["n_trattati"] is not None and g["n_trattati"] < threshold:
            g = {**g, "stima": None, "ci_low": None, "ci_high": None, "n_trattati": None}
            notes.append(f"sottogruppo {g['moderatore']}={g['livello']}: trattati < {threshold}")
        groups.append(g)
    data["eterogeneita"] = groups
    data["soppressioni"] = sorted(set(notes))
    return Finding.model_validate(data)


FLAT_COLUMNS = [
    "schema_version", "tema", "titolo", "pratica", "esito", "esito_etichetta", "unita_misura", "livello_unita",
    "disegno", "stimatore", "effetto", "effetto_relativo", "valore_base", "ci_low", "ci_high", "p_value",
    "metodo_inferenza", "n_trattati", "n_confronto", "n_cluster", "periodo_inizio", "periodo_fine", "pretrend_p",
    "pretrend_stato", "placebo_p", "placebo_stato", "valore_rottura_mbar", "valore_rottura_stato", "k_siti", "ip_low", "ip_high", "ip_tipo", "livello_maryland", "lucchetti", "lucchetti_senza_limite_sintetico", "motivi_lucchetti",
    "verdetto", "costo_totale_euro", "beneficiari", "costo_per_beneficiario_euro", "costo_per_unita_anno_euro",
    "costo_per_beneficiario_anno_euro", "fascia_costo", "costo_fonti", "costo_efficacia_euro", "costo_efficacia_low",
    "costo_efficacia_high", "costo_efficacia_stato", "contratti_n", "contratto_prob_pagamento",
    "contratto_pagamento_atteso_euro", "contratto_capitale_euro", "contratto_prob_perdita", "contratto_tir_atteso",
    "regioni", "area_esito", "contesti", "contesti_efficaci", "comuni_simili", "avvertenze",
    "dati_sintetici", "lingua", "id_run", "soppressioni",
]


def to_frame(findings: list[Finding]) -> pd.DataFrame:
    """Flat table of findings (lists joined with ' | '; subgroups summarised)."""
    rows = []
    for f in findings:
        d = f.model_dump()
        row: dict[str, Any] = {k: d[k] for k in FLAT_COLUMNS}
        for k in ("motivi_lucchetti", "regioni", "contesti", "contesti_efficaci", "comuni_simili", "avvertenze",
                  "soppressioni"):
            row[k] = " | ".join(d[k])
        row["costo_fonti"] = " | ".join(f"{k}={v:.2f}" for k, v in d["costo_fonti"].items())
        row["eterogeneita"] = " | ".join(
            f"{g['moderatore']}={g['livello']}: {'soppresso' if g['stima'] is None else round(g['stima'], 4)}"
            for g in d["eterogeneita"])
        rows.append(row)
    return pd.DataFrame(rows, columns=[*FLAT_COLUMNS, "eterogeneita"])


def schema_json() -> dict[str, Any]:
    """JSON Schema of a finding record, with its version (``$id`` and ``version``)."""
    schema = Finding.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"osservatorio/finding/schema_v{SCHEMA_VERSION}.json"
    schema["version"] = SCHEMA_VERSION
    return schema


def write_theme_findings(run_dir: Path, findings: list[Finding], threshold: int) -> list[Finding]:
    """Suppress with the theme's threshold, then write run_dir/findings.json and .csv."""
    done = [suppress(f, threshold) for f in findings]
    payload = {"schema_version": SCHEMA_VERSION, "schema": f"schema_v{SCHEMA_VERSION}.json",
               "disclosure_threshold": threshold, "findings": [f.model_dump() for f in done]}
    (run_dir / "findings.json").write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
    write_csv(to_frame(done), run_dir / "findings.csv")
    return done
