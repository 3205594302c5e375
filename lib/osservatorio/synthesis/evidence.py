"""Evidence grade of a finding: Maryland level of the design and a padlock rating.

Two numbers a reader can check by hand:

- the Maryland Scientific Methods Scale level (1-5) says how strong the design is in
  principle (Sherman et al. 1997; What Works Centre for Local Economic Growth 2016);
- the padlock rating (0-5), modelled on the Education Endowment Foundation Teaching
  and Learning Toolkit, says how secure this particular finding is: it starts from the
  Maryland level and loses padlocks for each threat found by the diagnostics.

The rules are the declarative table `RULES` below (thresholds are the named constants);
`rules_table()` prints them in Italian or English for the methods section of a report.

Each diagnostic is in one of three states (`Check`): computed (a value, which the rule
tests), not applicable to the design (`not_applicable(reason)`: its rule is skipped) or
failed (`failed(reason)`, or a value given as None or NaN: tried and not computed). A
failed diagnostic counts as one showing the threat, so a test that could not be
computed never leaves a finding more padlocks than a test that failed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

import pandas as pd

from osservatorio.exceptions import InputError

Design = Literal[
    "rct", "staggered_did", "twfe_did", "did_few_treated", "synthetic_control", "synthetic_did",
    "event_study_its", "its", "cross_section", "correlation",
]
Lang = Literal["it", "en"]

# --- Maryland Scientific Methods Scale ---------------------------------------------

# design -> (level, English description, Italian description)
MARYLAND: dict[str, tuple[int, str, str]] = {
    "rct": (5, "randomised assignment of the practice",
            "assegnazione casuale della pratica"),
    "staggered_did": (
        4, "staggered adoption, group-time DiD with not-yet/never-treated comparisons",
        "adozione scaglionata, DiD per gruppo e periodo con confronti mai/non ancora trattati"),
    "twfe_did": (3, "before-after with comparison group (two-way fixed effects DiD)",
                 "prima-dopo con gruppo di confronto (DiD a effetti fissi doppi)"),
    "did_few_treated": (
        3, "before-after with comparison group, few treated units (wild bootstrap)",
        "prima-dopo con gruppo di confronto, poche unità trattate (wild bootstrap)"),
    "synthetic_control": (3, "before-after with a synthetic comparison unit",
                          "prima-dopo con unità di confronto sintetica"),
    "synthetic_did": (
        3, "before-after with a comparison weighted over units and periods (synthetic difference-in-differences)",
        "prima-dopo con un confronto pesato su unità e periodi (differenza nelle differenze sintetica)"),
    "event_study_its": (
        2, "before-after on the treated series only (event study without control series)",
        "prima-dopo sulla sola serie trattata (event study senza serie di controllo)"),
    "its": (2, "interrupted time series without control series",
            "serie storica interrotta senza serie di controllo"),
    "cross_section": (2, "cross-section with control variables",
                      "confronto trasversale con variabili di controllo"),
    "correlation": (1, "correlation at one point in time, no controls",
                    "correlazione in un solo momento, senza controlli"),
}
assert set(MARYLAND) == set(get_args(Design))


def maryland_level(design: Design, *, controls: bool = True) -> int:
    """Maryland SMS level (1-5) of a design name used by the project.

    It is the level the design can reach; threats found in a given application lower
    its padlocks, not this level. A cross-section without control variables
    (`controls=False`) is level 1 (plain correlation).
    """
    if design not in MARYLAND:
        raise InputError(f"design must be one of {tuple(MARYLAND)}, got {design!r}")
    if design == "cross_section" and not controls:
        return 1
    return MARYLAND[design][0]


def maryland_table(lang: Lang = "en") -> pd.DataFrame:
    """Design names, their Maryland level and description, for a report's methods."""
    _check_lang(lang)
    cols = {"en": ["design", "level", "description"], "it": ["disegno", "livello", "descrizione"]}
    rows = [(d, lvl, en if lang == "en" else it) for d, (lvl, en, it) in MARYLAND.items()]
    return pd.DataFrame(rows, columns=cols[lang])


# --- padlocks ----------------------------------------------------------------------

PRETREND_ALPHA = 0.05  # joint pre-trend test p below this: parallel trends rejected
PRETREND_PENALTY = 2
# Rambachan-Roth breakdown value (relative magnitudes, Mbar) at or above which a rejected
# pre-trend costs less: the effect stays significant even if, after adoption, trends
# diverge by as much as the largest divergence seen before it (Mbar = 1, their benchmark)
BREAKDOWN_ROBUST = 1.0
PRETREND_ROBUST_PENALTY = 1
PLACEBO_ALPHA = 0.05  # placebo (fake date / untreated units) p below this: failed
PLACEBO_PENALTY = 1
MIN_TREATED_CLUSTERS = 10  # fewer treated clusters: cluster-robust inference fragile
FEW_CLUSTERS_PENALTY = 1
MAX_CI_WIDTH_RATIO = 1.0  # CI half-width / |estimate| above this: sign uncertain
WIDE_INTERVAL_PENALTY = 1
MAX_I2 = 0.75  # pooled findings: I2 above this ("considerable" heterogeneity)
HETEROGENEITY_PENALTY = 1
SYNTHETIC_DATA_CAP = 0  # findings on synthetic (demo) data carry no evidence

Status = Literal["computed", "not_applicable", "failed"]


@dataclass(frozen=True)
class Check:
    """One diagnostic as the rules see it: computed (its ``value``), not applicable to the
    design (skipped), or failed (tried and not computed: its rule applies as if the
    diagnostic had shown the threat). ``reason`` says why for the last two."""

    status: Status
    value: Any = None
    reason: str | None = None


def computed(value) -> Check:
    """A diagnostic's value (a p-value, a count, a ratio, a share)."""
    return Check("computed", value)


def not_applicable(reason: str) -> Check:
    """A diagnostic the design does not have by construction (e.g. no leads in a
    synthetic control, no cohorts to pool): its rule is skipped."""
    return Check("not_applicable", None, reason)


def failed(reason: str) -> Check:
    """A diagnostic tried and not computed (an exception, too few periods, NaN): it
    counts as failed."""
    return Check("failed", None, reason)


NO_VALUE = "no value (None or NaN)"


def as_check(x) -> Check:
    """A Check as is; a number is computed; None or NaN is failed (a value that was
    expected and is missing or undefined is never read as 'does not apply')."""
    if isinstance(x, Check):
        if x.status not in get_args(Status):
            raise InputError(f"a diagnostic's status must be one of {get_args(Status)}, got {x.status!r}")
        if x.status == "computed" and not _given(x.value):
            return failed(NO_VALUE)
        return x
    return computed(x) if _given(x) else failed(NO_VALUE)


def check_from_record(record: Mapping | None, key: str = "p_value") -> Check:
    """The Check of a diagnostic recorded by stage 30 or 40 (``{"status", "reason",
    key: value}``); a missing record is failed (the diagnostic did not run)."""
    if record is None:
        return failed("not recorded")
    status = record.get("status", "computed")
    reason = record.get("reason") or ("no reason recorded" if status == "failed" else "")
    if status == "computed":
        return as_check(record.get(key))
    if status in ("failed", "not_applicable"):
        return Check(status, None, reason)
    raise InputError(f"a diagnostic's status must be one of {get_args(Status)}, got {status!r}")


@dataclass(frozen=True)
class Diagnostics:
    """The inputs the rules look at, each as a Check."""

    n_treated_clusters: Check
    pretrend_p: Check
    placebo_p: Check
    ci_width_ratio: Check
    synthetic_data: Check
    i2: Check
    breakdown: Check  # Rambachan-Roth breakdown Mbar of the event study (modifies pretrend_failed)


@dataclass(frozen=True)
class PadlockRule:
    """One row of the rules table: the diagnostic it reads, the value that shows a threat,
    and how many padlocks it removes or caps. It fires on a computed value showing the
    threat, and on a failed diagnostic (the same effect); never on one not applicable."""

    code: str
    reads: str  # the Diagnostics field
    threat: Callable[[Any], bool]
    removed: int = 0  # padlocks removed when the rule fires
    cap: int | None = None  # or: maximum rating when the rule fires (applied last)
    text_en: str = ""
    text_it: str = ""
    failed_en: str = ""  # "{reason}": the diagnostic could not be computed, and counts as showing the threat
    failed_it: str = ""
    # a condition on another diagnostic that must also hold for the rule to fire (e.g. the
    # breakdown value choosing between two penalties for a rejected pre-trend)
    given: tuple[str, Callable[[Check], bool]] | None = None

    def failure(self, d: Diagnostics) -> str | None:
        """The reason its diagnostic could not be computed, or None."""
        c = getattr(d, self.reads)
        return c.reason if c.status == "failed" else None

    def fires(self, d: Diagnostics) -> bool:
        c = getattr(d, self.reads)
        shown = c.status == "failed" or (c.status == "computed" and bool(self.threat(c.value)))
        return shown and (self.given is None or self.given[1](getattr(d, self.given[0])))


def robust_breakdown(c: Check) -> bool:
    """A breakdown value computed and at least ``BREAKDOWN_ROBUST``. One not computed, not
    applicable or failed never softens a penalty."""
    return c.status == "computed" and c.value >= BREAKDOWN_ROBUST


def _given(x) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def _it(x: float) -> str:
    return f"{x:g}".replace(".", ",")


RULES: tuple[PadlockRule, ...] = (
    PadlockRule(
        "pretrend_failed", "pretrend_p", lambda p: p < PRETREND_ALPHA, removed=PRETREND_PENALTY,
        text_en=f"joint pre-trend test rejects parallel trends (p < {PRETREND_ALPHA:g}) and the effect does not "
                f"survive post-adoption divergences as large as the largest pre-adoption one (breakdown value "
                f"Mbar below {BREAKDOWN_ROBUST:g}, or not computed)",
        text_it=f"il test congiunto sui trend pre-intervento rifiuta i trend paralleli (p < {_it(PRETREND_ALPHA)}) e "
                f"l'effetto non resiste a divergenze dopo l'adozione grandi quanto la massima osservata prima "
                f"(valore di rottura Mbar sotto {_it(BREAKDOWN_ROBUST)}, o non calcolato)",
        failed_en="pre-trend test could not be computed: {reason} — counts as failed",
        failed_it="test pre-trend non calcolabile: {reason} — conta come non superato",
        given=("breakdown", lambda c: not robust_breakdown(c))),
    PadlockRule(
        "pretrend_failed_robust", "pretrend_p", lambda p: p < PRETREND_ALPHA, removed=PRETREND_ROBUST_PENALTY,
        text_en=f"joint pre-trend test rejects parallel trends (p < {PRETREND_ALPHA:g}), but the effect stays "
                f"significant unless post-adoption divergences exceed {BREAKDOWN_ROBUST:g} times the largest "
                f"pre-adoption one (Rambachan-Roth breakdown value Mbar >= {BREAKDOWN_ROBUST:g})",
        text_it=f"il test congiunto sui trend pre-intervento rifiuta i trend paralleli (p < {_it(PRETREND_ALPHA)}), "
                f"ma l'effetto resta significativo a meno che le divergenze dopo l'adozione superino "
                f"{_it(BREAKDOWN_ROBUST)} volte la massima osservata prima (valore di rottura di Rambachan-Roth "
                f"Mbar >= {_it(BREAKDOWN_ROBUST)})",
        failed_en="pre-trend test could not be computed: {reason} — counts as failed",
        failed_it="test pre-trend non calcolabile: {reason} — conta come non superato",
        given=("breakdown", robust_breakdown)),
    PadlockRule(
        "placebo_failed", "placebo_p", lambda p: p < PLACEBO_ALPHA, removed=PLACEBO_PENALTY,
        text_en=f"placebo test (fake date or untreated units) finds an effect "
                f"(p < {PLACEBO_ALPHA:g})",
        text_it=f"il test placebo (data fittizia o unità non trattate) trova un effetto "
                f"(p < {_it(PLACEBO_ALPHA)})",
        failed_en="placebo test could not be computed: {reason} — counts as failed",
        failed_it="test placebo non calcolabile: {reason} — conta come non superato"),
    PadlockRule(
        "few_clusters", "n_treated_clusters", lambda n: n < MIN_TREATED_CLUSTERS,
        removed=FEW_CLUSTERS_PENALTY,
        text_en=f"fewer than {MIN_TREATED_CLUSTERS} treated clusters (comuni)",
        text_it=f"meno di {MIN_TREATED_CLUSTERS} cluster (comuni) trattati",
        failed_en="number of treated clusters unknown: {reason} — counts as too few",
        failed_it="numero di cluster trattati non disponibile: {reason} — conta come troppo pochi"),
    PadlockRule(
        "wide_interval", "ci_width_ratio", lambda r: r > MAX_CI_WIDTH_RATIO,
        removed=WIDE_INTERVAL_PENALTY,
        text_en="confidence-interval half-width larger than |estimate|"
                + ("" if MAX_CI_WIDTH_RATIO == 1 else f" x {MAX_CI_WIDTH_RATIO:g}"),
        text_it="semiampiezza dell'intervallo di confidenza maggiore di |stima|"
                + ("" if MAX_CI_WIDTH_RATIO == 1 else f" x {_it(MAX_CI_WIDTH_RATIO)}"),
        failed_en="confidence interval could not be computed: {reason} — counts as too wide",
        failed_it="intervallo di confidenza non calcolabile: {reason} — conta come troppo ampio"),
    PadlockRule(
        "high_heterogeneity", "i2", lambda i2: i2 > MAX_I2, removed=HETEROGENEITY_PENALTY,
        text_en=f"pooled across sites with I2 above {MAX_I2:.0%}: the effect depends on context",
        text_it=f"aggregato tra siti con I2 oltre il {MAX_I2:.0%}: l'effetto dipende dal contesto",
        failed_en="heterogeneity across cohorts (I2) could not be computed: {reason} — counts as too high",
        failed_it="eterogeneità tra coorti (I2) non calcolabile: {reason} — conta come eccessiva"),
    PadlockRule(
        "synthetic_data", "synthetic_data", bool, cap=SYNTHETIC_DATA_CAP,
        text_en="estimated on synthetic (demo) data: no evidence about real comuni",
        text_it="stimato su dati sintetici (demo): nessuna evidenza sui comuni reali",
        failed_en="origin of the data unknown: {reason} — counts as synthetic",
        failed_it="origine dei dati sconosciuta: {reason} — conta come dati sintetici"),
)
assert {r.reads for r in RULES} | {r.given[0] for r in RULES if r.given} == {f.name for f in fields(Diagnostics)}


@dataclass(frozen=True)
class PadlockReason:
    """A rule that fired: its stable code, the padlocks it removed and, when it fired
    because its diagnostic could not be computed, why (``failed``)."""

    code: str
    removed: int
    failed: str | None = None


@dataclass(frozen=True)
class PadlockRating:
    """Security of a finding: 0-5 padlocks, the Maryland start and the reasons."""

    padlocks: int
    maryland: int
    uncapped: int  # after removals, before caps (what real data would have shown)
    reasons: tuple[PadlockReason, ...]

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]


Diagnostic = Check | float | int | None


def padlocks(
    maryland: int,
    *,
    n_treated_clusters: Diagnostic,
    pretrend_p: Diagnostic,
    placebo_p: Diagnostic,
    ci_width_ratio: Diagnostic,
    i2: Diagnostic,
    breakdown: Diagnostic,
    synthetic_data: bool = False,
) -> PadlockRating:
    """Padlock rating (0-5): start from the Maryland level, apply `RULES` in order.

    Every diagnostic must be given, as a number (computed), ``not_applicable(reason)``
    (its rule is skipped) or ``failed(reason)``; None or NaN count as failed. A failed
    diagnostic has the effect of one showing the threat (``pretrend_p`` failed: -2, as a
    rejected pre-trend test), so a finding never gains padlocks because a test could not
    be computed. Removals are summed and the rating floored at 0; caps apply last. A
    reason records the padlocks a rule actually removed (a removal that hits the floor or
    a cap that changes nothing records fewer, possibly 0). `ci_width_ratio` is CI
    half-width over |estimate| (see `ci_width_ratio()`); `i2` (share 0-1) applies to
    findings pooled across cohorts. ``breakdown`` is the Rambachan-Roth breakdown value
    (relative magnitudes, Mbar; ``inf`` when no bound searched overturns the effect) of
    the event study: it only chooses how much a rejected pre-trend costs, and one not
    computed or not applicable never softens it.
    """
    if isinstance(maryland, bool) or not isinstance(maryland, int) or not 1 <= maryland <= 5:
        raise InputError(f"maryland must be an integer level 1-5, got {maryland!r}")
    diag = Diagnostics(as_check(n_treated_clusters), as_check(pretrend_p), as_check(placebo_p),
                       as_check(ci_width_ratio), computed(bool(synthetic_data)), as_check(i2),
                       as_check(breakdown))
    _check_range("pretrend_p", diag.pretrend_p, 0, 1)
    _check_range("placebo_p", diag.placebo_p, 0, 1)
    _check_range("i2", diag.i2, 0, 1)
    _check_range("ci_width_ratio", diag.ci_width_ratio, 0, math.inf)
    _check_range("n_treated_clusters", diag.n_treated_clusters, 0, math.inf)
    _check_range("breakdown", diag.breakdown, 0, math.inf)
    rating, reasons = maryland, []
    for rule in (r for r in RULES if r.cap is None and r.fires(diag)):
        new = max(0, rating - rule.removed)
        reasons.append(PadlockReason(rule.code, rating - new, rule.failure(diag)))
        rating = new
    uncapped = rating
    for rule in (r for r in RULES if r.cap is not None and r.fires(diag)):
        new = min(rating, rule.cap)
        reasons.append(PadlockReason(rule.code, rating - new, rule.failure(diag)))
        rating = new
    return PadlockRating(rating, maryland, uncapped, tuple(reasons))


def ci_width_ratio(estimate: float, ci_low: float, ci_high: float) -> float:
    """Half-width of the confidence interval over |estimate| (inf when estimate is 0)."""
    half = (ci_high - ci_low) / 2
    return math.inf if estimate == 0 else half / abs(estimate)


def rules_table(lang: Lang = "en") -> pd.DataFrame:
    """The padlock rules as a table (code, rule, effect) for a report's methods section."""
    _check_lang(lang)
    cols = {"en": ["code", "rule", "effect"], "it": ["codice", "regola", "effetto"]}
    start = {"en": ("start", "start from the Maryland level of the design (1-5)", "= level"),
             "it": ("start", "si parte dal livello Maryland del disegno (1-5)", "= livello")}
    rows = [start[lang]]
    for r in RULES:
        if r.cap is None:
            effect = f"-{r.removed}"
        else:
            effect = f"{'max' if lang == 'en' else 'massimo'} {r.cap}"
        rows.append((r.code, r.text_en if lang == "en" else r.text_it, effect))
    rows += STATE_ROWS[lang]
    floor = {"en": ("floor", "the rating never goes below 0; caps apply after removals", "min 0"),
             "it": ("floor", "il punteggio non scende sotto 0; i massimi si applicano dopo le "
                             "riduzioni", "minimo 0")}
    rows.append(floor[lang])
    return pd.DataFrame(rows, columns=cols[lang])


STATE_ROWS = {
    "en": [("failed", "a diagnostic that was tried and could not be computed (an error, too few periods, an "
                      "undefined value) counts as showing the threat: its rule applies", "= rule"),
           ("not_applicable", "a diagnostic the design does not have (no leads in a synthetic control, no "
                              "cohorts to pool in a design without cohort effects) is skipped", "0")],
    "it": [("failed", "una diagnostica tentata e non calcolabile (un errore, troppo pochi periodi, un valore "
                      "indefinito) conta come non superata: la sua regola si applica", "= regola"),
           ("not_applicable", "una diagnostica che il disegno non prevede (nessun periodo anticipatorio nel "
                              "controllo sintetico, nessuna coorte da sintetizzare in un disegno senza effetti "
                              "per coorte) non si applica", "0")],
}


def _rule(code: str) -> PadlockRule:
    for r in RULES:
        if r.code == code:
            return r
    raise InputError(f"no padlock rule {code!r}; rules are {[r.code for r in RULES]}")


def rule_text(code: str, lang: Lang = "en") -> str:
    """The wording of a padlock rule (e.g. for a finding's reasons), from its code."""
    _check_lang(lang)
    r = _rule(code)
    return r.text_en if lang == "en" else r.text_it


def reason_text(reason: PadlockReason, lang: Lang = "en") -> str:
    """Why a rule fired, in words: the threat found, or that its diagnostic could not be
    computed, why, and that it counts as failed."""
    _check_lang(lang)
    r = _rule(reason.code)
    if reason.failed is None:
        return r.text_en if lang == "en" else r.text_it
    return (r.failed_en if lang == "en" else r.failed_it).format(reason=reason.failed)


def _check_range(name: str, c: Check, low: float, high: float) -> None:
    if c.status == "computed" and not low <= c.value <= high:
        raise InputError(f"{name} must be in [{low}, {high}], not_applicable(reason) or failed(reason), "
                         f"got {c.value!r}")


def _check_lang(lang) -> None:
    if lang not in get_args(Lang):
        raise InputError(f"lang must be one of {get_args(Lang)}, got {lang!r}")
