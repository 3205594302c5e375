"""Evidence grade of a finding: Maryland level of the design and a padlock rating.

Two numbers a reader can check by hand:

- the Maryland Scientific Methods Scale level (1-5) says how strong the design is in
  principle (Sherman et al. 1997; What Works Centre for Local Economic Growth 2016);
- the padlock rating (0-5), modelled on the Education Endowment Foundation Teaching
  and Learning Toolkit, says how secure this particular finding is: it starts from the
  Maryland level and loses padlocks for each threat found by the diagnostics.

The rules are the declarative table `RULES` below (thresholds are the named constants);
`rules_table()` prints them in Italian or English for the methods section of a report.
A diagnostic given as None or NaN was not computed or does not apply: its rule is skipped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

import pandas as pd

from osservatorio.exceptions import InputError

Design = Literal[
    "rct", "staggered_did", "twfe_did", "did_few_treated", "synthetic_control",
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
PLACEBO_ALPHA = 0.05  # placebo (fake date / untreated units) p below this: failed
PLACEBO_PENALTY = 1
MIN_TREATED_CLUSTERS = 10  # fewer treated clusters: cluster-robust inference fragile
FEW_CLUSTERS_PENALTY = 1
MAX_CI_WIDTH_RATIO = 1.0  # CI half-width / |estimate| above this: sign uncertain
WIDE_INTERVAL_PENALTY = 1
MAX_I2 = 0.75  # pooled findings: I2 above this ("considerable" heterogeneity)
HETEROGENEITY_PENALTY = 1
SYNTHETIC_DATA_CAP = 0  # findings on synthetic (demo) data carry no evidence


@dataclass(frozen=True)
class Diagnostics:
    """The inputs the rules look at (None: not computed or not applicable)."""

    n_treated_clusters: int | None
    pretrend_p: float | None
    placebo_p: float | None
    ci_width_ratio: float | None
    synthetic_data: bool
    i2: float | None


@dataclass(frozen=True)
class PadlockRule:
    """One row of the rules table: a condition and how many padlocks it removes or caps."""

    code: str
    fires: Callable[[Diagnostics], bool]
    removed: int = 0  # padlocks removed when the rule fires
    cap: int | None = None  # or: maximum rating when the rule fires (applied last)
    text_en: str = ""
    text_it: str = ""


def _lt(x, threshold) -> bool:
    return _given(x) and x < threshold


def _gt(x, threshold) -> bool:
    return _given(x) and x > threshold


def _given(x) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def _it(x: float) -> str:
    return f"{x:g}".replace(".", ",")


RULES: tuple[PadlockRule, ...] = (
    PadlockRule(
        "pretrend_failed", lambda d: _lt(d.pretrend_p, PRETREND_ALPHA), removed=PRETREND_PENALTY,
        text_en=f"joint pre-trend test rejects parallel trends (p < {PRETREND_ALPHA:g})",
        text_it=f"il test congiunto sui trend pre-intervento rifiuta i trend paralleli "
                f"(p < {_it(PRETREND_ALPHA)})"),
    PadlockRule(
        "placebo_failed", lambda d: _lt(d.placebo_p, PLACEBO_ALPHA), removed=PLACEBO_PENALTY,
        text_en=f"placebo test (fake date or untreated units) finds an effect "
                f"(p < {PLACEBO_ALPHA:g})",
        text_it=f"il test placebo (data fittizia o unità non trattate) trova un effetto "
                f"(p < {_it(PLACEBO_ALPHA)})"),
    PadlockRule(
        "few_clusters", lambda d: _lt(d.n_treated_clusters, MIN_TREATED_CLUSTERS),
        removed=FEW_CLUSTERS_PENALTY,
        text_en=f"fewer than {MIN_TREATED_CLUSTERS} treated clusters (comuni)",
        text_it=f"meno di {MIN_TREATED_CLUSTERS} cluster (comuni) trattati"),
    PadlockRule(
        "wide_interval", lambda d: _gt(d.ci_width_ratio, MAX_CI_WIDTH_RATIO),
        removed=WIDE_INTERVAL_PENALTY,
        text_en="confidence-interval half-width larger than |estimate|"
                + ("" if MAX_CI_WIDTH_RATIO == 1 else f" x {MAX_CI_WIDTH_RATIO:g}"),
        text_it="semiampiezza dell'intervallo di confidenza maggiore di |stima|"
                + ("" if MAX_CI_WIDTH_RATIO == 1 else f" x {_it(MAX_CI_WIDTH_RATIO)}")),
    PadlockRule(
        "high_heterogeneity", lambda d: _gt(d.i2, MAX_I2), removed=HETEROGENEITY_PENALTY,
        text_en=f"pooled across sites with I2 above {MAX_I2:.0%}: the effect depends on context",
        text_it=f"aggregato tra siti con I2 oltre il {MAX_I2:.0%}: l'effetto dipende dal contesto"),
    PadlockRule(
        "synthetic_data", lambda d: bool(d.synthetic_data), cap=SYNTHETIC_DATA_CAP,
        text_en="estimated on synthetic (demo) data: no evidence about real comuni",
        text_it="stimato su dati sintetici (demo): nessuna evidenza sui comuni reali"),
)


@dataclass(frozen=True)
class PadlockReason:
    """A rule that fired: its stable code and the padlocks it removed."""

    code: str
    removed: int


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


def padlocks(
    maryland: int,
    n_treated_clusters: int | None = None,
    pretrend_p: float | None = None,
    placebo_p: float | None = None,
    ci_width_ratio: float | None = None,
    synthetic_data: bool = False,
    *,
    i2: float | None = None,
) -> PadlockRating:
    """Padlock rating (0-5): start from the Maryland level, apply `RULES` in order.

    Removals are summed and the rating floored at 0; caps apply last. A reason records
    the padlocks a rule actually removed (a removal that hits the floor or a cap that
    changes nothing records fewer, possibly 0). `ci_width_ratio` is CI half-width over
    |estimate| (see `ci_width_ratio()`); `i2` (share 0-1) only for pooled findings.
    """
    if isinstance(maryland, bool) or not isinstance(maryland, int) or not 1 <= maryland <= 5:
        raise InputError(f"maryland must be an integer level 1-5, got {maryland!r}")
    _check_range("pretrend_p", pretrend_p, 0, 1)
    _check_range("placebo_p", placebo_p, 0, 1)
    _check_range("i2", i2, 0, 1)
    _check_range("ci_width_ratio", ci_width_ratio, 0, math.inf)
    _check_range("n_treated_clusters", n_treated_clusters, 0, math.inf)
    diag = Diagnostics(n_treated_clusters, pretrend_p, placebo_p, ci_width_ratio,
                       synthetic_data, i2)
    rating, reasons = maryland, []
    for rule in (r for r in RULES if r.cap is None and r.fires(diag)):
        new = max(0, rating - rule.removed)
        reasons.append(PadlockReason(rule.code, rating - new))
        rating = new
    uncapped = rating
    for rule in (r for r in RULES if r.cap is not None and r.fires(diag)):
        new = min(rating, rule.cap)
        reasons.append(PadlockReason(rule.code, rating - new))
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
    floor = {"en": ("floor", "the rating never goes below 0; caps apply after removals", "min 0"),
             "it": ("floor", "il punteggio non scende sotto 0; i massimi si applicano dopo le "
                             "riduzioni", "minimo 0")}
    rows.append(floor[lang])
    return pd.DataFrame(rows, columns=cols[lang])


def rule_text(code: str, lang: Lang = "en") -> str:
    """The wording of a padlock rule (e.g. for a finding's reasons), from its code."""
    _check_lang(lang)
    for r in RULES:
        if r.code == code:
            return r.text_en if lang == "en" else r.text_it
    raise InputError(f"no padlock rule {code!r}; rules are {[r.code for r in RULES]}")


def _check_range(name: str, x, low: float, high: float) -> None:
    if _given(x) and not low <= x <= high:
        raise InputError(f"{name} must be in [{low}, {high}] or None, got {x!r}")


def _check_lang(lang) -> None:
    if lang not in get_args(Lang):
        raise InputError(f"lang must be one of {get_args(Lang)}, got {lang!r}")
