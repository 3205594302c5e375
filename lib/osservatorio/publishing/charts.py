"""Figures of the stage notebooks that are not estimator plots: fits over time, the
cost-effectiveness acceptability curve."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def synth_fit(df: pd.DataFrame, treatment_time: int, treated_label: str, synthetic_label: str, ylabel: str,
              title: str):
    """Treated unit vs its synthetic control by period, adoption marked."""
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.plot(df["time"], df["trattato"], color="#d62728", label=treated_label)
    ax.plot(df["time"], df["sintetico"], color="#1f77b4", linestyle="--", label=synthetic_label)
    ax.axvline(treatment_time - 0.5, color="grey", linewidth=1)
    return _finish(fig, ax, title, ylabel)


def its_fit(df: pd.DataFrame, observed: str, fitted: str, counterfactual: str, xlabel: str, ylabel: str, title: str):
    """Observed gap series by event time with the segmented fit and the counterfactual."""
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.plot(df["e"], df["osservato"], color="#555555", linewidth=0.8, marker=".", markersize=3, label=observed)
    ax.plot(df["e"], df["stimato"], color="#d62728", label=fitted)
    post = df[df["e"] >= 0]
    ax.plot(post["e"], post["controfattuale"], color="#1f77b4", linestyle="--", label=counterfactual)
    ax.axvline(-0.5, color="grey", linewidth=1)
    return _finish(fig, ax, title, ylabel, xlabel)


def acceptability_curve(amounts, probs, xlabel: str, ylabel: str, title: str, point: float | None = None,
                        point_label: str = "", lang: str = "it"):
    """Probability that the practice costs less than each amount per unit of outcome
    gained (log amounts), with the point estimate of the ratio marked when it is defined.

    The amounts on the axis are written as numbers in the language's format (1.000, not
    10 with exponent 3): plainer for the reader, and no mathtext parser to build (0.3 s).
    Powers of ten are labelled; on an axis of at most two and a half decades, 2 and 5
    times them too, so a narrow range still has labels."""
    import math

    from matplotlib.ticker import FuncFormatter

    from osservatorio.publishing.text import fmt_number

    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.plot(amounts, [100 * p for p in probs], color="#1f77b4")
    ax.set_xscale("log")

    def amount(x, _pos=None) -> str:
        return fmt_number(x, lang, 0 if x >= 1 else 2)

    def minor(x, _pos=None) -> str:
        lo, hi = ax.get_xlim()
        mantissa = x / 10 ** math.floor(math.log10(x) + 1e-9)
        few_decades = math.log10(hi / lo) <= 2.5
        return amount(x) if few_decades and min(abs(mantissa - 2), abs(mantissa - 5)) < 1e-6 else ""

    ax.xaxis.set_major_formatter(FuncFormatter(amount))
    ax.xaxis.set_minor_formatter(FuncFormatter(minor))
    ax.set_ylim(0, 100)
    ax.axhline(50, color="grey", linewidth=0.8, linestyle=":")
    if point is not None:
        ax.axvline(point, color="#d62728", linewidth=1, linestyle="--", label=point_label)
        ax.legend()
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def _finish(fig, ax, title: str, ylabel: str, xlabel: str | None = None):
    """Common labels, legend and grid of the time-series figures."""
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
