"""Effect estimators: TWFE, event studies, staggered DiD, few treated, synthetic control, ITS.

Functions are imported eagerly: several share their module's name (``twfe``), and the
function, not the module, must be what ``from osservatorio.evaluate import twfe`` gives.
Modules written separately are imported only if present (so the package imports while
they are being added); when present, their import errors are not hidden.
"""

from importlib.util import find_spec

from osservatorio.evaluate.covariance import Vcov, vcov_crv1, vcov_hc1, vcov_iid
from osservatorio.evaluate.demean import demean, has_balanced_panel, singleton_mask
from osservatorio.evaluate.event_study import (
    EventStudyResult,
    PretrendTest,
    event_study,
    placebo_timing,
)
from osservatorio.evaluate.heterogeneity import EqualityTest, by_moderator, equality_test
from osservatorio.publishing.event_plots import plot_event_study
from osservatorio.evaluate.results import EffectResult
from osservatorio.evaluate.twfe import TwfeResult, twfe

__all__ = [
    "EffectResult",
    "EqualityTest",
    "EventStudyResult",
    "PretrendTest",
    "TwfeResult",
    "Vcov",
    "by_moderator",
    "demean",
    "equality_test",
    "event_study",
    "has_balanced_panel",
    "placebo_timing",
    "plot_event_study",
    "singleton_mask",
    "twfe",
    "vcov_crv1",
    "vcov_hc1",
    "vcov_iid",
]

if find_spec("osservatorio.evaluate.staggered") is not None:
    from osservatorio.evaluate.staggered import StaggeredResult, staggered_did

    __all__ += ["StaggeredResult", "staggered_did"]
if find_spec("osservatorio.evaluate.few_treated") is not None:
    from osservatorio.evaluate.few_treated import randomization_inference, wild_cluster_bootstrap

    __all__ += ["randomization_inference", "wild_cluster_bootstrap"]
if find_spec("osservatorio.evaluate.synth") is not None:
    from osservatorio.evaluate.synth import SynthResult, synthetic_control

    __all__ += ["SynthResult", "synthetic_control"]
if find_spec("osservatorio.evaluate.its") is not None:
    from osservatorio.evaluate.its import ItsResult, interrupted_time_series

    __all__ += ["ItsResult", "interrupted_time_series"]
