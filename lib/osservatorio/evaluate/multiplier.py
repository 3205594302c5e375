"""Clustered multiplier bootstrap for uniform (sup-t) confidence bands.

Given unit-level influence functions of J estimates, draw cluster-level multipliers
(Mammen 1993 two-point weights, as R ``did``, or Rademacher), form the bootstrap
deviations ``sum_c v_c * phi_c`` and take the (level) quantile of the largest absolute
t-statistic over the J estimates (Callaway and Sant'Anna 2021, sec. 4.1). Pure arrays.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

BootWeights = Literal["mammen", "rademacher"]
_SQRT5 = np.sqrt(5.0)


def draw_multipliers(rng: np.random.Generator, size: tuple[int, int], kind: BootWeights) -> np.ndarray:
    """Multipliers with mean 0 and variance 1 (Mammen also has third moment 1)."""
    if kind == "rademacher":
        return rng.integers(0, 2, size=size).astype(float) * 2.0 - 1.0
    p = (_SQRT5 + 1) / (2 * _SQRT5)
    low, high = (1 - _SQRT5) / 2, (1 + _SQRT5) / 2
    return np.where(rng.random(size) < p, low, high)


def sup_t_critical_value(
    phi_clusters: np.ndarray,
    se: np.ndarray,
    level: float = 0.95,
    n_boot: int = 999,
    weights: BootWeights = "mammen",
    seed: int | None = 0,
    block: int = 128,
) -> float:
    """Critical value c such that estimate +/- c * se covers all J parameters jointly.

    ``phi_clusters`` is (clusters x J), the influence functions summed within clusters on
    the scale where ``se = sqrt(sum(phi**2))``; columns with a missing or zero ``se`` are
    left out. Draws are processed ``block`` at a time so memory stays ~ block x clusters.
    Returns NaN when no column is usable.
    """
    ok = np.isfinite(se) & (se > 0)
    if not ok.any():
        return float("nan")
    phi = phi_clusters[:, ok]
    s = se[ok]
    rng = np.random.default_rng(seed)
    sup = np.empty(n_boot)
    for start in range(0, n_boot, block):
        stop = min(start + block, n_boot)
        v = draw_multipliers(rng, (stop - start, phi.shape[0]), weights)
        sup[start:stop] = np.max(np.abs(v @ phi) / s, axis=1)
    return float(np.quantile(sup, level, method="inverted_cdf"))
