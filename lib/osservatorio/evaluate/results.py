"""Result objects shared by the estimators. Pure data: no I/O, no plotting."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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
