"""A reviewer's view of the site, in a real (headless) browser.

One quick theme (finanza-sociale-neet) is run end to end in a temporary project, the
site is built, and index.html, the theme's report and catalogo.html are opened in
headless Chromium: the rendered DOM must show the synthetic-data banner, the headline
finding, figures embedded as data: URIs, and relative links that resolve to files.
Set OSSERVATORIO_SCREENSHOT_DIR to keep the screenshots for a look by eye.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed: no browser to render the site")]


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "img" and a.get("src"):
            self.images.append(a["src"])


def _browse(page: Path, tmp: Path, name: str) -> tuple[str, Path]:
    """The DOM after rendering, and a 1280x2000 screenshot."""
    profile = tmp / f"profile-{name}"
    shot = tmp / f"{name}.png"
    url = page.resolve().as_uri()
    base = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}"]
    dom = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True).stdout
    subprocess.run([*base, f"--screenshot={shot}", "--window-size=1280,2000", url], capture_output=True,
                   timeout=120, check=True)
    keep = os.environ.get("OSSERVATORIO_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)
    return dom, shot


def _check_links(page: Path, dom: str) -> _Collect:
    found = _Collect()
    found.feed(dom)
    assert found.links, f"no links in {page.name}"
    for href in found.links:
        parts = urlsplit(href)
        if parts.scheme in ("http", "https", "mailto") or not parts.path:
            continue  # external, or an anchor on the same page
        target = (page.parent / unquote(parts.path)).resolve()
        assert target.exists(), f"{page.name}: link {href} points to a missing file"
    return found


def _site(root: Path) -> Path:
    """Run one quick theme in the (fresh) project and build the site."""
    from osservatorio.running.runner import run_theme
    from osservatorio.publishing.site import build_site

    outcome = run_theme("finanza-sociale-neet", force=True, root=str(root))
    assert outcome.status == "success", outcome.error
    return build_site()


def test_reviewer_opens_index_report_and_catalogue(fresh_project, tmp_path):
    from osservatorio.synthesis.findings import SCHEMA_VERSION

    index = _site(fresh_project)
    root = fresh_project

    # index: banner, the null practice's headline, links to report and catalogue that resolve
    dom, shot = _browse(index, tmp_path, "index")
    assert shot.stat().st_size > 10_000
    assert "DATI SINTETICI" in dom
    assert "Verdetto" in dom and "effetto non dimostrato" in dom
    links = _check_links(index, dom)
    assert any(h.endswith("report.html") for h in links.links)
    assert any(h.endswith("catalogo.html") for h in links.links)

    # report: banner, headline, embedded figures, the transferability section and methods
    report = root / "outputs" / "finanza-sociale-neet" / "latest" / "report.html"
    dom, _ = _browse(report, tmp_path, "report")
    assert "DATI SINTETICI" in dom and "effetto non dimostrato" in dom
    found = _check_links(report, dom)
    figures = [s for s in found.images if s.startswith("data:image/png;base64,")]
    assert len(figures) >= 3, f"only {len(figures)} embedded figures"
    assert all(len(s) > 2_000 for s in figures)
    assert "Trasferibilità" in dom and "trasferibilita.csv" in dom
    assert "Riley" in dom  # the methods say when the prediction interval is Riley's
    # cost and value of the null-effect social impact bonds: no ratio, a contract that almost never pays
    assert "Costo e valore" in dom and "non definito" in dom
    assert "Contratti a pagamento sui risultati" in dom and "quasi certamente non paga" in dom
    value = json.loads((report.parent / "data" / "costo_valore.json").read_text())
    assert value["contratti_sintesi"]["prob_pagamento"] < 0.05 and value["costo_efficacia"]["stato"] == "non_definito"
    assert (report.parent / "costi.xlsx").is_file()
    # the sensitivity of its event study to broken parallel trends, and its breakdown value in the finding
    assert "Quanto dovrebbero divergere i trend per ribaltare il risultato" in dom
    finding = json.loads((report.parent / "findings.json").read_text())["findings"][0]
    assert finding["valore_rottura_stato"] == "calcolato" and finding["valore_rottura_mbar"] is not None
    assert "Traceback" not in dom

    # catalogue: the practice is listed, not called effective, 0 padlocks on synthetic data
    page = index.parent / "catalogo.html"
    dom, _ = _browse(page, tmp_path, "catalogo")
    assert "DATI SINTETICI" in dom and "Catalogo dei risultati" in dom
    row = re.search(r'<tr><td><a href="\.\./finanza-sociale-neet/latest/report\.html">.*?</tr>', dom, re.S)
    assert row, "no catalogue row for finanza-sociale-neet"
    assert "effetto non dimostrato" in row.group(0) and "funziona" not in row.group(0)
    assert "🔒" not in row.group(0)
    _check_links(page, dom)
    for name in ("catalogo.xlsx", "catalogo.csv", "catalogo.json", "trasferibilita.xlsx",
                 f"schema_v{SCHEMA_VERSION}.json"):
        assert (root / "outputs" / "findings" / name).is_file()
