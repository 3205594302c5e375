"""Synthesis across sites: random-effects meta-analysis, forest plots, evidence grades.

The names below are loaded on first use (PEP 562): the site and the report read
``synthesis.findings`` without paying for SciPy, which only the meta-analysis needs."""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Check": "evidence",
    "PadlockRating": "evidence",
    "PadlockReason": "evidence",
    "check_from_record": "evidence",
    "ci_width_ratio": "evidence",
    "failed": "evidence",
    "maryland_level": "evidence",
    "maryland_table": "evidence",
    "not_applicable": "evidence",
    "padlocks": "evidence",
    "reason_text": "evidence",
    "rules_table": "evidence",
    "MetaResult": "meta",
    "leave_one_out": "meta",
    "meta_analysis": "meta",
    "predict_effect": "meta",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'osservatorio.synthesis' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"osservatorio.synthesis.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
