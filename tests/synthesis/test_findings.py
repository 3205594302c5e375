"""Disclosure control: every export of a finding suppresses the cells describing fewer
units or people than the theme's threshold (findings.json/.csv, catalogo.json/.csv/.xlsx,
catalogo.html, the index and report headline), and the threshold is the theme's."""

from __future__ import annotations

import json

import openpyxl
import pandas as pd
import pytest

from osservatorio import paths
from osservatorio.synthesis.findings import SCHEMA_VERSION, Finding, Subgroup, schema_json, suppress, write_theme_findings
from osservatorio.publishing.report import headline_markdown, load_finding
from osservatorio.publishing.site import build_site, catalogue_findings, collect_latest

# Sentinel numbers that must never appear once suppressed (and their Italian forms).
SMALL_BENEFICIARIES = 3
COST = 98765.43  # / 3 = 32921.81 per beneficiary
HIDDEN = ["32921", "32.921", "7.654321", "7,654", "7.654"]
KEPT_SUBGROUP = 1.234567


def make_finding(theme: str, beneficiari: int = SMALL_BENEFICIARIES, **kw) -> Finding:
    base = dict(
        tema=theme, titolo="Titolo", pratica="pratica di prova", esito="y", esito_etichetta="esito",
        unita_misura="punti", livello_unita="comune", disegno="staggered_did", stimatore="cs", effetto=1.5,
        effetto_relativo=0.1, valore_base=15.0, ci_low=1.0, ci_high=2.0, p_value=0.001, metodo_inferenza="if",
        n_trattati=40, n_confronto=400, n_cluster=40, periodo_inizio="2014", periodo_fine="2023",
        pretrend_p=0.5, placebo_p=0.6, livello_maryland=4, lucchetti=0, lucchetti_senza_limite_sintetico=4,
        verdetto="efficace", costo_totale_euro=COST, beneficiari=beneficiari,
        costo_per_beneficiario_euro=COST / beneficiari, dati_sintetici=True, lingua="it", id_run="r1",
        eterogeneita=[Subgroup(moderatore="ripartizione", livello="Isole", stima=7.654321, ci_low=7.0,
                               ci_high=8.3, n_trattati=2),
                      Subgroup(moderatore="ripartizione", livello="Nord-est", stima=KEPT_SUBGROUP, ci_low=1.0,
                               ci_high=1.5, n_trattati=30)])
    base.update(kw)
    return Finding(**base)


def _publish(root, theme: str, finding: Finding, threshold: int) -> None:
    """A successful run folder as the runner leaves it (findings written by the stage)."""
    run = root / "outputs" / theme / "20260101T000000-1"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({
        "run_id": run.name, "status": "success", "synthetic_data": True,
        "parameters": {"id": theme, "title": {"it": theme, "en": theme}, "disclosure_threshold": threshold,
                       "language": "it", "seed": 1}}), encoding="utf-8")
    write_theme_findings(run, [finding], threshold)
    (run.parent / "latest").symlink_to(run.name)


def _all_text(root) -> dict[str, str]:
    out = paths.findings_dir()
    texts = {name: (out / name).read_text(encoding="utf-8") for name in ("catalogo.json", "catalogo.csv")}
    wb = openpyxl.load_workbook(out / "catalogo.xlsx")
    texts["catalogo.xlsx"] = " ".join(str(c.value) for ws in wb for row in ws.iter_rows() for c in row
                                      if c.value is not None)
    for name in ("catalogo.html", "index.html"):
        texts[name] = (paths.site_dir() / name).read_text(encoding="utf-8")
    for theme_dir in (root / "outputs").iterdir():
        if theme_dir.name not in ("site", "findings") and not theme_dir.name.startswith("."):  # .cache
            latest = theme_dir / "latest"
            texts[f"{theme_dir.name}/findings.json"] = (latest / "findings.json").read_text(encoding="utf-8")
            texts[f"{theme_dir.name}/findings.csv"] = (latest / "findings.csv").read_text(encoding="utf-8")
            texts[f"{theme_dir.name}/headline"] = headline_markdown(load_finding(latest), "it")
    return texts


@pytest.fixture
def published(fresh_project):
    _publish(fresh_project, "tema-a", make_finding("tema-a"), threshold=5)
    # 9 beneficiaries: below the threshold of tema-b (10), above that of tema-c (5)
    _publish(fresh_project, "tema-b", make_finding("tema-b", beneficiari=9), threshold=10)
    _publish(fresh_project, "tema-c", make_finding("tema-c", beneficiari=9), threshold=5)
    build_site()
    return fresh_project


def test_suppress_blanks_small_cells_only():
    f = suppress(make_finding("x"), 5)
    assert f.beneficiari is None and f.costo_per_beneficiario_euro is None
    small, big = f.eterogeneita
    assert (small.stima, small.ci_low, small.ci_high, small.n_trattati) == (None, None, None, None)
    assert big.stima == KEPT_SUBGROUP and big.n_trattati == 30
    assert f.costo_totale_euro == COST  # a total over all pilots describes no one
    assert f.effetto == 1.5 and f.n_trattati == 40
    assert "beneficiari < 5" in f.soppressioni


def test_every_export_suppresses_small_cells(published):
    texts = _all_text(published)
    assert set(texts) >= {"catalogo.json", "catalogo.csv", "catalogo.xlsx", "catalogo.html", "index.html",
                          "tema-a/findings.json", "tema-a/findings.csv", "tema-a/headline"}
    for name, text in texts.items():
        for s in HIDDEN:
            assert s not in text, f"{s!r} (a suppressed cell) appears in {name}"
    for name in ("catalogo.json", "catalogo.csv", "catalogo.xlsx", "tema-a/findings.json", "tema-a/findings.csv"):
        assert "1.234567" in texts[name] or "1.2346" in texts[name], f"kept subgroup missing from {name}"
    cat = json.loads(texts["catalogo.json"])
    by_theme = {f["tema"]: f for f in cat["findings"]}
    assert by_theme["tema-a"]["beneficiari"] is None
    csv = pd.read_csv(paths.findings_dir() / "catalogo.csv").set_index("tema")
    assert pd.isna(csv.loc["tema-a", "beneficiari"]) and pd.isna(csv.loc["tema-a", "costo_per_beneficiario_euro"])
    assert "soppresso" in csv.loc["tema-a", "eterogeneita"]


def test_threshold_comes_from_the_theme(published):
    """9 beneficiaries: suppressed where the theme's threshold is 10, kept where it is 5."""
    cat = {f["tema"]: f for f in json.loads((paths.findings_dir() / "catalogo.json").read_text())["findings"]}
    assert cat["tema-b"]["beneficiari"] is None
    assert cat["tema-c"]["beneficiari"] == 9
    assert cat["tema-c"]["costo_per_beneficiario_euro"] == pytest.approx(COST / 9)
    run_b = json.loads((published / "outputs" / "tema-b" / "latest" / "findings.json").read_text())
    assert run_b["disclosure_threshold"] == 10 and run_b["findings"][0]["beneficiari"] is None
    html = (paths.site_dir() / "catalogo.html").read_text(encoding="utf-8")
    assert "10.974" in html  # 98,765.43 / 9 shown for tema-c (Italian format)
    # the catalogue re-applies the theme's threshold even to a finding written unsuppressed
    raw = make_finding("tema-b", beneficiari=9)
    entries = [{"theme": "tema-b", "findings": [raw], "manifest": {"parameters": {"disclosure_threshold": 10}}}]
    assert catalogue_findings(entries)[0].beneficiari is None


def test_every_export_states_the_schema_version(published):
    out = paths.findings_dir()
    schema = json.loads((out / f"schema_v{SCHEMA_VERSION}.json").read_text())
    assert schema == json.loads(json.dumps(schema_json())) and schema["version"] == SCHEMA_VERSION
    assert set(schema["properties"]) == set(Finding.model_fields)
    assert json.loads((out / "catalogo.json").read_text())["schema_version"] == SCHEMA_VERSION
    assert set(pd.read_csv(out / "catalogo.csv")["schema_version"].astype(str)) == {SCHEMA_VERSION}
    wb = openpyxl.load_workbook(out / "catalogo.xlsx")
    assert SCHEMA_VERSION in wb["info"]["A2"].value
    assert {"info", "catalogo", "codebook", "tema-a", "tema-b", "tema-c"} <= set(wb.sheetnames)
    run = json.loads((published / "outputs" / "tema-a" / "latest" / "findings.json").read_text())
    assert run["schema_version"] == SCHEMA_VERSION
    assert f"schema_v{SCHEMA_VERSION}.json" in (paths.site_dir() / "catalogo.html").read_text(encoding="utf-8")


def test_codebook_describes_every_column(published):
    wb = openpyxl.load_workbook(paths.findings_dir() / "catalogo.xlsx")
    header = [c.value for c in next(wb["catalogo"].iter_rows(max_row=1))]
    book = {r[0].value: r[1].value for r in wb["codebook"].iter_rows(min_row=2)}
    assert set(header) == set(book) and all(book.values())
    sheet = {r[0].value: r[2].value for r in wb["tema-a"].iter_rows(min_row=2)}
    assert sheet["effetto"] == 1.5 and sheet["giudizio"].startswith("funziona")


def test_collect_latest_reads_published_runs(published):
    themes = {e["theme"]: e for e in collect_latest()}
    assert set(themes) == {"tema-a", "tema-b", "tema-c"}
    assert all(len(e["findings"]) == 1 for e in themes.values())


def test_catalogue_in_english_comes_from_the_same_labels(published):
    from osservatorio.publishing.text import labels, t

    build_site("en")
    page = (paths.site_dir() / "catalogo.html").read_text(encoding="utf-8")
    assert t("site.catalogue", "en") in page and t("site.col.assessment", "en") in page
    assert t("site.assessment.solida", "en") in page
    italian_only = [v["it"] for k, v in labels().items() if k.startswith("site.col.") and v["it"] != v["en"]]
    assert not [s for s in italian_only if f">{s}<" in page]
    wb = openpyxl.load_workbook(paths.findings_dir() / "catalogo.xlsx")
    assert wb["codebook"]["A1"].value == "column" and wb["tema-a"]["C1"].value == "value"


def test_similar_comuni_shown_only_for_practices_that_work(fresh_project):
    _publish(fresh_project, "works", make_finding("works", comuni_simili=["Alfa", "Beta"]), threshold=5)
    _publish(fresh_project, "null", make_finding("null", verdetto="non_dimostrata", comuni_simili=["Gamma"]),
             threshold=5)
    build_site()
    page = (paths.site_dir() / "catalogo.html").read_text(encoding="utf-8")
    assert "Alfa, Beta" in page and "Gamma" not in page
    assert page.index("Alfa") < page.index("null/latest/report.html")  # the working practice comes first
