"""demean against the residuals of an explicit dummy regression (numpy lstsq)."""

from __future__ import annotations

import numpy as np
import pytest

from osservatorio.evaluate.demean import (
    _demean_ap,
    _demean_two_exact,
    demean,
    has_balanced_panel,
    singleton_mask,
)
from osservatorio.exceptions import EstimationError, InputError

TOL = 1e-10


def dummy_residuals(x, fe, weights=None):
    """Residuals of x on all dummies of all fixed effects (weighted least squares)."""
    dummies = np.column_stack([np.eye(int(col.max()) + 1)[col] for col in fe.T])
    sw = np.ones(len(x)) if weights is None else np.sqrt(weights)
    xw = x * (sw[:, None] if x.ndim == 2 else sw)
    coef = np.linalg.lstsq(dummies * sw[:, None], xw, rcond=None)[0]
    return (xw - (dummies * sw[:, None]) @ coef) / (sw[:, None] if x.ndim == 2 else sw)


def panel(n_units=30, n_periods=8, drop=0.0, seed=0):
    rng = np.random.default_rng(seed)
    a = np.repeat(np.arange(n_units), n_periods)
    b = np.tile(np.arange(n_periods), n_units)
    keep = rng.random(a.size) >= drop
    fe = np.column_stack([a[keep], b[keep]])
    x = rng.normal(size=(fe.shape[0], 3)) + fe[:, [0]] * 0.1
    w = rng.uniform(0.2, 4.0, fe.shape[0])
    return x, fe, w


def test_one_fixed_effect():
    x, fe, w = panel(drop=0.2)
    for weights in (None, w):
        got = demean(x, fe[:, 0], weights)
        assert np.abs(got - dummy_residuals(x, fe[:, :1], weights)).max() < TOL


def test_balanced_closed_form_in_order_and_shuffled():
    x, fe, _ = panel()
    assert has_balanced_panel(fe)
    expected = dummy_residuals(x, fe)
    assert np.abs(demean(x, fe) - expected).max() < TOL
    assert np.abs(demean(np.asfortranarray(x), fe) - expected).max() < TOL
    perm = np.random.default_rng(1).permutation(len(x))
    assert np.abs(demean(x[perm], fe[perm]) - expected[perm]).max() < TOL
    assert np.abs(demean(x[:, 0], fe) - expected[:, 0]).max() < TOL


@pytest.mark.parametrize("weighted", [False, True])
def test_unbalanced_exact_and_alternating_projections(weighted):
    x, fe, w = panel(drop=0.25, seed=2)
    weights = w if weighted else None
    assert not has_balanced_panel(fe)
    expected = dummy_residuals(x, fe, weights)
    assert np.abs(demean(x, fe, weights) - expected).max() < TOL
    exact = _demean_two_exact(x, fe[:, 0], fe[:, 1], weights)
    assert np.abs(exact - expected).max() < TOL
    ap = _demean_ap(x, fe, weights, tol=1e-13, maxiter=10_000)
    assert np.abs(ap - expected).max() < 1e-9


def test_three_fixed_effects_use_alternating_projections():
    x, fe, w = panel(drop=0.2, seed=3)
    third = (fe[:, 0] * 7 + fe[:, 1]) % 5
    fe3 = np.column_stack([fe, third])
    got = demean(x, fe3, w, tol=1e-13)
    assert np.abs(got - dummy_residuals(x, fe3, w)).max() < 1e-9


def test_alternating_projections_reports_non_convergence():
    x, fe, _ = panel(drop=0.3, seed=4)
    third = (fe[:, 0] + fe[:, 1]) % 4
    with pytest.raises(EstimationError, match="did not converge"):
        demean(x, np.column_stack([fe, third]), maxiter=2)


def test_singleton_mask_is_iterative():
    # unit 2 has one row; removing it leaves period 3 with a single row (unit 1)
    fe = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [1, 3], [2, 3]])
    assert singleton_mask(fe).tolist() == [False, False, False, False, True, True]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((np.zeros(3), np.array([[0, 1], [1, 0]])), "rows"),
        ((np.zeros(3), np.array([0.0, 1.0, 0.0])), "integer codes"),
        ((np.zeros(3), np.array([0, -1, 1])), ">= 0"),
        ((np.zeros(3), np.array([0, 1, 1]), np.array([1.0, 0.0, 1.0])), "strictly positive"),
        ((np.zeros((2, 2, 2)), np.array([0, 1])), "1-D or 2-D"),
    ],
)
def test_bad_input(args, message):
    with pytest.raises(InputError, match=message):
        demean(*args)
