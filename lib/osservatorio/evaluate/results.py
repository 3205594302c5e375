"""Result objects shared by the estimators. Pure data: no I/O, no plotting."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

DiagnosticStatus = Literal["computed", "not_applicable", "failed"]
REASON_CHARS = 200  # a failure's message is kept to this many characters, on one line


@dataclass(frozen=True)
class EffectResult:
    """One effect estimate with its inference.

    ``estimate`` is in the units of the outcome (e.g. percentage points, per 1,000
    inhabitants). ``inference`` names how the interval and p-value were computed
    (e.g. "CRV1 cluster-robust t(G-1)", "wild cluster bootstrap WCR Webb B=9999").
    """

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    n_obs: int
    n_clusters: int | None = None
    n_treated: int | None = None
    n_control: int | None = None
    method: str = ""
    inference: str = ""
    level: float = 0.95
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- diagnostics (pre-trend test, placebo): what the evidence rules read ---------------
#
# A diagnostic is recorded as a plain dict (it goes to estimates.json) with ``status``:
# "computed" (``p_value`` is a number), "not_applicable" (the design has no such test by
# construction, e.g. no leads in a synthetic control) or "failed" (tried and could not be
# computed: an exception, too few periods, an undefined p-value). ``reason`` says why
# for the last two. The evidence rules count "failed" as a failing test and skip only
# "not_applicable" (synthesis/evidence.py).


def one_line(text: object, limit: int = REASON_CHARS) -> str:
    """A message on one line, at most ``limit`` characters (an ellipsis marks a cut). An
    exception of a library (not one of osservatorio's own) keeps its type's name."""
    from osservatorio.exceptions import OsservatorioError

    s = " ".join(str(text).split())
    if isinstance(text, BaseException) and not (isinstance(text, OsservatorioError) and s):
        s = f"{type(text).__name__}: {s}" if s else type(text).__name__
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _record(status: DiagnosticStatus, reason: str | None, p_value: float | None, fields: dict) -> dict[str, Any]:
    rest = {k: v for k, v in fields.items() if k not in ("status", "reason", "p_value")}
    return {"status": status, "reason": reason, **rest, "p_value": p_value}


def diagnostic_computed(p_value: float | None, **fields: Any) -> dict[str, Any]:
    """A diagnostic that ran; an undefined p-value (None, NaN: a degenerate fit) makes it failed."""
    if p_value is None or not math.isfinite(p_value):
        return diagnostic_failed(f"the p-value is undefined ({p_value}): degenerate fit", **fields)
    return _record("computed", None, float(p_value), fields)


def diagnostic_value(key: str, value: float | None, **fields: Any) -> dict[str, Any]:
    """A diagnostic whose result is a number other than a p-value (``key``: e.g. the
    breakdown value of a sensitivity analysis); an undefined one makes it failed."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return diagnostic_failed(f"{key} is undefined ({value})", **fields)
    return {"status": "computed", "reason": None, **{k: v for k, v in fields.items() if k != key}, key: value}


def diagnostic_failed(reason: object, **fields: Any) -> dict[str, Any]:
    """A diagnostic tried and not computed; ``reason`` (a message or the exception) kept on one line."""
    return _record("failed", one_line(reason), None, fields)


def diagnostic_not_applicable(reason: str, **fields: Any) -> dict[str, Any]:
    """A diagnostic the design does not have by construction, with why."""
    return _record("not_applicable", one_line(reason), None, fields)
