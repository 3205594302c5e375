"""Size and power of the pre-trend tests on the demo's assignment structures.

For each staggered demo theme, keep its analysis panel (units, clusters, adoption
cohorts: e.g. whole ambiti adopting, 14 per cohort) and replace the outcome with
unit effects + common period shocks + noise (parallel trends hold), optionally adding
cluster x period shocks, or a differential linear trend of the treated units (a
violation). Prints the rejection rate at 5% of the leads test (-event_window..-1) with
the chi2 reference, of the same Wald statistic with the restricted wild cluster
bootstrap, of the bootstrap mean-lead t, and of the combined (min-p) bootstrap test
that stage 30 uses (``pretrend_test(method="wild_bootstrap")["p_value"]``).

    .venv/bin/python benchmarks/calibrate_pretrend.py [--reps 200] [--n-boot 399]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from osservatorio import paths
from osservatorio.data.sources import load_sources
from osservatorio.evaluate import staggered_did
from osservatorio.indicators.panel import build_panel
from osservatorio.themes import load_theme

THEMES = ["coprogettazione-anziani", "cooperative-aree-interne", "patti-beni-comuni", "case-comunita"]


def simulate(panel: pd.DataFrame, rng: np.random.Generator, cluster_sd: float, trend: float) -> np.ndarray:
    units, ui = np.unique(panel["unit"].to_numpy(), return_inverse=True)
    times, ti = np.unique(panel["time"].to_numpy(), return_inverse=True)
    clusters, ci = np.unique(panel["cluster"].astype(str).to_numpy(), return_inverse=True)
    y = rng.normal(size=len(units))[ui] + rng.normal(size=len(times))[ti] + rng.normal(size=len(panel))
    y += cluster_sd * rng.normal(size=(len(clusters), len(times)))[ci, ti]
    return y + trend * (panel["cohort"].to_numpy() > 0) * ti


def run(panel: pd.DataFrame, theme, reps: int, n_boot: int, cluster_sd: float, trend: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    rej = {"chi2": 0, "wald_boot": 0, "mean_boot": 0, "combined": 0}
    for r in range(reps):
        y = simulate(panel, rng, cluster_sd, trend)
        res = staggered_did(panel.assign(y=y), "y", "unit", "time", "cohort", control=theme.comparison,
                            cluster="cluster", bootstrap=False)
        out = res.pretrend_test(on="event", window=theme.event_window, method="wild_bootstrap",
                                n_boot=n_boot, seed=r)
        rej["chi2"] += out["p_value_chi2"] < 0.05
        rej["wald_boot"] += out["p_value_wald"] < 0.05
        rej["mean_boot"] += out["p_value_mean_lead"] < 0.05
        rej["combined"] += out["p_value"] < 0.05
    return {k: v / reps for k, v in rej.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--n-boot", type=int, default=399)
    args = ap.parse_args()
    sources = load_sources(paths.demo_dir())
    for i, tid in enumerate(THEMES):
        theme = load_theme(tid)
        panel = build_panel(sources, theme)
        n_tr = panel.loc[panel["cohort"] > 0, "cluster"].nunique()
        print(f"{tid}: {panel['unit'].nunique()} units, {panel['cluster'].nunique()} clusters "
              f"({n_tr} treated), leads -{theme.event_window}..-1")
        scenarios = [("null, iid noise", 0.0, 0.0), ("null, cluster x period shocks sd 0.5", 0.5, 0.0),
                     ("violation: treated trend 0.1 sd/period", 0.0, 0.1)]
        if theme.frequency == "month":  # slow: null and a trend of 0.01 sd/month
            scenarios = [("null, iid noise", 0.0, 0.0), ("violation: treated trend 0.01 sd/month", 0.0, 0.01)]
        for name, cl_sd, trend in scenarios:
            t0 = time.perf_counter()
            out = run(panel, theme, args.reps, args.n_boot, cl_sd, trend, seed=100 * i + int(10 * cl_sd) + int(1000 * trend))
            print(f"  {name}: rejection at 5% (reps {args.reps}) chi2 {out['chi2']:.3f}, bootstrap: "
                  f"Wald {out['wald_boot']:.3f}, mean lead {out['mean_boot']:.3f}, combined {out['combined']:.3f} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
