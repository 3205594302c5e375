"""Event-study figure. The only plotting module of ``evaluate``; labels are passed in
(reports are in Italian or English elsewhere)."""

from __future__ import annotations

import matplotlib.axes
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from osservatorio.exceptions import InputError

_REQUIRED = ("event_time", "estimate", "ci_low", "ci_high")


def plot_event_study(
    coefs: pd.DataFrame,
    ax: matplotlib.axes.Axes | None = None,
    title: str | None = None,
    xlabel: str = "Periods since adoption",
    ylabel: str = "Effect (outcome units)",
    pre_label: str = "Before adoption",
    post_label: str = "After adoption",
    reference_label: str = "Reference period",
    band_label: str = "Uniform 95% band",
) -> Figure:
    """Point estimates with confidence-interval bars by event time.

    Pre-adoption coefficients (event time < 0) are hollow grey markers, post-adoption
    ones filled; the reference period (``is_reference`` column, estimate 0) is drawn
    without a bar. A horizontal line marks zero and a dashed vertical line the
    adoption (between event times -1 and 0). ``coefs`` is ``EventStudyResult.coefs``
    or any frame with event_time, estimate, ci_low, ci_high; with finite
    ``cband_low``/``cband_high`` (``StaggeredResult.aggregate("event")``) the uniform
    band, covering all event times jointly, is shaded behind the bars. Returns the Figure
    (a new one unless ``ax`` is given); nothing is shown or saved.
    """
    missing = [c for c in _REQUIRED if c not in coefs.columns]
    if missing:
        raise InputError(f"plot_event_study: coefs lacks column(s) {missing}")
    if ax is None:
        fig = Figure(figsize=(7.0, 4.0), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.get_figure()
    is_ref = (coefs["is_reference"].to_numpy(dtype=bool) if "is_reference" in coefs.columns
              else np.zeros(len(coefs), dtype=bool))
    event_time = coefs["event_time"].to_numpy(dtype=float)
    groups = (
        (~is_ref & (event_time < 0), pre_label, {"color": "0.45", "mfc": "white"}),
        (~is_ref & (event_time >= 0), post_label, {"color": "C0", "mfc": "C0"}),
    )
    handles = []
    if {"cband_low", "cband_high"} <= set(coefs.columns):
        lo, hi = coefs["cband_low"].to_numpy(dtype=float), coefs["cband_high"].to_numpy(dtype=float)
        ok = np.isfinite(lo) & np.isfinite(hi) & ~is_ref
        if ok.any():
            handles.append(ax.bar(event_time[ok], hi[ok] - lo[ok], bottom=lo[ok], width=0.6, color="C0",
                                  alpha=0.15, label=band_label, zorder=0))
    for mask, label, style in groups:
        if not mask.any():
            continue
        sub = coefs.loc[mask]
        est = sub["estimate"].to_numpy(dtype=float)
        err = np.vstack([est - sub["ci_low"].to_numpy(dtype=float),
                         sub["ci_high"].to_numpy(dtype=float) - est])
        handles.append(ax.errorbar(sub["event_time"], est, yerr=err, fmt="o", capsize=3,
                                   label=label, color=style["color"], mfc=style["mfc"],
                                   mec=style["color"]))
    if is_ref.any():
        handles += ax.plot(event_time[is_ref], coefs.loc[is_ref, "estimate"], "D",
                           color="0.2", mfc="white", label=reference_label)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.axvline(-0.5, color="0.3", linestyle="--", linewidth=0.8)
    ticks = np.unique(event_time).astype(int)
    step = int(np.ceil(len(ticks) / 16))  # at most ~16 labels: monthly windows of +/-12 overlapped
    ax.set_xticks(ticks[ticks % step == 0] if step > 1 else ticks)
    ax.use_sticky_edges = False  # bars' bottoms are sticky: the lowest band touched the frame
    ax.margins(y=0.05)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(handles=handles, frameon=False)
    return fig
