"""Covariance matrices of OLS coefficients after absorbing fixed effects.

Pure array functions. ``X`` and ``resid`` are the demeaned regressors and the
residuals (unweighted scale); ``weights`` are the analytic weights used in the fit.
Small-sample corrections follow the defaults of pyfixest 0.60 (``ssc(k_adj=True,
k_fixef="nonnested", G_adj=True, G_df="min")``), which mirror R fixest
``ssc(adj=TRUE, fixef.K="nested", cluster.adj=TRUE)``:

- ``K = k + n_fe_absorbed`` where ``n_fe_absorbed = sum(levels) - (m - 1)`` for ``m``
  absorbed fixed effects; for clustered errors every fixed effect nested in the
  cluster (e.g. units within their own cluster or within districts) is removed from
  ``K`` except for one parameter per nested effect;
- iid: ``sigma^2 = e'We / (n - K)``; t on ``n - K`` df;
- HC1: ``n / (n - K)``; t on ``n - K`` df;
- CRV1: ``G / (G - 1) * (n - 1) / (n - K)``; t on ``G - 1`` df.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from osservatorio.exceptions import EstimationError, InputError


@dataclass(frozen=True)
class Vcov:
    """A coefficient covariance matrix with the quantities needed for inference.

    ``df`` is the denominator degrees of freedom of t and F tests (``n - K`` or
    ``G - 1``); ``ssc`` the small-sample factor already applied to ``matrix``.
    """

    matrix: np.ndarray
    df: int
    ssc: float
    k_ssc: int
    n_clusters: int | None
    kind: str


def vcov_iid(X: np.ndarray, resid: np.ndarray, *, weights: np.ndarray | None = None,
             n_fe_absorbed: int = 0, bread: np.ndarray | None = None) -> Vcov:
    """Homoskedastic covariance ``e'We / (n - K) * (X'WX)^-1``."""
    Xw, ew, n, k = _weighted(X, resid, weights)
    k_ssc = k + n_fe_absorbed
    _check_df(n, k_ssc)
    sigma2 = float(ew @ ew) / (n - k_ssc)
    return Vcov(sigma2 * _bread(Xw, bread), n - k_ssc, 1.0, k_ssc, None, "iid")


def vcov_hc1(X: np.ndarray, resid: np.ndarray, *, weights: np.ndarray | None = None,
             n_fe_absorbed: int = 0, bread: np.ndarray | None = None) -> Vcov:
    """Heteroskedasticity-robust covariance with the HC1 factor ``n / (n - K)``."""
    Xw, ew, n, k = _weighted(X, resid, weights)
    k_ssc = k + n_fe_absorbed
    _check_df(n, k_ssc)
    bread = _bread(Xw, bread)
    scores = Xw * ew[:, None]
    ssc = n / (n - k_ssc)
    return Vcov(ssc * bread @ (scores.T @ scores) @ bread, n - k_ssc, ssc, k_ssc, None, "HC1")


def vcov_crv1(X: np.ndarray, resid: np.ndarray, cluster: np.ndarray, *,
              weights: np.ndarray | None = None, n_fe_absorbed: int = 0,
              fe_nested_in_cluster: Sequence[int] = (),
              bread: np.ndarray | None = None) -> Vcov:
    """One-way cluster-robust covariance (CRV1) with the fixest/pyfixest corrections.

    ``cluster`` holds integer codes 0..G-1. ``fe_nested_in_cluster`` lists the number
    of levels of each absorbed fixed effect nested in the cluster; these are not
    counted in K (one parameter per nested effect is kept, as pyfixest does).
    ``bread`` optionally passes ``(X'WX)^-1`` when the caller already has it.
    """
    Xw, ew, n, k = _weighted(X, resid, weights)
    g = np.asarray(cluster)
    if g.shape != (n,) or not np.issubdtype(g.dtype, np.integer) or (n and g.min() < 0):
        raise InputError(f"vcov_crv1: cluster must be ({n},) integer codes 0..G-1")
    size = int(g.max()) + 1
    n_clusters = int(np.count_nonzero(np.bincount(g, minlength=size)))
    if n_clusters < 2:
        raise EstimationError("vcov_crv1: at least 2 clusters are needed")
    nested = list(fe_nested_in_cluster)
    k_ssc = k + n_fe_absorbed - sum(nested) + len(nested)
    _check_df(n, k_ssc)
    bread = _bread(Xw, bread)
    cluster_scores = np.empty((size, k))
    for j in range(k):  # column by column: no (n, k) temporary
        cluster_scores[:, j] = np.bincount(g, weights=Xw[:, j] * ew, minlength=size)
    meat = cluster_scores.T @ cluster_scores
    ssc = n_clusters / (n_clusters - 1) * (n - 1) / (n - k_ssc)
    return Vcov(ssc * bread @ meat @ bread, n_clusters - 1, ssc, k_ssc, n_clusters, "CRV1")


def is_nested(fe_codes: np.ndarray, cluster: np.ndarray) -> bool:
    """True if every level of ``fe_codes`` lies within a single cluster."""
    fe_codes = np.asarray(fe_codes)
    cluster = np.asarray(cluster)
    n_levels = int(fe_codes.max()) + 1
    first = np.full(n_levels, -1, dtype=np.int64)
    probe = slice(None, None, max(1, fe_codes.size // 5000))  # cheap early rejection
    first[fe_codes[probe]] = cluster[probe]
    if not np.array_equal(first[fe_codes[probe]], cluster[probe]):
        return False
    first[fe_codes] = cluster
    return bool(np.array_equal(first[fe_codes], cluster))


def _weighted(X: np.ndarray, resid: np.ndarray, weights: np.ndarray | None):
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    e = np.asarray(resid, dtype=np.float64)
    n, k = X.shape
    if e.shape != (n,):
        raise InputError(f"covariance: resid must have shape ({n},), got {e.shape}")
    if weights is None:
        return X, e, n, k
    sw = np.sqrt(np.asarray(weights, dtype=np.float64))
    return X * sw[:, None], e * sw, n, k


def _bread(Xw: np.ndarray, bread: np.ndarray | None = None) -> np.ndarray:
    if bread is not None:
        return bread
    xtx = Xw.T @ Xw
    try:
        return np.linalg.inv(xtx)
    except np.linalg.LinAlgError as err:
        raise EstimationError("covariance: X'X is singular (collinear regressors)") from err


def _check_df(n: int, k_ssc: int) -> None:
    if n - k_ssc <= 0:
        raise EstimationError(
            f"covariance: no residual degrees of freedom (n={n}, parameters={k_ssc})"
        )
