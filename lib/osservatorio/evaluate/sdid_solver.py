"""Frank-Wolfe solver for synthetic-DiD unit and time weights, as R ``synthdid``.

R's ``sc.weight.fw`` (R/solver.R) minimises ``zeta^2 ||x||^2 + ||A x - b||^2 / n`` over
the unit simplex (``n`` the rows of ``A``) by Frank-Wolfe with exact line search, and
stops when an iteration lowers the objective by no more than ``min_decrease^2`` or after
``max_iter`` iterations. ``synthdid_estimate`` runs it twice: at most 100 iterations,
then ``sparsify`` (weights <= max/4 set to 0, renormalised), then at most 10,000 more.
The iterates here are R's, step for step; what differs is the arithmetic:

- ``A x`` is carried from one iteration to the next (``A x_new = A x + s (a_i - A x)``,
  a convex combination, so no drift), so an iteration costs one product ``A' r``;
- ``B`` problems of the same shape are solved at once (the replications of a placebo
  or bootstrap variance), as one matrix product per iteration; a problem stops on its
  own rule and leaves the batch. ``A`` is either shared by all problems (the placebo's
  unit weights: every control's centred pre-period series, with a mask for the units a
  replication leaves out) or one per problem, padded (``mask`` marks real columns,
  padded rows are zero and ``nrow`` counts the real ones).

Pure numpy; no scipy.
"""

from __future__ import annotations

import numpy as np

MAX_ITER_PRE_SPARSIFY = 100
MAX_ITER = 10_000
_CACHE_DOUBLES = 1 << 16  # a batch's (B, p) arrays stay near 512 KB (in L2)
_MIN_BATCH = 32


def sparsify(x: np.ndarray) -> np.ndarray:
    """R's ``sparsify_function``, row by row: ``x[x <= max(x)/4] = 0``, renormalised."""
    x = np.where(x <= x.max(axis=-1, keepdims=True) / 4, 0.0, x)
    return x / x.sum(axis=-1, keepdims=True)


def frank_wolfe(A: np.ndarray, b: np.ndarray, x0: np.ndarray, zeta: np.ndarray | float,
                min_decrease: np.ndarray | float, max_iter: int,
                mask: np.ndarray | None = None, nrow: np.ndarray | None = None) -> np.ndarray:
    """Weights of ``B`` problems ``min zeta^2 |x|^2 + |A x - b|^2 / nrow`` on the simplex.

    ``A`` is ``(n, p)`` (shared) or ``(B, n, p)``; ``b`` is ``(B, n)``; ``x0`` ``(B, p)``
    the starting weights; ``zeta``, ``min_decrease`` and ``nrow`` scalars or ``(B,)``;
    ``mask`` ``(B, p)`` marks the columns a problem may use (default all). Returns the
    ``(B, p)`` weights after R's iterations (``sc.weight.fw``).
    """
    x = np.array(x0, dtype=float, copy=True)
    B, p = x.shape
    n = A.shape[-2]
    zeta = np.broadcast_to(np.asarray(zeta, float), (B,))
    min_decrease = np.broadcast_to(np.asarray(min_decrease, float), (B,))
    nrow = np.broadcast_to(np.asarray(n if nrow is None else nrow, float), (B,))
    b = np.asarray(b, float)
    chunk = _CACHE_DOUBLES // max(p, n * p if A.ndim == 3 else p)
    if chunk < _MIN_BATCH or B == 1:
        # many columns: one problem at a time, its arrays stay in cache (measured: a
        # batch of 8 problems with 7,900 columns each is 1.6 times slower per problem)
        for k in range(B):
            x[k] = _frank_wolfe_one(A if A.ndim == 2 else A[k], b[k], x[k], float(zeta[k]),
                                    float(min_decrease[k]), max_iter,
                                    None if mask is None else np.asarray(mask)[k],
                                    float(nrow[k]))
        return x
    for s in range(0, B, chunk):
        sl = slice(s, s + chunk)
        x[sl] = _frank_wolfe_batch(A if A.ndim == 2 else A[sl], b[sl], x[sl], zeta[sl],
                                   min_decrease[sl], max_iter,
                                   None if mask is None else np.asarray(mask)[sl], nrow[sl])
    return x


def _frank_wolfe_batch(A, b, x, zeta, min_decrease, max_iter, mask, nrow):
    """A batch of problems, one matrix product per iteration; a problem that meets its
    stopping rule leaves the batch."""
    B, p = x.shape
    shared = A.ndim == 2
    zeta2 = zeta**2
    eta = nrow * zeta2
    thresh = min_decrease**2
    penalty = None if mask is None else np.where(mask, 0.0, np.inf)

    Ax = np.einsum("np,bp->bn", A, x) if shared else np.einsum("bnp,bp->bn", A, x)
    active = np.arange(B)
    prev = np.full(B, np.nan)
    xa, Axa, ba, Aa, pen = x, Ax, b, A, penalty
    za, ea, nra, tha = zeta2, eta, nrow, thresh
    ea_col, rows = ea[:, None], np.arange(B)
    xx = (xa * xa).sum(axis=1)
    t = 0
    with np.errstate(invalid="ignore", divide="ignore"):
        while active.size and t < max_iter:
            t += 1
            hg = (Axa - ba) @ A if shared else np.matmul((Axa - ba)[:, None, :], Aa)[:, 0, :]
            hg += ea_col * xa
            hg_x = (hg * xa).sum(axis=1)
            if pen is not None:
                hg += pen  # x is 0 where the penalty is infinite: hg_x stays finite
            i = hg.argmin(axis=1)
            xi = xa[rows, i]
            dx2 = xx - 2 * xi + 1  # |e_i - x|^2
            derr = (A[:, i].T if shared else Aa[rows, :, i]) - Axa
            step = -(hg[rows, i] - hg_x) / ((derr * derr).sum(axis=1) + ea * dx2)
            step[~(step > 0) | (dx2 == 0)] = 0.0  # x already the vertex: R keeps x
            np.minimum(step, 1.0, out=step)
            xa *= (1 - step)[:, None]
            xa[rows, i] += step
            Axa += step[:, None] * derr
            xx = (xa * xa).sum(axis=1)
            err = Axa - ba
            val = za * xx + (err * err).sum(axis=1) / nra
            done = ~(prev[active] - val > tha) if t >= 2 else np.zeros(active.size, bool)
            prev[active] = val
            if done.any():
                x[active] = xa
                keep = ~done
                active = active[keep]
                xa, Axa, ba, xx = xa[keep], Axa[keep], ba[keep], xx[keep]
                za, ea, nra, tha = za[keep], ea[keep], nra[keep], tha[keep]
                ea_col, rows = ea[:, None], np.arange(active.size)
                if not shared:
                    Aa = Aa[keep]
                if pen is not None:
                    pen = pen[keep]
    if active.size:
        x[active] = xa
    return x


def _frank_wolfe_one(A, b, x, zeta, min_decrease, max_iter, mask, nrow):
    """One problem, the same iterations with 1-d arrays (a batch of one pays the
    batch's bookkeeping ten times over on 10,000 iterations)."""
    if mask is not None and not mask.all():
        keep = np.flatnonzero(mask)
        out = np.zeros_like(x)
        out[keep] = _frank_wolfe_one(A[:, keep], b, x[keep], zeta, min_decrease, max_iter,
                                     None, nrow)
        return out
    n, p = A.shape
    nrow = float(n if nrow is None else nrow)
    zeta2 = zeta * zeta
    eta = nrow * zeta2
    thresh = min_decrease * min_decrease
    A = np.ascontiguousarray(A)
    At = np.ascontiguousarray(A.T)  # rows are A's columns, read once per step
    Ax = A @ x
    r = Ax - b
    xx = x @ x
    tmp = np.empty(p)
    prev = np.nan
    for t in range(1, max_iter + 1):
        hg = r @ A
        np.multiply(x, eta, out=tmp)
        hg += tmp
        i = int(hg.argmin())
        dx2 = xx - 2 * x[i] + 1
        if dx2 != 0:
            derr = At[i] - Ax
            step = -(hg[i] - hg @ x) / (derr @ derr + eta * dx2)
            if step > 0:
                step = min(step, 1.0)
                x *= 1 - step
                x[i] += step
                Ax += step * derr
                r = Ax - b
                xx = x @ x
        val = zeta2 * xx + (r @ r) / nrow
        if t >= 2 and not prev - val > thresh:
            break
        prev = val
    return x


def fit_weights(A: np.ndarray, b: np.ndarray, x0: np.ndarray, zeta, min_decrease,
                mask: np.ndarray | None = None, nrow=None, max_iter: int = MAX_ITER,
                max_iter_pre: int = MAX_ITER_PRE_SPARSIFY) -> np.ndarray:
    """R's two rounds: ``max_iter_pre`` iterations, sparsify, then ``max_iter``."""
    x = frank_wolfe(A, b, x0, zeta, min_decrease, max_iter_pre, mask, nrow)
    x = sparsify(x)
    return frank_wolfe(A, b, x, zeta, min_decrease, max_iter, mask, nrow)
