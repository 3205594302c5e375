"""Absorb fixed effects by demeaning (within transformation), without dummies.

``demean`` returns the residuals of projecting each column of ``x`` on the dummies
of one or more fixed effects. Coefficients estimated on demeaned data equal those of
the regression with all the dummies (Frisch-Waugh-Lovell). Three exact paths and one
iterative fallback:

- one fixed effect: subtract the (weighted) group mean;
- two fixed effects on an unweighted balanced panel (every pair of levels exactly
  once): ``x - unit mean - time mean + grand mean``;
- two fixed effects otherwise, when the smaller one has few levels (periods): an exact
  solve of the small normal equations of the smaller effect after sweeping out the
  larger one (Schur complement, a dense ``G_small x G_small`` system);
- anything else: alternating projections (method of alternating projections, as in
  fixest/pyfixest), with a convergence check.

Group sums use ``np.bincount``, which is fast and needs no sorting.
"""

from __future__ import annotations

import contextlib

import numpy as np

from osservatorio.exceptions import EstimationError, InputError

try:  # optional: without it BLAS keeps its default thread count
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

# The exact two-way path builds a dense (G_large x G_small) count matrix and a
# (G_small x G_small) system; above these sizes alternating projections are used.
_MAX_SMALL_LEVELS = 2_000
_MAX_DENSE_CELLS = 50_000_000


def demean(
    x: np.ndarray,
    fe: np.ndarray,
    weights: np.ndarray | None = None,
    tol: float = 1e-10,
    maxiter: int = 10_000,
) -> np.ndarray:
    """Return ``x`` with the fixed effects in ``fe`` projected out.

    ``x`` is (n,) or (n, k) float; ``fe`` is (n, m) integer codes 0..G-1, one column
    per fixed effect (a 1-D array is one fixed effect). ``weights`` (n,) are analytic
    weights (positive). ``tol`` and ``maxiter`` only apply to alternating projections:
    iteration stops when the largest change of any value in a sweep is below
    ``tol * max(1, max|x|)``; EstimationError if that does not happen in ``maxiter``
    sweeps. The result has the shape of ``x`` and is a new float64 array.
    """
    x2, was_1d = _as_2d_float(x)
    codes = _as_codes(fe, x2.shape[0])
    w = _as_weights(weights, x2.shape[0])
    m = codes.shape[1]
    if m == 0:
        out = x2.copy()
    elif m == 1:
        out = _demean_one(x2, codes[:, 0], w)
    elif m == 2 and w is None and (cells := _balanced_cells(codes)) is not None:
        out = _demean_two_balanced(x2, *cells)
    elif m == 2 and _exact_two_way_fits(codes):
        with single_blas_thread():
            out = _demean_two_exact(x2, codes[:, 0], codes[:, 1], w)
    else:
        out = _demean_ap(x2, codes, w, tol=tol, maxiter=maxiter)
    return out[:, 0] if was_1d else out


def single_blas_thread() -> contextlib.AbstractContextManager:
    """Context limiting BLAS to one thread.

    The products here are tall-thin (n x k) or small; multi-threaded OpenBLAS gains
    little on them and, when cores are shared (parallel theme runs), busy-waiting
    threads make them 10-50 times slower.
    """
    if threadpool_limits is None:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def has_balanced_panel(fe: np.ndarray) -> bool:
    """True if ``fe`` has two columns and every pair of levels occurs exactly once."""
    codes = np.asarray(fe)
    if codes.ndim != 2 or codes.shape[1] != 2 or codes.shape[0] == 0:
        return False
    return _balanced_cells(codes) is not None


def _balanced_cells(codes: np.ndarray) -> tuple[np.ndarray, int, int] | None:
    """Cell index ``a * G_b + b`` and the two sizes if the panel is balanced, else None.

    A cell index equal to 0..n-1 (rows sorted by a then b, the usual panel layout)
    is reported as ``(None, G_a, G_b)``: balanced and already in order.
    """
    g1 = int(codes[:, 0].max()) + 1
    g2 = int(codes[:, 1].max()) + 1
    if codes.shape[0] != g1 * g2:
        return None
    cell = codes[:, 0].astype(np.int64) * g2 + codes[:, 1]
    if np.array_equal(cell, np.arange(cell.size)):
        return None, g1, g2
    if np.bincount(cell, minlength=g1 * g2).max() != 1:
        return None
    return cell, g1, g2


def singleton_mask(fe: np.ndarray) -> np.ndarray:
    """Boolean (n,) mask of observations to drop as fixed-effect singletons.

    An observation is a singleton when it is alone in a level of any fixed effect;
    removal is repeated until no singleton is left (as fixest and pyfixest do).
    Singletons do not change the coefficients but inflate the observation count used
    in small-sample corrections.
    """
    codes = _as_codes(fe, np.asarray(fe).shape[0])
    keep = np.ones(codes.shape[0], dtype=bool)
    first = True
    while True:
        drop = np.zeros_like(keep)
        for j in range(codes.shape[1]):
            col = codes[:, j] if first else codes[keep, j]
            counts = np.bincount(col)
            if counts.size and (counts == 1).any():
                drop[keep] |= counts[col] == 1
        if not drop.any():
            return ~keep
        keep &= ~drop
        first = False


def _as_2d_float(x: np.ndarray) -> tuple[np.ndarray, bool]:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        return arr.reshape(-1, 1), True
    if arr.ndim != 2:
        raise InputError(f"demean: x must be 1-D or 2-D, got {arr.ndim} dimensions")
    return arr, False


def _as_codes(fe: np.ndarray, n: int) -> np.ndarray:
    codes = np.asarray(fe)
    if codes.ndim == 1:
        codes = codes.reshape(-1, 1)
    if codes.ndim != 2 or codes.shape[0] != n:
        raise InputError(f"demean: fe must be (n, m) with n={n} rows, got shape {codes.shape}")
    if not np.issubdtype(codes.dtype, np.integer):
        raise InputError("demean: fe must hold integer codes 0..G-1 (use pd.factorize)")
    if codes.size and codes.min() < 0:
        raise InputError("demean: fe codes must be >= 0 (missing values must be dropped first)")
    return codes.astype(np.intp, copy=False)


def _as_weights(weights: np.ndarray | None, n: int) -> np.ndarray | None:
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise InputError(f"demean: weights must have shape ({n},), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise InputError("demean: weights must be finite and strictly positive")
    return w


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def _group_means(col: np.ndarray, g: np.ndarray, w: np.ndarray | None, size: int,
                 denom: np.ndarray) -> np.ndarray:
    sums = np.bincount(g, weights=col if w is None else col * w, minlength=size)
    return _safe_divide(sums, denom)


def _demean_one(x: np.ndarray, g: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    size = int(g.max()) + 1
    denom = np.bincount(g, weights=w, minlength=size).astype(np.float64)
    out = np.empty_like(x)
    for j in range(x.shape[1]):
        out[:, j] = x[:, j] - _group_means(x[:, j], g, w, size, denom)[g]
    return out


def _demean_two_balanced(x: np.ndarray, cell: np.ndarray | None, ga: int, gb: int) -> np.ndarray:
    """Balanced two-way: lay each column out as a (G_a, G_b) matrix and sweep means.

    When rows are already sorted by (a, b), the usual layout of a panel, and ``x`` is
    Fortran-ordered, the matrices are views of ``x`` and nothing is copied but the
    result. The result is Fortran-ordered.
    """
    n, k = x.shape
    in_order = cell is None
    xt = x.T  # (k, n), a C-contiguous view when x is Fortran-ordered
    if in_order:
        cube = xt.reshape(k, ga, gb)
    else:
        flat = np.empty((k, n))
        flat[:, cell] = xt
        cube = flat.reshape(k, ga, gb)
    resid = cube - cube.mean(axis=2, keepdims=True)
    resid -= resid.mean(axis=1, keepdims=True)
    resid = resid.reshape(k, n)
    return (resid if in_order else resid[:, cell]).T


def _exact_two_way_fits(codes: np.ndarray) -> bool:
    g = codes.max(axis=0).astype(np.int64) + 1
    return bool(g.min() <= _MAX_SMALL_LEVELS and g[0] * g[1] <= _MAX_DENSE_CELLS)


def _demean_two_exact(x: np.ndarray, a: np.ndarray, b: np.ndarray,
                      w: np.ndarray | None) -> np.ndarray:
    """Exact two-way demeaning: sweep out the large effect, solve for the small one.

    With M_a the (weighted) within-``a`` projector and D_b the dummies of ``b``,
    the residual is ``M_a x - M_a D_b beta`` where ``(D_b' W M_a D_b) beta =
    D_b' W M_a x``. The system is G_b x G_b (e.g. 120 months) and singular by the
    number of connected components; the pseudo-inverse gives the unique projection.
    """
    ga, gb = int(a.max()) + 1, int(b.max()) + 1
    if gb > ga:
        a, b, ga, gb = b, a, gb, ga
    cell = a.astype(np.int64) * gb + b
    counts = np.bincount(cell, weights=w, minlength=ga * gb).astype(np.float64).reshape(ga, gb)
    n_a = counts.sum(axis=1)
    n_b = counts.sum(axis=0)
    inv_n_a = _safe_divide(np.ones_like(n_a), n_a)
    system = np.diag(n_b) - counts.T @ (counts * inv_n_a[:, None])
    system = (system + system.T) / 2
    k = x.shape[1]
    mean_a = np.empty((ga, k))
    rhs = np.empty((gb, k))
    for j in range(k):
        col = x[:, j] if w is None else x[:, j] * w
        mean_a[:, j] = np.bincount(a, weights=col, minlength=ga) * inv_n_a
        rhs[:, j] = np.bincount(b, weights=col, minlength=gb)
    rhs -= counts.T @ mean_a
    beta = np.linalg.pinv(system, rcond=1e-12, hermitian=True) @ rhs
    beta_mean_a = (counts @ beta) * inv_n_a[:, None]
    out = np.empty_like(x)
    for j in range(k):
        out[:, j] = x[:, j] - (mean_a[:, j] - beta_mean_a[:, j])[a] - beta[:, j][b]
    return out


def _demean_ap(x: np.ndarray, codes: np.ndarray, w: np.ndarray | None,
               tol: float, maxiter: int) -> np.ndarray:
    """Alternating projections: subtract group means of each effect in turn."""
    sizes = [int(codes[:, j].max()) + 1 for j in range(codes.shape[1])]
    denoms = [np.bincount(codes[:, j], weights=w, minlength=s).astype(np.float64)
              for j, s in enumerate(sizes)]
    out = x.copy()
    for col_idx in range(x.shape[1]):
        col = out[:, col_idx].copy()
        scale = max(1.0, float(np.max(np.abs(col))) if col.size else 1.0)
        for _ in range(maxiter):
            delta = 0.0
            for j, size in enumerate(sizes):
                means = _group_means(col, codes[:, j], w, size, denoms[j])
                delta = max(delta, float(np.max(np.abs(means))))
                col -= means[codes[:, j]]
            if delta <= tol * scale:
                break
        else:
            raise EstimationError(
                f"demean: alternating projections did not converge in {maxiter} sweeps "
                f"(last change {delta:.3g}, tol {tol:g}); raise maxiter or check that the "
                "fixed effects are connected"
            )
        out[:, col_idx] = col
    return out
