"""Sensitivity figure of a Rambachan-Roth analysis (R ``createSensitivityPlot``); labels passed in."""

from __future__ import annotations

import matplotlib.axes
import numpy as np
from matplotlib.figure import Figure

from osservatorio.exceptions import InputError


def plot_honest(
    result,
    ax: matplotlib.axes.Axes | None = None,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str = "Effect (outcome units)",
    original_label: str = "Original",
    robust_label: str = "Robust",
    breakdown_label: str = "Breakdown",
) -> Figure:
    """Robust intervals against M (or Mbar), the original interval first, breakdown marked.

    ``result`` is a ``HonestResult``. The original interval (exact parallel trends) is
    drawn at the left, one step before the smallest M, in grey; each robust interval is
    a vertical bar at its M; a dotted vertical line marks the breakdown value when it is
    finite and within the plotted range. Returns the Figure; nothing is shown or saved.
    """
    frame = getattr(result, "frame", None)
    if frame is None or not {"m", "lb", "ub"} <= set(frame.columns):
        raise InputError("plot_honest: expected a HonestResult (frame with m, lb, ub)")
    if ax is None:
        fig = Figure(figsize=(6.0, 4.0), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.get_figure()
    m = frame["m"].to_numpy(dtype=float)
    lb, ub = frame["lb"].to_numpy(dtype=float), frame["ub"].to_numpy(dtype=float)
    step = np.diff(np.unique(m)).min() if len(np.unique(m)) > 1 else max(abs(m[0]), 1.0) / 2
    x_orig = m.min() - step
    width = step * 0.25
    handles = [ax.errorbar([x_orig], [(result.original[0] + result.original[1]) / 2],
                           yerr=[[(result.original[1] - result.original[0]) / 2]], fmt="none",
                           capsize=4, color="0.4", label=original_label, capthick=1.2)]
    handles.append(ax.errorbar(m, (lb + ub) / 2, yerr=(ub - lb) / 2, fmt="none", capsize=4, color="C0",
                               label=robust_label, capthick=1.2))
    ax.axhline(0.0, color="black", linewidth=0.8)
    bd = result.breakdown
    if bd is not None and np.isfinite(bd) and bd <= m.max() + width:
        handles.append(ax.axvline(bd, color="C3", linestyle=":", linewidth=1.2,
                                  label=f"{breakdown_label} = {bd:.3g}"))
    is_rm = result.restriction == "relative_magnitudes"
    ax.set_xticks([x_orig, *m], [original_label, *[f"{v:.3g}" for v in m]])
    ax.set_xlabel(xlabel or ("Mbar" if is_rm else "M"))
    ax.set_ylabel(ylabel)
    ax.margins(x=0.08)
    if title:
        ax.set_title(title)
    ax.legend(handles=handles, frameon=False)
    return fig
