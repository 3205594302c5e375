"""Effect estimators: TWFE, event studies, staggered DiD, few treated, synthetic control,
synthetic DiD, ITS; and the sensitivity of event studies to broken parallel trends.

Functions are imported eagerly: several share their module's name (``twfe``), and the
function, not the module, must be what ``from osservatorio.evaluate import twfe`` gives.
The designs (which estimators a theme's design uses) are in ``osservatorio.evaluate.designs``.
The one figure exported here, ``plot_event_study``, is imported on first use: validating
a theme's design imports this package, and needs no matplotlib (0.9 s).
"""

from osservatorio.evaluate.covariance import Vcov, vcov_crv1, vcov_hc1, vcov_iid
from osservatorio.evaluate.demean import demean, has_balanced_panel, singleton_mask
from osservatorio.evaluate.event_study import (
    EventStudyResult,
    PretrendTest,
    event_study,
    placebo_timing,
)
from osservatorio.evaluate.heterogeneity import EqualityTest, by_moderator, equality_test
from osservatorio.evaluate.honest import HonestResult, honest_did, honest_sensitivity
from osservatorio.evaluate.results import EffectResult
from osservatorio.evaluate.few_treated import randomization_inference, wild_cluster_bootstrap
from osservatorio.evaluate.its import ItsResult, interrupted_time_series
from osservatorio.evaluate.sdid import SynthDidResult, synthdid_compare, synthetic_did
from osservatorio.evaluate.staggered import StaggeredResult, staggered_did
from osservatorio.evaluate.synth import SynthResult, synthetic_control
from osservatorio.evaluate.twfe import TwfeResult, twfe

__all__ = [
    "EffectResult",
    "EqualityTest",
    "EventStudyResult",
    "HonestResult",
    "ItsResult",
    "StaggeredResult",
    "SynthDidResult",
    "SynthResult",
    "PretrendTest",
    "TwfeResult",
    "Vcov",
    "by_moderator",
    "demean",
    "equality_test",
    "event_study",
    "has_balanced_panel",
    "honest_did",
    "honest_sensitivity",
    "interrupted_time_series",
    "placebo_timing",
    "randomization_inference",
    "plot_event_study",
    "singleton_mask",
    "staggered_did",
    "synthdid_compare",
    "synthetic_control",
    "synthetic_did",
    "twfe",
    "vcov_crv1",
    "vcov_hc1",
    "vcov_iid",
    "wild_cluster_bootstrap",
]


def __getattr__(name: str):
    if name == "plot_event_study":
        from osservatorio.publishing.event_plots import plot_event_study

        return plot_event_study
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
