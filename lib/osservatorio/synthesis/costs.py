"""Cost and value of a practice: cost-effectiveness with the effect's uncertainty, the
acceptability curve, a cost rating, and payment-by-results contracts.

The effect enters as what the evaluation estimated: an estimate with its standard error
and degrees of freedom (a t sampling distribution, as the designs report their
intervals), or draws from the estimator's own sampling distribution (a bootstrap). Costs
are euro per unit of the effect's base (for example per comune-year), known or with their
own standard error.

- ``fieller_interval``: euro per unit of outcome gained, C / E, with Fieller's interval
  (Fieller 1954; Willan & O'Brien 1996 for cost-effectiveness): the set of ratios R with
  (C - R E)^2 <= t^2 Var(C - R E). It is bounded only when the effect's own interval
  excludes zero; otherwise the ratio is *not defined* (the set holds zero effect, hence
  ratios of any size and sign), never a huge or negative number.
- ``acceptability_curve``: for each amount lambda the probability that the practice costs
  less than lambda per unit gained, P(lambda E - C > 0) (net monetary benefit; van Hout
  et al. 1994), from draws.
- ``cost_rating``: five bands of euro per beneficiary per year (``COST_BANDS``, one rule
  table, as the padlock rules).
- ``evaluate_contract``: a payment-by-results contract (social impact bond) against the
  distribution of the effect: probability that the threshold is reached, the payer's
  expected payment and its interval, the investors' IRR and probability of losing
  capital, and value for money against the payer buying the service directly.

Gains are effects signed so that positive is good (``direction``: +1 when a higher
outcome is better, -1 when lower is better, as a fall in the NEET rate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from osservatorio import distributions as dist
from osservatorio.exceptions import InputError

DRAWS: Final = 20_000


def _critical(level: float, df: float | None) -> float:
    if not 0 < level < 1:
        raise InputError(f"level must be between 0 and 1, got {level}")
    q = 0.5 + level / 2
    return float(dist.norm.ppf(q) if df is None or math.isinf(df) else dist.t.ppf(q, df))


@dataclass(frozen=True)
class RatioInterval:
    """Euro per unit of outcome gained: the point ratio and its interval, or not defined.

    ``defined`` is False when the effect's interval at ``level`` includes zero (or the
    point gain is not positive): ``point``, ``low`` and ``high`` are then None and
    ``reason`` says why in words a report can use."""

    point: float | None
    low: float | None
    high: float | None
    level: float
    defined: bool
    reason: str | None = None

    def covers(self, value: float) -> bool:
        """Whether ``value`` lies in the interval (an undefined ratio covers nothing)."""
        return self.defined and self.low <= value <= self.high


def fieller_interval(cost: float, gain: float, se_gain: float, *, se_cost: float = 0.0, cov: float = 0.0,
                     level: float = 0.95, df: float | None = None, critical: float | None = None) -> RatioInterval:
    """Fieller's interval for cost / gain.

    The ratio R is in the set when (C - R G)^2 <= t^2 (Var C - 2 R Cov + R^2 Var G), a
    quadratic a R^2 - 2 b R + c <= 0 with a = G^2 - t^2 Var G, b = C G - t^2 Cov,
    c = C^2 - t^2 Var C. With a > 0 (the gain's interval excludes zero) the set is the
    interval between the roots; with a <= 0 it is unbounded and the ratio is not defined.
    A gain whose interval lies below zero (the practice does harm) is not defined either:
    euro per unit *gained* has no meaning there.
    """
    for name, value in (("cost", cost), ("gain", gain), ("se_gain", se_gain), ("se_cost", se_cost), ("cov", cov)):
        if not np.isfinite(value):
            raise InputError(f"{name} must be a finite number, got {value}")
    if se_gain < 0 or se_cost < 0:
        raise InputError("standard errors must be >= 0")
    t = _critical(level, df) if critical is None else float(critical)  # critical: the estimator's own
    a = gain**2 - t**2 * se_gain**2
    if gain <= 0 or a <= 0:
        reason = ("the effect's interval includes zero: the cost per unit gained is not defined"
                  if a <= 0 else "the effect is unfavourable: there is no gain to pay for")
        return RatioInterval(None, None, None, level, False, reason)
    b = cost * gain - t**2 * cov
    c = cost**2 - t**2 * se_cost**2
    disc = b**2 - a * c
    root = math.sqrt(max(disc, 0.0))
    low, high = (b - root) / a, (b + root) / a
    return RatioInterval(cost / gain, low, high, level, True)


def gain_interval(estimate: float, ci_low: float, ci_high: float, direction: float) -> tuple[float, float, float]:
    """The effect and its interval as a gain (``direction`` +1 when a higher outcome is
    better, -1 when lower is): positive is good."""
    low, high = sorted((direction * ci_low, direction * ci_high))
    return direction * estimate, low, high


def cost_effectiveness(cost_per_unit_year: float, estimate: float, ci_low: float, ci_high: float,
                       se: float | None, direction: float, level: float = 0.95) -> RatioInterval:
    """Euro per unit of outcome gained, per treated unit and year, with Fieller's interval
    at the estimator's own critical value (the half-width of its interval over its
    standard error; the normal one when it gives no standard error): with a known cost,
    the set of cost / g over the gains g in the effect's interval."""
    gain, low, high = gain_interval(estimate, ci_low, ci_high, direction)
    if not high > low:
        raise InputError(f"the effect's interval is empty: {ci_low} to {ci_high}")
    critical = (high - low) / (2 * se) if se else _critical(level, None)
    return fieller_interval(cost_per_unit_year, gain, (high - low) / (2 * critical), level=level, critical=critical)


def effect_draws(estimate: float, se: float, df: float | None = None, n: int = DRAWS,
                 seed: int | np.random.Generator = 0) -> np.ndarray:
    """Draws from the effect's sampling distribution: estimate + se x t(df) (normal
    without df), the distribution the designs' intervals are built on."""
    if se < 0 or not np.isfinite(se) or not np.isfinite(estimate):
        raise InputError(f"effect and standard error must be finite, se >= 0; got {estimate}, {se}")
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n) if df is None or math.isinf(df) else rng.standard_t(df, n)
    return estimate + se * z


def ratio_interval_from_draws(cost: float | np.ndarray, gains: np.ndarray, level: float = 0.95) -> RatioInterval:
    """The cost-per-gain interval read off the acceptability curve: the amounts at which
    P(lambda G - C > 0) crosses (1 - level)/2 and (1 + level)/2. Not defined when the
    share of draws with a positive gain is below (1 + level)/2 (the gain's own interval
    then reaches zero)."""
    gains = np.asarray(gains, dtype=float)
    costs = np.broadcast_to(np.asarray(cost, dtype=float), gains.shape)
    if gains.size < 100:
        raise InputError(f"too few draws ({gains.size}): at least 100")
    tail = (1 - level) / 2
    if np.mean(gains > 0) < 1 - tail:
        return RatioInterval(None, None, None, level, False,
                             "the effect's interval includes zero: the cost per unit gained is not defined")
    ratios = np.where(gains > 0, costs / np.where(gains > 0, gains, 1.0), np.inf)
    # P(ratio < lambda) is the acceptability curve at lambda (for positive costs)
    low, high = np.quantile(ratios, [tail, 1 - tail], method="inverted_cdf")  # no interpolation with inf
    point = float(np.mean(costs)) / float(np.mean(gains))
    return RatioInterval(point, float(low), float(high), level, True)


def acceptability_curve(cost: float | np.ndarray, gains: np.ndarray, amounts: np.ndarray) -> np.ndarray:
    """For each amount lambda (euro per unit of outcome), the probability that the practice
    costs less than lambda per unit gained: the share of draws with lambda G - C > 0.
    ``cost`` is a number or one cost draw per gain draw."""
    gains = np.asarray(gains, dtype=float)
    costs = np.broadcast_to(np.asarray(cost, dtype=float), gains.shape)
    amounts = np.asarray(amounts, dtype=float)
    return (np.multiply.outer(amounts, gains) - costs > 0).mean(axis=1)


# --- what the pilots cost ---------------------------------------------------------------


@dataclass(frozen=True)
class CostSummary:
    """The money of a theme's pilots. ``per_unit_year``: the mean over pilots of each
    pilot's yearly cost (its total over the years it has costs); ``beneficiary_years``:
    the people reached, summed over pilots and years; ``by_source``: euro per funding
    source. Without yearly costs (no ``costi_pilota``) only the totals are known."""

    total: float | None
    by_source: dict[str, float]
    per_unit_year: float | None
    pilots: int
    years: int | None  # distinct pilot-years with costs
    beneficiaries: float | None  # pilot.beneficiari summed
    beneficiary_years: float | None

    @property
    def per_beneficiary(self) -> float | None:
        return self.total / self.beneficiaries if self.total is not None and self.beneficiaries else None

    @property
    def per_beneficiary_year(self) -> float | None:
        return self.total / self.beneficiary_years if self.total is not None and self.beneficiary_years else None


def cost_summary(pilot, costi=None) -> CostSummary:
    """Totals of ``pilot`` (one theme's rows) and, when given, of its rows of
    ``costi_pilota`` (which then define the cost: by year, item and source)."""
    ben = float(pilot["beneficiari"].sum()) if pilot["beneficiari"].notna().any() else None
    if costi is None or len(costi) == 0:
        total = float(pilot["costo_euro"].sum()) if pilot["costo_euro"].notna().any() else None
        return CostSummary(total, {}, None, len(pilot), None, ben, None)
    costi = costi[costi["id_pilota"].isin(set(pilot["id_pilota"]))]
    yearly = costi.groupby(["id_pilota", "anno"])["importo_euro"].sum()
    per_pilot = yearly.groupby(level="id_pilota").mean()
    by_source = {str(k): float(v) for k, v in costi.groupby("fonte")["importo_euro"].sum().sort_values(
        ascending=False).items()}
    people = costi.dropna(subset=["beneficiari"]).drop_duplicates(["id_pilota", "anno"])["beneficiari"]
    return CostSummary(float(costi["importo_euro"].sum()), by_source, float(per_pilot.mean()) if len(per_pilot) else None,
                       int(per_pilot.size), int(yearly.size), ben, float(people.sum()) if len(people) else None)


# --- cost rating -----------------------------------------------------------------------

# Euro per beneficiary per year: the upper bound of each band (the last has none). Bands
# in the spirit of the EEF toolkit's cost rating (per pupil per year), rescaled to local
# social services: 1 "molto basso" is the price of a few hours of a social worker's time.
COST_BANDS: Final = [
    (1, "molto basso", "very low", 100.0),
    (2, "basso", "low", 500.0),
    (3, "moderato", "moderate", 1_500.0),
    (4, "alto", "high", 5_000.0),
    (5, "molto alto", "very high", math.inf),
]


@dataclass(frozen=True)
class CostRating:
    band: int
    label_it: str
    label_en: str
    euro_per_beneficiary_year: float


def cost_rating(total_cost: float, beneficiaries: float, years: float) -> CostRating:
    """The band of ``total_cost / beneficiaries / years`` in ``COST_BANDS`` (a value on a
    bound falls in the lower band)."""
    if not (beneficiaries > 0 and years > 0) or not np.isfinite(total_cost) or total_cost < 0:
        raise InputError(f"cost rating needs cost >= 0, beneficiaries > 0 and years > 0; got "
                         f"{total_cost}, {beneficiaries}, {years}")
    per = total_cost / beneficiaries / years
    for band, it, en, upper in COST_BANDS:
        if per <= upper:
            return CostRating(band, it, en, per)
    raise AssertionError("unreachable: the last band is unbounded")


# --- payment by results ------------------------------------------------------------


def irr(cashflows: np.ndarray | list[float]) -> float:
    """Internal rate of return of yearly cash flows (first at time 0): the rate r > -1 at
    which their net present value is zero, found by bisection on the bracket where the
    NPV changes sign. NaN when it has no root there (all flows of one sign)."""
    flows = np.asarray(cashflows, dtype=float)
    times = np.arange(flows.size)

    def npv(rate: float) -> float:
        return float(np.sum(flows / (1.0 + rate) ** times))

    lo, hi = -0.999999, 1.0
    f_lo = npv(lo)
    while npv(hi) * f_lo > 0 and hi < 1e6:
        hi *= 2
    if npv(hi) * f_lo > 0:
        return math.nan
    for _ in range(200):
        mid = (lo + hi) / 2
        f_mid = npv(mid)
        if f_mid == 0 or hi - lo < 1e-12:
            return mid
        if f_mid * f_lo > 0:
            lo, f_lo = mid, f_mid
        else:
            hi = mid
    return (lo + hi) / 2


@dataclass(frozen=True)
class Contract:
    """A payment-by-results contract (social impact bond, outcome contract).

    Investors put ``capitale`` euro in at the start, which pays for the service; at the
    end of ``durata_anni`` the payer (``pagatore``, e.g. the comune) pays ``prezzo_unitario``
    euro per unit of outcome achieved, if the gain reaches ``soglia`` (in the effect's
    units), up to ``tetto`` euro. ``unita_per_effetto`` turns a gain into units of outcome
    (e.g. a fall of 1 percentage point in a NEET rate over 4,000 young people is 40
    people: 40 units per point)."""

    capitale: float
    soglia: float
    prezzo_unitario: float
    tetto: float
    durata_anni: int
    unita_per_effetto: float
    pagatore: str = "comune"

    def __post_init__(self):
        problems = [f"{k} must be > 0" for k in ("capitale", "prezzo_unitario", "tetto", "unita_per_effetto")
                    if not getattr(self, k) > 0]
        if not (isinstance(self.durata_anni, (int, np.integer)) and self.durata_anni >= 1):
            problems.append("durata_anni must be a whole number of years >= 1")
        if not np.isfinite(self.soglia):
            problems.append("soglia must be a finite number")
        if problems:
            raise InputError("contract terms: " + "; ".join(problems))

    def payments(self, gains: np.ndarray) -> np.ndarray:
        gains = np.asarray(gains, dtype=float)
        due = np.minimum(self.tetto, self.prezzo_unitario * self.unita_per_effetto * np.maximum(gains, 0.0))
        return np.where(gains >= self.soglia, due, 0.0)


@dataclass(frozen=True)
class ContractEvaluation:
    prob_pagamento: float  # P(the gain reaches the threshold)
    pagamento_atteso: float  # the payer's expected payment, euro
    pagamento_low: float  # interval of the payment (level)
    pagamento_high: float
    level: float
    tir_atteso: float  # investors' IRR on the expected payment (NaN when nothing is expected)
    tir_mediano: float  # median of the IRR over the draws
    prob_perdita: float  # P(payment < capital): investors lose part or all of it
    unita_attese: float  # expected units of outcome achieved (gains below zero count as none)
    costo_unita_contratto: float | None  # payer's euro per expected unit under the contract
    costo_unita_diretto: float | None  # payer's euro per expected unit buying the service itself
    risparmio_atteso: float  # capital (direct purchase) minus expected payment: > 0 the contract is cheaper


def evaluate_contract(contract: Contract, gains: np.ndarray, level: float = 0.95) -> ContractEvaluation:
    """The contract against draws of the gain (``effect_draws`` x direction, or a
    bootstrap). The payment is a single sum at the end of the contract; the investors'
    cash flows are -capital at year 0 and the payment at year ``durata_anni``."""
    gains = np.asarray(gains, dtype=float)
    if gains.size < 100:
        raise InputError(f"too few draws ({gains.size}): at least 100")
    pay = contract.payments(gains)
    tail = (1 - level) / 2
    low, high = np.quantile(pay, [tail, 1 - tail])
    expected = float(pay.mean())
    years = contract.durata_anni
    # IRR of -K now and P at year T: (P / K)^(1/T) - 1 (all of it lost at P = 0)
    irr_draws = np.where(pay > 0, (pay / contract.capitale) ** (1.0 / years) - 1.0, -1.0)
    units = float(np.mean(np.maximum(gains, 0.0)) * contract.unita_per_effetto)
    return ContractEvaluation(
        prob_pagamento=float(np.mean(gains >= contract.soglia)),
        pagamento_atteso=expected, pagamento_low=float(low), pagamento_high=float(high), level=level,
        tir_atteso=(expected / contract.capitale) ** (1.0 / years) - 1.0 if expected > 0 else math.nan,
        tir_mediano=float(np.median(irr_draws)),
        prob_perdita=float(np.mean(pay < contract.capitale)),
        unita_attese=units,
        costo_unita_contratto=expected / units if units > 0 else None,
        costo_unita_diretto=contract.capitale / units if units > 0 else None,
        risparmio_atteso=contract.capitale - expected,
    )
