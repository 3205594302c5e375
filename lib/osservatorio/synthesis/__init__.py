"""Synthesis across sites: random-effects meta-analysis, forest plots, evidence grades."""

from osservatorio.synthesis.meta import MetaResult, leave_one_out, meta_analysis

__all__ = ["MetaResult", "leave_one_out", "meta_analysis"]
