"""What the reports say for the two designs issue 13 added, from real papermill runs.

citta-pilota (one treated city) leads with synthetic DiD, with synthetic control and
DiD from the same code beside it; case-comunita (a pre-trend test that rejects) states
its Rambachan-Roth breakdown value in the report and the finding, and the evidence
rules read it.
"""

from __future__ import annotations

import json
import re

import pytest

from osservatorio.running.batch import run_batch


def _text(html: str) -> str:
    html = re.sub(r'src="data:[^"]+"', "", html)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.mark.e2e
def test_reports_lead_with_synthetic_did_and_state_the_breakdown_value(fresh_project):
    outcomes = run_batch(["citta-pilota", "case-comunita"], workers=2)
    assert [o.status for o in outcomes] == ["success", "success"]
    out = fresh_project / "outputs"

    city = out / "citta-pilota" / "latest"
    text = _text((city / "report.html").read_text(encoding="utf-8"))
    table = text[text.index("Stima dell'effetto"):]
    first, sc, did = (table.index(s) for s in ("stima principale", "controllo sintetico (stesso calcolo",
                                                "DiD semplice (stesso calcolo"))
    assert first < sc < did and "errore standard placebo (come R synthdid)" in table
    assert "La città pilota e il suo confronto pesato (DiD sintetica)" in text and "unità del confronto" in table
    assert (city / "figures" / "did_sintetica.png").stat().st_size > 10_000
    finding = json.loads((city / "findings.json").read_text())["findings"][0]
    assert finding["disegno"] == "synthetic_did" and finding["stimatore"] == "synthetic_did"
    assert finding["valore_rottura_stato"] == "non_applicabile" and finding["valore_rottura_mbar"] is None
    assert "Differenza nelle differenze sintetica" in text  # the methods section names the estimator

    cc = out / "case-comunita" / "latest"
    text = _text((cc / "report.html").read_text(encoding="utf-8"))
    finding = json.loads((cc / "findings.json").read_text())["findings"][0]
    assert finding["valore_rottura_stato"] == "calcolato" and finding["valore_rottura_mbar"] >= 0
    k = f"{finding['valore_rottura_mbar']:.2f}".replace(".", ",")
    assert "Quanto dovrebbero divergere i trend per ribaltare il risultato" in text
    assert f"a meno che, dopo l'adozione, i trend divergano più di {k} volte" in text
    assert (cc / "figures" / "sensibilita_trend.png").stat().st_size > 10_000
    estimates = json.loads((cc / "data" / "estimates.json").read_text())
    assert estimates["sensitivity"]["breakdown"] == finding["valore_rottura_mbar"]
    robust = finding["valore_rottura_mbar"] >= 1
    code = "pretrend_failed_robust" if robust else "pretrend_failed"
    evidence = json.loads((cc / "data" / "evidence.json").read_text())
    assert any(c.startswith(f"{code} (") for c in evidence["codes"]), evidence["codes"]
