"""Synthetic DiD figure, as R ``synthdid_plot`` draws it: the treated units' mean and the
synthetic control (omega-weighted controls) over time, the adoption line, the DiD
diagram of the estimate (the treated pre-period level moved parallel to the synthetic
control, an arrow to the treated post-period mean) and the time weights lambda as a
ribbon at the bottom. Labels are passed in (reports are in Italian or English)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.axes
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from osservatorio.exceptions import InputError

if TYPE_CHECKING:
    from osservatorio.evaluate.sdid import SynthDidResult

LAMBDA_PLOT_SCALE = 3  # R's lambda.plot.scale: the ribbon is a third of the lines' range


def plot_synthetic_did(
    result: SynthDidResult,
    ax: matplotlib.axes.Axes | None = None,
    title: str | None = None,
    cohort: object | None = None,
    overlay: bool = False,
    xlabel: str = "Period",
    ylabel: str = "Outcome",
    treated_label: str = "Treated",
    control_label: str = "Synthetic control",
    effect_label: str = "Effect",
    weights_label: str = "Time weights",
) -> Figure:
    """Treated vs synthetic-control trajectories of one adoption cohort.

    ``overlay=True`` draws the synthetic control shifted by the lambda-weighted
    pre-period gap (R's ``overlay = 1``), so parallel trends are easy to judge. The
    dashed vertical line is at the last pre-treatment period (as in R). With staggered
    adoption pass ``cohort`` (a value of ``result.cohorts["cohort"]``); without ``ax``
    and ``cohort`` every cohort gets its own panel. Returns the Figure; nothing is
    shown or saved.
    """
    cohorts = list(result.cohorts["cohort"])
    if cohort is not None and cohort not in cohorts:
        raise InputError(f"plot_synthetic_did: cohort {cohort!r} not among {cohorts}")
    chosen = [cohort] if cohort is not None else cohorts
    if ax is None:
        fig = Figure(figsize=(7.0, 4.0 * len(chosen)), layout="constrained")
        axes = np.atleast_1d(fig.subplots(len(chosen), 1))
    elif len(chosen) > 1:
        raise InputError("plot_synthetic_did: pass cohort= to draw one of "
                         f"{len(chosen)} cohorts on the given axes")
    else:
        fig, axes = ax.get_figure(), [ax]
    for a, c in zip(axes, chosen):
        series = result.series[result.series["cohort"] == c]
        est = result.cohorts.loc[result.cohorts["cohort"] == c, "estimate"].iloc[0]
        _draw(a, series, float(est), overlay, result.method,
              (treated_label, control_label, effect_label, weights_label))
        a.set_xlabel(xlabel)
        a.set_ylabel(ylabel)
        label = title if len(chosen) == 1 else f"{title + ' - ' if title else ''}{c}"
        if label:
            a.set_title(label)
    return fig


def _draw(ax, series: pd.DataFrame, estimate: float, overlay: bool, method: str,
          labels: tuple[str, str, str, str]) -> None:
    treated_label, control_label, effect_label, weights_label = labels
    time = series["time"].to_numpy(dtype=float)
    treated = series["treated"].to_numpy(dtype=float)
    synthetic = series["synthetic_shifted" if overlay else "synthetic"].to_numpy(dtype=float)
    post = series["post"].to_numpy(dtype=bool)
    lam = np.nan_to_num(series["time_weight"].to_numpy(dtype=float)[~post])
    handles = ax.plot(time, treated, color="C0", label=treated_label)
    handles += ax.plot(time, synthetic, color="C3", label=control_label)
    ax.axvline(time[~post][-1], color="0.3", linestyle="--", linewidth=0.8)

    # DiD diagram (not for SC, whose time weights are zero): lambda-weighted pre level
    # and post mean of each line; the counterfactual moves parallel to the control.
    post_time = time[post].mean()
    treated_post = treated[post].mean()
    if method != "sc" and lam.sum() > 0:
        pre_time = lam @ time[~post]
        treated_pre, control_pre = lam @ treated[~post], lam @ synthetic[~post]
        control_post = synthetic[post].mean()
        counterfactual = treated_pre + control_post - control_pre
        ax.plot([pre_time, post_time], [control_pre, control_post], "o-", color="C3", lw=0.8)
        ax.plot([pre_time, post_time], [treated_pre, counterfactual], "o--", color="C0", lw=0.8)
    else:
        counterfactual = treated_post - estimate
    ax.annotate("", xy=(post_time, treated_post), xytext=(post_time, counterfactual),
                arrowprops={"arrowstyle": "->", "color": "black", "lw": 1.2})
    handles += ax.plot([], [], color="black", marker=r"$\updownarrow$", linestyle="none",
                       label=f"{effect_label}: {estimate:.3g}")

    if lam.max(initial=0) > 0:
        lines = np.r_[treated, synthetic]
        height = (lines.max() - lines.min()) / LAMBDA_PLOT_SCALE
        bottom = lines.min() - height
        handles.append(ax.fill_between(time[~post], bottom, bottom + height * lam / lam.max(),
                                       color="C3", alpha=0.3, step=None, label=weights_label))
    ax.legend(handles=handles, frameon=False)
