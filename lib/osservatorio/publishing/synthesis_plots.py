"""Forest plot of site effects and their random-effects synthesis."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Polygon

from osservatorio.exceptions import InputError
from osservatorio.synthesis.meta import MetaResult


def forest_plot(
    labels,
    effects,
    ci_low,
    ci_high,
    pooled: MetaResult,
    ax=None,
    xlabel: str = "Effect",
    title: str | None = None,
    pooled_label: str | None = None,
    annotate: bool = True,
) -> Figure:
    """Forest plot: one row per site, the pooled diamond and the prediction interval.

    Squares have area proportional to each site's weight in `pooled`; horizontal lines
    are the site confidence intervals; the diamond spans the pooled confidence interval
    and the thin line under it the prediction interval for a new site; the vertical line
    marks no effect (0). With `annotate`, estimate [CI] and weight % are written on the
    right. `pooled` must be an intercept-only fit of the same sites, in the same order.
    """
    labels = [str(x) for x in labels]
    y = np.asarray(effects, dtype=float)
    lo = np.asarray(ci_low, dtype=float)
    hi = np.asarray(ci_high, dtype=float)
    k = len(labels)
    if not (y.size == lo.size == hi.size == k):
        raise InputError("labels, effects, ci_low and ci_high must have the same length")
    if len(pooled.coefficients) != 1:
        raise InputError("forest_plot needs an intercept-only MetaResult (no moderators)")
    if pooled.k != k:
        raise InputError(f"pooled was fitted on {pooled.k} sites, the plot has {k}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 1.2 + 0.32 * (k + 2)))
    else:
        fig = ax.figure

    rows = np.arange(k, 0, -1) + 1.0  # sites top-down, pooled row at 0
    ax.hlines(rows, lo, hi, color="0.25", lw=1)
    sizes = 250 * pooled.weights / pooled.weights.max()
    ax.scatter(y, rows, s=sizes, marker="s", color="0.25", zorder=3)

    ax.hlines(0, pooled.pi_low, pooled.pi_high, color="tab:blue", lw=1.2, zorder=2)
    ax.vlines([pooled.pi_low, pooled.pi_high], -0.15, 0.15, color="tab:blue", lw=1.2)
    diamond = [(pooled.ci_low, 0), (pooled.estimate, 0.35), (pooled.ci_high, 0),
               (pooled.estimate, -0.35)]
    ax.add_patch(Polygon(diamond, closed=True, color="tab:blue", zorder=4))
    ax.axvline(0, color="0.5", lw=0.8, ls="--", zorder=1)

    name = pooled_label or f"Pooled ({pooled.method.upper()}), PI"
    ax.set_yticks([*rows, 0], [*labels, name])
    ax.set_ylim(-1, k + 2)
    ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title)
    ax.spines[["top", "right", "left"]].set_visible(False)
    ax.tick_params(axis="y", length=0)
    if annotate:
        _annotate(ax, rows, y, lo, hi, pooled)
    return fig


def _annotate(ax, rows, y, lo, hi, pooled: MetaResult) -> None:
    """Write 'estimate [low, high]  weight%' at the right edge of each row."""
    trans = ax.get_yaxis_transform()  # x in axes fraction, y in data
    for r, e, a, b, w in zip(rows, y, lo, hi, pooled.weights, strict=True):
        ax.text(1.02, r, f"{e:.2f} [{a:.2f}, {b:.2f}]  {100 * w:.1f}%", transform=trans,
                va="center", fontsize=8)
    ax.text(1.02, 0, f"{pooled.estimate:.2f} [{pooled.ci_low:.2f}, {pooled.ci_high:.2f}]",
            transform=trans, va="center", fontsize=8, fontweight="bold")
