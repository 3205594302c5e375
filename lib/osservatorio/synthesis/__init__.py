"""Synthesis across sites: random-effects meta-analysis, forest plots, evidence grades."""

from osservatorio.synthesis.evidence import (
    PadlockRating,
    PadlockReason,
    ci_width_ratio,
    maryland_level,
    maryland_table,
    padlocks,
    rules_table,
)
from osservatorio.synthesis.meta import MetaResult, leave_one_out, meta_analysis, predict_effect

__all__ = [
    "MetaResult",
    "PadlockRating",
    "PadlockReason",
    "ci_width_ratio",
    "leave_one_out",
    "maryland_level",
    "maryland_table",
    "meta_analysis",
    "padlocks",
    "predict_effect",
    "rules_table",
]
