"""What users write is shown as written and never runs (issue 11, escaping).

Hostile strings (script elements, event handlers, spreadsheet formulas) go into every
text a user controls: the theme's texts and the text columns of the sources. HTML pages
(report, site index, catalogue) are read with a real parser (``html.parser``): no element
or attribute may be planted, and the strings must be visible as text. Spreadsheets are
read back with openpyxl and ``csv``: no formula, no text cell starting with a formula
character (``= + - @`` tab, carriage return) unless it is a number.
"""

from __future__ import annotations

import csv
import json
import math
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from osservatorio.publishing import show
from osservatorio.publishing.safe import escape_markdown, neutralise_cell, neutralise_frame, write_csv, write_sheet

HOSTILE = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', '=HYPERLINK("http://x","y")',
           "+1+1", "-2+3", "@SUM(A1)", "\t=1"]
MARKDOWN = ["**bold** _it_ `code` ~~del~~", "[link](javascript:alert(1)) ![i](x)", "# heading", "- item",
            "1. item", "---", "a | b", "$x$ and $$y$$", "back\\slash &amp; &lt;b&gt;"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


# --- checks ------------------------------------------------------------------------


class _Page(HTMLParser):
    """Elements and attributes a hostile string could plant, and the page's text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.planted: list[str] = []
        self.chunks: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" or (tag == "img" and a.get("src") == "x"):
            self.planted.append(f"<{tag} {attrs}>")
        for name, value in attrs:
            if name.startswith("on") or (name in ("href", "src") and (value or "").strip().lower().startswith(
                    "javascript:")):
                self.planted.append(f"<{tag} {name}={value!r}>")

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_data(self, data):
        self.chunks.append(data)


def _normal(text: str) -> str:
    return " ".join(text.split())


def assert_inert_html(page: str, shown: list[str]) -> str:
    """No planted element or attribute; every string of ``shown`` visible as text."""
    from osservatorio.publishing.toolkit import SCRIPT

    page = page.replace(f"<script>{SCRIPT}</script>", "", 1)  # the site index's own script, exactly
    parser = _Page()
    parser.feed(page)
    parser.close()
    assert not parser.planted, f"planted in the page: {parser.planted[:5]}"
    text = _normal("".join(parser.chunks))
    for s in shown:
        assert _normal(s) in text, f"{s!r} is not shown as text"
    return text


def assert_inert_xlsx(path: Path) -> int:
    """No formula and no text cell that would be one; returns the number of cells read."""
    import openpyxl

    n = 0
    for sheet in openpyxl.load_workbook(path):
        for row in sheet.iter_rows():
            for cell in row:
                where = f"{path.name}!{sheet.title}!{cell.coordinate}"
                assert cell.data_type != "f", f"{where} is a formula: {cell.value!r}"
                assert not (isinstance(cell.value, str) and cell.value.startswith(FORMULA_STARTS)), \
                    f"{where}: {cell.value!r} would run as a formula"
                n += 1
    return n


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def assert_inert_csv(path: Path) -> None:
    """Every field starting with a formula character is a number (a real negative)."""
    with path.open(newline="", encoding="utf-8") as fh:
        for line, row in enumerate(csv.reader(fh), start=1):
            for field in row:
                assert not field.startswith(FORMULA_STARTS) or _is_number(field), \
                    f"{path.name}, line {line}: {field!r} would run as a formula"


def nbconvert_markdown(text: str) -> str:
    """Markdown rendered as the report renders a notebook's markdown output."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    return markdown2html_mistune(text)


# --- markdown ----------------------------------------------------------------------


@pytest.mark.parametrize("value", HOSTILE + MARKDOWN)
@pytest.mark.parametrize("template", ["{}", "Una riga\n{}", "Esito: **{}** (x)", "## {}"])
def test_escaped_markdown_renders_as_written(value, template):
    """In any position of a label, an escaped value renders to its text, in nbconvert's
    renderer (report sections) and in ours (headline, site, methods)."""
    from osservatorio.publishing.report import md_to_html

    for render in (nbconvert_markdown, md_to_html):
        page = render(template.format(escape_markdown(value)))
        text = assert_inert_html(page, [value])
        assert "**" not in text or "**" in value, page  # the label's own emphasis still works
        assert page.count("<h") == (1 if template.startswith("##") else 0), page  # no heading planted
        own = page.replace('<a class="anchor-link"', "")  # nbconvert's link to a heading
        assert "<li" not in own and "<hr" not in own and "<code" not in own and "<a " not in own, page


def test_markdown_escaping_is_needed():
    """The unescaped strings do plant elements or formatting (the check can fail)."""
    with pytest.raises(AssertionError, match="planted"):
        assert_inert_html(nbconvert_markdown(HOSTILE[0]), [])
    assert "<strong>" in nbconvert_markdown(MARKDOWN[0])
    assert escape_markdown("p = 0,279 (1.234,5; -0,5)") == "p = 0,279 (1.234,5; -0,5)"  # numbers stay readable


def test_para_and_heading_escape_values(monkeypatch):
    shown = []
    monkeypatch.setattr(show, "display", shown.append)
    show.heading("ind.districts.title", "it", level=3, level_name=HOSTILE[0])
    show.para("ind.intro", "it", question=HOSTILE[1], outcome=HOSTILE[2], start="2014", end="2023",
              level=MARKDOWN[0])
    page = "".join(nbconvert_markdown(d.data) for d in shown)
    assert_inert_html(page, HOSTILE[:3] + [MARKDOWN[0]])
    assert "<h3" in page  # the heading is still a heading


# --- HTML tables -------------------------------------------------------------------


def test_table_escapes_cells_column_names_and_caption(monkeypatch):
    shown = []
    monkeypatch.setattr(show, "display", shown.append)
    df = pd.DataFrame({"denominazione": HOSTILE, HOSTILE[1]: np.arange(len(HOSTILE), dtype=float),
                       "effetto": [-1.5] * len(HOSTILE)})
    show.table(df, "it", caption=HOSTILE[0])
    page = shown[0].data
    assert_inert_html(page, HOSTILE)
    assert "-1,50" in page and ">3<" in page  # numbers formatted as before


# --- spreadsheet cells -------------------------------------------------------------


def test_neutralise_cell():
    for s in HOSTILE[2:] + ["\r=1", "-", "="]:
        assert neutralise_cell(s) == "'" + s
    for v in ("<script>", "Bologna", "'=already", "", " =1", -2.5, -3, 0, True, None, float("nan")):
        out = neutralise_cell(v)
        assert out is v or (isinstance(v, float) and math.isnan(out))


def test_neutralise_frame_touches_text_cells_only():
    df = pd.DataFrame({
        "nome": ["=1+1", "Bologna", None],
        "negativo": [-1.5, -2.0, np.nan],
        "intero": [-1, 2, -3],
        "flag": [True, False, True],
        "misto": [-0.5, "-2+3", np.nan],  # an object column: numbers stay numbers
        "classe": pd.Categorical(["@x", "ok", "@x"]),
        "quando": pd.to_datetime(["2020-01-01", "2021-01-01", None]),
        "+colonna": ["a", "b", "c"],
    })
    before = df.copy()
    out = neutralise_frame(df)
    pd.testing.assert_frame_equal(df, before)  # the caller's frame is not changed
    assert out["nome"].tolist()[:2] == ["'=1+1", "Bologna"] and pd.isna(out["nome"].iloc[2])
    pd.testing.assert_series_equal(out["negativo"], df["negativo"])
    pd.testing.assert_series_equal(out["intero"], df["intero"])
    pd.testing.assert_series_equal(out["flag"], df["flag"])
    pd.testing.assert_series_equal(out["quando"], df["quando"])
    assert out["misto"].iloc[0] == -0.5 and out["misto"].iloc[1] == "'-2+3" and pd.isna(out["misto"].iloc[2])
    assert list(out["classe"]) == ["'@x", "ok", "'@x"] and isinstance(out["classe"].dtype, pd.CategoricalDtype)
    assert list(out.columns)[-1] == "'+colonna" and out["nome"].dtype == df["nome"].dtype
    clean = pd.DataFrame({"nome": ["Bologna"], "x": [-1.0]})
    assert neutralise_frame(clean) is clean


def _hostile_frame() -> pd.DataFrame:
    return pd.DataFrame({"nome": HOSTILE, "effetto": np.linspace(-3, 3, len(HOSTILE)),
                         "n": range(-3, len(HOSTILE) - 3)})


def test_csv_export_quotes_formulas_and_keeps_numbers(tmp_path):
    path = write_csv(_hostile_frame(), tmp_path / "x.csv")
    assert_inert_csv(path)
    back = pd.read_csv(path)
    assert back["nome"].tolist() == [s if s[0] in "<\"" else "'" + s for s in HOSTILE]
    assert back["effetto"].min() == -3 and back["n"].min() == -3  # negatives still numbers
    with pytest.raises(AssertionError, match="would run as a formula"):  # the check can fail
        _hostile_frame().to_csv(tmp_path / "raw.csv", index=False)
        assert_inert_csv(tmp_path / "raw.csv")


@pytest.mark.parametrize("writer", ["write_xlsx", "write_xlsx_pandas", "openpyxl", "xlsxwriter"])
def test_xlsx_exports_hold_no_formula(tmp_path, writer):
    """Every way the exports write a workbook: ``workbook.write_xlsx`` (XlsxWriter; through
    pandas when a column is a date) and ``write_sheet`` into either engine."""
    import openpyxl

    from osservatorio.publishing.workbook import write_xlsx

    df = _hostile_frame()
    path = tmp_path / "x.xlsx"
    if writer == "write_xlsx":
        write_xlsx(path, {"a": df})
    elif writer == "write_xlsx_pandas":
        write_xlsx(path, {"a": df.assign(data=pd.Timestamp("2020-01-01"))})
    else:
        with pd.ExcelWriter(path, engine=writer) as xw:
            write_sheet(xw, df, "a")
    assert assert_inert_xlsx(path) >= 3 * (len(HOSTILE) + 1)
    ws = openpyxl.load_workbook(path)["a"]
    assert ws["A4"].value == "'" + HOSTILE[2] and ws["A2"].value == HOSTILE[0]
    assert ws["B2"].data_type == "n" and ws["B2"].value == -3 and ws["C2"].value == -3


def test_xlsx_check_can_fail(tmp_path):
    with pd.ExcelWriter(tmp_path / "raw.xlsx", engine="openpyxl") as xw:
        _hostile_frame().to_excel(xw, sheet_name="a", index=False)
    with pytest.raises(AssertionError, match="formula"):
        assert_inert_xlsx(tmp_path / "raw.xlsx")


# --- report and site pages ---------------------------------------------------------


def _hostile_theme_dict() -> dict:
    """The finanza-sociale-neet theme with a hostile string in front of every text."""
    from conftest import REPO

    data = yaml.safe_load((REPO / "params" / "themes" / "finanza-sociale-neet.yaml").read_text(encoding="utf-8"))
    for i, key in enumerate(("title", "question", "practice", "outcome_label", "outcome_unit")):
        data[key] = {lang: f"{HOSTILE[(i + j) % len(HOSTILE)]} {text}" for j, (lang, text) in enumerate(data[key].items())}
    return data


def _hostile_finding(theme):
    from osservatorio.synthesis.findings import Finding

    return Finding(
        tema=theme.id, titolo=theme.title.it, pratica=theme.practice.it, esito=HOSTILE[5], esito_etichetta=theme.outcome_label.it,
        unita_misura=theme.outcome_unit.it, livello_unita="comune", disegno=theme.design, stimatore="did",
        effetto=-0.5, effetto_relativo=-0.05, valore_base=10.0, ci_low=-1.0, ci_high=-0.1, p_value=0.01,
        metodo_inferenza=HOSTILE[6], n_trattati=18, n_confronto=90, n_cluster=108, periodo_inizio="2013",
        periodo_fine="2023", pretrend_p=0.5, placebo_p=0.5, contesti=[HOSTILE[0]], contesti_efficaci=[HOSTILE[1]],
        comuni_simili=[HOSTILE[2]], k_siti=3, livello_maryland=4, lucchetti=1, lucchetti_senza_limite_sintetico=3,
        motivi_lucchetti=[HOSTILE[3], HOSTILE[0]], verdetto="efficace", costo_totale_euro=1000.0,
        beneficiari=50, costo_per_beneficiario_euro=20.0, avvertenze=[HOSTILE[1], HOSTILE[4]], dati_sintetici=True,
        lingua="it", id_run="20260101T000000-1")


def _stage_notebook(path: Path) -> None:
    """An executed stage notebook whose outputs are what the show helpers display."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    shown = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(show, "display", shown.append)
        show.heading("ind.title", "it")
        show.para("ind.intro", "it", question=HOSTILE[1], outcome=HOSTILE[0], start="2013", end="2023", level="x")
        show.table(pd.DataFrame({"denominazione": HOSTILE, "comune": HOSTILE[::-1]}), "it", caption=HOSTILE[0])
    outputs = [new_output("display_data", data={"text/markdown": d.data} if type(d).__name__ == "Markdown"
                          else {"text/html": d.data}) for d in shown]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=[new_code_cell("steps.intro(stage)", outputs=outputs)]), path)


def test_report_page_escapes_every_theme_text_and_failure(tmp_path):
    """report.html: theme texts in <title>, <h1>, question, headline, caveats; names in the
    notebooks' tables and markdown; the error of a failed run."""
    from osservatorio.publishing.report import render_report
    from osservatorio.synthesis.findings import write_theme_findings
    from osservatorio.themes import Theme

    theme = Theme.model_validate({**_hostile_theme_dict(), "stages": [10]})
    run_dir = tmp_path / "run"
    _stage_notebook(run_dir / "notebooks" / "10_indicators.ipynb")
    write_theme_findings(run_dir, [_hostile_finding(theme)], 5)
    manifest = {"status": "failed", "error": HOSTILE[0] + " " + HOSTILE[1], "run_id": HOSTILE[2],
                "inputs": {HOSTILE[0]: "sha"}, "packages": {}}
    page = render_report(theme, run_dir, manifest).read_text(encoding="utf-8")
    assert_inert_html(page, HOSTILE)
    head = page.split("</title>")[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Finanza" in head  # the title as text
    assert "<style>" in page and "&#34;" not in page.split("</style>")[0]  # our CSS is not escaped


def test_site_pages_and_catalogue_escape_and_neutralise(tmp_path, monkeypatch):
    """index.html and catalogo.html show hostile titles and finding texts as text; the
    catalogue files (CSV, XLSX) hold no formula."""
    from osservatorio.publishing.site import catalogue_page, index_page, write_catalogue
    from osservatorio.themes import Theme

    monkeypatch.setenv("OSSERVATORIO_ROOT", str(tmp_path))
    theme = Theme.model_validate(_hostile_theme_dict())
    finding = _hostile_finding(theme)
    entries = [{"theme": theme.id, "findings": [finding], "run_dir": None,
                "manifest": {"run_id": "r1", "synthetic_data": True, "parameters": theme.notebook_parameters()},
                "last_attempt": {"status": "failed", "run_id": HOSTILE[0]}}]
    index = index_page(entries, "it", "")
    assert_inert_html(index, [theme.title.it, theme.practice.it, theme.outcome_label.it, theme.outcome_unit.it])
    catalogue = catalogue_page(entries, "it", "")
    assert_inert_html(catalogue, [theme.practice.it, theme.outcome_label.it, theme.outcome_unit.it, HOSTILE[1],
                                  HOSTILE[2]])
    written = write_catalogue(entries, "it")
    assert_inert_csv(written["csv"])
    assert assert_inert_xlsx(written["xlsx"]) > 100
    assert json.loads(written["json"].read_text(encoding="utf-8"))["findings"][0]["pratica"] == theme.practice.it
    back = pd.read_csv(written["csv"])
    assert back.loc[0, "pratica"] == "'" + theme.practice.it and back.loc[0, "effetto"] == -0.5
    # the catalogue (new at every build) leaves nothing in the workbook cache
    workbooks = tmp_path / "outputs" / ".cache" / "workbooks"
    assert not workbooks.is_dir() or not any(workbooks.iterdir())


# --- end to end --------------------------------------------------------------------


def _prefixed(values: pd.Series, offset: int = 0) -> list[str]:
    """Each value with a hostile string in front (the strings in turn), so a cell starts
    with "=", "+", ... and stays distinct."""
    return [f"{HOSTILE[(i + offset) % len(HOSTILE)]} {v}" for i, v in enumerate(values)]


def _inject_sources(demo: Path) -> None:
    """Hostile strings in every free-text column of every source table (codes, dates,
    numbers and the closed lists are validated and stay as they are): entity names, acts,
    partners, instruments, pilots, districts, and comuni named without a code, which the
    name matching cannot match and reports."""
    read = lambda name: pd.read_csv(demo / f"{name}.csv", dtype=str, keep_default_na=False)  # noqa: E731
    ets = read("enti_terzo_settore")
    ets["denominazione"] = _prefixed(ets["denominazione"])
    ets.loc[: len(HOSTILE) - 1, "codice_istat"] = ""
    ets.loc[: len(HOSTILE) - 1, "comune"] = HOSTILE
    ets.to_csv(demo / "enti_terzo_settore.csv", index=False)
    acts = read("atti_amministrazione_condivisa")
    acts["id_atto"] = _prefixed(acts["id_atto"])
    others = acts.index[acts["tema"] == "altro"]
    acts.loc[others, "tema"] = _prefixed(acts.loc[others, "tema"])
    partners = acts.index[acts["enti_partner"] != ""][: 3 * len(HOSTILE)]
    acts.loc[partners, "enti_partner"] = [f"{p};{h}" for p, h in zip(acts.loc[partners, "enti_partner"],
                                                                     HOSTILE * 3, strict=True)]
    acts.loc[: len(HOSTILE) - 1, "codice_istat"] = ""
    acts.loc[: len(HOSTILE) - 1, "comune"] = [f"{h} atti" for h in HOSTILE]
    acts.to_csv(demo / "atti_amministrazione_condivisa.csv", index=False)
    fin = read("strumenti_finanza_sociale")
    fin["id"] = _prefixed(fin["id"])
    fin["metrica_esito"] = _prefixed(fin["metrica_esito"], 1)
    fin.to_csv(demo / "strumenti_finanza_sociale.csv", index=False)
    pilot = read("pilot")
    old_ids = pilot["id_pilota"].copy()
    pilot["id_pilota"] = _prefixed(pilot["id_pilota"])
    pilot["pratica"] = _prefixed(pilot["pratica"], 2)
    pilot.to_csv(demo / "pilot.csv", index=False)
    costi = read("costi_pilota")  # the same hostile ids where the costs name the pilots
    costi["id_pilota"] = costi["id_pilota"].map(dict(zip(old_ids, pilot["id_pilota"], strict=True)))
    costi.to_csv(demo / "costi_pilota.csv", index=False)
    areas = read("ambiti")
    for column in ("ambito_sociale", "distretto_sanitario", "asl"):
        codes = sorted(set(areas[column]))
        areas[column] = areas[column].map(dict(zip(codes, _prefixed(pd.Series(codes)), strict=True)))
    areas.to_csv(demo / "ambiti.csv", index=False)


@pytest.mark.e2e
def test_hostile_texts_in_a_real_run_are_shown_and_never_run(fresh_project):
    """A theme run by the runner (papermill, nbconvert) and the site built on sources and a
    theme file full of hostile strings: the HTML pages plant nothing and show the strings
    as text; no exported workbook or CSV holds a formula."""
    from osservatorio.publishing.site import build_site
    from osservatorio.running.runner import run_theme

    root = fresh_project
    demo = root / "data" / "demo"
    _inject_sources(demo)
    outcome = HOSTILE[5] + " tasso_neet"  # the outcome key too: it is exported as "esito"
    esiti = demo / "esiti.csv"
    esiti.write_text(esiti.read_text(encoding="utf-8").replace(",tasso_neet_15_29,", f",{outcome},"),
                     encoding="utf-8")
    theme = {**_hostile_theme_dict(), "outcome": outcome}
    (root / "params" / "themes" / "finanza-sociale-neet.yaml").write_text(
        yaml.safe_dump(theme, allow_unicode=True), encoding="utf-8")

    result = run_theme("finanza-sociale-neet", force=True, root=str(root))
    assert result.status == "success", result.error
    build_site()

    out = root / "outputs"
    run = out / "finanza-sociale-neet" / "latest"
    texts = {key: theme[key]["it"] for key in ("title", "question", "practice", "outcome_label", "outcome_unit")}
    report = (run / "report.html").read_text(encoding="utf-8")
    # every string: the theme's texts, entity names (network table), unmatched comuni (match report)
    assert_inert_html(report, [*texts.values(), *HOSTILE])
    assert f"<title>{texts['title'].replace('<', '&lt;').replace('>', '&gt;')}</title>" in report
    assert_inert_html((out / "site" / "index.html").read_text(encoding="utf-8"),
                      [texts[k] for k in ("title", "practice", "outcome_label", "outcome_unit")])
    assert_inert_html((out / "site" / "catalogo.html").read_text(encoding="utf-8"),
                      [texts[k] for k in ("practice", "outcome_label", "outcome_unit")])

    books = sorted(p for p in out.rglob("*.xlsx"))
    tables = sorted(p for p in out.rglob("*.csv"))
    names = {p.name for p in books + tables}
    assert {"abbinamento_comuni.xlsx", "indicatori.xlsx", "proposta_pilota.xlsx", "trasferibilita.xlsx",
            "catalogo.xlsx", "abbinamento_comuni.csv", "rete_enti.csv", "findings.csv", "catalogo.csv",
            "trasferibilita.csv"} <= names, names
    for path in books:
        assert_inert_xlsx(path)
    for path in tables:
        assert_inert_csv(path)
    # the hostile texts are in the exports, neutralised, not dropped
    matches = pd.read_csv(run / "abbinamento_comuni.csv", dtype=str)
    assert "'" + HOSTILE[2] in set(matches["nome"]) and HOSTILE[0] in set(matches["nome"])
    entities = pd.read_csv(run / "rete_enti.csv", dtype=str)
    assert entities["codice_fiscale"].str.startswith("'=HYPERLINK").any()
    found = pd.read_csv(out / "findings" / "catalogo.csv").iloc[0]
    assert found["pratica"] == "'" + texts["practice"] and found["esito"] == "'" + outcome
