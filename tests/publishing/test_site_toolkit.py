"""The site index as a toolkit (issue 12, part 4): cards, table, chart, sorting and filtering.

The site is built from finding records written here the way runs write them (a run folder
with manifest.json and findings.json, ``latest`` pointing at it), with six themes that
differ in effect, evidence, cost, outcome area and region: one whose beneficiaries are
below the disclosure threshold, one without cost fields or padlock rating, one whose
latest attempt failed after a success and one that never succeeded. The HTML is checked
as text; then headless Chromium (Playwright driving the system's browser) sorts and
filters it, with JavaScript off reads the table, and axe-core checks accessibility.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from osservatorio.synthesis.findings import SCHEMA_VERSION

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None)

THRESHOLD = 5
RUN = "20260101T000000000-1"
FAILED_RUN = "20260102T000000000-2"


def _record(theme: str, title: str, *, effect: float, base: float, ci: tuple[float, float], locks: int | None,
            verdict: str, beneficiaries: int | None = None, cost_total: float | None = None,
            band: int | None = None, euro_year: float | None = None, area: str | None = None,
            regions: list[str] | None = None, synthetic: bool = False, locks_real: int | None = None) -> dict:
    rec = dict(
        tema=theme, titolo=title, pratica=f"pratica {theme}", esito="esito", esito_etichetta=f"esito di {theme}",
        unita_misura="punti", livello_unita="comune", disegno="staggered_did", stimatore="cs",
        effetto=effect, effetto_relativo=effect / base, valore_base=base, ci_low=ci[0], ci_high=ci[1],
        p_value=0.01, metodo_inferenza="test", n_trattati=40, n_confronto=200, n_cluster=30,
        periodo_inizio="2015", periodo_fine="2023", pretrend_p=0.5, placebo_p=0.5, livello_maryland=3,
        lucchetti=locks, lucchetti_senza_limite_sintetico=locks_real if synthetic else locks, verdetto=verdict,
        costo_totale_euro=cost_total, beneficiari=beneficiaries,
        costo_per_beneficiario_euro=None if not (cost_total and beneficiaries) else cost_total / beneficiaries,
        dati_sintetici=synthetic, lingua="it", id_run=RUN,
        fascia_costo=band, costo_per_beneficiario_anno_euro=euro_year, area_esito=area, regioni=regions or [])
    return rec


RECORDS = {
    # +10% of the baseline, 4 padlocks, cheap
    "alfa-salute": (_record("alfa-salute", "Alfa: case della salute", effect=5.0, base=50.0, ci=(2.0, 8.0), locks=4,
                            verdict="efficace", beneficiaries=1000, cost_total=600_000.0, band=2, euro_year=300.0,
                            area="salute", regions=["Puglia", "Lazio"]), True),
    # lower is better: -20% of the baseline is a gain of +20%; its latest attempt failed
    "beta-lavoro": (_record("beta-lavoro", "Beta: lavoro per i NEET", effect=-4.0, base=20.0, ci=(-6.0, -2.0),
                            locks=2, verdict="efficace", beneficiaries=500, cost_total=2_500_000.0, band=4,
                            euro_year=2500.0, area="lavoro", regions=["Lombardia"]), False),
    # the cheapest; synthetic data: no padlock, 3 on real data
    "gamma-patti": (_record("gamma-patti", "Gamma: patti di collaborazione", effect=0.5, base=10.0, ci=(-0.5, 1.5),
                            locks=0, verdict="non_dimostrata", beneficiaries=800, cost_total=40_000.0, band=1,
                            euro_year=50.0, area="partecipazione", regions=["Puglia"], synthetic=True,
                            locks_real=3), True),
    # 3 beneficiaries, below the threshold: no euro per beneficiary, no cost band
    "zeta-piccolo": (_record("zeta-piccolo", "Zeta: un piccolo pilota", effect=0.4, base=20.0, ci=(-0.2, 1.0),
                             locks=1, verdict="non_dimostrata", beneficiaries=3, cost_total=2_700.0, band=3,
                             euro_year=900.0, area="salute", regions=["Veneto"]), True),
    # no cost fields at all, padlocks not rated, harmful
    "delta-sociale": (_record("delta-sociale", "Delta: servizi sociali", effect=-3.0, base=100.0, ci=(-5.0, -1.0),
                              locks=None, verdict="dannosa", area="servizi_sociali", regions=["Sicilia", "Lazio"]),
                      True),
}
NEVER_RAN = "epsilon-mai"  # one failed run, never a successful one
ALL = ["alfa-salute", "beta-lavoro", "delta-sociale", NEVER_RAN, "gamma-patti", "zeta-piccolo"]  # by title
N = len(ALL)


def _manifest(theme: str, title: str, run_id: str, status: str, higher_is_better: bool = True) -> dict:
    return {"run_id": run_id, "theme": theme, "status": status, "synthetic_data": False,
            "error": None if status == "success" else "boom",
            "parameters": {"title": {"it": title, "en": title}, "higher_is_better": higher_is_better,
                           "disclosure_threshold": THRESHOLD, "language": "it", "seed": 1}}


def _write_outputs(outputs: Path) -> None:
    for theme, (record, higher) in RECORDS.items():
        run = outputs / theme / RUN
        run.mkdir(parents=True)
        (run / "manifest.json").write_text(json.dumps(_manifest(theme, record["titolo"], RUN, "success", higher)))
        (run / "findings.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION, "findings": [record]}))
        (outputs / theme / "latest").symlink_to(RUN)
    failed = outputs / "beta-lavoro" / FAILED_RUN
    failed.mkdir()
    (failed / "manifest.json").write_text(json.dumps(_manifest("beta-lavoro", "Beta: lavoro per i NEET", FAILED_RUN,
                                                               "failed", False)))
    never = outputs / NEVER_RAN / FAILED_RUN
    never.mkdir(parents=True)
    (never / "manifest.json").write_text(json.dumps(_manifest(NEVER_RAN, "Epsilon: mai riuscito", FAILED_RUN,
                                                              "failed")))


def _build(tmp: Path, lang: str = "it") -> Path:
    from osservatorio.publishing import site as site_mod

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OSSERVATORIO_ROOT", str(tmp))
        _write_outputs(tmp / "outputs")
        return site_mod.build_site(lang=lang)


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Path:
    return _build(tmp_path_factory.mktemp("toolkit"))


@pytest.fixture(scope="module")
def page_html(index) -> str:
    return index.read_text(encoding="utf-8")


def _cards(html: str) -> dict[str, str]:
    return {m.group(1): m.group(0) for m in
            re.finditer(r"<li class='tk-card'[^>]*data-theme='([^']+)'.*?</li>", html, re.S)}


def _rows(html: str) -> dict[str, str]:
    return {m.group(1): m.group(0) for m in re.finditer(r"<tr [^>]*data-theme='([^']+)'.*?</tr>", html, re.S)}


# --- the HTML as text ------------------------------------------------------------------


def test_one_card_and_one_table_row_per_theme_in_title_order(page_html):
    assert list(_cards(page_html)) == ALL
    assert list(_rows(page_html)) == ALL


def test_card_shows_impact_evidence_verdict_cost(page_html):
    alfa = _cards(page_html)["alfa-salute"]
    assert "+10,0%" in alfa and "IC 95%: +4,0% – +16,0%" in alfa  # 5/50, interval 2/50 and 8/50
    assert "rispetto al valore di partenza (50,00 punti)" in alfa
    assert "aria-label='4 lucchetti su 5'" in alfa and "<title>4 lucchetti su 5</title>" in alfa
    assert "efficace" in alfa and "fascia di costo 2 su 5: basso" in alfa and "300 €" in alfa
    assert "salute" in alfa and "Lazio, Puglia" in alfa
    for href in ("../alfa-salute/latest/report.html", "../alfa-salute/latest/findings.json",
                 "../alfa-salute/latest/findings.csv"):
        assert f"href='{href}'" in alfa
    beta = _cards(page_html)["beta-lavoro"]
    assert "−20,0%" in beta and "più basso è meglio" in beta and "aria-label='2 lucchetti su 5'" in beta
    assert "molto basso" not in beta and "fascia di costo 4 su 5: alto" in beta


def test_padlock_text_alternatives(page_html):
    cards = _cards(page_html)
    assert "aria-label='0 lucchetti su 5'" in cards["gamma-patti"]
    assert "aria-label='1 lucchetto su 5'" in cards["zeta-piccolo"]
    assert "su dati reali: 3/5" in cards["gamma-patti"] and "dati sintetici" in cards["gamma-patti"]
    assert "aria-label='evidenza non valutata'" in cards["delta-sociale"]
    for card in cards.values():  # every icon is an image with a name, or hidden from screen readers
        for svg in re.findall(r"<svg[^>]*>", card):
            assert "role='img' aria-label='" in svg or "aria-hidden='true'" in svg


def test_suppressed_beneficiaries_show_no_euro_per_beneficiary(page_html):
    zeta = _cards(page_html)["zeta-piccolo"]
    assert "soppresso" in zeta
    assert "900 €" not in zeta and "2.700 €" not in zeta and "moderato" not in zeta  # nor the band it gives
    assert "data-euro=''" in zeta and "data-band=''" in zeta
    assert "900 €" not in _rows(page_html)["zeta-piccolo"]
    assert "50 €" in _cards(page_html)["gamma-patti"]  # 800 people: shown


def test_missing_cost_and_failed_runs(page_html):
    cards = _cards(page_html)
    delta = cards["delta-sociale"]
    assert "data-band=''" in delta and "data-euro=''" in delta and "n.d." in delta
    assert "ultima esecuzione non riuscita (20260102T000000000-2)" in cards["beta-lavoro"]
    assert "−20,0%" in cards["beta-lavoro"]  # the last valid result is still shown
    never = cards[NEVER_RAN]
    assert "ultima esecuzione non riuscita" in never and "nessuna esecuzione riuscita" in never
    assert "report.html" not in never


def test_chart_has_one_marker_per_practice_at_its_value(page_html):
    svg = re.search(r"<svg class='tk-chart-svg'.*?</svg>(?=<figcaption>)", page_html, re.S).group(0)
    markers = dict(re.findall(r"class='tk-marker tk-marker-\w+' data-theme='([^']+)' data-value='[^']*' x='([\d.]+)%'",
                              svg))
    assert sorted(markers) == sorted(RECORDS)  # the theme that never ran has no marker
    ticks = [(float(v), float(x)) for v, x in re.findall(r"class='tk-tick' data-value='([^']+)' data-x='([\d.]+)%'", svg)]
    assert [v for v, _ in ticks] == [-10, 0, 10, 20, 30]  # intervals from -5% to +30% of the baseline

    def x_of(value: float) -> float:
        (v0, x0), (v1, x1) = ticks[0], ticks[-1]
        return x0 + (value - v0) / (v1 - v0) * (x1 - x0)

    # gains: right is better, so beta's fall of 20% (lower is better) is drawn at +20
    gains = {"alfa-salute": 10, "beta-lavoro": 20, "gamma-patti": 5, "delta-sociale": -3, "zeta-piccolo": 2}
    for theme, gain in gains.items():
        assert float(markers[theme]) == pytest.approx(x_of(gain), abs=0.01)
    assert "tk-marker-high' data-theme='alfa-salute'" in svg  # 4 padlocks: filled
    assert "tk-marker-mid' data-theme='beta-lavoro'" in svg
    assert "tk-marker-low' data-theme='gamma-patti'" in svg and "tk-marker-low' data-theme='zeta-piccolo'" in svg
    assert "tk-marker-nd' data-theme='delta-sociale'" in svg
    assert "<title id='tk-chart-title'>" in svg and "Alfa: case della salute: +10,0%" in svg  # the desc
    assert "meglio →" in svg and "effetto in % del valore di partenza" in svg


def test_page_is_self_contained(page_html):
    """A folder of static files that works from disk: nothing fetched from a network."""
    assert not re.search(r"(?:src|href|action)\s*=\s*['\"]?\s*(?:[a-z][a-z0-9+.-]*:)?//", page_html, re.I)
    assert not re.search(r"https?:|<link\b|<iframe\b|<script[^>]*\bsrc\b|@import|url\(", page_html, re.I)


def test_english_labels(tmp_path):
    html = _build(tmp_path, lang="en").read_text(encoding="utf-8")
    alfa = _cards(html)["alfa-salute"]
    assert "aria-label='4 padlocks out of 5'" in alfa and "cost band 2 of 5: low" in alfa and "€300" in alfa
    assert "higher is better" in alfa and "of the baseline" in alfa and "health" in alfa
    assert "better →" in html and "Practices shown: 6 of 6" in html and "lucchetti" not in html


def test_cost_band_labels_match_the_cost_rules():
    from osservatorio.publishing.text import t
    from osservatorio.synthesis.costs import COST_BANDS

    for band, it, en, _ in COST_BANDS:
        assert t(f"site.tk.band.{band}", "it") == it and t(f"site.tk.band.{band}", "en") == en


# --- in a browser ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if CHROMIUM is None:
        pytest.skip("chromium not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def page(browser, index):
    """The index with JavaScript on; console errors and page errors collected."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.errors = []
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.goto(index.resolve().as_uri())
    yield pg
    context.close()


def _visible(pg, selector: str) -> list[str]:
    return pg.eval_on_selector_all(selector, "els => els.filter(e => !e.hidden && e.offsetParent !== null)"
                                             ".map(e => e.getAttribute('data-theme'))")


def _count(pg) -> str:
    return pg.inner_text("#tk-count").strip()


@pytest.mark.e2e
@pytest.mark.slow
def test_browser_shows_cards_and_sorts(page):
    assert page.is_visible("#tk-cards") and not page.is_visible("#tk-table") and page.is_visible("#tk-controls")
    assert _visible(page, "#tk-cards > li") == ALL
    expected = {
        "impact": ["beta-lavoro", "alfa-salute", "gamma-patti", "zeta-piccolo", "delta-sociale", NEVER_RAN],
        "evidence": ["alfa-salute", "beta-lavoro", "zeta-piccolo", "gamma-patti", "delta-sociale", NEVER_RAN],
        "cost": ["gamma-patti", "alfa-salute", "beta-lavoro", "delta-sociale", NEVER_RAN, "zeta-piccolo"],
        "title": ALL,
    }
    for key, order in expected.items():
        page.select_option("#tk-sort", key)
        assert _visible(page, "#tk-cards > li") == order, key
    page.select_option("#tk-sort", "impact")
    page.click("#tk-view")  # the table follows the same order
    assert page.get_attribute("#tk-view", "aria-pressed") == "true"
    assert page.is_visible("#tk-table") and not page.is_visible("#tk-cards")
    assert _visible(page, "#tk-table tbody tr") == expected["impact"]
    assert page.errors == []


@pytest.mark.e2e
@pytest.mark.slow
def test_browser_filters_and_announces_the_count(page):
    assert _count(page) == f"Pratiche mostrate: {N} su {N}"
    assert page.get_attribute("#tk-count", "aria-live") == "polite"
    cases = [
        ("#tk-area", "salute", ["alfa-salute", "zeta-piccolo"]),
        ("#tk-area", "servizi_sociali", ["delta-sociale"]),
        ("#tk-region", "Lazio", ["alfa-salute", "delta-sociale"]),
        ("#tk-region", "Puglia", ["alfa-salute", "gamma-patti"]),
        ("#tk-region", "Veneto", ["zeta-piccolo"]),
        ("#tk-evidence", "1", ["alfa-salute", "beta-lavoro", "zeta-piccolo"]),
        ("#tk-evidence", "2", ["alfa-salute", "beta-lavoro"]),
        ("#tk-evidence", "3", ["alfa-salute"]),
        ("#tk-evidence", "5", []),
    ]
    for selector, value, shown in cases:
        page.click("#tk-reset")
        page.select_option(selector, value)
        assert _visible(page, "#tk-cards > li") == shown, (selector, value)
        assert _count(page) == f"Pratiche mostrate: {len(shown)} su {N}"
    page.click("#tk-reset")  # filters combine, and follow the sort
    page.select_option("#tk-sort", "impact")
    page.select_option("#tk-area", "salute")
    assert _visible(page, "#tk-cards > li") == ["alfa-salute", "zeta-piccolo"]
    page.select_option("#tk-region", "Veneto")
    assert _visible(page, "#tk-cards > li") == ["zeta-piccolo"] and _count(page) == f"Pratiche mostrate: 1 su {N}"
    page.select_option("#tk-evidence", "2")
    assert _visible(page, "#tk-cards > li") == [] and _count(page) == f"Pratiche mostrate: 0 su {N}"
    page.click("#tk-reset")
    assert len(_visible(page, "#tk-cards > li")) == N and _count(page) == f"Pratiche mostrate: {N} su {N}"
    labels = page.eval_on_selector_all("#tk-controls select", "els => els.map(e => e.labels[0].textContent)")
    assert labels == ["Ordina per", "Area di esito", "Regione", "Evidenza"]
    assert page.errors == []


@pytest.mark.e2e
@pytest.mark.slow
def test_browser_without_javascript_reads_the_table(browser, index):
    context = browser.new_context(java_script_enabled=False)
    pg = context.new_page()
    pg.goto(index.resolve().as_uri())
    assert pg.is_visible("#tk-table") and not pg.is_visible("#tk-cards") and not pg.is_visible("#tk-controls")
    headers = pg.eval_on_selector_all("#tk-table thead th", "els => els.map(e => e.textContent)")
    assert headers[:4] == ["Tema e pratica", "Impatto (% del valore di partenza)", "Effetto (unità dell'esito)",
                           "Evidenza (lucchetti)"]
    rows = pg.eval_on_selector_all("#tk-table tbody tr", "els => els.map(e => e.innerText)")
    assert len(rows) == N
    alfa = next(r for r in rows if r.startswith("Alfa"))
    for text in ("+10,0%", "IC 95%: +4,0% – +16,0%", "efficace", "300 €", "salute", "Lazio, Puglia", "Rapporto"):
        assert text in alfa
    gamma = next(r for r in rows if r.startswith("Gamma"))
    assert "dati sintetici" in gamma and "50 €" in gamma
    assert "soppresso" in next(r for r in rows if r.startswith("Zeta"))
    assert pg.is_visible(".tk-chart-svg")  # the chart needs no script
    context.close()


@pytest.mark.e2e
@pytest.mark.slow
def test_accessibility_with_axe(page):
    """axe-core (bundled by axe-playwright-python) on the card view and the table view, at a
    desktop and a phone's width: no violation at all (serious and critical included), no
    rule disabled."""
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    found = {}
    for width in (1280, 400):
        page.set_viewport_size({"width": width, "height": 900})
        for view in ("cards", "table"):
            if page.get_attribute("#tk-view", "aria-pressed") != str(view == "table").lower():
                page.click("#tk-view")
            results = axe.run(page)
            found[(width, view)] = [(v["id"], v["impact"], len(v["nodes"])) for v in results.response["violations"]]
    serious = [v for vs in found.values() for v in vs if v[1] in ("serious", "critical")]
    assert serious == [], found
    assert all(vs == [] for vs in found.values()), found
    assert page.errors == []


def _contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two sRGB colours."""
    def lum(h: str) -> float:
        c = [int(h.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4)]
        c = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]
    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_svg_colours_have_enough_contrast():
    """axe cannot measure text inside SVG (it reports it as "incomplete"): the chart's and
    icons' colours are checked here with the WCAG formula, text 4.5:1, graphics 3:1."""
    from osservatorio.publishing import toolkit

    for fg in (toolkit.INK, toolkit.SOFT, toolkit.LINE):
        for bg in ("#ffffff", toolkit.STRIPE):
            assert _contrast(fg, bg) >= 4.5, (fg, bg)
    assert _contrast(toolkit.EMPTY, "#ffffff") >= 3.0
    assert _contrast(toolkit.EMPTY, toolkit.INK) >= 3.0  # an empty euro sign is told from a full one
