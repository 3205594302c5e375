"""Render a theme's report: one HTML page without code, headline finding first.

The executed stage notebooks are converted with nbconvert (inputs, prompts, markdown
cells and stderr removed: what a reviewer reads is what the notebooks displayed through
``osservatorio.publishing.show``, which escapes what users wrote), then wrapped in a page with
the synthetic-data banner, headline, methods, sources and provenance. The page template
autoescapes: only the HTML built here (notebook bodies, headline, methods) is marked safe.
"""

from __future__ import annotations

import functools
import html
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from osservatorio.data.reference import SOURCES
from osservatorio.synthesis.findings import Finding
from osservatorio.publishing.safe import escape_markdown
from osservatorio.publishing.text import fmt_number, fmt_p, t
from osservatorio.themes import STAGE_NOTEBOOKS, Theme

HIDDEN_TAGS = {"parameters", "injected-parameters", "hide", "remove"}


def _template_text(name: str) -> str:
    return resources.files("osservatorio").joinpath(f"templates/{name}").read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def exporter():
    """nbconvert's HTML exporter for report sections (its templates loaded once a process)."""
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name="basic", exclude_input=True, exclude_input_prompt=True,
                        exclude_output_prompt=True, embed_images=True, anchor_link_text="")


def notebook_body(path: Path) -> str:
    """HTML of a notebook's outputs only (no code, no markdown, no stderr)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code" or HIDDEN_TAGS & set(cell.metadata.get("tags", [])):
            continue
        # Only what the steps display explicitly (and errors) reaches the reviewer: no
        # stderr, no warnings, no echo of a cell's return value.
        cell.outputs = [o for o in cell.get("outputs", []) if o.get("output_type") in ("display_data", "error")]
        cells.append(cell)
    nb.cells = cells
    body, _ = exporter().from_notebook_node(nb)
    return body


def headline_markdown(finding: Finding | None, lang: str) -> str:
    """The headline finding in words (markdown; the theme's texts in it escaped)."""
    if finding is None:
        return t("report.no_finding", lang)
    f = finding.model_copy(update={k: escape_markdown(getattr(finding, k))
                                   for k in ("pratica", "esito_etichetta", "unita_misura")})
    # A share of the baseline only means something when the baseline is a positive level
    # (not for net migration or other signed outcomes).
    meaningful = f.effetto_relativo is not None and f.valore_base is not None and f.valore_base > 0
    rel = (fmt_number(100 * f.effetto_relativo, lang, 1) + "%") if meaningful else ("n.d." if lang == "it" else "n/a")
    lines = [
        t("headline.effect", lang, practice=f.pratica, outcome=f.esito_etichetta,
          effect=fmt_number(f.effetto, lang, 3), unit=f.unita_misura, level=int(round(100 * f.livello_confidenza)),
          lo=fmt_number(f.ci_low, lang, 3), hi=fmt_number(f.ci_high, lang, 3), p=fmt_p(f.p_value, lang),
          relative=rel, base=fmt_number(f.valore_base, lang, 3)),
        t(f"headline.verdict.{f.verdetto}", lang),
    ]
    if f.lucchetti is not None:
        locks = "🔒" * f.lucchetti + "·" * (5 - f.lucchetti)
        reasons = escape_markdown("; ".join(f.motivi_lucchetti))
        reasons = reasons[:1].upper() + reasons[1:]  # a new sentence after "... Maryland n/5)."
        lines.append(t("headline.evidence", lang, locks=locks, padlocks=f.lucchetti, maryland=f.livello_maryland,
                       reasons=reasons))
        if f.dati_sintetici and f.lucchetti_senza_limite_sintetico is not None:
            lines.append(t("headline.uncapped", lang, uncapped=f.lucchetti_senza_limite_sintetico))
    if f.valore_rottura_stato == "calcolato" and f.valore_rottura_mbar is not None:
        key = "headline.breakdown" if f.valore_rottura_mbar > 0 else "headline.breakdown_zero"
        lines.append(t(key, lang, k=fmt_number(f.valore_rottura_mbar, lang, 2)))
    return "\n\n".join(lines)


@functools.lru_cache(maxsize=1)
def _markdown():
    import mistune

    return mistune.create_markdown(escape=True)  # raw HTML in the text is shown, never run


def md_to_html(text: str) -> str:
    """Markdown (the labels' paragraphs, **bold**, _italic_, escaped values) to HTML.

    mistune is the renderer nbconvert uses for the notebooks' markdown, so a label renders
    the same in the report's stage sections and in its headline and methods."""
    return _markdown()(text).strip()


def load_finding(run_dir: Path) -> Finding | None:
    path = run_dir / "findings.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    records = data.get("findings", [])
    return Finding.model_validate(records[0]) if records else None


def methods_html(run_dir: Path, theme: Theme) -> str:
    """Methods and caveats written by the stages (run_dir/data/methods_<lang>.md), then the rules."""
    from osservatorio.synthesis.evidence import rules_table

    parts = []
    for stage in theme.stages:
        path = run_dir / "data" / f"methods_{stage}.md"
        if path.is_file():
            parts.append(md_to_html(path.read_text(encoding="utf-8")))
    finding = load_finding(run_dir)
    if finding and finding.avvertenze:
        items = "".join(f"<li>{html.escape(a)}</li>" for a in finding.avvertenze)
        parts.append(f"<h3>{t('report.caveats', theme.language)}</h3><ul>{items}</ul>")
    parts.append(rules_table(theme.language).to_html(index=False, border=0))
    return "\n".join(parts)


def provenance_rows(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    git = manifest.get("git", {})
    rows = [
        ("run_id", manifest.get("run_id")),
        ("status", manifest.get("status")),
        ("started_at", manifest.get("started_at")),
        ("git commit", f"{git.get('commit')}{' (modifiche locali)' if git.get('dirty') else ''}"),
        ("fingerprint", manifest.get("fingerprint")),
    ]
    for s in manifest.get("stages", []):
        rows.append((f"stage {s['stage']}", f"{s['status']} in {s['duration_s']} s"))
    for name, sha in manifest.get("inputs", {}).items():
        rows.append((f"sha256 {name}", sha))
    pk = manifest.get("packages", {})
    rows.append(("packages", ", ".join(f"{k} {v}" for k, v in pk.items() if v)))
    return [(k, str(v)) for k, v in rows]


def render_report(theme: Theme, run_dir: Path, manifest: dict[str, Any], bodies: dict[int, str] | None = None) -> Path:
    """Write ``run_dir/report.html`` from the executed notebooks and findings
    (``bodies``: sections already rendered with ``notebook_body``, by stage)."""
    lang = theme.language
    bodies = bodies or {}
    sections = []
    for stage in theme.stages:
        nb = run_dir / "notebooks" / STAGE_NOTEBOOKS[stage]
        if nb.is_file():
            sections.append({"anchor": f"stage-{stage}", "title": t(f"report.stage.{stage}", lang),
                             "body": Markup(bodies[stage] if stage in bodies else notebook_body(nb))})
    finding = load_finding(run_dir)
    head = md_to_html(headline_markdown(finding, lang))
    if manifest.get("status") == "failed":
        head = md_to_html(t("report.failed", lang, error=escape_markdown(manifest.get("error")))) + head
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    page = env.from_string(_template_text("report.html.j2")).render(
        lang=lang, title=getattr(theme.title, lang), question=getattr(theme.question, lang),
        question_label=t("report.question", lang), headline_label=t("report.headline", lang),
        headline_html=Markup(head), contents_label=t("report.contents", lang), sections=sections,
        methods_label=t("report.methods", lang), methods_html=Markup(methods_html(run_dir, theme)),
        sources_label=t("report.sources", lang), sources=SOURCES + _demo_source(theme),
        provenance_label=t("report.provenance", lang), provenance=provenance_rows(manifest),
        banner=t("banner.synthetic", lang, seed=theme.seed) if theme.data_source == "demo" else None,
        css=Markup(_template_text("style.css")), back=t("report.back", lang), index_href="../../site/index.html",
    )
    out = run_dir / "report.html"
    out.write_text(page, encoding="utf-8")
    return out


def _demo_source(theme: Theme) -> list[dict[str, str]]:
    if theme.data_source != "demo":
        return [{"nome": "Fonti dell'Osservatorio in data/raw", "licenza": "secondo i fornitori", "url": ""}]
    return [{"nome": "Dati dimostrativi SINTETICI generati da osservatorio.data.demo (non descrivono la realtà)",
             "licenza": "CC0", "url": ""}]
