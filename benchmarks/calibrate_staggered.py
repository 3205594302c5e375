"""Calibration of osservatorio.evaluate.staggered by simulation with known truth.

Replicates small staggered panels (200 units x 8 periods, cohorts first treated in
periods 3-6 plus never-treated) with heterogeneous dynamic effects
tau(g, e) * (1 + 0.5 * eta_i), tau(g, e) = (0.5 + 0.1 (g - 3)) (1 + 0.3 e), and prints:

- coverage of the 95% CI of the simple aggregate (target 93-97%),
- the rejection rate at 5% of the simple aggregate when every effect is zero
  (target <= 7%) and of the joint pre-trend Wald test,
- coverage of the uniform (sup-t, multiplier bootstrap) event-study band for all event
  times jointly (target ~95%) and its mean critical value; per event time, the coverage
  of the pointwise 95% CI and mean(se) / sd(estimate) (is the se or the band at fault?),
- rejection of the chi2 cell pre-trend test and of the wild cluster bootstrap test on
  leads -3..-1 (pre-trends hold, so ~5% is right),
- the same with treatment assigned by cluster (600 units in 100 clusters, like comuni in
  provinces, with cluster x period shocks), standard errors and bootstrap clustered,
  not-yet-treated controls; there the se carries G/(G-1), intervals use t(G-1) and the
  band is the wild cluster bootstrap-t (studentized in each draw).

The truth uses the population cohort shares, which is what R ``did``'s influence
function (with the term for estimated weights) targets.

    .venv/bin/python benchmarks/calibrate_staggered.py [--reps 500] [--n-boot 499]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from osservatorio.evaluate.staggered import staggered_did

N_UNITS, N_PERIODS = 200, 8
N_UNITS_CL, N_CLUSTERS = 600, 100  # clustered design: ~ comuni in provinces
COHORTS = np.array([3, 4, 5, 6])
P_COHORT = np.array([0.3, 0.15, 0.2, 0.15, 0.2])  # never, 3, 4, 5, 6


def tau(g: np.ndarray, e: np.ndarray) -> np.ndarray:
    return np.where(e >= 0, (0.5 + 0.1 * (g - 3)) * (1 + 0.3 * e), 0.0)


def truths(effects: bool) -> tuple[float, dict[int, float]]:
    """Population simple ATT and event-study ATT(e) (pre-period cells are 0)."""
    p = P_COHORT[1:]
    times = np.arange(1, N_PERIODS + 1)
    scale = 1.0 if effects else 0.0
    post = [(g, t) for g in COHORTS for t in times if t >= g]
    w = np.array([p[COHORTS == g][0] for g, _ in post])
    simple = scale * float(np.sum(w * tau(np.array([g for g, _ in post]), np.array([t - g for g, t in post]))) / w.sum())
    event = {}
    for e in range(2 - COHORTS.max(), N_PERIODS - COHORTS.min() + 1):
        gs = [g for g in COHORTS if 2 <= g + e <= N_PERIODS]
        pg = np.array([p[COHORTS == g][0] for g in gs])
        event[e] = scale * float(np.sum(pg * tau(np.array(gs), np.full(len(gs), e))) / pg.sum())
    return simple, event


def simulate(rng: np.random.Generator, effects: bool, clustered: bool) -> pd.DataFrame:
    """One long panel: unit and period effects, iid noise, optional cluster shocks."""
    t = np.arange(1, N_PERIODS + 1)
    n_units = N_UNITS_CL if clustered else N_UNITS
    cl = rng.integers(0, N_CLUSTERS, n_units)
    if clustered:
        g_cl = rng.choice(np.r_[0, COHORTS], size=N_CLUSTERS, p=P_COHORT)
        g = g_cl[cl]
        shock = rng.normal(scale=0.7, size=(N_CLUSTERS, N_PERIODS))[cl]
    else:
        g = rng.choice(np.r_[0, COHORTS], size=n_units, p=P_COHORT)
        shock = 0.0
    alpha = rng.normal(size=n_units) + 0.5 * (g == 4)  # levels differ by cohort
    eta = rng.normal(size=n_units)
    e = t[None, :] - g[:, None]
    eff = tau(np.broadcast_to(g[:, None], e.shape), e) * (1 + 0.5 * eta[:, None]) * (g[:, None] > 0)
    y = alpha[:, None] + 0.2 * t[None, :] + shock + (eff if effects else 0.0) + rng.normal(size=(n_units, N_PERIODS))
    return pd.DataFrame({
        "id": np.repeat(np.arange(n_units), N_PERIODS), "t": np.tile(t, n_units),
        "g": np.repeat(g, N_PERIODS), "cl": np.repeat(cl, N_PERIODS), "y": y.ravel(),
    })


def run(reps: int, n_boot: int, effects: bool, clustered: bool, seed: int) -> dict[str, float]:
    simple_true, event_true = truths(effects)
    rng = np.random.default_rng(seed)
    cover = reject = band = pre_reject = pre_boot = done = 0
    est, ses, events, crits = [], [], [], []
    for r in range(reps):
        df = simulate(rng, effects, clustered)
        try:
            res = staggered_did(
                df, "y", "id", "t", "g", control="notyet" if clustered else "never",
                cluster="cl" if clustered else None, n_boot=n_boot, seed=r,
            )
            s = res.aggregate("simple")
            ev = res.aggregate("event")
        except Exception:  # a degenerate draw (e.g. an empty cohort) is skipped and counted
            continue
        done += 1
        est.append(s.estimate)
        ses.append(s.se)
        cover += s.ci_low <= simple_true <= s.ci_high
        reject += s.p_value < 0.05
        truth = ev["event_time"].map(event_true).to_numpy()
        band += bool(np.all((ev["cband_low"] <= truth) & (truth <= ev["cband_high"])))
        crits.append(ev.attrs["critical_value"])
        events.append(ev.assign(truth=truth))
        pre_reject += res.pretrend_test()["p_value"] < 0.05
        pre_boot += res.pretrend_test(on="event", window=3, method="wild_bootstrap", n_boot=199,
                                      seed=r)["p_value"] < 0.05
    ev = pd.concat(events)
    ev["covered"] = (ev["ci_low"] <= ev["truth"]) & (ev["truth"] <= ev["ci_high"])
    by_e = ev.groupby("event_time")
    per_event = pd.DataFrame({
        "coverage": by_e["covered"].mean(),
        "se_over_sd": by_e["se"].mean() / by_e["estimate"].std(ddof=1),
    })
    return {
        "reps": done, "per_event": per_event, "mean_critical_value": float(np.mean(crits)),
        "coverage_simple": cover / done, "reject_simple": reject / done,
        "band_coverage_event": band / done, "reject_pretrend": pre_reject / done,
        "reject_pretrend_boot": pre_boot / done,
        "sd_estimate": float(np.std(est, ddof=1)), "mean_se": float(np.mean(ses)),
        "bias": float(np.mean(est) - simple_true),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=500)
    ap.add_argument("--n-boot", type=int, default=499)
    args = ap.parse_args()
    designs = [
        ("unit-level, effects, never-treated controls", True, False),
        ("unit-level, true null", False, False),
        ("cluster-assigned, effects, not-yet-treated, clustered", True, True),
        ("cluster-assigned, true null, clustered", False, True),
    ]
    for i, (name, effects, clustered) in enumerate(designs):
        t0 = time.perf_counter()
        out = run(args.reps, args.n_boot, effects, clustered, seed=1000 + i)
        print(f"{name} ({out['reps']} reps, {time.perf_counter() - t0:.0f} s)")
        print(f"  simple ATT: bias {out['bias']:+.4f}, sd {out['sd_estimate']:.4f}, mean se {out['mean_se']:.4f}")
        if effects:
            print(f"  coverage of 95% CI of simple ATT: {out['coverage_simple']:.3f} (target 0.93-0.97)")
        else:
            print(f"  rejection rate of simple ATT at 5%: {out['reject_simple']:.3f} (target <= 0.07)")
        print(f"  coverage of uniform event-study band: {out['band_coverage_event']:.3f} (target ~0.95), "
              f"mean critical value {out['mean_critical_value']:.3f}")
        pe = out["per_event"]
        print("  event time:           " + " ".join(f"{int(e):>6d}" for e in pe.index))
        print("  pointwise CI coverage:" + " ".join(f"{c:6.3f}" for c in pe["coverage"]))
        print("  mean se / sd:         " + " ".join(f"{r:6.3f}" for r in pe["se_over_sd"]))
        print(f"  rejection rate of pre-trend chi2 Wald test on cells at 5%: {out['reject_pretrend']:.3f} (pre-trends hold)")
        print(f"  rejection rate of wild-bootstrap test on leads -3..-1 at 5%: {out['reject_pretrend_boot']:.3f}")


if __name__ == "__main__":
    main()
