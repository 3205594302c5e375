"""The acceptability curve's amounts are plain numbers in the report's language."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize(("lang", "sep"), [("it", "."), ("en", ",")])
def test_the_acceptability_curve_writes_amounts_as_numbers_of_the_language(lang, sep):
    from osservatorio.publishing import charts

    amounts = np.geomspace(10, 100_000, 50)
    probs = 1 / (1 + np.exp(-(np.log(amounts) - 7)))
    fig = charts.acceptability_curve(amounts, probs, "euro", "%", "curva", point=1234.5, point_label="stima",
                                     lang=lang)
    fig.canvas.draw()
    ax = fig.axes[0]
    shown = [t.get_text() for t in ax.get_xticklabels() if 10 <= t.get_position()[0] <= 100_000]
    assert shown == ["10", "100", f"1{sep}000", f"10{sep}000", f"100{sep}000"]
    assert not any("$" in t.get_text() for t in ax.get_xticklabels(minor=True) + ax.get_xticklabels())


@pytest.mark.parametrize(("low", "high", "expected"), [
    (1_700, 200_000, ["2.000", "5.000", "10.000", "20.000", "50.000", "100.000", "200.000"]),
    (3_000, 9_000, ["5.000"]),  # no power of ten in view: 2 and 5 times them are labelled
])
def test_a_narrow_acceptability_curve_still_has_labelled_amounts(low, high, expected):
    from osservatorio.publishing import charts

    amounts = np.geomspace(low, high, 40)
    fig = charts.acceptability_curve(amounts, np.linspace(0, 1, 40), "euro", "%", "curva")
    fig.canvas.draw()
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    shown = [t.get_text() for t in ax.get_xticklabels() + ax.get_xticklabels(minor=True)
             if t.get_text() and lo <= t.get_position()[0] <= hi]
    assert sorted(shown, key=lambda s: float(s.replace(".", ""))) == expected
