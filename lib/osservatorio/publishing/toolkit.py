"""The site index as a toolkit: impact, evidence and cost of every practice side by side.

Modelled on the Education Endowment Foundation's Teaching and Learning Toolkit. Each
theme's headline finding (after disclosure control) becomes a ``Practice``; the index shows

- one card per practice: effect as a % of the baseline with its interval, the padlocks and
  the cost band drawn as inline SVG with a text alternative, the verdict, euro per
  beneficiary per year, where it was tested, links to the report and files;
- the same facts as a plain HTML table, which is what a browser without JavaScript shows;
- a small inline script (no library, no network) that shows the cards, sorts them by
  impact, evidence or cost and filters them by outcome area, region and padlocks,
  announcing how many are shown;
- one static SVG chart comparing every practice on a common scale: effect as a % of the
  baseline, oriented so that right is always better, marker filled by the padlocks.

Fields added to the finding record in schema 1.3 (``fascia_costo``,
``costo_per_beneficiario_anno_euro``, ``area_esito``, ``regioni``) are read with
``getattr`` so that older records render "n.d.".
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field

from osservatorio.publishing.text import fmt_number, labels, t
from osservatorio.synthesis.findings import Finding

MAX_LOCKS = 5
MAX_BANDS = 5
REGIONS_SHOWN = 4  # a card lists this many regions at most; more are folded (the table lists all)
MINUS = "\u2212"
INK, SOFT, LINE = "#1d2329", "#4d5761", "#1f5fa8"  # text, secondary text, intervals
STRIPE, EMPTY = "#f3f5f7", "#848e98"  # the chart's alternate rows; euro signs beyond the cost band


# --- the practice behind a card ------------------------------------------------------


@dataclass(frozen=True)
class Practice:
    """One theme's headline finding with what the toolkit shows of it (all optional)."""

    theme: str
    title: str
    finding: Finding | None  # after disclosure control; None: no successful run or no finding
    ran: bool  # a successful run exists
    higher_is_better: bool = True
    failed_run: str | None = None  # id of a failed last attempt
    links: list[tuple[str, str]] = field(default_factory=list)  # (text, relative href)
    run_id: str | None = None  # the run shown
    order: int = 0

    def get(self, name: str):
        return getattr(self.finding, name, None) if self.finding is not None else None

    @property
    def direction(self) -> int:
        return 1 if self.higher_is_better else -1

    @property
    def impact(self) -> float | None:
        """Effect as a % of the treated units' baseline, signed as measured (None when the
        baseline is not a positive level: a share of it would mean nothing)."""
        rel, base = self.get("effetto_relativo"), self.get("valore_base")
        if rel is None or base is None or not base > 0 or not math.isfinite(rel):
            return None
        return 100.0 * rel

    @property
    def impact_interval(self) -> tuple[float, float] | None:
        """The confidence interval of the effect as a % of the baseline."""
        lo, hi, base = self.get("ci_low"), self.get("ci_high"), self.get("valore_base")
        if self.impact is None or lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
            return None
        return 100.0 * lo / base, 100.0 * hi / base

    @property
    def gain(self) -> float | None:
        """``impact`` signed so that positive is better (the chart's and the sort's scale)."""
        return None if self.impact is None else self.direction * self.impact

    @property
    def gain_interval(self) -> tuple[float, float] | None:
        iv = self.impact_interval
        if iv is None:
            return None
        a, b = self.direction * iv[0], self.direction * iv[1]
        return min(a, b), max(a, b)

    @property
    def locks(self) -> int | None:
        return self.get("lucchetti")

    @property
    def cost_suppressed(self) -> bool:
        """Beneficiaries below the disclosure threshold: no euro per beneficiary is shown."""
        return any(s.startswith("beneficiari") for s in (self.get("soppressioni") or []))

    @property
    def euro_year(self) -> float | None:
        return None if self.cost_suppressed else self.get("costo_per_beneficiario_anno_euro")

    @property
    def euro_total(self) -> float | None:
        return None if self.cost_suppressed else self.get("costo_per_beneficiario_euro")

    @property
    def band(self) -> int | None:
        """The cost band (1 cheapest - 5); derived from the beneficiaries, so suppressed with them."""
        band = None if self.cost_suppressed else self.get("fascia_costo")
        return int(band) if band is not None and 1 <= band <= MAX_BANDS else None

    @property
    def regions(self) -> list[str]:
        return sorted(set(self.get("regioni") or []))

    @property
    def area(self) -> str | None:
        return self.get("area_esito") or None


# --- small formatters ----------------------------------------------------------------


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _nd(lang: str) -> str:
    return fmt_number(None, lang)


def fmt_pct(x: float | None, lang: str, digits: int = 1) -> str:
    """A signed percentage with a true minus sign: "+12,3%", "−8,7%" (n.d. when missing)."""
    if x is None:
        return _nd(lang)
    s = fmt_number(abs(x), lang, digits)
    sign = "" if s.strip("0,.") == "" else ("+" if x > 0 else MINUS)
    return f"{sign}{s}%"


def fmt_signed(x: float | None, lang: str, digits: int) -> str:
    """A number with a true minus sign (−0,175), as the percentages."""
    return fmt_number(x, lang, digits).replace("-", MINUS, 1)


def _digits(x: float | None) -> int:
    return 3 if x is None or abs(x) < 1 else 2 if abs(x) < 100 else 0


def fmt_euro(x: float | None, lang: str) -> str:
    if x is None:
        return _nd(lang)
    n = fmt_number(x, lang, 0)
    return f"{n} €" if lang == "it" else f"€{n}"


def area_label(code: str | None, lang: str) -> str:
    """The outcome area in words (``site.area.<code>``), the code itself when unlabelled."""
    if not code:
        return _nd(lang)
    key = f"site.area.{code}"
    return t(key, lang) if key in labels() else code.replace("_", " ")


def locks_text(n: int | None, lang: str) -> str:
    if n is None:
        return t("site.tk.not_rated", lang)
    return t("site.tk.locks_one" if n == 1 else "site.tk.locks", lang, n=n)


def band_text(band: int | None, lang: str) -> str:
    if band is None:
        return _nd(lang)
    return t("site.tk.band", lang, n=band, label=t(f"site.tk.band.{band}", lang))


# --- icons ---------------------------------------------------------------------------

_LOCK = ("<g transform='translate({x} 0)'><path d='M5.5 9V6.2a4.5 4.5 0 0 1 9 0V9' fill='none' "
         "stroke='{stroke}' stroke-width='2'/><rect x='3' y='9' width='14' height='10' rx='2' "
         "fill='{fill}' stroke='{stroke}' stroke-width='1.6'/></g>")


def padlocks_svg(n: int | None, lang: str) -> str:
    """Five padlocks, ``n`` filled, as an image whose text alternative is "n lucchetti su 5"."""
    label = _e(locks_text(n, lang))
    filled = n or 0
    stroke = "#1d2329" if n is not None else "#5f6a74"
    icons = "".join(_LOCK.format(x=22 * i, stroke=stroke, fill="#1d2329" if i < filled else "#fff")
                    for i in range(MAX_LOCKS))
    return (f"<svg class='icon-locks' role='img' aria-label='{label}' viewBox='0 0 108 20' width='108' "
            f"height='20'><title>{label}</title>{icons}</svg>")


def band_svg(band: int | None, lang: str) -> str:
    """Five euro signs, the first ``band`` dark (cost band 1 = cheapest), as an image with text."""
    label = _e(band_text(band, lang))
    signs = "".join(f"<text x='{8 + 15 * i}' y='16' text-anchor='middle' "
                    f"fill='{INK if band and i < band else EMPTY}'>€</text>" for i in range(MAX_BANDS))
    return (f"<svg class='icon-band' role='img' aria-label='{label}' viewBox='0 0 76 20' width='76' height='20' "
            f"font-size='16' font-weight='700' font-family='Arial, sans-serif'><title>{label}</title>{signs}</svg>")


# --- cards and table -----------------------------------------------------------------


def _data_attrs(p: Practice) -> str:
    """What the script sorts and filters on (empty when missing)."""
    def num(x):
        return "" if x is None else repr(round(float(x), 6))
    cost = p.euro_year if p.euro_year is not None else p.euro_total
    return (f"data-theme='{_e(p.theme)}' data-order='{p.order}' data-gain='{num(p.gain)}' "
            f"data-locks='{num(p.locks)}' data-locks-real='{num(p.get('lucchetti_senza_limite_sintetico'))}' "
            f"data-band='{num(p.band)}' data-euro='{num(cost)}' data-area='{_e(p.area or '')}' "
            f"data-regions='{_e(json.dumps(p.regions, ensure_ascii=False))}'")


def _impact_html(p: Practice, lang: str) -> str:
    f = p.finding
    level = int(round(100 * (p.get("livello_confidenza") or 0.95)))
    iv = p.impact_interval
    ci = (f"{t('site.tk.ci', lang, level=level)}: {fmt_pct(iv[0], lang)} – {fmt_pct(iv[1], lang)}"
          if iv else "")
    key = "site.tk.of_baseline" if p.impact is not None else "site.tk.no_share"
    base = t(key, lang, base=fmt_signed(p.get("valore_base"), lang, _digits(p.get("valore_base"))),
             unit=_e(f.unita_misura))
    better = t("site.tk.better_higher" if p.higher_is_better else "site.tk.better_lower", lang)
    return (f"<p class='tk-impact'><span class='tk-big'>{fmt_pct(p.impact, lang)}</span> {base}"
            f"{'<br>' + ci if ci else ''}<br><small>{better}</small></p>")


def _effect_text(p: Practice, lang: str) -> str:
    eff, lo, hi = p.get("effetto"), p.get("ci_low"), p.get("ci_high")
    d = _digits(eff)
    level = int(round(100 * (p.get("livello_confidenza") or 0.95)))
    text = f"{fmt_signed(eff, lang, d)} {_e(p.finding.unita_misura)}"
    if lo is not None and hi is not None:
        text += f" ({t('site.tk.ci', lang, level=level)}: {fmt_signed(lo, lang, d)} – {fmt_signed(hi, lang, d)})"
    return text


def _evidence_html(p: Practice, lang: str) -> str:
    visible = "–" if p.locks is None else f"{p.locks}/5"
    html_ = f"{padlocks_svg(p.locks, lang)} <span aria-hidden='true'>{visible}</span>"
    real = p.get("lucchetti_senza_limite_sintetico")
    if p.get("dati_sintetici") and real is not None:
        html_ += f"<br><small>{t('site.tk.real_data', lang, n=real)}</small>"
    return html_


def _verdict_html(p: Practice, lang: str) -> str:
    v = p.get("verdetto")
    return f"<span class='verdict-{_e(v)}'>{_e(t(f'site.tk.verdict.{v}', lang))}</span>" if v else _nd(lang)


def _cost_html(p: Practice, lang: str, sep: str = " ") -> str:
    if p.band is None:
        return t("site.suppressed", lang) if p.cost_suppressed else _nd(lang)
    return f"{band_svg(p.band, lang)}{sep}<span aria-hidden='true'>{_e(t(f'site.tk.band.{p.band}', lang))}</span>"


def _euro_html(p: Practice, lang: str) -> str:
    if p.cost_suppressed:
        return t("site.suppressed", lang)
    if p.euro_year is not None:
        return fmt_euro(p.euro_year, lang)
    if p.euro_total is not None:
        return f"{fmt_euro(p.euro_total, lang)} <small>({t('site.tk.whole_pilot', lang)})</small>"
    return _nd(lang)


def _regions_html(p: Practice, lang: str, shown: int = REGIONS_SHOWN) -> str:
    """The regions, folded under "n regioni" when there are more than ``shown``."""
    if not p.regions:
        return _nd(lang)
    names = _e(", ".join(p.regions))
    if len(p.regions) <= shown:
        return names
    return f"<details><summary>{_e(t('site.tk.regions_n', lang, n=len(p.regions)))}</summary>{names}</details>"


def _status_html(p: Practice, lang: str) -> str:
    parts = []
    if p.failed_run is not None:
        parts.append(f"<p class='tk-failed'>{_e(t('site.status_failed', lang, run=p.failed_run))}</p>")
    if not p.ran:
        parts.append(f"<p>{_e(t('site.never_ran', lang))}</p>")
    elif p.finding is None:
        parts.append(f"<p>{_e(t('report.no_finding', lang))}</p>")
    return "".join(parts)


def _links_html(p: Practice) -> str:
    return " · ".join(f"<a href='{_e(href)}'>{_e(text)}</a>" for text, href in p.links)


def card(p: Practice, lang: str) -> str:
    """One practice as a card (an ``<li>`` of the card list)."""
    head = f"<h3 id='tk-card-{_e(p.theme)}'>{_e(p.title)}</h3>"
    synth = (f" <span class='tk-tag'>{_e(t('site.tk.synthetic', lang))}</span>" if p.get("dati_sintetici") else "")
    if p.finding is None:
        body = _status_html(p, lang)
    else:
        f = p.finding
        regions = _regions_html(p, lang)
        body = (f"{_status_html(p, lang)}<p class='tk-practice'>{_e(f.pratica)}{synth}<br>"
                f"<small>{_e(f.esito_etichetta)}</small></p>{_impact_html(p, lang)}"
                f"<dl class='tk-facts'>"
                f"<div><dt>{t('site.tk.effect', lang)}</dt><dd>{_effect_text(p, lang)}</dd></div>"
                f"<div><dt>{t('site.tk.evidence', lang)}</dt><dd>{_evidence_html(p, lang)}</dd></div>"
                f"<div><dt>{t('site.tk.verdict', lang)}</dt><dd>{_verdict_html(p, lang)}</dd></div>"
                f"<div><dt>{t('site.tk.cost', lang)}</dt><dd>{_cost_html(p, lang)}</dd></div>"
                f"<div><dt>{t('site.tk.euro_year', lang)}</dt><dd>{_euro_html(p, lang)}</dd></div>"
                f"<div><dt>{t('site.tk.area', lang)}</dt><dd>{_e(area_label(p.area, lang))}</dd></div>"
                f"<div><dt>{t('site.tk.regions', lang)}</dt><dd>{regions}</dd></div></dl>")
    foot = [_links_html(p)] if p.links else []
    if p.run_id:
        foot.append(f"<small>{t('site.updated', lang)}: {_e(p.run_id)}</small>")
    links = f"<p class='tk-links'>{'<br>'.join(foot)}</p>" if foot else ""
    return (f"<li class='tk-card' {_data_attrs(p)}><article aria-labelledby='tk-card-{_e(p.theme)}'>"
            f"{head}{body}{links}</article></li>")


TABLE_COLUMNS = ("practice", "impact", "effect", "evidence", "verdict", "cost", "euro_year", "area", "regions",
                 "files")


def table_row(p: Practice, lang: str) -> str:
    """One practice as a row of the table (what a browser without JavaScript shows)."""
    f = p.finding
    first = f"<th scope='row'><strong>{_e(p.title)}</strong>"
    if f is not None:
        synth = f" <span class='tk-tag'>{_e(t('site.tk.synthetic', lang))}</span>" if f.dati_sintetici else ""
        first += f"<br>{_e(f.pratica)}{synth}<br><small>{_e(f.esito_etichetta)}</small>"
    first += f"{_status_html(p, lang)}</th>"
    if f is None:
        cells = "<td>–</td>" * (len(TABLE_COLUMNS) - 2)
    else:
        iv = p.impact_interval
        level = int(round(100 * (f.livello_confidenza or 0.95)))
        impact = f"<strong class='tk-nowrap'>{fmt_pct(p.impact, lang)}</strong>"
        if iv:
            impact += (f"<br><small>{t('site.tk.ci', lang, level=level)}: {fmt_pct(iv[0], lang)} – "
                       f"{fmt_pct(iv[1], lang)}</small>")
        better = t("site.tk.better_higher" if p.higher_is_better else "site.tk.better_lower", lang)
        impact += f"<br><small>{better}</small>"
        cells = (f"<td>{impact}</td><td>{_effect_text(p, lang)}</td>"
                 f"<td class='tk-nowrap'>{_evidence_html(p, lang)}</td><td>{_verdict_html(p, lang)}</td>"
                 f"<td>{_cost_html(p, lang, '<br>')}</td><td class='num'>{_euro_html(p, lang)}</td>"
                 f"<td>{_e(area_label(p.area, lang))}</td><td>{_regions_html(p, lang)}</td>")
    return f"<tr {_data_attrs(p)}>{first}{cells}<td>{_links_html(p) or '–'}</td></tr>"


def _options(values: list[tuple[str, str]], all_text: str) -> str:
    return f"<option value=''>{_e(all_text)}</option>" + "".join(
        f"<option value='{_e(v)}'>{_e(text)}</option>" for v, text in values)


def controls(practices: list[Practice], lang: str) -> str:
    """The sort and filter controls (hidden until the script runs: without it they do nothing)."""
    areas = sorted({p.area for p in practices if p.area}, key=lambda a: area_label(a, lang).lower())
    regions = sorted({r for p in practices for r in p.regions})
    sorts = "".join(f"<option value='{k}'>{_e(t(f'site.tk.sort.{k}', lang))}</option>"
                    for k in ("title", "impact", "evidence", "cost"))
    locks = [(str(n), t("site.tk.min_lock_one" if n == 1 else "site.tk.min_locks", lang, n=n))
             for n in range(1, MAX_LOCKS + 1)]

    def field_(key: str, label: str, options: str) -> str:
        return (f"<div class='tk-field'><label for='tk-{key}'>{_e(label)}</label>"
                f"<select id='tk-{key}'>{options}</select></div>")

    return (f"<div id='tk-controls' class='tk-controls' hidden>"
            f"{field_('sort', t('site.tk.sort', lang), sorts)}"
            f"{field_('area', t('site.tk.area', lang), _options([(a, area_label(a, lang)) for a in areas], t('site.tk.all', lang)))}"
            f"{field_('region', t('site.tk.region', lang), _options([(r, r) for r in regions], t('site.tk.all', lang)))}"
            f"{field_('evidence', t('site.tk.evidence', lang), _options(locks, t('site.tk.any', lang)))}"
            f"<div class='tk-buttons'><button type='button' id='tk-reset'>{_e(t('site.tk.reset', lang))}</button>"
            f"<button type='button' id='tk-view' aria-pressed='false'>{_e(t('site.tk.table_view', lang))}</button>"
            f"</div></div>")


def practices_section(practices: list[Practice], lang: str) -> str:
    """Heading, controls, the announced count, the cards and the table, and the script."""
    n = len(practices)
    template = t("site.tk.count", lang, shown="{shown}", total="{total}")
    count = (f"<p id='tk-count' class='tk-count' role='status' aria-live='polite' data-template='{_e(template)}'>"
             f"{_e(template.format(shown=n, total=n))}</p>")
    head = "".join(f"<th scope='col'>{_e(t(f'site.tk.col.{c}', lang))}</th>" for c in TABLE_COLUMNS)
    cards = "".join(card(p, lang) for p in practices)
    rows = "".join(table_row(p, lang) for p in practices)
    return (f"<section id='toolkit' aria-labelledby='tk-practices'><h2 id='tk-practices'>"
            f"{_e(t('site.tk.practices', lang))}</h2><p class='note'>{t('site.tk.how_to_read', lang)}</p>"
            f"{controls(practices, lang)}{count}"
            f"<ul id='tk-cards' class='tk-cards' hidden>{cards}</ul>"
            f"<div id='tk-table' class='tk-table-wrap' role='region' aria-labelledby='tk-caption' tabindex='0'>"
            f"<table class='tk-table'><caption id='tk-caption'>{_e(t('site.tk.table_caption', lang))}</caption>"
            f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>"
            f"<script>{SCRIPT}</script></section>")


# Sorting and filtering, for cards and table rows alike; missing values sort last, ties
# keep the page's order. ES5, no library, nothing fetched.
SCRIPT = """
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var cards = $("tk-cards"), table = $("tk-table"), count = $("tk-count"), view = $("tk-view");
  if (!cards || !table) { return; }
  var rows = table.querySelector("tbody");
  var sortBy = $("tk-sort"), area = $("tk-area"), region = $("tk-region"), evidence = $("tk-evidence");
  function num(el, key) {
    var v = el.getAttribute("data-" + key);
    return v === null || v === "" ? null : parseFloat(v);
  }
  function by(keys) {
    return function (a, b) {
      for (var i = 0; i < keys.length; i++) {
        var x = num(a, keys[i][0]), y = num(b, keys[i][0]);
        if (x === y) { continue; }
        if (x === null) { return 1; }
        if (y === null) { return -1; }
        return (x - y) * keys[i][1];
      }
      return num(a, "order") - num(b, "order");
    };
  }
  var orders = {
    title: by([]),
    impact: by([["gain", -1]]),
    evidence: by([["locks", -1], ["locks-real", -1], ["gain", -1]]),
    cost: by([["band", 1], ["euro", 1]])
  };
  function shown(el) {
    if (area.value && el.getAttribute("data-area") !== area.value) { return false; }
    if (region.value && JSON.parse(el.getAttribute("data-regions") || "[]").indexOf(region.value) < 0) {
      return false;
    }
    var locks = num(el, "locks");
    return !(evidence.value && (locks === null || locks < parseFloat(evidence.value)));
  }
  function apply() {
    var n = 0, total = 0, order = orders[sortBy.value] || orders.title;
    [cards, rows].forEach(function (box, k) {
      Array.prototype.slice.call(box.children).sort(order).forEach(function (el) {
        var ok = shown(el);
        el.hidden = !ok;
        box.appendChild(el);
        if (k === 0) { total += 1; n += ok ? 1 : 0; }
      });
    });
    count.textContent = count.getAttribute("data-template").replace("{shown}", n).replace("{total}", total);
  }
  [sortBy, area, region, evidence].forEach(function (s) { s.addEventListener("change", apply); });
  $("tk-reset").addEventListener("click", function () {
    area.value = ""; region.value = ""; evidence.value = ""; apply();
  });
  view.addEventListener("click", function () {
    var asTable = view.getAttribute("aria-pressed") !== "true";
    view.setAttribute("aria-pressed", asTable ? "true" : "false");
    cards.hidden = asTable;
    table.hidden = !asTable;
  });
  $("tk-controls").hidden = false;
  cards.hidden = false;
  table.hidden = true;
  apply();
}());
"""


# --- the comparison chart ------------------------------------------------------------

# Horizontal positions are percentages of the chart's width (no viewBox), so the text
# keeps its size from a phone to a wide screen; vertical positions are pixels.
PLOT_X0, PLOT_X1 = 6.0, 94.0  # the scale, in % of the width
TITLE_CHARS = 46  # a practice's title is wrapped at this many characters, on two lines at most
LINE_H = 19
TEXT_X = 10  # px: where titles and values start
TOP = 8
AXIS_H = 70


def nice_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Round tick values covering [lo, hi] (steps of 1, 2, 2.5 or 5 times a power of ten)."""
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))
    start, end = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
    if end <= start:
        end = start + step
    return [round(start + i * step, 10) for i in range(int(round((end - start) / step)) + 1)]


def chart_domain(practices: list[Practice]) -> tuple[list[float], float]:
    """Ticks of the common scale (zero included) and the limit beyond which intervals are
    cut: every point estimate is inside; an interval may reach to 3 times the largest
    estimate (at least 100%), drawn with an arrow where it is cut."""
    gains = [p.gain for p in practices if p.gain is not None]
    if not gains:
        return [], 0.0
    limit = max(100.0, 3 * max(abs(g) for g in gains))
    ends = [min(max(v, -limit), limit) for p in practices if p.gain_interval for v in p.gain_interval]
    values = [0.0, *gains, *ends]
    return nice_ticks(min(values), max(values)), limit


def scale_x(v: float, ticks: list[float]) -> float:
    """Where ``v`` falls, in % of the chart's width."""
    lo, hi = ticks[0], ticks[-1]
    return PLOT_X0 + (v - lo) / (hi - lo) * (PLOT_X1 - PLOT_X0)


def marker_class(locks: int | None) -> str:
    """Evidence as the marker's fill: open (0-1 padlocks), half (2-3), full (4-5); a
    diamond when not rated."""
    return "nd" if locks is None else "low" if locks <= 1 else "mid" if locks <= 3 else "high"


def marker_shape(kind: str) -> str:
    """The marker drawn around (0, 0)."""
    if kind == "nd":
        return f"<path d='M0 -8l8 8l-8 8l-8 -8z' fill='#fff' stroke='{INK}' stroke-width='2'/>"
    shape = f"<circle r='7' fill='{INK if kind == 'high' else '#fff'}' stroke='{INK}' stroke-width='2'/>"
    if kind == "mid":
        shape += f"<path d='M0 -7a7 7 0 0 0 0 14z' fill='{INK}'/>"
    return shape


def _wrap(text: str, width: int = TITLE_CHARS, lines: int = 2) -> list[str]:
    out: list[str] = []
    for word in text.split():
        if out and len(out[-1]) + 1 + len(word) <= width:
            out[-1] += " " + word
        else:
            out.append(word)
    if len(out) > lines:
        out = out[:lines]
        out[-1] = out[-1][: width - 1].rstrip() + "…"
    return out


def _pct_attr(x: float) -> str:
    return f"{x:.3f}%"


def chart_svg(practices: list[Practice], lang: str) -> str:
    """The comparison chart: one row per practice that ran, effect as % of the baseline
    (oriented: right is better) with its interval, the measured values written above it."""
    rows = [p for p in practices if p.finding is not None]
    ticks, limit = chart_domain(rows)
    if not ticks:
        return f"<p>{_e(t('site.tk.chart.empty', lang))}</p>"

    def sx(v: float) -> str:
        return _pct_attr(scale_x(v, ticks))

    parts, desc, y0 = [], [], TOP
    for i, p in enumerate(rows):
        title = _wrap(p.title)
        better = t("site.tk.better_higher" if p.higher_is_better else "site.tk.better_lower", lang)
        height = 12 + LINE_H * (len(title) + 1) + 26
        ym = y0 + height - 16
        if i % 2 == 0:
            parts.append(f"<rect x='0' y='{y0}' width='100%' height='{height}' fill='{STRIPE}'/>")
        if p.gain is not None:
            parts.append(f"<line class='tk-zero' x1='{sx(0)}' x2='{sx(0)}' y1='{ym - 12}' y2='{ym + 12}' "
                         f"stroke='{INK}' stroke-dasharray='3 3'/>")
        for k, line in enumerate(title):
            parts.append(f"<text x='{TEXT_X}' y='{y0 + 6 + LINE_H * (k + 1)}' font-weight='700' "
                         f"fill='{INK}'>{_e(line)}</text>")
        y_value = y0 + 6 + LINE_H * (len(title) + 1)
        iv, civ = p.gain_interval, p.impact_interval
        if p.gain is None:
            parts.append(f"<text x='{TEXT_X}' y='{y_value}' fill='{SOFT}' font-size='13'>"
                         f"{_e(t('site.tk.chart.no_baseline', lang))}</text>")
            desc.append(t("site.tk.chart.desc_none", lang, title=p.title))
            y0 += height
            continue
        value = fmt_pct(p.impact, lang)
        if civ is not None:
            value += f" [{fmt_pct(civ[0], lang)}; {fmt_pct(civ[1], lang)}]"
        short = t("site.tk.chart.higher" if p.higher_is_better else "site.tk.chart.lower", lang)
        parts.append(f"<text x='{TEXT_X}' y='{y_value}' font-size='13' fill='{INK}'>{_e(value)}"
                     f"<tspan fill='{SOFT}'> · {_e(short)}</tspan></text>")
        if iv is not None:
            a, b = max(iv[0], -limit), min(iv[1], limit)
            parts.append(f"<line x1='{sx(a)}' x2='{sx(b)}' y1='{ym}' y2='{ym}' stroke='{LINE}' stroke-width='3'/>")
            for v, cut, side in ((a, iv[0] < -limit, -1), (b, iv[1] > limit, 1)):
                end = (f"<path d='M0 -6l{6 * side} 6l{-6 * side} 6z' fill='{LINE}'/>" if cut else
                       f"<line y1='-6' y2='6' stroke='{LINE}' stroke-width='2'/>")
                parts.append(f"<svg x='{sx(v)}' y='{ym}' width='1' height='1' overflow='visible'>{end}</svg>")
        kind = marker_class(p.locks)
        parts.append(f"<svg class='tk-marker tk-marker-{kind}' data-theme='{_e(p.theme)}' data-value='{p.gain:.6g}' "
                     f"x='{sx(p.gain)}' y='{ym}' width='1' height='1' overflow='visible'>{marker_shape(kind)}</svg>")
        desc.append(t("site.tk.chart.desc_row", lang, title=p.title, impact=fmt_pct(p.impact, lang),
                      lo=fmt_pct(civ[0], lang) if civ else _nd(lang), hi=fmt_pct(civ[1], lang) if civ else _nd(lang),
                      better=better, evidence=locks_text(p.locks, lang)))
        y0 += height
    bottom = y0 + 4
    axis = [f"<line x1='{_pct_attr(PLOT_X0)}' x2='{_pct_attr(PLOT_X1)}' y1='{bottom}' y2='{bottom}' stroke='{INK}'/>"]
    for v in ticks:
        x = sx(v)
        axis.append(f"<g class='tk-tick' data-value='{v:g}' data-x='{x}'><line x1='{x}' x2='{x}' y1='{bottom}' "
                    f"y2='{bottom + 5}' stroke='{INK}'/><text x='{x}' y='{bottom + 20}' text-anchor='middle' "
                    f"font-size='12' fill='{INK}'>{_e(fmt_pct(v, lang, 0 if float(v).is_integer() else 1))}</text></g>")
    axis.append(f"<text x='{_pct_attr(PLOT_X0)}' y='{bottom + 40}' font-size='13' font-weight='700' fill='{INK}'>"
                f"{_e(t('site.tk.chart.worse', lang))}</text>"
                f"<text x='{_pct_attr(PLOT_X1)}' y='{bottom + 40}' font-size='13' font-weight='700' fill='{INK}' "
                f"text-anchor='end'>{_e(t('site.tk.chart.better', lang))}</text>"
                f"<text x='50%' y='{bottom + 60}' font-size='13' fill='{INK}' text-anchor='middle'>"
                f"{_e(t('site.tk.chart.axis', lang))}</text>")
    height = bottom + AXIS_H
    return (f"<svg class='tk-chart-svg' role='img' aria-labelledby='tk-chart-title tk-chart-desc' width='100%' "
            f"height='{height}' font-family='Arial, sans-serif' font-size='14'>"
            f"<title id='tk-chart-title'>{_e(t('site.tk.chart.title', lang))}</title>"
            f"<desc id='tk-chart-desc'>{_e(' '.join(desc))}</desc>{''.join(parts)}{''.join(axis)}</svg>")


def legend(lang: str) -> str:
    items = "".join(f"<li><svg aria-hidden='true' focusable='false' width='20' height='20' viewBox='-10 -10 20 20'>"
                    f"{marker_shape(kind)}</svg> {_e(t(f'site.tk.legend.{kind}', lang))}</li>"
                    for kind in ("low", "mid", "high", "nd"))
    return f"<ul class='tk-legend'>{items}</ul>"


def chart_section(practices: list[Practice], lang: str) -> str:
    """The chart in a figure with its caption and legend."""
    return (f"<section aria-labelledby='tk-chart-h'><h2 id='tk-chart-h'>{_e(t('site.tk.chart.title', lang))}</h2>"
            f"<figure class='tk-chart'>{chart_svg(practices, lang)}"
            f"<figcaption>{_e(t('site.tk.chart.caption', lang))}{legend(lang)}</figcaption></figure></section>")


__all__ = ["Practice", "card", "chart_domain", "chart_section", "chart_svg", "fmt_pct", "marker_class",
           "nice_ticks", "padlocks_svg", "practices_section", "scale_x", "table_row"]
