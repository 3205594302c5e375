"""Synthetic difference-in-differences (Arkhangelsky, Athey, Hirshberg, Imbens & Wager,
"Synthetic Difference-in-Differences", AER 111(12), 2021), as R ``synthdid`` computes it.

Estimators (R ``synthdid_estimate``, ``sc_estimate``, ``did_estimate``). With ``N0``
control and ``N1`` treated units, ``T0`` pre- and ``T1`` post-periods, the noise level
``sigma`` is the standard deviation of the first differences of the controls'
pre-period outcomes;

- ``sdid``: unit weights ``omega`` (ridge ``zeta_omega = (N1 T1)^(1/4) sigma``, with
  intercept) and time weights ``lambda`` (``zeta_lambda = 1e-6 sigma``, with intercept),
  each by Frank-Wolfe (``sdid_solver``: 100 iterations, sparsify, up to 10,000, stop
  when an iteration gains less than ``(1e-5 sigma)^2``);
- ``sc``: unit weights with ``zeta_omega = 1e-6 sigma`` and no intercept, time weights
  zero (the effect is the post-period gap);
- ``did``: uniform weights.

The effect is ``(-omega, 1/N1)' Y (-lambda, 1/T1)``.

Variance (R ``vcov.synthdid_estimate``, Algorithms 2-4 of the paper):

- ``placebo``: ``n_reps`` times, ``N1`` controls drawn at random play the treated
  (a permutation of the controls, the last ``N1`` treated); weights re-estimated from
  the fitted ones (R's warm start; same regularisation); se = sqrt((r-1)/r) sd.
  Needs more controls than treated units; the only method with one treated unit.
- ``bootstrap``: units resampled with replacement (a draw with no treated or no control
  unit is drawn again), weights re-estimated as above; se = sqrt((r-1)/r) sd.
- ``jackknife``: leave one unit out with the fitted weights held fixed (omega
  renormalised); deterministic. Needs >= 2 treated units and > 1 control with
  positive weight (R returns NA otherwise; here an ``InputError`` up front).
- ``auto``: placebo with one treated unit; bootstrap from ``BOOTSTRAP_MIN_TREATED``
  (10) treated units; the fixed-weights jackknife in between (placebo instead when a
  staggered cohort has a single unit, where the jackknife is undefined). The paper
  justifies the bootstrap and the jackknife as the number of treated units grows
  (section 5: Algorithms 2-3 rest on N1 large; Algorithm 4, the placebo, is for few
  treated units and assumes errors alike across units). With few treated units no
  method is calibrated: in benchmarks/calibrate_sdid.py (30 units, 8 + 4 periods,
  rank-2 factors redrawn per panel, treatment selected on a loading) the 95% interval
  of sdid covered 92.2% with one treated unit (placebo, 500 panels) but with 5 treated
  units 78.2% by jackknife (500 panels) and 73.5% by placebo (200 panels): the
  estimate's spread includes the imperfect balance of the factors, which no variance
  method sees. The jackknife is kept for 2-9 treated units: no worse here, and
  deterministic.

Intervals are ``estimate -/+ z se`` with the normal quantile, p-values normal two-sided.
Draws use ``numpy.random.default_rng(seed)``: a placebo replication is
``rng.permutation(N0)``, a bootstrap one ``sort(rng.integers(0, N, N))`` (as the
Python port ``synthdid-py``, so both give the same replications for the same seed).

Staggered adoption (Clarke, Pailañir, Athey & Imbens, "Synthetic difference-in-
differences estimation", Stata Journal 2023; Stata ``sdid``): one estimate per adoption
cohort against the never-treated units over all periods (its own pre/post split), the
ATT the average weighted by treated unit-periods ``N1_a T1_a``. Variance as Stata's
``sdid``: bootstrap resamples all units (weights and regularisation re-estimated on each
resample, warm-started from the fitted weights, cohorts re-weighted by their resampled
sizes); placebo gives the treated units' adoption dates to randomly drawn never-treated
units and re-estimates; jackknife leaves one unit out with fixed weights and needs >= 2
treated units in every cohort. With one adoption date the R algorithms above are used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from osservatorio import distributions
from osservatorio.evaluate import sdid_solver as solver
from osservatorio.evaluate.results import EffectResult
from osservatorio.exceptions import EstimationError, InputError

Method = Literal["sdid", "sc", "did"]
Vcov = Literal["auto", "placebo", "jackknife", "bootstrap"]
METHODS = ("sdid", "sc", "did")
VCOVS = ("auto", "placebo", "jackknife", "bootstrap")
BOOTSTRAP_MIN_TREATED = 10
_METHOD_NAMES = {"sdid": "synthetic DiD (Arkhangelsky et al. 2021)",
                 "sc": "synthetic control (synthdid sc_estimate)",
                 "did": "difference-in-differences (synthdid did_estimate)"}
_CHUNK = 20_000_000  # doubles per batch of replications (about 160 MB)


@dataclass(frozen=True)
class SynthDidResult:
    """A synthetic DiD (or SC, DiD) estimate with its variance, weights and figure data.

    ``estimate`` is in outcome units (the average effect on the treated unit-periods).
    ``unit_weights``: omega by control unit (a frame with a cohort column when
    adoption is staggered); ``time_weights``: lambda by pre-period (likewise).
    ``cohorts``: cohort, estimate, n_treated, n_post, treated_unit_periods, weight.
    ``series``: cohort, time, treated (mean of the treated units), synthetic (omega-
    weighted controls, as R's ``synthdid_plot`` draws it), synthetic_shifted (moved by
    the lambda-weighted pre-period gap: R's ``overlay = 1``), time_weight.
    """

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    level: float
    method: str
    vcov: str
    n_reps: int | None
    n_treated: int
    n_control: int
    n_pre: int
    n_post: int
    n_obs: int
    unit_weights: pd.Series | pd.DataFrame
    time_weights: pd.Series | pd.DataFrame
    cohorts: pd.DataFrame
    series: pd.DataFrame
    replicates: np.ndarray | None = None

    @property
    def effect(self) -> EffectResult:
        """The estimate as an ``EffectResult`` saying what was done."""
        staggered = len(self.cohorts) > 1
        method = _METHOD_NAMES[self.method] + (
            f", staggered adoption ({len(self.cohorts)} cohorts vs never treated, "
            "Clarke et al. 2023)" if staggered else "")
        what = {"placebo": "placebo variance", "bootstrap": "bootstrap variance",
                "jackknife": "fixed-weights jackknife variance"}[self.vcov]
        reps = f", {self.n_reps} replications" if self.n_reps else ""
        return EffectResult(
            estimate=self.estimate, se=self.se, ci_low=self.ci_low, ci_high=self.ci_high,
            p_value=self.p_value, n_obs=self.n_obs, n_treated=self.n_treated,
            n_control=self.n_control, method=method,
            inference=f"{what}{reps}, normal interval", level=self.level,
            extra={"n_pre": self.n_pre, "n_post": self.n_post, "vcov": self.vcov},
        )


def synthetic_did(data: pd.DataFrame, outcome: str, unit: str, time: str, treated: str, *,
                  method: Method = "sdid", vcov: Vcov = "auto", n_reps: int = 200,
                  level: float = 0.95, seed: int = 0) -> SynthDidResult:
    """Synthetic DiD of ``outcome`` on a balanced long panel with absorbing 0/1 ``treated``.

    ``method``: "sdid", "sc" or "did"; ``vcov``: "auto", "placebo", "jackknife" or
    "bootstrap" (see the module docstring); ``n_reps`` replications for placebo and
    bootstrap; ``seed`` their random draws.
    """
    _check_options(method, vcov, n_reps, level)
    panel = _panel(data, outcome, unit, time, treated)
    return _estimate(panel, method, vcov, n_reps, level, seed)


def synthdid_compare(data: pd.DataFrame, outcome: str, unit: str, time: str, treated: str, *,
                     vcov: Vcov = "auto", n_reps: int = 200, level: float = 0.95,
                     seed: int = 0) -> dict[str, SynthDidResult]:
    """sdid, sc and did on the same panel with the same variance method and draws."""
    _check_options("sdid", vcov, n_reps, level)
    panel = _panel(data, outcome, unit, time, treated)
    chosen = _choose_vcov(panel, vcov)
    return {m: _estimate(panel, m, chosen, n_reps, level, seed) for m in METHODS}


# --- input ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Panel:
    Y: np.ndarray  # units x periods, never-treated first, then by adoption, then label
    units: pd.Index
    periods: pd.Index
    adoption: np.ndarray  # first treated column per unit, -1 never treated

    @property
    def n_control(self) -> int:
        return int((self.adoption < 0).sum())

    @property
    def cohorts(self) -> np.ndarray:
        return np.unique(self.adoption[self.adoption >= 0])


def _check_options(method, vcov, n_reps, level) -> None:
    if method not in METHODS:
        raise InputError(f"method must be one of {list(METHODS)}, got {method!r}")
    if vcov not in VCOVS:
        raise InputError(f"vcov must be one of {list(VCOVS)}, got {vcov!r}")
    if not isinstance(n_reps, (int, np.integer)) or n_reps < 2:
        raise InputError(f"n_reps must be an integer >= 2, got {n_reps!r}")
    if not 0 < level < 1:
        raise InputError(f"level must be between 0 and 1, got {level!r}")


def _panel(data: pd.DataFrame, outcome: str, unit: str, time: str, treated: str) -> _Panel:
    missing = [c for c in (outcome, unit, time, treated) if c not in data.columns]
    if missing:
        raise InputError(f"columns not found in data: {missing}")
    df = data[[unit, time, outcome, treated]]
    if df.isna().any().any():
        bad = [c for c in df.columns if df[c].isna().any()]
        raise InputError(f"missing values in column(s) {bad}")
    if df.duplicated([unit, time]).any():
        raise InputError(f"data has more than one row per ({unit}, {time})")
    if not df[treated].isin([0, 1]).all():
        raise InputError(f"{treated!r} must be 0/1")
    y = df.pivot(index=unit, columns=time, values=outcome).sort_index().sort_index(axis=1)
    if y.isna().any().any():
        raise InputError(f"the panel must be balanced: every {unit} observed in every {time}")
    w = df.pivot(index=unit, columns=time, values=treated).loc[y.index, y.columns].to_numpy(int)
    if (np.diff(w, axis=1) < 0).any():
        raise InputError(f"{treated!r} must be absorbing: once 1, a unit stays treated")
    ever = w.any(axis=1)
    if not ever.any():
        raise InputError(f"no treated unit: {treated!r} is never 1")
    if ever.all():
        raise InputError("no control unit: every unit is treated at some point")
    adoption = np.where(ever, w.argmax(axis=1), -1)
    if (adoption == 0).any():
        raise InputError(f"units treated from the first period ({time} = {y.columns[0]!r}) "
                         "have no pre-treatment period")
    if (adoption[ever] < 2).any():
        raise InputError("every adoption cohort needs >= 2 pre-treatment periods "
                         "(the noise level uses first differences)")
    order = np.lexsort((np.arange(len(y)), adoption))  # controls (-1) first; labels sorted
    return _Panel(Y=y.to_numpy(float)[order], units=y.index[order], periods=y.columns,
                  adoption=adoption[order])


def _choose_vcov(panel: _Panel, vcov: str) -> str:
    n1 = int((panel.adoption >= 0).sum())
    n0 = panel.n_control
    singles = [g for g in panel.cohorts if (panel.adoption == g).sum() < 2]
    if vcov == "auto":
        if n1 == 1:
            vcov = "placebo"
        elif n1 >= BOOTSTRAP_MIN_TREATED:
            vcov = "bootstrap"
        elif not singles:
            vcov = "jackknife"
        else:  # a cohort of one unit: no jackknife (Stata sdid)
            vcov = "placebo" if n0 > n1 else "bootstrap"
    if n1 == 1 and vcov != "placebo":
        raise InputError(f"vcov={vcov!r} needs >= 2 treated units; with one treated unit "
                         "only 'placebo' (or 'auto') is allowed")
    if vcov == "placebo" and n0 <= n1:
        raise InputError(f"vcov='placebo' needs more control units ({n0}) than treated ({n1})")
    if vcov == "jackknife" and singles:
        raise InputError("vcov='jackknife' needs >= 2 treated units in every adoption "
                         f"cohort; cohort {panel.periods[singles[0]]!r} has 1")
    return vcov


# --- one cohort ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Fit:
    estimate: float
    omega: np.ndarray
    lam: np.ndarray
    zeta_omega: float
    zeta_lambda: float
    min_decrease: float


def _noise(Yc_pre: np.ndarray) -> np.ndarray:
    """sd (ddof 1) of first differences of control pre-period rows; ``(..., n, T0)``."""
    d = np.diff(Yc_pre, axis=-1)
    d = d.reshape(*d.shape[:-2], -1)
    return d.std(axis=-1, ddof=1)


def _zetas(method: str, noise, n1, t1):
    eta_omega = (np.asarray(n1, float) * t1) ** 0.25 if method == "sdid" else 1e-6
    return eta_omega * noise, 1e-6 * noise, 1e-5 * noise


def _fit_cohort(Y: np.ndarray, n0: int, t0: int, method: str) -> _Fit:
    """R's estimator on one block: rows ``:n0`` controls, columns ``:t0`` pre."""
    n1, t1 = Y.shape[0] - n0, Y.shape[1] - t0
    noise = float(_noise(Y[:n0, :t0]))
    zo, zl, md = _zetas(method, noise, n1, t1)
    ctrl = np.arange(n0)[None, :]
    trt = np.arange(n0, Y.shape[0])[None, :]
    init_o = np.full((1, n0), 1 / n0)
    init_l = np.full((1, t0), 1 / t0)
    omega, lam = _weights(Y, ctrl, trt, t0, method, zo, zl, md, init_o, init_l)
    est = _taus(Y, ctrl, trt, t0, omega, lam)[0]
    return _Fit(float(est), omega[0], lam[0], float(zo), float(zl), float(md))


def _weights(Y, ctrl, trt, t0, method, zo, zl, md, init_o, init_l, shared_controls=None):
    """Unit and time weights of ``B`` problems on rows ``ctrl[b]`` (controls) and
    ``trt[b]`` (treated) of ``Y``; entries -1 in ``ctrl``/``trt`` are padding.
    ``shared_controls`` (placebo): ``ctrl`` are positions in ``Y[:n]`` without
    repeats, and the unit-weight problem uses all ``n`` columns with a mask."""
    B = ctrl.shape[0]
    if method == "did":
        valid = ctrl >= 0
        omega = valid / valid.sum(axis=1, keepdims=True)
        return omega, np.full((B, t0), 1 / t0)
    lam = np.zeros((B, t0))
    omega = np.empty(ctrl.shape)
    per = max(1, _CHUNK // max(1, ctrl.shape[1] * (t0 + 1)))
    for s in range(0, B, per):
        sl = slice(s, s + per)
        c, tr = ctrl[sl], trt[sl]
        cv, tv = c >= 0, tr >= 0
        n0 = cv.sum(axis=1)
        Yc = np.where(cv[:, :, None], Y[np.where(cv, c, 0)], 0.0)  # (b, m, T)
        pre, post = Yc[:, :, :t0], Yc[:, :, t0:].mean(axis=2)
        if method == "sdid":
            A_l = pre - pre.sum(axis=1, keepdims=True) / n0[:, None, None]
            b_l = post - post.sum(axis=1, keepdims=True) / n0[:, None]
            A_l *= cv[:, :, None]
            b_l *= cv
            lam[sl] = solver.fit_weights(A_l, b_l, init_l[sl], _at(zl, sl), _at(md, sl), nrow=n0)
        Yt = np.where(tv[:, :, None], Y[np.where(tv, tr, 0)][:, :, :t0], 0.0)
        b_o = Yt.sum(axis=1) / tv.sum(axis=1)[:, None]  # (b, t0) treated pre mean
        intercept = method == "sdid"
        if intercept:
            b_o = b_o - b_o.mean(axis=1, keepdims=True)
        if shared_controls is not None:
            n = shared_controls
            A_o = Y[:n, :t0].T
            if intercept:
                A_o = A_o - A_o.mean(axis=0)
            mask = np.zeros((c.shape[0], n), bool)
            np.put_along_axis(mask, c, True, axis=1)
            x0 = np.zeros((c.shape[0], n))
            np.put_along_axis(x0, c, init_o[sl], axis=1)
            x = solver.fit_weights(A_o, b_o, x0, _at(zo, sl), _at(md, sl), mask=mask)
            omega[sl] = np.take_along_axis(x, c, axis=1)
        else:
            A_o = np.swapaxes(pre, 1, 2)
            if intercept:
                A_o = A_o - A_o.mean(axis=1, keepdims=True)
            A_o = A_o * cv[:, None, :]
            omega[sl] = solver.fit_weights(A_o, b_o, init_o[sl], _at(zo, sl), _at(md, sl), mask=cv)
    return omega, lam


def _at(v, sl):
    v = np.asarray(v, float)
    return v if v.ndim == 0 else v[sl]


def _taus(Y, ctrl, trt, t0, omega, lam) -> np.ndarray:
    """``(-omega, 1/N1)' Y (-lambda, 1/T1)`` for each problem (padding -1 ignored)."""
    post = Y[:, t0:].mean(axis=1)
    out = np.empty(ctrl.shape[0])
    for b in range(ctrl.shape[0]):
        c, tr = ctrl[b][ctrl[b] >= 0], trt[b][trt[b] >= 0]
        d_c = post[c] - Y[c, :t0] @ lam[b]
        d_t = post[tr] - Y[tr, :t0] @ lam[b]
        out[b] = d_t.mean() - omega[b][ctrl[b] >= 0] @ d_c
    return out


def _pad(rows: list[np.ndarray]) -> np.ndarray:
    m = max(len(r) for r in rows)
    out = np.full((len(rows), m), -1, dtype=int)
    for k, r in enumerate(rows):
        out[k, : len(r)] = r
    return out


# --- orchestration -------------------------------------------------------------------


def _estimate(panel: _Panel, method: str, vcov: str, n_reps: int, level: float,
              seed: int) -> SynthDidResult:
    vcov = _choose_vcov(panel, vcov)
    n0, T = panel.n_control, panel.Y.shape[1]
    fits, rows = {}, {}
    for g in panel.cohorts:
        rows[g] = np.r_[np.arange(n0), np.flatnonzero(panel.adoption == g)]
        fits[g] = _fit_cohort(panel.Y[rows[g]], n0, int(g), method)
    n1 = {g: len(rows[g]) - n0 for g in fits}
    w = np.array([n1[g] * (T - g) for g in fits], float)
    taus = np.array([fits[g].estimate for g in fits])
    att = float(w @ taus / w.sum())
    rng = np.random.default_rng(seed)
    replicates = None
    if len(fits) == 1:
        (g,) = fits
        if vcov == "jackknife":
            se = _jackknife_block(panel.Y, n0, int(g), fits[g])
        else:
            replicates = _replicates_block(panel.Y, n0, int(g), fits[g], method, vcov, n_reps, rng)
            se = _rep_se(replicates)
    elif vcov == "jackknife":
        se = _jackknife_staggered(panel, fits)
    else:
        replicates = _replicates_staggered(panel, fits, method, vcov, n_reps, rng)
        se = _rep_se(replicates)
    z = float(distributions.norm.ppf(0.5 + level / 2))
    p = float(2 * distributions.norm.sf(abs(att / se))) if se > 0 else float("nan")
    return SynthDidResult(
        estimate=att, se=se, ci_low=att - z * se, ci_high=att + z * se, p_value=p,
        level=level, method=method, vcov=vcov,
        n_reps=None if vcov == "jackknife" else n_reps,
        n_treated=int((panel.adoption >= 0).sum()), n_control=n0,
        n_pre=int(min(fits)), n_post=int(T - min(fits)), n_obs=int(panel.Y.size),
        unit_weights=_unit_weights(panel, fits), time_weights=_time_weights(panel, fits),
        cohorts=pd.DataFrame({
            "cohort": [panel.periods[g] for g in fits], "estimate": taus,
            "n_treated": [n1[g] for g in fits], "n_post": [T - g for g in fits],
            "treated_unit_periods": w.astype(int), "weight": w / w.sum()}),
        series=_series(panel, fits, rows), replicates=replicates,
    )


def _rep_se(draws: np.ndarray) -> float:
    r = len(draws)
    return float(np.sqrt((r - 1) / r) * np.std(draws, ddof=1))


# --- variance: one adoption date, as R vcov.synthdid_estimate ------------------------


def _replicates_block(Y, n0, t0, fit: _Fit, method, vcov, n_reps, rng) -> np.ndarray:
    """Placebo (Algorithm 4) or bootstrap (Algorithm 2) estimates, R's warm start and
    the fitted regularisation (R passes ``opts`` on)."""
    N = Y.shape[0]
    n1 = N - n0
    if vcov == "placebo":
        perms = np.stack([rng.permutation(n0) for _ in range(n_reps)])
        ctrl, trt = perms[:, : n0 - n1], perms[:, n0 - n1:]
        shared = n0
    else:
        draws = []
        while len(draws) < n_reps:
            ind = np.sort(rng.integers(0, N, size=N))
            k = int((ind < n0).sum())
            if 0 < k < N:
                draws.append(ind)
        ctrl = _pad([d[d < n0] for d in draws])
        trt = _pad([d[d >= n0] for d in draws])
        shared = None
    init_o = _init_omega(fit.omega, ctrl)
    init_l = np.tile(fit.lam, (len(ctrl), 1))
    omega, lam = _weights(Y, ctrl, trt, t0, method, fit.zeta_omega, fit.zeta_lambda,
                          fit.min_decrease, init_o, init_l, shared_controls=shared)
    return _taus(Y, ctrl, trt, t0, omega, lam)


def _init_omega(omega: np.ndarray, ctrl: np.ndarray) -> np.ndarray:
    valid = ctrl >= 0
    w = np.where(valid, omega[np.where(valid, ctrl, 0)], 0.0)
    s = w.sum(axis=1, keepdims=True)
    uniform = valid / valid.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s != 0, w / s, uniform)


def _jackknife_block(Y, n0, t0, fit: _Fit) -> float:
    """Algorithm 3: leave one unit out, weights fixed (omega renormalised)."""
    if np.count_nonzero(fit.omega) == 1:
        raise EstimationError("the jackknife needs more than one control with positive weight "
                              "(R returns NA); use vcov='placebo' or 'bootstrap'")
    d = Y[:, t0:].mean(axis=1) - Y[:, :t0] @ fit.lam
    u = _loo(d[:n0], d[n0:], fit.omega)
    N = len(u)
    return float(np.sqrt((N - 1) / N * (N - 1) * np.var(u, ddof=1)))


def _loo(d_c, d_t, omega):
    """Leave-one-out estimates: each control (omega renormalised), then each treated."""
    tot = omega @ d_c
    rest = omega.sum() - omega
    n0 = len(d_c)
    with np.errstate(invalid="ignore", divide="ignore"):
        ctrl_part = np.where(rest > 0, (tot - omega * d_c) / rest,
                             (d_c.sum() - d_c) / max(n0 - 1, 1))
    u_c = d_t.mean() - ctrl_part
    n1 = len(d_t)
    u_t = (d_t.sum() - d_t) / (n1 - 1) - tot if n1 > 1 else np.full(n1, np.nan)
    return np.r_[u_c, u_t]


# --- variance: staggered adoption, as Stata sdid -------------------------------------


def _replicates_staggered(panel: _Panel, fits: dict, method, vcov, n_reps, rng) -> np.ndarray:
    """Bootstrap or placebo ATTs: per replication, every cohort re-estimated (noise level
    and regularisation recomputed, weights warm-started from the fitted ones) and the
    cohorts re-weighted by their treated unit-periods in the replication."""
    n0, (N, T) = panel.n_control, panel.Y.shape
    adoption = panel.adoption
    if vcov == "placebo":
        pattern = adoption[adoption >= 0]
        k = len(pattern)
        reps = []
        for _ in range(n_reps):
            perm = rng.permutation(n0)
            fake = np.full(n0, -1)
            fake[perm[:k]] = pattern
            reps.append((perm[k:], perm[:k], fake))
    else:
        reps = []
        while len(reps) < n_reps:
            ind = np.sort(rng.integers(0, N, size=N))
            c = int((adoption[ind] < 0).sum())
            if 0 < c < N:
                reps.append((ind[adoption[ind] < 0], ind[adoption[ind] >= 0], adoption))
    tau = np.full((n_reps, len(fits)), np.nan)
    wts = np.zeros((n_reps, len(fits)))
    for j, g in enumerate(fits):
        which = [b for b, (_, tr, lab) in enumerate(reps) if (lab[tr] == g).any()]
        if not which:
            continue
        ctrl = _pad([reps[b][0] for b in which])
        trt = _pad([reps[b][1][reps[b][2][reps[b][1]] == g] for b in which])
        valid = ctrl >= 0
        pre = np.where(valid[:, :, None], panel.Y[np.where(valid, ctrl, 0), :g], np.nan)
        d = np.diff(pre, axis=2).reshape(len(which), -1)
        noise = np.nanstd(d, axis=1, ddof=1)
        n1 = (trt >= 0).sum(axis=1)
        zo, zl, md = _zetas(method, noise, n1, T - g)
        init_o = _init_omega(fits[g].omega, ctrl)
        init_l = np.tile(fits[g].lam, (len(which), 1))
        omega, lam = _weights(panel.Y, ctrl, trt, g, method, zo, zl, md, init_o, init_l,
                              shared_controls=n0 if vcov == "placebo" else None)
        tau[which, j] = _taus(panel.Y, ctrl, trt, g, omega, lam)
        wts[which, j] = n1 * (T - g)
    return np.nansum(tau * wts, axis=1) / wts.sum(axis=1)


def _jackknife_staggered(panel: _Panel, fits: dict) -> float:
    """Leave one unit out with every cohort's weights fixed; cohorts re-weighted."""
    n0, (N, T) = panel.n_control, panel.Y.shape
    tau = np.empty((N, len(fits)))
    wts = np.empty((N, len(fits)))
    for j, (g, fit) in enumerate(fits.items()):
        d = panel.Y[:, g:].mean(axis=1) - panel.Y[:, :g] @ fit.lam
        members = np.flatnonzero(panel.adoption == g)
        d_t = d[members]
        tot = fit.omega @ d[:n0]
        u = _loo(d[:n0], d_t, fit.omega)
        tau[:, j] = d_t.mean() - tot  # units of other cohorts: this cohort unchanged
        wts[:, j] = len(members) * (T - g)
        tau[:n0, j] = u[:n0]
        tau[members, j] = u[n0:]
        wts[members, j] = (len(members) - 1) * (T - g)
    att = (tau * wts).sum(axis=1) / wts.sum(axis=1)
    return float(np.sqrt((N - 1) / N * (N - 1) * np.var(att, ddof=1)))


# --- result frames -------------------------------------------------------------------


def _unit_weights(panel: _Panel, fits: dict) -> pd.Series | pd.DataFrame:
    controls = panel.units[: panel.n_control]
    if len(fits) == 1:
        (fit,) = fits.values()
        return pd.Series(fit.omega, index=controls, name="omega")
    return pd.concat([pd.DataFrame({"cohort": panel.periods[g], "unit": controls,
                                    "omega": f.omega}) for g, f in fits.items()],
                     ignore_index=True)


def _time_weights(panel: _Panel, fits: dict) -> pd.Series | pd.DataFrame:
    if len(fits) == 1:
        ((g, fit),) = fits.items()
        return pd.Series(fit.lam, index=panel.periods[:g], name="lambda")
    return pd.concat([pd.DataFrame({"cohort": panel.periods[g], "time": panel.periods[:g],
                                    "lambda": f.lam}) for g, f in fits.items()],
                     ignore_index=True)


def _series(panel: _Panel, fits: dict, rows: dict) -> pd.DataFrame:
    """Per cohort and period: treated mean, omega-weighted controls, the same shifted by
    the lambda-weighted pre-period gap (R synthdid_plot with overlay = 1), lambda."""
    n0, T = panel.n_control, panel.Y.shape[1]
    out = []
    for g, fit in fits.items():
        treated = panel.Y[rows[g][n0:]].mean(axis=0)
        synthetic = fit.omega @ panel.Y[:n0]
        gap = (treated[:g] - synthetic[:g]) @ fit.lam
        lam = np.r_[fit.lam, np.full(T - g, np.nan)]
        out.append(pd.DataFrame({"cohort": panel.periods[g], "time": panel.periods,
                                 "treated": treated, "synthetic": synthetic,
                                 "synthetic_shifted": synthetic + gap, "time_weight": lam,
                                 "post": np.arange(T) >= g}))
    return pd.concat(out, ignore_index=True)
