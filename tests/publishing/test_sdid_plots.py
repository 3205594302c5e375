"""Tests of osservatorio.publishing.sdid_plots: the figure draws what the result holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from osservatorio.evaluate.sdid import synthetic_did
from osservatorio.exceptions import InputError
from osservatorio.publishing.sdid_plots import plot_synthetic_did

REF = Path(__file__).resolve().parents[1] / "reference" / "sdid"


@pytest.fixture(scope="module")
def fit():
    df = pd.read_csv(REF / "block_panel.csv")
    return synthetic_did(df, "y", "unit", "period", "d", vcov="jackknife")


def test_lines_ribbon_and_labels(fit):
    fig = plot_synthetic_did(fit, title="Effetto", xlabel="Anno", treated_label="Trattati",
                             control_label="Controllo sintetico", weights_label="Pesi")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    s = fit.series
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    np.testing.assert_allclose(lines["Trattati"].get_ydata(), s["treated"])
    np.testing.assert_allclose(lines["Controllo sintetico"].get_ydata(), s["synthetic"])
    assert ax.get_title() == "Effetto" and ax.get_xlabel() == "Anno"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "Pesi" in legend and any(t.startswith("Effect") for t in legend)
    # the ribbon lies below both lines
    ribbon = [c for c in ax.collections if c.get_label() == "Pesi"][0]
    assert ribbon.get_paths()[0].vertices[:, 1].max() <= s[["treated", "synthetic"]].min().min() + 1e-9


def test_overlay_and_given_axes(fit):
    fig = Figure()
    ax = fig.subplots()
    out = plot_synthetic_did(fit, ax=ax, overlay=True)
    assert out is fig
    y = {ln.get_label(): ln for ln in ax.get_lines()}["Synthetic control"].get_ydata()
    np.testing.assert_allclose(y, fit.series["synthetic_shifted"])


def test_staggered_one_panel_per_cohort():
    df = pd.read_csv(REF / "staggered_panel.csv")
    fit = synthetic_did(df, "y", "unit", "period", "d", vcov="jackknife")
    assert len(plot_synthetic_did(fit).axes) == 2
    fig = Figure()
    with pytest.raises(InputError, match="cohort"):
        plot_synthetic_did(fit, ax=fig.subplots())
    with pytest.raises(InputError, match="not among"):
        plot_synthetic_did(fit, cohort=99)
    assert len(plot_synthetic_did(fit, cohort=fit.cohorts["cohort"].iloc[1]).axes) == 1
