"""Effect heterogeneity: run an estimator separately by level of a moderator.

``by_moderator`` re-estimates the effect within each size class, macro-area or other
moderator level and tests whether the subgroup effects are equal (Wald chi-square,
i.e. Cochran's Q on the inverse-variance weighted estimates). The test treats the
subgroup estimates as independent, which holds when no cluster spans two levels
(e.g. clustering by comune, or a moderator defined at or above the cluster level).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from osservatorio import distributions as dist
from osservatorio.exceptions import EstimationError, InputError

_FIELDS = ("estimate", "se", "ci_low", "ci_high", "p_value", "n_obs", "n_clusters")


@dataclass(frozen=True)
class EqualityTest:
    """Wald test that all subgroup effects are equal: chi2(df = groups - 1)."""

    statistic: float
    df: int
    p_value: float
    n_groups: int


def by_moderator(estimator: Callable[..., Any], data: pd.DataFrame, moderator: str,
                 **kwargs: Any) -> pd.DataFrame:
    """One row per moderator level with the estimator's effect and a status column.

    ``estimator(data_subset, **kwargs)`` must return an object (or mapping) with
    estimate, se, ci_low, ci_high, p_value (e.g. ``twfe``, ``placebo_timing``,
    EffectResult producers). A level is skipped, with the reason in ``status``, when
    it has no treated units (detected from a ``treatment`` or ``cohort`` keyword) or
    when the estimator raises EstimationError. The equality test over the estimated
    levels is in ``frame.attrs["equality_test"]`` (an EqualityTest, or None with
    fewer than two levels). Rows with a missing moderator are left out.
    """
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if moderator not in data.columns:
        raise InputError(f"moderator column '{moderator}' not in data")
    if not callable(estimator):
        raise InputError("estimator must be a callable returning an effect estimate")
    rows = []
    for level, subset in data.groupby(moderator, sort=True, observed=True, dropna=True):
        row: dict[str, Any] = {"level": level, **{f: np.nan for f in _FIELDS}}
        reason = _skip_reason(subset, kwargs)
        if reason is None:
            try:
                row.update(_extract(estimator(subset, **kwargs)))
                row["status"] = "ok"
            except EstimationError as err:
                row["status"] = f"skipped: {err}"
        else:
            row["status"] = f"skipped: {reason}"
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["level", *_FIELDS, "status"])
    frame = frame.rename(columns={"level": moderator})
    ok = frame["status"] == "ok"
    frame.attrs["equality_test"] = (
        equality_test(frame.loc[ok, "estimate"], frame.loc[ok, "se"]) if ok.sum() >= 2 else None
    )
    return frame


def equality_test(estimates, ses) -> EqualityTest:
    """Wald/Cochran Q test of equal effects across independent subgroup estimates."""
    b = np.asarray(estimates, dtype=float)
    se = np.asarray(ses, dtype=float)
    if b.shape != se.shape or b.size < 2:
        raise InputError("equality_test: need at least two estimates with matching ses")
    if not np.all(np.isfinite(se)) or np.any(se <= 0):
        raise InputError("equality_test: standard errors must be finite and positive")
    w = 1.0 / se**2
    pooled = float(np.sum(w * b) / np.sum(w))
    q = float(np.sum(w * (b - pooled) ** 2))
    df = b.size - 1
    return EqualityTest(statistic=q, df=df, p_value=float(dist.chi2.sf(q, df)),
                        n_groups=int(b.size))


def _skip_reason(subset: pd.DataFrame, kwargs: dict[str, Any]) -> str | None:
    treatment = kwargs.get("treatment")
    if isinstance(treatment, str) and treatment in subset.columns:
        values = pd.to_numeric(subset[treatment], errors="coerce").fillna(0)
        if not (values != 0).any():
            return "no treated units"
        if not (values == 0).any():
            return "no untreated observations"
    cohort = kwargs.get("cohort")
    if isinstance(cohort, str) and cohort in subset.columns:
        values = pd.to_numeric(subset[cohort], errors="coerce").fillna(0)
        if not (values != 0).any():
            return "no treated units"
    return None


def _extract(result: Any) -> dict[str, Any]:
    get = result.get if isinstance(result, dict) else lambda k, d=None: getattr(result, k, d)
    if get("estimate") is None or get("se") is None:
        raise InputError("estimator must return an object with estimate and se")
    return {f: get(f, np.nan) for f in _FIELDS}
