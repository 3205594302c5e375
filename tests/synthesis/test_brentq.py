"""meta.brentq is scipy's brentq step for step: the same root, to the last bit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize

from osservatorio.exceptions import EstimationError
from osservatorio.synthesis import meta

EPS = 4 * np.finfo(float).eps

FUNCTIONS = [
    (lambda x: x ** 3 - 2.0, 0.0, 2.0),
    (lambda x: math.exp(x) - 5.0, -3.0, 4.0),
    (lambda x: math.cos(x) - x, 0.0, 1.0),
    (lambda x: (x - 1e-9) * 1e6, 0.0, 1.0),
    (lambda x: math.atan(50 * (x - 0.3)), -10.0, 10.0),
    (lambda x: 1.0 if x > 0.7 else -1.0, 0.0, 1.0),  # a step: bisection only
    (lambda x: x ** 9 - 1e-3, 0.0, 3.0),
    (lambda x: 1 / (1 + x) - 0.25, 0.0, 100.0),
]


@pytest.mark.parametrize(("f", "a", "b"), FUNCTIONS)
@pytest.mark.parametrize(("xtol", "rtol", "maxiter"), [(2e-12, EPS, 100), (1e-15, EPS, 500), (1e-3, 1e-3, 50)])
def test_brentq_equals_scipy_exactly(f, a, b, xtol, rtol, maxiter):
    assert meta.brentq(f, a, b, xtol, rtol, maxiter) == optimize.brentq(f, a, b, xtol=xtol, rtol=rtol,
                                                                           maxiter=maxiter)


def test_brentq_equals_scipy_on_reml_scores_of_random_meta_analyses():
    rng = np.random.default_rng(7)
    for _ in range(200):
        k = int(rng.integers(3, 40))
        v = rng.uniform(0.01, 2.0, k)
        y = rng.normal(0.5, np.sqrt(v + rng.uniform(0, 1.5)))
        X = np.ones((k, 1))

        def score(t, y=y, v=v, X=X):
            P = meta._p_matrix(X, 1 / (v + t))
            Py = P @ y
            return float(Py @ Py - np.trace(P))

        if score(0.0) <= 0:
            continue
        hi = 1.0
        while score(hi) >= 0:
            hi *= 2
        ours = meta.brentq(score, 0.0, hi, 1e-15, EPS, 500)
        assert ours == optimize.brentq(score, 0.0, hi, xtol=1e-15, rtol=EPS, maxiter=500)


def test_brentq_refuses_a_bracket_without_a_sign_change_and_reports_no_convergence():
    with pytest.raises(EstimationError, match="different signs"):
        meta.brentq(lambda x: x * x + 1, -1.0, 1.0, 2e-12, EPS, 100)
    with pytest.raises(EstimationError, match="no convergence"):
        meta.brentq(lambda x: x ** 3 - 2.0, 0.0, 2.0, 1e-300, EPS, 3)
    assert meta.brentq(lambda x: x, 0.0, 1.0, 2e-12, EPS, 100) == 0.0  # a root at an end
