"""Two-way fixed effects (TWFE) regression: unit and period effects absorbed by demeaning.

``twfe`` estimates ``y_it = a_i + g_t + b * d_it + c'z_it + e_it`` without building
dummies: outcome and regressors are demeaned (see ``demean``) and OLS is run on the
residuals. Standard errors are cluster-robust (CRV1, clustered by unit unless told)
with the small-sample conventions of pyfixest/fixest (see ``covariance``).

Defaults match ``pyfixest.feols(..., vcov={"CRV1": cluster})`` of pyfixest 0.60:
rows with a missing value in any used column are dropped (and counted), and
fixed-effect singletons are dropped iteratively (``fixef_rm="singleton"``, also the
pyfixest default); ``drop_singletons=False`` keeps them (``fixef_rm="none"``).

Under staggered adoption with effects that vary across cohorts or over time the TWFE
coefficient is a weighted average that can put negative weights on some effects;
use ``osservatorio.evaluate.staggered`` there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import pandas as pd

from osservatorio import distributions as dist
from osservatorio.evaluate.covariance import Vcov, is_nested, vcov_crv1, vcov_hc1, vcov_iid
from osservatorio.evaluate.demean import demean, single_blas_thread, singleton_mask
from osservatorio.evaluate.results import EffectResult
from osservatorio.exceptions import EstimationError, InputError

VcovType = Literal["CRV1", "HC1", "iid"]


@dataclass(frozen=True)
class TwfeResult:
    """TWFE estimate of the treatment coefficient plus the full coefficient table.

    ``effect`` is the headline (units of the outcome per unit of the treatment
    variable); ``coefs`` has one row per regressor (treatment first, then covariates)
    with estimate, se, t, p_value, ci_low, ci_high; ``vcov`` is the coefficient
    covariance in the same order.
    """

    effect: EffectResult
    coefs: pd.DataFrame
    vcov: np.ndarray
    n_obs: int
    n_clusters: int | None
    n_units: int
    n_periods: int
    n_dropped_missing: int
    n_dropped_singletons: int
    df: int
    extra: dict = field(default_factory=dict)

    @property
    def estimate(self) -> float:
        return self.effect.estimate

    @property
    def se(self) -> float:
        return self.effect.se

    @property
    def ci_low(self) -> float:
        return self.effect.ci_low

    @property
    def ci_high(self) -> float:
        return self.effect.ci_high

    @property
    def p_value(self) -> float:
        return self.effect.p_value


@dataclass(frozen=True)
class PanelArrays:
    """Estimation sample as contiguous arrays: codes are 0..G-1 after all drops."""

    y: np.ndarray
    X: np.ndarray
    names: list[str]
    fe: np.ndarray  # (n, 2) Fortran-ordered codes: unit, time
    cluster: np.ndarray | None
    weights: np.ndarray | None
    n_dropped_missing: int
    n_dropped_singletons: int
    keep: np.ndarray  # boolean mask of kept rows of the input frame

    @property
    def unit(self) -> np.ndarray:
        return self.fe[:, 0]

    @property
    def time(self) -> np.ndarray:
        return self.fe[:, 1]


@dataclass(frozen=True)
class AbsorbedFit:
    """OLS on demeaned data: coefficients, covariance and the sample used."""

    beta: np.ndarray
    vcov: Vcov
    panel: PanelArrays


def twfe(
    data: pd.DataFrame,
    outcome: str,
    treatment: str,
    unit: str,
    time: str,
    cluster: str | None = None,
    covariates: Sequence[str] | None = None,
    weights: str | None = None,
    level: float = 0.95,
    vcov: VcovType = "CRV1",
    drop_singletons: bool = True,
) -> TwfeResult:
    """Estimate the TWFE coefficient of ``treatment`` on ``outcome``.

    ``treatment`` is numeric (0/1 adoption indicator or a dose); ``unit`` and
    ``time`` identify the panel (any hashable values); ``cluster`` defaults to
    ``unit`` (ignored unless ``vcov="CRV1"``); ``weights`` names a column of positive
    analytic weights (e.g. population). ``level`` is the confidence level of the
    interval. Inference: t with G-1 df for CRV1, n-K otherwise.
    """
    covariates = list(covariates or [])
    _validate(data, [outcome, treatment, unit, time, cluster, weights, *covariates], level, vcov)
    if treatment in covariates or outcome in [treatment, *covariates]:
        raise InputError("twfe: outcome, treatment and covariates must be distinct columns")
    names = [treatment, *covariates]
    X = np.empty((len(data), len(names)), order="F")
    for j, c in enumerate(names):
        X[:, j] = _numeric(data, c)
    cluster_col = (cluster or unit) if vcov == "CRV1" else None
    fit = fit_absorbed(data, _numeric(data, outcome), X, names, unit, time, cluster_col,
                       weights, vcov, drop_singletons)
    coefs = coef_table(names, fit.beta, fit.vcov, level)
    panel = fit.panel
    treated_unit = np.bincount(panel.unit, weights=(panel.X[:, 0] != 0).astype(float)) > 0
    row = coefs.iloc[0]
    effect = EffectResult(
        estimate=float(row["estimate"]), se=float(row["se"]), ci_low=float(row["ci_low"]),
        ci_high=float(row["ci_high"]), p_value=float(row["p_value"]), n_obs=int(panel.y.size),
        n_clusters=fit.vcov.n_clusters, n_treated=int(treated_unit.sum()),
        n_control=int((~treated_unit).sum()), method="TWFE (unit and period effects)",
        inference=describe_inference(fit.vcov, cluster_col), level=level,
        extra={"df": fit.vcov.df, "ssc": fit.vcov.ssc},
    )
    return TwfeResult(
        effect=effect, coefs=coefs, vcov=fit.vcov.matrix, n_obs=int(panel.y.size),
        n_clusters=fit.vcov.n_clusters, n_units=int(panel.unit.max()) + 1,
        n_periods=int(panel.time.max()) + 1, n_dropped_missing=panel.n_dropped_missing,
        n_dropped_singletons=panel.n_dropped_singletons, df=fit.vcov.df,
    )


def fit_absorbed(data: pd.DataFrame, y: np.ndarray, X: np.ndarray, names: list[str],
                 unit: str, time: str, cluster: str | None, weights: str | None,
                 vcov: VcovType = "CRV1", drop_singletons: bool = True) -> AbsorbedFit:
    """Demean ``y`` and ``X`` by unit and period, run OLS and compute the covariance."""
    panel = prepare_panel(data, y, X, names, unit, time, cluster, weights, drop_singletons)
    with single_blas_thread():
        return _fit_panel(panel, names, vcov)


def _fit_panel(panel: PanelArrays, names: list[str], vcov: VcovType) -> AbsorbedFit:
    fe = panel.fe
    stacked = np.empty((panel.y.size, 1 + panel.X.shape[1]), order="F")
    stacked[:, 0] = panel.y
    stacked[:, 1:] = panel.X
    both = demean(stacked, fe, panel.weights)
    yd, Xd = both[:, 0], both[:, 1:]
    w = panel.weights
    Xw = Xd if w is None else Xd * w[:, None]
    xtx = Xw.T @ Xd
    _check_identified(Xd, panel.X, xtx, names)
    bread = np.linalg.inv(xtx)
    beta = np.linalg.solve(xtx, Xw.T @ yd)
    resid = yd - Xd @ beta
    n_units, n_periods = int(panel.unit.max()) + 1, int(panel.time.max()) + 1
    n_fe = n_units + n_periods - 1
    if vcov == "CRV1":
        nested = [levels for codes, levels in ((panel.unit, n_units), (panel.time, n_periods))
                  if is_nested(codes, panel.cluster)]
        v = vcov_crv1(Xd, resid, panel.cluster, weights=w, n_fe_absorbed=n_fe,
                      fe_nested_in_cluster=nested, bread=bread)
    elif vcov == "HC1":
        v = vcov_hc1(Xd, resid, weights=w, n_fe_absorbed=n_fe, bread=bread)
    else:
        v = vcov_iid(Xd, resid, weights=w, n_fe_absorbed=n_fe, bread=bread)
    return AbsorbedFit(beta=beta, vcov=v, panel=panel)


def prepare_panel(data: pd.DataFrame, y: np.ndarray, X: np.ndarray, names: list[str],
                  unit: str, time: str, cluster: str | None, weights: str | None,
                  drop_singletons: bool = True) -> PanelArrays:
    """Drop rows with missing values (and singletons), factorize ids once."""
    unit_codes = pd.factorize(data[unit])[0]
    time_codes = pd.factorize(data[time])[0]
    keep = np.isfinite(y) & np.isfinite(X).all(axis=1) & (unit_codes >= 0) & (time_codes >= 0)
    cluster_codes = None
    if cluster is not None:
        cluster_codes = unit_codes if cluster == unit else pd.factorize(data[cluster])[0]
        keep &= cluster_codes >= 0
    w = None
    if weights is not None:
        w = _numeric(data, weights)
        keep &= np.isfinite(w)
        if np.any(w[keep] <= 0):
            raise InputError(f"weights column '{weights}' must be strictly positive")
    n_missing = int(keep.size - keep.sum())
    if not keep.any():
        raise EstimationError("twfe: no observations left after dropping missing values")
    fe = _fe_matrix(unit_codes, time_codes, None if n_missing == 0 else keep)
    n_singletons = 0
    if drop_singletons:
        single = singleton_mask(fe)
        n_singletons = int(single.sum())
        if n_singletons:
            keep[np.flatnonzero(keep)[single]] = False
            if not keep.any():
                raise EstimationError("twfe: no observations left after dropping singletons")
            fe = _fe_matrix(unit_codes, time_codes, keep)
    all_kept = bool(n_missing == 0 and n_singletons == 0)

    def take(a):
        return a if all_kept else a[keep]

    return PanelArrays(
        y=take(y), X=take(X), names=names, fe=fe,
        cluster=None if cluster_codes is None else (
            cluster_codes.astype(np.intp, copy=False) if all_kept
            else _recode(cluster_codes[keep])),
        weights=None if w is None else take(w), n_dropped_missing=n_missing,
        n_dropped_singletons=n_singletons, keep=keep,
    )


def _fe_matrix(unit_codes: np.ndarray, time_codes: np.ndarray,
               keep: np.ndarray | None) -> np.ndarray:
    """(n, 2) Fortran-ordered dense codes of the kept rows (contiguous columns)."""
    n = unit_codes.size if keep is None else int(keep.sum())
    fe = np.empty((n, 2), dtype=np.intp, order="F")
    if keep is None:
        fe[:, 0], fe[:, 1] = unit_codes, time_codes
    else:
        fe[:, 0], fe[:, 1] = _recode(unit_codes[keep]), _recode(time_codes[keep])
    return fe


def coef_table(names: list[str], beta: np.ndarray, vcov: Vcov, level: float) -> pd.DataFrame:
    """Coefficient table with t-based p-values and intervals on ``vcov.df`` df."""
    se = np.sqrt(np.diag(vcov.matrix))
    tstat = beta / se
    crit = dist.t.ppf(0.5 + level / 2, vcov.df)
    return pd.DataFrame({
        "term": names, "estimate": beta, "se": se, "t": tstat,
        "p_value": 2 * dist.t.sf(np.abs(tstat), vcov.df),
        "ci_low": beta - crit * se, "ci_high": beta + crit * se,
    })


def describe_inference(vcov: Vcov, cluster: str | None) -> str:
    """One line saying how intervals and p-values were computed."""
    if vcov.kind == "CRV1":
        return f"CRV1 cluster-robust by {cluster} ({vcov.n_clusters} clusters), t({vcov.df})"
    return f"{vcov.kind}, t({vcov.df})"


def _validate(data: pd.DataFrame, columns: list[str | None], level: float, vcov: str) -> None:
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    missing = [c for c in columns if c is not None and c not in data.columns]
    if missing:
        raise InputError(f"column(s) not in data: {missing}; available: {list(data.columns)}")
    if not 0 < level < 1:
        raise InputError(f"level must be strictly between 0 and 1, got {level}")
    if vcov not in get_args(VcovType):
        raise InputError(f"vcov must be one of {get_args(VcovType)}, got {vcov!r}")


def _numeric(data: pd.DataFrame, column: str) -> np.ndarray:
    col = data[column]
    if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
        raise InputError(f"column '{column}' must be numeric, got dtype {col.dtype}")
    return col.to_numpy(dtype=np.float64, na_value=np.nan)


def _recode(codes: np.ndarray) -> np.ndarray:
    """Make codes dense 0..G-1 (levels may have vanished with dropped rows)."""
    present = np.bincount(codes)
    if present.all():
        return codes.astype(np.intp, copy=False)
    new = np.cumsum(present > 0) - 1
    return new[codes].astype(np.intp)


def _check_identified(Xd: np.ndarray, X: np.ndarray, xtx: np.ndarray, names: list[str]) -> None:
    """Raise if a regressor vanishes after demeaning or the regressors are collinear."""
    for j, name in enumerate(names):
        scale = max(float(np.abs(X[:, j]).max()), 1e-300)
        if float(np.abs(Xd[:, j]).max()) <= 1e-9 * scale:
            raise EstimationError(
                f"'{name}' is collinear with the unit and period effects (no variation "
                "within units over time, or every unit treated at the same time)"
            )
    norm = np.sqrt(np.diag(xtx))
    if np.linalg.eigvalsh(xtx / np.outer(norm, norm)).min() < 1e-10:
        raise EstimationError(f"regressors {names} are collinear after absorbing the effects")
