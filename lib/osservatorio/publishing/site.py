"""The reviewers' site: ``outputs/site/index.html`` and the findings catalogue.

Built from the latest successful run of each theme (``outputs/<theme>/latest``); a theme
whose most recent run failed is listed with that failure. The catalogue pools every
theme's findings into ``outputs/findings/`` as JSON, CSV and XLSX (a readable sheet per
theme and a codebook), the JSON Schema of the finding record
(``schema_v<version>.json``) and the pooled transferability lists, after disclosure
control; ``outputs/site/catalogo.html`` shows the same findings sorted by evidence. The
index is a toolkit (``toolkit.py``): a card per theme's headline finding with impact,
evidence and cost, sortable and filterable, a plain table without JavaScript, and one
chart comparing the practices; it works from disk, with nothing fetched.
Every text comes from ``labels/site.yaml`` (Italian or English).

Several commands may build the site at once (a ``run`` finishing during a ``site``): the
build holds ``outputs/site/.build.lock``, and every file is written under a name of its own and
renamed into place, so readers never see a part of a file.
"""

from __future__ import annotations

import hashlib
import html
import json
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from osservatorio import paths
from osservatorio.publishing.workbook import write_xlsx
from osservatorio.synthesis.findings import SCHEMA_VERSION, Finding, schema_json, suppress, to_frame
from osservatorio.publishing.report import _template_text
from osservatorio.publishing.safe import write_csv
from osservatorio.running.locks import DEFAULT_TIMEOUT_S, SITE_LOCK, site_lock
from osservatorio.running.runner import LATEST, TMP_PREFIX
from osservatorio.running.writing import atomic_write
from osservatorio.publishing.text import fmt_number, t
from osservatorio.publishing.toolkit import Practice, chart_section, practices_section

DEFAULT_THRESHOLD = 5  # disclosure threshold when a manifest does not carry the theme's
XLSX_TRANSFER_ROWS = 500  # rows per theme in the pooled transferability workbook
SIMILAR_SHOWN = 3
EXTRA_CSS = """
.catalogue td, .catalogue th { text-align: left; } .catalogue td.num { text-align: right; white-space: nowrap; }
.catalogue small { color: #55606b; } .note { font-size: .9rem; color: #38424c; }
.assess-solida, .assess-moderata { color: #2e7d32; font-weight: 600; }
.assess-debole, .assess-non_dimostrata { color: #8a6d00; font-weight: 600; }
.assess-dannosa { color: #b3261e; font-weight: 600; } main.wide { max-width: 1240px; }
"""
ASSESSMENT_ORDER = ("solida", "moderata", "debole", "non_dimostrata", "dannosa")
SECURE_PADLOCKS = 3  # effective and at least this many padlocks (on real data): secure evidence
MODERATE_PADLOCKS = 2


# --- collecting runs ---------------------------------------------------------------


def _theme_dirs() -> list[Path]:
    root = paths.outputs_dir()
    if not root.is_dir():
        return []
    return sorted(d for d in root.iterdir() if d.is_dir() and d.name not in ("site", "findings")
                  and not d.name.startswith("."))


def _latest_attempt(theme_dir: Path) -> dict | None:
    runs = sorted(d for d in theme_dir.iterdir() if d.is_dir() and not d.is_symlink()
                  and not d.name.startswith((TMP_PREFIX, ".")) and (d / "manifest.json").is_file())
    return json.loads((runs[-1] / "manifest.json").read_text(encoding="utf-8")) if runs else None


def collect_latest() -> list[dict]:
    """One entry per theme: its latest successful run (if any) and its last attempt."""
    entries = []
    for d in _theme_dirs():
        # resolved once: a run publishing meanwhile moves the link, not what is read here
        latest = (d / LATEST).resolve() if (d / LATEST).is_symlink() else d / LATEST
        mpath = latest / "manifest.json"
        manifest = json.loads(mpath.read_text(encoding="utf-8")) if mpath.is_file() else None
        findings = []
        if (latest / "findings.json").is_file():
            findings = [Finding.model_validate(r) for r in
                        json.loads((latest / "findings.json").read_text(encoding="utf-8"))["findings"]]
        entries.append({"theme": d.name, "manifest": manifest, "findings": findings,
                        "last_attempt": _latest_attempt(d), "run_dir": latest if manifest else None})
    return entries


def threshold_of(entry: dict) -> int:
    """The theme's disclosure threshold, from the parameters recorded in its manifest."""
    return int((entry["manifest"] or {}).get("parameters", {}).get("disclosure_threshold", DEFAULT_THRESHOLD))


# --- ordering by evidence ----------------------------------------------------------


def assessment(f: Finding) -> str:
    """Verdict and security in one word: solida, moderata, debole, non_dimostrata, dannosa.

    Uses the padlocks the diagnostics give before the synthetic-data cap, so that demo
    practices are ranked as real data with the same diagnostics would rank them.
    """
    if f.verdetto != "efficace":
        return f.verdetto
    locks = f.lucchetti_senza_limite_sintetico if f.lucchetti_senza_limite_sintetico is not None else f.lucchetti
    locks = locks or 0
    return "solida" if locks >= SECURE_PADLOCKS else "moderata" if locks >= MODERATE_PADLOCKS else "debole"


def evidence_key(f: Finding) -> tuple:
    """Sort key: assessment, then padlocks (real-data, then capped), then |relative effect|."""
    rel = abs(f.effetto_relativo) if f.effetto_relativo is not None else 0.0
    return (ASSESSMENT_ORDER.index(assessment(f)), -(f.lucchetti_senza_limite_sintetico or 0),
            -(f.lucchetti or 0), -rel, f.tema)


def catalogue_findings(entries: list[dict]) -> list[Finding]:
    """Every theme's findings after disclosure control (the theme's threshold), by evidence."""
    findings = [suppress(f, threshold_of(e)) for e in entries for f in e["findings"]]
    return sorted(findings, key=evidence_key)


# --- exports -----------------------------------------------------------------------


def catalogue_frame(findings: list[Finding], lang: str) -> pd.DataFrame:
    """The flat catalogue table with the assessment in words and the report path."""
    frame = to_frame(findings)
    frame.insert(frame.columns.get_loc("verdetto") + 1, "giudizio",
                 [t(f"site.assessment.{assessment(f)}", lang) for f in findings])
    frame["rapporto"] = [f"{f.tema}/{LATEST}/report.html" for f in findings]
    return frame


def codebook(columns, lang: str) -> pd.DataFrame:
    return pd.DataFrame({t("site.sheet.column", lang): list(columns),
                         t("site.sheet.description", lang): [t(f"codebook.{c}", lang) for c in columns]})


def write_catalogue(entries: list[dict], lang: str = "it") -> dict[str, Path]:
    """Pool findings into outputs/findings: JSON, CSV, XLSX, schema and transferability."""
    out_dir = paths.findings_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    findings = catalogue_findings(entries)
    frame = catalogue_frame(findings, lang)
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    payload = {"schema_version": SCHEMA_VERSION, "schema": f"schema_v{SCHEMA_VERSION}.json",
               "generated_at": generated, "findings": [f.model_dump() for f in findings]}
    written = {
        "schema": atomic_write(out_dir / f"schema_v{SCHEMA_VERSION}.json", lambda p: p.write_text(
            json.dumps(schema_json(), indent=2, ensure_ascii=False), encoding="utf-8")),
        "json": atomic_write(out_dir / "catalogo.json", lambda p: p.write_text(
            json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")),
        "csv": atomic_write(out_dir / "catalogo.csv", lambda p: write_csv(frame, p)),
        "xlsx": atomic_write(out_dir / "catalogo.xlsx", lambda p: _write_xlsx(p, frame, lang, generated)),
    }
    written.update(write_transfer_lists(entries, lang))
    return written


def _write_xlsx(path: Path, frame: pd.DataFrame, lang: str, generated: str) -> None:
    """Sheets: about, catalogo (one row per finding), one per theme (field | description
    | value, one field per row) and codebook."""
    about = pd.DataFrame({"": [t("site.sheet.about", lang, version=SCHEMA_VERSION, generated=generated)]})
    descr = {c: t(f"codebook.{c}", lang) for c in frame.columns}
    sheets: dict[str, pd.DataFrame] = {"info": about, "catalogo": frame}
    layout: dict[str, dict] = {"info": {"width": 150}, "catalogo": {"freeze": (1, 2), "width": 18}}
    for _, row in frame.iterrows():
        sheet = _sheet_name(row["tema"], sheets)
        sheets[sheet] = pd.DataFrame({t("site.sheet.field", lang): frame.columns,
                                      t("site.sheet.description", lang): [descr[c] for c in frame.columns],
                                      t("site.sheet.value", lang): [_cell(row[c]) for c in frame.columns]})
        layout[sheet] = {"widths": dict(zip(sheets[sheet].columns, (32, 70, 90)))}
    book = codebook(frame.columns, lang)
    sheets["codebook"] = book
    layout["codebook"] = {"widths": dict(zip(book.columns, (34, 100)))}
    # not kept in the workbook cache: the catalogue changes with every run (its time, the
    # findings' run ids), so each site build stored an entry no later build could use
    write_xlsx(path, sheets, layout, cache=False)


def _sheet_name(theme: str, existing) -> str:
    name = theme[:31]
    i = 2
    while name in existing:
        name = f"{theme[:27]} ({i})"
        i += 1
    return name


def _cell(x):
    """A value for the readable sheets: blank when missing; floats below 1 in absolute value
    to 4 significant digits (p-values), others to 3 decimals."""
    if x is None or (isinstance(x, float) and x != x):
        return ""
    if isinstance(x, float):
        return float(f"{x:.4g}") if abs(x) < 1 else round(x, 3)
    return x


TRANSFER_FILES = ("trasferibilita.csv", "trasferibilita.xlsx")
TRANSFER_PACKAGES = ("pandas", "numpy", "XlsxWriter")


def transfer_cache_root() -> Path:
    """``outputs/.cache/transfer``: the pooled lists of each set of themes' lists."""
    return paths.cache_dir() / "transfer"


def transfer_key(parts: list[tuple[str, Path]], lang: str) -> str:
    """What the pooled lists' bytes depend on: each theme's list (its name and SHA-256, in
    order), the language, the findings schema and the library (labels included)."""
    from osservatorio.data.cache import code_hash
    from osservatorio.data.sources import file_sha256
    from osservatorio.running.provenance import library_hash

    record = {"lang": lang, "schema": SCHEMA_VERSION, "lib": library_hash(),
              "packages": code_hash((), TRANSFER_PACKAGES), "parts": [[theme, file_sha256(f)] for theme, f in parts]}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def write_transfer_lists(entries: list[dict], lang: str) -> dict[str, Path]:
    """Pool each theme's trasferibilita.csv into outputs/findings/trasferibilita.{csv,xlsx}.

    The pooled files are cached by ``transfer_key`` (checked against their SHA-256 on
    every read, as the workbook cache): a site rebuilt after a run that changed no theme's
    list copies them instead of reading, neutralising and writing some 50,000 rows again."""
    from osservatorio.data.cache import read_file_entry, write_file_entry

    parts = [(e["theme"], e["run_dir"] / "trasferibilita.csv") for e in entries
             if e.get("run_dir") is not None and (e["run_dir"] / "trasferibilita.csv").is_file()]
    if not parts:
        return {}
    out_dir = paths.findings_dir()
    key = transfer_key(parts, lang)
    cached = {name: read_file_entry(transfer_cache_root(), key, name) for name in TRANSFER_FILES}
    if all(data is not None for data in cached.values()):
        return {label: atomic_write(out_dir / name, lambda p, data=cached[name]: p.write_bytes(data))
                for label, name in zip(("transfer_csv", "transfer_xlsx"), TRANSFER_FILES)}
    pooled = pd.concat([pd.read_csv(f, dtype={"codice": str}) for _, f in parts], ignore_index=True)
    pooled.insert(0, "schema_version", SCHEMA_VERSION)

    def xlsx(p: Path) -> None:
        sheets: dict[str, pd.DataFrame] = {}
        for theme, part in pooled.groupby("tema", sort=True):
            sheets[_sheet_name(str(theme), sheets)] = part.head(XLSX_TRANSFER_ROWS)
        cols = [c for c in pooled.columns if c != "schema_version"]
        sheets["codebook"] = pd.DataFrame({t("site.sheet.column", lang): cols,
                                           t("site.sheet.description", lang): [t(f"transfer.codebook.{c}", lang)
                                                                               for c in cols]})
        write_xlsx(p, sheets)

    written = {"transfer_csv": atomic_write(out_dir / "trasferibilita.csv", lambda p: write_csv(pooled, p)),
               "transfer_xlsx": atomic_write(out_dir / "trasferibilita.xlsx", xlsx)}
    write_file_entry(transfer_cache_root(), key, {name: (out_dir / name).read_bytes() for name in TRANSFER_FILES})
    return written


# --- pages -------------------------------------------------------------------------


def _page(lang: str, title: str, banner: str, body: str, wide: bool = False) -> str:
    main = '<main class="wide">' if wide else "<main>"
    return (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_template_text('style.css')}{EXTRA_CSS}</style></head><body>{banner}"
            f"{main}{body}</main></body></html>")


def _banner(entries: list[dict], lang: str) -> str:
    synth = [e for e in entries if (e["manifest"] or {}).get("synthetic_data")
             or any(f.dati_sintetici for f in e["findings"])]
    if not synth:
        return ""
    seed = (synth[0]["manifest"] or {}).get("parameters", {}).get("seed", "")
    # a named section is a landmark: screen-reader users find the notice with the page's regions
    return (f"<section class='banner' aria-label='{html.escape(t('site.banner_label', lang))}'>"
            f"{html.escape(t('banner.synthetic', lang, seed=seed))}</section>")


def build_site(lang: str = "it", lock_timeout: float = DEFAULT_TIMEOUT_S, on_wait=None) -> Path:
    """Write outputs/site/index.html, catalogo.html and the catalogue files; return the index.
    Holds the site lock (``on_wait`` is told when another build holds it)."""
    with site_lock(lock_timeout, on_wait):
        _remove_partial_files()
        return _build_site(lang)


def _remove_partial_files() -> None:
    """Temporary files (named ``.*``) of a build that was killed: with the lock held,
    nobody else is writing them."""
    for folder in (paths.site_dir(), paths.findings_dir()):
        for tmp in folder.glob(".*") if folder.is_dir() else []:
            if tmp.is_file() and tmp.name != SITE_LOCK:
                tmp.unlink(missing_ok=True)


def _build_site(lang: str) -> Path:
    site = paths.site_dir()
    site.mkdir(parents=True, exist_ok=True)
    entries = collect_latest()
    write_catalogue(entries, lang)
    banner = _banner(entries, lang)
    atomic_write(site / "index.html", lambda p: p.write_text(index_page(entries, lang, banner), encoding="utf-8"))
    atomic_write(site / "catalogo.html",
                  lambda p: p.write_text(catalogue_page(entries, lang, banner), encoding="utf-8"))
    return site / "index.html"


def index_page(entries: list[dict], lang: str, banner: str) -> str:
    """The toolkit: one card per theme's headline finding (after disclosure control) with
    impact, evidence and cost, sortable and filterable; the same facts as a table when
    JavaScript is off; one chart comparing every practice on a common scale."""
    practices = sorted((_practice(e, lang) for e in entries), key=lambda p: (p.title.lower(), p.theme))
    practices = [replace(p, order=i) for i, p in enumerate(practices)]
    body = (f"<h1>{t('site.title', lang)}</h1><p>{t('site.intro', lang)}</p>{_downloads(lang, '')}"
            f"{practices_section(practices, lang)}{chart_section(practices, lang)}")
    return _page(lang, t("site.title", lang), banner, body, wide=True)


def _practice(e: dict, lang: str) -> Practice:
    """A theme's entry as the toolkit's practice: headline finding suppressed with the
    theme's threshold, the failed last attempt if any, links to the report and files."""
    m, last = e["manifest"], e["last_attempt"]
    params = (m or last or {}).get("parameters", {})
    finding = suppress(e["findings"][0], threshold_of(e)) if m and e["findings"] else None
    links: list[tuple[str, str]] = []
    if m:
        base = f"../{e['theme']}/{LATEST}"
        links = [(t("site.report", lang), f"{base}/report.html"), ("JSON", f"{base}/findings.json"),
                 ("CSV", f"{base}/findings.csv")]
        if e.get("run_dir") is not None and (e["run_dir"] / "trasferibilita.xlsx").is_file():
            links.append((t("site.transfer_list", lang), f"{base}/trasferibilita.xlsx"))
    failed = last.get("run_id") if last and last.get("status") == "failed" else None
    return Practice(theme=e["theme"], title=params.get("title", {}).get(lang, e["theme"]), finding=finding,
                    ran=m is not None, higher_is_better=bool(params.get("higher_is_better", True)),
                    failed_run=failed, links=links, run_id=(m or {}).get("run_id"))


def _downloads(lang: str, extra: str, catalogue_link: bool = True) -> str:
    d = "../findings"
    cat = f"<a href='catalogo.html'>{t('site.catalogue', lang)}</a> · " if catalogue_link else ""
    return (f"<p>{cat}{t('site.downloads', lang)}: "
            f"<a href='{d}/catalogo.xlsx'>XLSX</a> · <a href='{d}/catalogo.csv'>CSV</a> · "
            f"<a href='{d}/catalogo.json'>JSON</a> · <a href='{d}/trasferibilita.xlsx'>"
            f"{t('site.transfer_pooled', lang)}</a>{extra}</p>")


def _interval(lo, hi, lang: str) -> str:
    if lo is None or hi is None:
        return "–"
    return f"{fmt_number(lo, lang, 2)} – {fmt_number(hi, lang, 2)}"


def catalogue_page(entries: list[dict], lang: str, banner: str) -> str:
    """Practices sorted by evidence: assessment, effect, intervals, padlocks, contexts, cost."""
    rows = []
    suppressed = t("site.suppressed", lang)
    for f in catalogue_findings(entries):
        locks = f.lucchetti or 0
        real = f.lucchetti_senza_limite_sintetico
        # a share of a baseline at or below zero (e.g. net migration) means nothing: not shown
        rel = (f" ({fmt_number(100 * f.effetto_relativo, lang, 1)}%)"
               if f.effetto_relativo is not None and (f.valore_base or 0) > 0 else "")
        cost = (fmt_number(f.costo_per_beneficiario_euro, lang, 0) if f.costo_per_beneficiario_euro is not None
                else suppressed if any(s.startswith("beneficiari") for s in f.soppressioni) else "–")
        contexts = "–" if f.k_siti is None else ", ".join(f.contesti_efficaci) or t("site.none", lang)
        base = f"../{f.tema}/{LATEST}"
        a = assessment(f)
        # similar comuni are a suggestion only where the practice works on secure enough evidence
        similar = ", ".join(f.comuni_simili[:SIMILAR_SHOWN]) if a in ("solida", "moderata") else ""
        similar = similar or "–"
        rows.append(
            f"<tr><td><a href='{base}/report.html'>{html.escape(f.pratica)}</a><br>"
            f"<small>{html.escape(f.esito_etichetta)} ({html.escape(f.unita_misura)})</small></td>"
            f"<td class='assess-{a}'>{html.escape(t(f'site.assessment.{a}', lang))}</td>"
            f"<td class='num'>{fmt_number(f.effetto, lang, 2)}{rel}</td>"
            f"<td class='num'>{_interval(f.ci_low, f.ci_high, lang)}</td>"
            f"<td class='num'>{_interval(f.ip_low, f.ip_high, lang)}</td>"
            f"<td><span class='locks' title='{locks}/5'>{'🔒' * locks}{'·' * (5 - locks)}</span> {locks}/5</td>"
            f"<td class='num'>{'–' if real is None else f'{real}/5'}</td>"
            f"<td class='num'>{f.livello_maryland or '–'}/5</td>"
            f"<td>{html.escape(contexts)}</td><td>{html.escape(similar)}</td><td class='num'>{cost}</td>"
            f"<td><a href='{base}/report.html'>{t('site.report', lang)}</a><br>"
            f"<a href='{base}/trasferibilita.xlsx'>{t('site.transfer_list', lang)}</a></td></tr>")
    cols = ("practice", "assessment", "effect", "ci", "pi", "padlocks", "padlocks_real", "maryland", "contexts",
            "similar", "cost", "links")
    head = "".join(f"<th>{t(f'site.col.{c}', lang)}</th>" for c in cols)
    note = f"<p class='note'>{t('site.synthetic_note', lang)}</p>" if banner else ""
    schema = t("site.schema", lang, version=SCHEMA_VERSION,
               link=f"<a href='../findings/schema_v{SCHEMA_VERSION}.json'>JSON Schema</a>")
    body = (f"<p class='nav'><a href='index.html'>← {t('report.back', lang)}</a></p>"
            f"<h1>{t('site.catalogue', lang)}</h1><p class='note'>{t('site.how_to_read', lang)}</p>{note}"
            f"{_downloads(lang, '', catalogue_link=False)}<table class='catalogue'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table><p class='note'>{schema}</p>")
    return _page(lang, t("site.catalogue", lang), banner, body, wide=True)


__all__ = ["assessment", "build_site", "catalogue_findings", "catalogue_page", "collect_latest",
           "evidence_key", "index_page", "write_catalogue"]
