"""Cost and value (synthesis/costs.py) against independent computations and simulations
with a known truth: Fieller's interval (closed form for a known cost, a brute-force grid
otherwise, coverage over 1,000 simulated evaluations), the interval read off the
acceptability curve, the curve itself (the normal formula), the cost bands, the IRR
(numpy-financial) and a payment-by-results contract (by hand)."""

from __future__ import annotations

import math

import numpy as np
import numpy_financial as npf
import pytest
from scipy import stats

from osservatorio.exceptions import InputError
from osservatorio.synthesis.costs import (COST_BANDS, Contract, acceptability_curve, cost_rating, effect_draws,
                                          evaluate_contract, fieller_interval, irr, ratio_interval_from_draws)

# --- Fieller -----------------------------------------------------------------------


def test_known_cost_is_cost_over_the_effect_interval():
    """With the cost known the set {R: |C/R - G| <= t se} is C over the gain's interval."""
    r = fieller_interval(1200.0, 3.0, 0.8, df=14)
    t = stats.t.ppf(0.975, 14)
    assert r.defined and r.point == pytest.approx(400.0, rel=1e-15)
    assert r.low == pytest.approx(1200.0 / (3.0 + t * 0.8), rel=1e-12)
    assert r.high == pytest.approx(1200.0 / (3.0 - t * 0.8), rel=1e-12)


@pytest.mark.parametrize("cost,se_cost,gain,se_gain,cov", [(900.0, 150.0, 2.5, 0.6, 0.0), (900.0, 150.0, 2.5, 0.6, 40.0),
                                                            (50.0, 30.0, 0.4, 0.1, -1.2)])
def test_fieller_equals_a_brute_force_search_of_the_set(cost, se_cost, gain, se_gain, cov):
    r = fieller_interval(cost, gain, se_gain, se_cost=se_cost, cov=cov)
    z = stats.norm.ppf(0.975)
    grid = np.linspace(-20 * r.point, 20 * r.point, 4_000_001)  # a saving (negative cost) can be in the set
    inside = (cost - grid * gain) ** 2 <= z**2 * (se_cost**2 - 2 * grid * cov + grid**2 * se_gain**2)
    step = grid[1] - grid[0]
    assert r.low == pytest.approx(grid[inside].min(), abs=step) and r.high == pytest.approx(grid[inside].max(), abs=step)


def test_not_defined_when_the_effect_interval_holds_zero_or_the_effect_harms():
    for gain, se in [(1.0, 0.6), (-0.2, 1.0), (-3.0, 0.5)]:
        r = fieller_interval(1000.0, gain, se)
        assert not r.defined and r.point is None and r.low is None and r.high is None and r.reason
        assert not r.covers(1000.0 / gain)


@pytest.mark.parametrize("bad", [dict(gain=math.nan), dict(se_gain=-1.0), dict(level=1.2)])
def test_bad_numbers_are_input_errors(bad):
    args = dict(cost=100.0, gain=2.0, se_gain=0.5) | bad
    level = args.pop("level", 0.95)
    with pytest.raises(InputError):
        fieller_interval(args["cost"], args["gain"], args["se_gain"], level=level)


def _coverage(hits: list[bool]) -> float:
    return float(np.mean(hits))


def test_fieller_covers_95_percent_with_estimated_effect_and_cost():
    """1,000 simulated evaluations: the gain is the mean of 15 site effects (t with 14 df,
    the standard error estimated), the cost per unit the mean of 20 noisy invoices."""
    rng = np.random.default_rng(20261202)
    true_gain, true_cost = 2.0, 800.0
    truth = true_cost / true_gain
    hits = []
    for _ in range(1000):
        sites = rng.normal(true_gain, 1.6, 15)
        invoices = rng.normal(true_cost, 300.0, 20)
        g, se_g = sites.mean(), sites.std(ddof=1) / np.sqrt(15)
        c, se_c = invoices.mean(), invoices.std(ddof=1) / np.sqrt(20)
        hits.append(fieller_interval(c, g, se_g, se_cost=se_c, df=14).covers(truth))
    assert 0.93 <= _coverage(hits) <= 0.97


def test_draws_interval_covers_95_percent_and_agrees_with_fieller():
    rng = np.random.default_rng(7)
    true_gain, cost, se = 1.5, 600.0, 0.35
    truth = cost / true_gain
    hits = []
    for i in range(600):
        g = rng.normal(true_gain, se)
        r = ratio_interval_from_draws(cost, effect_draws(g, se, n=4000, seed=i))
        hits.append(r.covers(truth))
    assert 0.93 <= _coverage(hits) <= 0.97
    exact = fieller_interval(cost, 1.5, se)
    approx = ratio_interval_from_draws(cost, effect_draws(1.5, se, n=200_000, seed=1))
    assert approx.low == pytest.approx(exact.low, rel=0.01) and approx.high == pytest.approx(exact.high, rel=0.01)
    assert not ratio_interval_from_draws(cost, effect_draws(0.3, se, n=4000)).defined


# --- acceptability curve -----------------------------------------------------------


def test_acceptability_curve_is_the_normal_formula():
    """For a known cost C and gain ~ N(G, s^2): P(lambda G - C > 0) = Phi((G - C/lambda) / s)."""
    g, s, cost, n = 2.0, 0.7, 500.0, 200_000
    amounts = np.array([50, 150, 250, 400, 800, 2000, 10_000], dtype=float)
    curve = acceptability_curve(cost, effect_draws(g, s, n=n, seed=3), amounts)
    want = stats.norm.cdf((g - cost / amounts) / s)
    assert np.all(np.abs(curve - want) <= 4 * np.sqrt(want * (1 - want) / n) + 1e-12)
    assert np.all(np.diff(curve) >= 0)  # never falls as the amount grows


def test_acceptability_curve_crossings_cover_95_percent():
    """The amounts at which the curve crosses 2.5% and 97.5% bound an interval that covers
    the true cost per unit gained in 93-97% of 600 simulated evaluations."""
    rng = np.random.default_rng(11)
    true_gain, cost, se = 3.0, 900.0, 0.8
    amounts = np.geomspace(50, 5000, 400)
    hits = []
    for i in range(600):
        curve = acceptability_curve(cost, effect_draws(rng.normal(true_gain, se), se, n=4000, seed=i), amounts)
        lo, hi = amounts[np.argmax(curve >= 0.025)], amounts[np.argmax(curve >= 0.975)]
        hi = hi if curve[-1] >= 0.975 else math.inf  # never reached in the range: unbounded above
        hits.append(lo <= cost / true_gain <= hi)
    assert 0.93 <= _coverage(hits) <= 0.97


# --- cost rating -------------------------------------------------------------------


def test_cost_bands_follow_the_rule_table():
    bounds = [upper for *_, upper in COST_BANDS]
    assert bounds == sorted(bounds) and math.isinf(bounds[-1])
    assert [cost_rating(b * 10, 10, 1).band for b in bounds[:-1]] == [1, 2, 3, 4]  # a bound is in the lower band
    assert [cost_rating(b * 10 + 1, 10, 1).band for b in bounds[:-1]] == [2, 3, 4, 5]
    r = cost_rating(90_000.0, 60, 3)
    assert (r.band, r.label_it, r.euro_per_beneficiary_year) == (2, "basso", 500.0)
    for bad in [(100.0, 0, 1), (100.0, 10, 0), (-1.0, 10, 1), (math.nan, 10, 1)]:
        with pytest.raises(InputError):
            cost_rating(*bad)


# --- IRR and contracts -------------------------------------------------------------


def test_irr_equals_numpy_financial():
    rng = np.random.default_rng(5)
    for _ in range(200):
        years = int(rng.integers(1, 8))
        flows = np.concatenate([[-rng.uniform(1e4, 1e6)], rng.uniform(0, 4e5, years)])
        want = npf.irr(flows)
        assert irr(flows) == pytest.approx(want, abs=1e-8, rel=1e-8)
    assert math.isnan(irr([100.0, 50.0]))  # no sign change: no rate makes the value zero
    assert irr([-1000.0, 0.0, 0.0, 1331.0]) == pytest.approx(0.10, abs=1e-10)


def test_contract_by_hand():
    c = Contract(capitale=1_000_000, soglia=1.0, prezzo_unitario=10_000, tetto=1_500_000, durata_anni=4,
                 unita_per_effetto=40)
    # gains 0.5 (below threshold), 2 (pays 800,000), 5 (2,000,000 capped at 1,500,000): a quarter, half, quarter
    gains = np.repeat([0.5, 2.0, 5.0], [250, 500, 250])
    assert c.payments(np.array([0.5, 2.0, 5.0])).tolist() == [0.0, 800_000.0, 1_500_000.0]
    e = evaluate_contract(c, gains)
    expected = 0.5 * 800_000 + 0.25 * 1_500_000
    assert e.prob_pagamento == 0.75 and e.pagamento_atteso == pytest.approx(expected)
    assert e.tir_atteso == pytest.approx(npf.irr([-1_000_000, 0, 0, 0, expected]), abs=1e-10)
    assert e.tir_mediano == pytest.approx(npf.irr([-1_000_000, 0, 0, 0, 800_000]), abs=1e-10)
    assert e.prob_perdita == 0.75  # 0 and 800,000 both return less than the capital
    units = 40 * (0.25 * 0.5 + 0.5 * 2 + 0.25 * 5)
    assert e.unita_attese == pytest.approx(units)
    assert e.costo_unita_contratto == pytest.approx(expected / units)
    assert e.costo_unita_diretto == pytest.approx(1_000_000 / units)
    assert e.risparmio_atteso == pytest.approx(1_000_000 - expected)
    assert (e.pagamento_low, e.pagamento_high) == (0.0, 1_500_000.0)


def test_a_null_effect_rarely_pays():
    """finanza-sociale-neet's case: a true null effect estimated with its noise; the threshold
    is one standard error above zero. Over 500 simulated evaluations the payment is
    rarely due and investors almost always lose."""
    rng = np.random.default_rng(3)
    c = Contract(capitale=800_000, soglia=1.0, prezzo_unitario=12_000, tetto=1_200_000, durata_anni=5,
                 unita_per_effetto=45)
    probs, losses = [], []
    for i in range(500):
        e = evaluate_contract(c, effect_draws(rng.normal(0.0, 1.0), 1.0, n=4000, seed=i))
        probs.append(e.prob_pagamento)
        losses.append(e.prob_perdita)
    assert np.mean(probs) == pytest.approx(1 - stats.norm.cdf(1.0 / np.sqrt(2)), abs=0.02)  # P(G_hat + se z >= 1)
    assert np.median(probs) < 0.25 and np.mean(losses) > 0.75


def test_bad_contract_terms_are_named():
    with pytest.raises(InputError, match="capitale.*durata_anni"):
        Contract(capitale=0, soglia=1, prezzo_unitario=1, tetto=1, durata_anni=0, unita_per_effetto=1)


# --- cost_summary against a computation by hand on the examples' costs -----------------

def test_cost_summary_by_hand_on_the_example_costs():
    from pathlib import Path

    from osservatorio.data.sources import load_sources
    from osservatorio.synthesis.costs import cost_summary

    s = load_sources(Path(__file__).resolve().parents[2] / "data" / "examples" / "codici", cache=False)
    summary = cost_summary(s["pilot"], s["costi_pilota"])
    # P-1: 2020 60,000 and 2021 60,000; P-2: 2020 20,000 and 2021 25,000; P-3: 2022 18,000 and 2023 12,000
    assert summary.total == 195000
    assert summary.per_unit_year == pytest.approx((60000 + 22500 + 15000) / 3)
    # comune: 42,000 + 6,000 + 44,000 (P-1) + 20,000 + 21,000 (P-2) + 18,000 (P-3); largest first
    assert list(summary.by_source.items()) == [("comune", 151000), ("fondazione", 18000), ("fondi UE", 12000),
                                               ("regione", 10000), ("PNRR", 4000)]
    assert summary.years == 6 and summary.pilots == 3
    assert summary.beneficiary_years == 110 + 130 + 35 + 25 + 30 + 20
    assert summary.per_beneficiary_year == pytest.approx(195000 / 350)
    assert summary.per_beneficiary == pytest.approx(195000 / (240 + 60 + 50))  # pilot.beneficiari
    without = cost_summary(s["pilot"])
    assert without.total == 195000 and without.per_unit_year is None and without.by_source == {}


def test_fieller_with_the_estimators_own_critical_value_is_the_interval_mapped():
    # known cost: the set {C / g : g in [g - k se, g + k se]} for any critical value k
    from osservatorio.synthesis.costs import fieller_interval

    r = fieller_interval(1000.0, 4.0, 1.0, critical=2.5)
    assert (r.low, r.high) == (pytest.approx(1000 / 6.5), pytest.approx(1000 / 1.5))
    assert not fieller_interval(1000.0, 4.0, 1.0, critical=4.5).defined
