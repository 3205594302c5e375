"""Staggered adoption: group-time ATTs of Callaway and Sant'Anna (2021), as R ``did``.

Public entry point ``staggered_did`` and its result. The wide panel and the ATT(g,t)
cells are built in ``staggered_cells``; aggregations (R ``aggte``) in
``staggered_aggregate``; uniform bands in ``multiplier``. Numeric code only: no I/O.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from osservatorio import distributions as dist
from osservatorio.evaluate import staggered_aggregate as agg
from osservatorio.evaluate.multiplier import (
    BOOT_WEIGHTS,
    BootWeights,
    studentized_sup_t_critical_value,
    sup_t_critical_value,
)
from osservatorio.evaluate.pretrend import wild_bootstrap_pretrend
from osservatorio.evaluate.results import EffectResult
from osservatorio.evaluate.staggered_cells import (
    Panel,
    build_panel,
    cell_phi_matrix,
    cluster_sums,
    define_cells,
    estimate_cells,
)
from osservatorio.exceptions import EstimationError, InputError

Control = Literal["never", "notyet"]
BasePeriod = Literal["varying", "universal"]
EstMethod = Literal["dr", "reg"]
AggregateKind = Literal["simple", "event", "cohort", "calendar"]
_CONTROLS = ("never", "notyet")
_BASES = ("varying", "universal")
_KINDS = ("simple", "event", "cohort", "calendar")
PretrendMethod = Literal["chi2", "wild_bootstrap"]
_PRETREND_METHODS = ("chi2", "wild_bootstrap")
_LABEL = {"event": "event_time", "cohort": "cohort", "calendar": "time"}


@dataclass(frozen=True)
class StaggeredResult:
    """Group-time ATTs of Callaway and Sant'Anna (2021) and what is needed to aggregate them.

    ``att_gt`` has one row per (cohort, time) cell: att, analytic se, pointwise ci,
    n_treated, n_control, post. ``info`` records the sample (units, periods, clusters,
    units dropped because unbalanced or treated from the first period) and options.
    """

    att_gt: pd.DataFrame
    info: dict[str, Any]
    _panel: Panel = field(repr=False)
    _cells: pd.DataFrame = field(repr=False)

    def aggregate(
        self, kind: AggregateKind = "simple", min_e: float = -np.inf, max_e: float = np.inf
    ) -> EffectResult | pd.DataFrame:
        """Aggregate the ATT(g,t) as R ``did::aggte`` (simple, dynamic, group, calendar).

        "simple" returns an EffectResult; the others a frame with one row per event time
        / cohort / calendar period: estimate, se, ci_low, ci_high, p_value and the uniform
        band cband_low, cband_high = estimate -/+ c * se (sup-t multiplier bootstrap; NaN
        if bootstrap=False). When ``cluster`` groups several units and there are no
        covariates, c comes from the wild cluster bootstrap-t (each draw studentized by
        its re-estimated se, ``multiplier.studentized_sup_t_critical_value``); otherwise
        each draw is divided by the analytic se, as R ``did``. ``frame.attrs`` holds the
        overall summary R reports, the critical value and how it was obtained.
        ``min_e`` bounds event times (event only); ``max_e`` bounds t - g for event,
        simple and cohort; calendar ignores both, as R.
        """
        if kind not in _KINDS:
            raise InputError(f"aggregate: kind must be one of {_KINDS}, got {kind!r}")
        panel, info = self._panel, self.info
        labels, theta, phi = agg.aggregate_phi(panel, self._cells, kind, min_e, max_e)
        if len(labels) == 0:
            raise EstimationError(f"aggregate: no cells for kind={kind!r} within [min_e, max_e]")
        se = agg.standard_errors(panel, phi)
        z = _critical(info["level"], panel.df)
        if kind == "simple":
            return self._effect(theta[0], se[0], z)
        crit, band = np.nan, None
        if info["bootstrap"]:
            if _studentized_band(panel):
                pieces = agg.cell_pieces(panel, self._cells, kind, min_e, max_e)
                crit = studentized_sup_t_critical_value(
                    pieces, panel.ssc, se, info["level"], info["n_boot"], info["boot_weights"], info["seed"],
                )
                band = "wild cluster bootstrap-t (studentized in each draw)"
            else:
                crit = sup_t_critical_value(
                    agg.cluster_sums(panel, phi), se, info["level"], info["n_boot"],
                    info["boot_weights"], info["seed"],
                )
                band = "multiplier bootstrap, analytic se (as R did)"
            band += f", {info['boot_weights']} weights, B={info['n_boot']}"
            crit = max(crit, z)  # as R did: never narrower than the pointwise interval
        out = pd.DataFrame({_LABEL[kind]: labels.astype(int), "estimate": theta, "se": se})
        out = _add_inference(out, "estimate", z, panel.df)
        out["cband_low"] = theta - crit * se
        out["cband_high"] = theta + crit * se
        est, phi_all = agg.overall_phi(panel, kind, labels, theta, phi)
        se_all = agg.standard_errors(panel, phi_all[:, None])[0]
        out.attrs["overall"] = {"estimate": est, "se": float(se_all)}
        out.attrs["critical_value"] = crit
        out.attrs["band_method"] = band
        return out

    def event_covariance(
        self, min_e: float = -np.inf, max_e: float = np.inf
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Event times, estimates and their joint covariance, as ``aggregate("event")``.

        The covariance is built from the influence functions of the event-time estimates
        (cluster sums, with the small-sample factor when clustering above the unit), so its
        diagonal is the square of ``aggregate("event")``'s se; with a universal base the
        reference event time (estimate 0) has a zero row and column. Used for
        sensitivity analyses that need the whole event study (``honest_sensitivity``).
        """
        labels, theta, phi = agg.aggregate_phi(self._panel, self._cells, "event", min_e, max_e)
        if len(labels) == 0:
            raise EstimationError("event_covariance: no cells within [min_e, max_e]")
        sums = cluster_sums(self._panel, phi)
        return labels.astype(int), theta, sums.T @ sums

    def pretrend_test(
        self,
        on: Literal["cells", "event"] = "cells",
        max_df: int = 1000,
        window: int | None = None,
        method: PretrendMethod = "chi2",
        n_boot: int = 999,
        boot_weights: Literal["webb", "rademacher"] = "webb",
        seed: int | None = 0,
    ) -> dict[str, Any]:
        """Joint test of no pre-trends: statistic, df, p_value (and details).

        ``on="cells"`` (R ``did``'s pre-test) tests that every pre-period ATT(g,t) with a
        usable se is zero; ``on="event"`` tests the event-study leads (e < 0, or
        -``window``..-1), far fewer when cohorts are monthly. ``method="chi2"`` refers
        the Wald statistic with the influence-function covariance to a chi2. With
        treatment assigned by cluster and few treated clusters per cohort that
        over-rejects badly (demo: 85% on cells, 10-25% on leads, at 5%), because the
        covariance is estimated from few clusters. ``method="wild_bootstrap"`` (leads
        only) refers the same statistic to its restricted wild cluster bootstrap
        distribution with the covariance re-estimated in each draw
        (``osservatorio.evaluate.pretrend``); use it whenever clustering above the unit.
        With more than ``max_df`` cells the chi2 cell test is refused.
        """
        if on not in ("cells", "event"):
            raise InputError(f"pretrend_test: on must be 'cells' or 'event', got {on!r}")
        if method not in _PRETREND_METHODS:
            raise InputError(f"pretrend_test: method must be one of {_PRETREND_METHODS}, got {method!r}")
        if window is not None and (int(window) != window or window < 1):
            raise InputError(f"pretrend_test: window must be an integer >= 1, got {window!r}")
        panel, cells = self._panel, self._cells
        if method == "wild_bootstrap":
            if on != "event":
                raise InputError("pretrend_test: method='wild_bootstrap' tests the leads: use on='event'")
            if not (cells["time"] < cells["cohort"]).any():
                return {"statistic": np.nan, "df": 0, "p_value": np.nan}
            return wild_bootstrap_pretrend(panel, cells, window, n_boot, boot_weights, seed)
        if on == "event":
            if not (cells["time"] < cells["cohort"]).any():
                return {"statistic": np.nan, "df": 0, "p_value": np.nan}
            min_e = -np.inf if window is None else -int(window)
            _, theta, phi = agg.aggregate_phi(panel, cells, "event", min_e, -1)
            ok = np.isfinite(agg.standard_errors(panel, phi))
            sums = cluster_sums(panel, phi[:, ok])
            return _wald(theta[ok], sums.T @ sums)
        pre = np.flatnonzero(~cells["post"].to_numpy() & ~cells["ref"].to_numpy()
                             & np.isfinite(cells["se"].to_numpy()))
        if len(pre) == 0:
            return {"statistic": np.nan, "df": 0, "p_value": np.nan}
        if len(pre) > max_df:
            raise EstimationError(
                f"pretrend_test: {len(pre)} pre-period cells (> max_df={max_df}); "
                "use on='event' or raise max_df"
            )
        blocks = np.array_split(pre, max(1, int(np.ceil(len(pre) * panel.n / 5e6))))
        vcov = np.zeros((len(pre), len(pre)))
        pos = np.cumsum([0] + [len(b) for b in blocks])
        for a, ba in enumerate(blocks):
            pa = cluster_sums(panel, self._phi_of(ba))
            for b in range(a, len(blocks)):
                pb = pa if b == a else cluster_sums(panel, self._phi_of(blocks[b]))
                vcov[pos[a]:pos[a + 1], pos[b]:pos[b + 1]] = pa.T @ pb
                vcov[pos[b]:pos[b + 1], pos[a]:pos[a + 1]] = (pa.T @ pb).T
        return _wald(cells["att"].to_numpy()[pre], vcov)

    def _phi_of(self, idx: np.ndarray) -> np.ndarray:
        weights = np.zeros((len(self._cells), len(idx)))
        weights[idx, np.arange(len(idx))] = 1.0
        return cell_phi_matrix(self._panel, self._cells, weights)

    def _effect(self, est: float, se: float, z: float) -> EffectResult:
        info, cells = self.info, self._cells
        post = cells[cells["post"].to_numpy() & ~cells["ref"].to_numpy()]
        treated = int(np.diff(self._panel.bounds)[np.unique(post["gi"])].sum())
        n_control = int(self._panel.n - self._panel.bounds[post["cs"].min()])
        p = float(_two_sided_p(np.array([est / se]), self._panel.df)[0]) if np.isfinite(se) else np.nan
        return EffectResult(
            estimate=float(est), se=float(se), ci_low=float(est - z * se),
            ci_high=float(est + z * se), p_value=p,
            n_obs=int(self._panel.n * len(self._panel.times)),
            n_clusters=int(self._panel.n_clusters), n_treated=treated, n_control=n_control,
            method=f"Callaway-Sant'Anna ATT(g,t), simple aggregation; {info['method']}",
            inference=info["inference"], level=info["level"], extra={"sample": info},
        )


def _studentized_band(panel: Panel) -> bool:
    """Bands from the wild cluster bootstrap-t: clustered above the unit, no covariates."""
    return panel.clustered_above_unit and panel.x is None


def _wald(att: np.ndarray, vcov: np.ndarray) -> dict[str, float]:
    """Wald chi2 of att = 0, with a generalized inverse that drops null directions."""
    if len(att) == 0:
        return {"statistic": np.nan, "df": 0, "p_value": np.nan}
    eigval, eigvec = np.linalg.eigh(vcov)
    keep = eigval > eigval.max() * len(att) * np.finfo(float).eps
    proj = eigvec[:, keep].T @ att
    stat = float(np.sum(proj**2 / eigval[keep]))
    dof = int(keep.sum())
    return {"statistic": stat, "df": dof, "p_value": float(dist.chi2.sf(stat, dof))}


def _critical(level: float, df: int | None) -> float:
    """Two-sided critical value: normal, or t(df) when clustered above the unit."""
    q = 0.5 + level / 2
    return float(dist.norm.ppf(q) if df is None else dist.t.ppf(q, df))


def _two_sided_p(tstat: np.ndarray, df: int | None) -> np.ndarray:
    return 2 * (dist.norm.sf(np.abs(tstat)) if df is None else dist.t.sf(np.abs(tstat), df))


def _add_inference(frame: pd.DataFrame, col: str, z: float, df: int | None = None) -> pd.DataFrame:
    est, se = frame[col].to_numpy(), frame["se"].to_numpy()
    frame["ci_low"] = est - z * se
    frame["ci_high"] = est + z * se
    with np.errstate(invalid="ignore", divide="ignore"):
        frame["p_value"] = _two_sided_p(est / se, df)
    return frame


def staggered_did(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    control: Control = "never",
    anticipation: int = 0,
    cluster: str | None = None,
    covariates: list[str] | None = None,
    base_period: BasePeriod = "varying",
    level: float = 0.95,
    bootstrap: bool = True,
    n_boot: int = 999,
    seed: int | None = 0,
    boot_weights: BootWeights | None = None,
    est_method: EstMethod = "dr",
) -> StaggeredResult:
    """Group-time ATTs under staggered adoption (Callaway and Sant'Anna 2021), as R ``did``.

    ``data`` is a long panel, one row per unit and period. ``time`` and ``cohort`` are
    integers on the same scale: years, or months as a running integer
    ``year * 12 + month - 1``; ``cohort`` is the first treated period, 0 or NaN for
    never treated. Each ATT(g,t) is the 2x2 DiD of cohort g against never-treated
    (``control="never"``) or not-yet-treated units (treated after max(t, base) +
    anticipation), with base period g - 1 - anticipation for post periods and, with
    ``base_period="varying"``, t - 1 for pre periods (R ``did``'s default). With
    ``covariates`` (values in the base period) each cell is the doubly-robust DiD of
    Sant'Anna and Zhao (2020) (``est_method="dr"``, R's default) or the
    outcome-regression DiD (``"reg"``); without covariates all coincide. Standard errors are analytic from
    influence functions, clustered by ``cluster`` (default: unit). By unit they equal R
    ``did``'s analytic se (normal critical values). When ``cluster`` groups several
    units, the variance gets the CRV1 cluster factor G/(G-1) and intervals and p-values
    use t(G-1) (Cameron and Miller 2015, sec. VI; R ``did`` has neither): with treatment
    assigned by cluster the plain version covered 92.7% (calibrate_staggered.py). Uniform bands
    of aggregations use a seeded multiplier bootstrap (``bootstrap``, ``n_boot``,
    ``boot_weights``) at cluster level. By unit (or with covariates) each draw is divided
    by the analytic se, as R ``did`` (Mammen weights by default). When ``cluster`` groups
    several units the band is a wild cluster bootstrap-t (Webb weights by default): each
    draw is divided by its own re-estimated se, because an event time resting on the
    few treated clusters of one cohort has a noisy se and t-like tails that the sup over
    event times reaches; dividing by the analytic se covered all event times jointly
    only 88.6-90% of the time at 95% (calibrate_staggered.py, 100 clusters).
    """
    if control not in _CONTROLS:
        raise InputError(f"staggered_did: control must be one of {_CONTROLS}, got {control!r}")
    if base_period not in _BASES:
        raise InputError(f"staggered_did: base_period must be one of {_BASES}, got {base_period!r}")
    if boot_weights is not None and boot_weights not in BOOT_WEIGHTS:
        raise InputError(
            f"staggered_did: boot_weights must be one of {BOOT_WEIGHTS} or None, got {boot_weights!r}"
        )
    if est_method not in ("dr", "reg"):
        raise InputError(f"staggered_did: est_method must be 'dr' or 'reg', got {est_method!r}")
    if int(anticipation) != anticipation or anticipation < 0:
        raise InputError(f"staggered_did: anticipation must be an integer >= 0, got {anticipation!r}")
    if not 0 < level < 1:
        raise InputError(f"staggered_did: level must be in (0, 1), got {level!r}")

    panel = build_panel(
        data, outcome, unit, time, cohort, control, int(anticipation), cluster, covariates, est_method
    )
    cells = estimate_cells(panel, define_cells(panel, control, int(anticipation), base_period))
    if boot_weights is None:
        boot_weights = "webb" if _studentized_band(panel) else "mammen"
    elif boot_weights == "mammen" and bootstrap and _studentized_band(panel):
        warnings.warn("staggered_did: Mammen weights in the studentized (clustered) band lose its tails: "
                      "joint coverage 0.89 against 0.94-0.95 with 'webb' or 'rademacher' (test_multiplier.py "
                      "design); use boot_weights=None for the default", UserWarning, stacklevel=2)
    z = _critical(level, panel.df)
    att_gt = cells[["cohort", "time", "att", "se"]].copy()
    att_gt = _add_inference(att_gt, "att", z, panel.df).drop(columns="p_value")
    att_gt[["n_treated", "n_control", "post"]] = cells[["n_treated", "n_control", "post"]]
    att_gt[["cohort", "time"]] = att_gt[["cohort", "time"]].astype(int)
    info = {
        "n_units": panel.n, "n_periods": len(panel.times), "n_clusters": panel.n_clusters,
        "cohort_sizes": dict(zip(panel.cohorts.astype(int).tolist(), panel.cohort_sizes[:-1].tolist())),
        "n_never_treated": int(panel.cohort_sizes[-1]),
        "n_dropped_unbalanced": panel.n_dropped_unbalanced,
        "n_dropped_treated_first_period": panel.n_dropped_early,
        "n_periods_dropped_no_never_treated": panel.n_periods_dropped,
        "control": control, "anticipation": int(anticipation), "base_period": base_period,
        "level": level, "bootstrap": bootstrap, "n_boot": n_boot, "seed": seed,
        "boot_weights": boot_weights,
        "method": ({"dr": "doubly robust", "reg": "outcome regression"}[est_method]
                   + " on " + ", ".join(covariates) if covariates else "unconditional 2x2 DiD")
        + f", control={control}, anticipation={anticipation}, base_period={base_period}",
        "df": panel.df,
        "inference": "analytic influence function, clustered by " + (cluster or unit)
        + (f", small-sample factor G/(G-1) and t({panel.df}) critical values (G = {panel.n_clusters})"
           if panel.df is not None else ", normal"),
    }
    return StaggeredResult(att_gt=att_gt, info=info, _panel=panel, _cells=cells)
