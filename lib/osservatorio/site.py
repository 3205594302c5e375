"""The reviewers' site: ``outputs/site/index.html`` and the findings catalogue.

Built from the latest successful run of each theme (``outputs/<theme>/latest``); a theme
whose most recent run failed is listed with that failure. The catalogue pools every
theme's findings into ``outputs/findings/`` as JSON, CSV and XLSX (a sheet per theme and
a codebook), after disclosure control.
"""

from __future__ import annotations

import html
import json
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from . import paths
from .findings import SCHEMA_VERSION, Finding, suppress, to_frame
from .report import _template_text, headline_markdown, md_to_html
from .runner import LATEST, TMP_PREFIX
from .text import t


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
        latest = d / LATEST
        manifest = json.loads((latest / "manifest.json").read_text(encoding="utf-8")) if (latest / "manifest.json").is_file() else None
        findings = []
        if (latest / "findings.json").is_file():
            findings = [Finding.model_validate(r) for r in
                        json.loads((latest / "findings.json").read_text(encoding="utf-8"))["findings"]]
        entries.append({"theme": d.name, "manifest": manifest, "findings": findings,
                        "last_attempt": _latest_attempt(d)})
    return entries


def write_catalogue(entries: list[dict]) -> dict[str, Path]:
    """Pool findings into outputs/findings (JSON, CSV, XLSX with codebook), suppressed."""
    out_dir = paths.findings_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    findings = []
    for e in entries:
        threshold = (e["manifest"] or {}).get("parameters", {}).get("disclosure_threshold", 5)
        findings += [suppress(f, threshold) for f in e["findings"]]
    findings.sort(key=lambda f: (-(f.lucchetti_senza_limite_sintetico or 0), f.tema))
    frame = to_frame(findings)
    written = {}
    payload = {"schema_version": SCHEMA_VERSION, "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "findings": [f.model_dump() for f in findings]}
    written["json"] = _atomic_write(out_dir / "catalogo.json",
                                    lambda p: p.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8"))
    written["csv"] = _atomic_write(out_dir / "catalogo.csv", lambda p: frame.to_csv(p, index=False))
    written["xlsx"] = _atomic_write(out_dir / "catalogo.xlsx", lambda p: _write_xlsx(p, frame))
    return written


def _atomic_write(path: Path, write) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    tmp.replace(path)
    return path


CODEBOOK = {
    "tema": "identificativo del tema / theme id", "effetto": "effetto stimato nell'unità dell'esito / estimated effect in the outcome's unit",
    "effetto_relativo": "effetto / valore di partenza dei trattati / effect over the treated baseline",
    "ci_low": "estremo inferiore dell'intervallo di confidenza / lower confidence bound",
    "ci_high": "estremo superiore / upper confidence bound", "p_value": "valore p (metodo in metodo_inferenza) / p-value",
    "n_trattati": "unità trattate / treated units", "n_confronto": "unità di confronto / comparison units",
    "lucchetti": "solidità 0-5 (EEF) / security rating 0-5 padlocks",
    "lucchetti_senza_limite_sintetico": "lucchetti prima del limite per dati sintetici / padlocks before the synthetic-data cap",
    "livello_maryland": "Maryland Scientific Methods Scale 1-5", "verdetto": "efficace | dannosa | non_dimostrata",
    "pretrend_p": "p del test congiunto sui pre-trend / joint pre-trend test p-value",
    "placebo_p": "p del placebo / placebo p-value", "soppressioni": "celle soppresse per riservatezza / cells suppressed for disclosure control",
    "dati_sintetici": "vero se i dati sono sintetici / true when the data are synthetic",
}


def _write_xlsx(path: Path, frame: pd.DataFrame) -> None:
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        frame.to_excel(xw, sheet_name="catalogo", index=False)
        for theme, part in frame.groupby("tema"):
            readable = part.T.reset_index()
            readable.columns = ["campo", *[f"risultato {i + 1}" for i in range(len(part))]]
            readable.to_excel(xw, sheet_name=str(theme)[:31], index=False)
        pd.DataFrame([{"colonna": c, "significato": CODEBOOK.get(c, "")} for c in frame.columns]).to_excel(
            xw, sheet_name="codebook", index=False)


def build_site(lang: str = "it") -> Path:
    """Write outputs/site/index.html and the catalogue; return the index path."""
    site = paths.site_dir()
    site.mkdir(parents=True, exist_ok=True)
    entries = collect_latest()
    write_catalogue(entries)
    rows = []
    synthetic = False
    for e in entries:
        m, last = e["manifest"], e["last_attempt"]
        theme_lang = (m or {}).get("parameters", {}).get("language", lang)
        title = (m or last or {}).get("parameters", {}).get("title", {}).get(lang, e["theme"])
        synthetic |= bool((m or {}).get("synthetic_data"))
        finding = e["findings"][0] if e["findings"] else None
        cell = md_to_html(headline_markdown(finding, theme_lang)) if m else t("site.never_ran", lang)
        if last and last.get("status") == "failed":
            cell = f"<p class='verdict-dannosa'>{html.escape(t('site.status_failed', lang, run=last.get('run_id')))}</p>" + cell
        links = ""
        if m:
            base = f"../{e['theme']}/{LATEST}"
            links = (f"<a href='{base}/report.html'>{t('site.report', lang)}</a><br>"
                     f"<a href='{base}/findings.json'>JSON</a> · <a href='{base}/findings.csv'>CSV</a>")
        rows.append(f"<tr><td><strong>{html.escape(title)}</strong><br><code>{e['theme']}</code>"
                    f"<br><small>{t('site.updated', lang)}: {(m or {}).get('run_id', '–')}</small></td>"
                    f"<td>{cell}</td><td>{links}</td></tr>")
    banner = f"<div class='banner'>{html.escape(t('banner.synthetic', lang, seed='20261125'))}</div>" if synthetic else ""
    body = f"""<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{t('site.title', lang)}</title>
<style>{_template_text('style.css')}</style></head><body>{banner}<main>
<h1>{t('site.title', lang)}</h1><p>{t('site.intro', lang)}</p>
<p><a href="catalogo.html">{t('site.catalogue', lang)}</a> · <a href="../findings/catalogo.xlsx">XLSX</a> ·
<a href="../findings/catalogo.csv">CSV</a> · <a href="../findings/catalogo.json">JSON</a></p>
<table class="index"><thead><tr><th>{t('site.theme', lang)}</th><th>{t('site.finding', lang)}</th><th>{t('site.files', lang)}</th></tr></thead>
<tbody>{''.join(rows)}</tbody></table></main></body></html>"""
    index = site / "index.html"
    _atomic_write(index, lambda p: p.write_text(body, encoding="utf-8"))
    _atomic_write(site / "catalogo.html", lambda p: p.write_text(catalogue_page(entries, lang, banner), encoding="utf-8"))
    return index


def catalogue_page(entries: list[dict], lang: str, banner: str) -> str:
    """Practices sorted by evidence, with effect, interval, padlocks, contexts, cost."""
    rows = []
    findings = []
    for e in entries:
        threshold = (e["manifest"] or {}).get("parameters", {}).get("disclosure_threshold", 5)
        findings += [suppress(f, threshold) for f in e["findings"]]
    findings.sort(key=lambda f: (-(f.lucchetti_senza_limite_sintetico or 0), -(f.lucchetti or 0)))
    from .text import fmt_number

    for f in findings:
        locks = "🔒" * (f.lucchetti or 0) + "·" * (5 - (f.lucchetti or 0))
        cost = fmt_number(f.costo_per_beneficiario_euro, lang, 0) if f.costo_per_beneficiario_euro else "–"
        rows.append(
            f"<tr><td><a href='../{f.tema}/{LATEST}/report.html'>{html.escape(f.pratica)}</a><br><small>{html.escape(f.esito_etichetta)}</small></td>"
            f"<td class='verdict-{f.verdetto}'>{f.verdetto.replace('_', ' ')}</td>"
            f"<td>{fmt_number(f.effetto, lang, 3)} {html.escape(f.unita_misura)}</td>"
            f"<td>[{fmt_number(f.ci_low, lang, 3)}; {fmt_number(f.ci_high, lang, 3)}]</td>"
            f"<td class='locks'>{locks}</td><td>{f.lucchetti_senza_limite_sintetico}</td><td>{f.livello_maryland}</td>"
            f"<td>{html.escape(', '.join(f.contesti))}</td><td>{cost}</td></tr>")
    head = ("<tr><th>Pratica / esito</th><th>Verdetto</th><th>Effetto</th><th>IC 95%</th><th>Lucchetti</th>"
            "<th>Lucchetti (dati reali)</th><th>Maryland</th><th>Contesti</th><th>€ per beneficiario</th></tr>"
            if lang == "it" else
            "<tr><th>Practice / outcome</th><th>Verdict</th><th>Effect</th><th>95% CI</th><th>Padlocks</th>"
            "<th>Padlocks (real data)</th><th>Maryland</th><th>Contexts</th><th>€ per beneficiary</th></tr>")
    return f"""<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{t('site.catalogue', lang)}</title>
<style>{_template_text('style.css')}</style></head><body>{banner}<main><p class="nav"><a href="index.html">← {t('report.back', lang)}</a></p>
<h1>{t('site.catalogue', lang)}</h1><table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table></main></body></html>"""
