"""plot_honest: a Figure with the original interval first, robust bars by M, breakdown marked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from osservatorio.evaluate.honest import honest_did
from osservatorio.exceptions import InputError
from osservatorio.publishing.honest_plots import plot_honest

DATA = json.loads((Path(__file__).parents[1] / "reference" / "honest" / "event_studies.json").read_text())


def _result(restriction, m):
    d = DATA["synthetic"]
    return honest_did(np.array(d["betahat"]), np.array(d["sigma"]), d["numPre"], d["numPost"], restriction, m=m)


def test_plot_honest_draws_intervals_and_breakdown():
    res = _result("relative_magnitudes", [0.5, 1.0, 1.5, 2.0])
    fig = plot_honest(res, title="Sensitivity", original_label="Originale", breakdown_label="Rottura")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0] == "Originale" and labels[1:] == ["0.5", "1", "1.5", "2"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("Rottura") for t in legend)
    assert ax.get_xlabel() == "Mbar" and ax.get_title() == "Sensitivity"


def test_plot_honest_on_given_axes_and_bad_input():
    res = _result("smoothness", [0.0, 0.05])
    fig = Figure()
    ax = fig.subplots()
    assert plot_honest(res, ax=ax, xlabel="M (punti)") is fig
    assert ax.get_xlabel() == "M (punti)"
    with pytest.raises(InputError):
        plot_honest(object())
