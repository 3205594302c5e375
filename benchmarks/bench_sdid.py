"""Benchmark osservatorio.evaluate.sdid against the Python ports of R ``synthdid``.

National yearly panel: every comune in ``osservatorio.data.reference.comuni()`` x 10
years (2015-2024), 10 comuni adopting together in 2020, outcome with comune and year
effects, a rank-3 interactive term and noise. Times the sdid estimate and its placebo
variance (R's default 200 replications) for ours and, in the same run, for the peers:
``synthdid-py`` (the port that reproduces R, test peer) and ``mad-sdid`` (whose noise level divides by n, not n - 1, so its estimate differs from
R's in the fifth digit). The peers
take seconds per replication, so they run ``--peer-reps`` replications and their
200-replication time is extrapolated (per-replication time x 200 + the estimate), which
is said in the output. Prints both estimates (ours and synthdid-py's must agree to 1e-6)
and the placebo se of ours and synthdid-py's on the same draws.

    .venv/bin/python benchmarks/bench_sdid.py [--reps 200] [--peer-reps 5]

Last run (2 cores shared with other jobs, load about 4): ours 105.9 s for the estimate
and 200 placebo replications; synthdid-py 556 s (2.2 s + 2.77 s per replication, 5
timed), mad-sdid 633 s (2.3 s + 3.15 s, 5 timed): ours / fastest peer = 0.19. Estimates
1.5354932941 (ours and synthdid-py, difference 7e-14; mad-sdid 1.5349546053); the
placebo se on the same 5 draws equal to 10 digits.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from osservatorio.data.reference import comuni
from osservatorio.evaluate.sdid import synthetic_did


def national_panel(seed: int = 0, n_treated: int = 10) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    codes = np.sort(comuni()["codice_istat"].astype(int).to_numpy())
    years = np.arange(2015, 2025)
    n, t = len(codes), len(years)
    load = rng.normal(size=(n, 3))
    y = (50 + rng.normal(scale=5, size=(n, 1)) + np.cumsum(rng.normal(size=t))
         + load @ np.cumsum(rng.normal(size=(t, 3)), axis=0).T + rng.normal(size=(n, t)))
    treated = rng.choice(n, size=n_treated, replace=False)
    d = np.zeros((n, t), int)
    d[np.ix_(treated, years >= 2020)] = 1
    y = y + 1.0 * d
    return pd.DataFrame({"comune": np.repeat(codes, t), "anno": np.tile(years, n),
                         "y": y.ravel(), "d": d.ravel()})


def peer_synthdid_py(df: pd.DataFrame, reps: int, seed: int):
    import synthdid

    t0 = time.perf_counter()
    pm = synthdid.panel_matrices(df, unit="comune", time="anno", outcome="y", treatment="d")
    est = synthdid.synthdid_estimate(pm.Y, pm.N0, pm.T0)
    t1 = time.perf_counter()
    se = synthdid.synthdid_se(est, method="placebo", replications=reps, random_state=seed)
    t2 = time.perf_counter()
    return float(est), se, t1 - t0, (t2 - t1) / reps


def peer_mad_sdid(df: pd.DataFrame, reps: int, seed: int):
    import mad_sdid
    from mad_sdid.inference import vcov_synthdid

    t0 = time.perf_counter()
    pm = mad_sdid.panel_matrices(df, "comune", "anno", "y", "d")
    est = mad_sdid.synthdid_estimate(pm["Y"], pm["N0"], pm["T0"])
    t1 = time.perf_counter()
    np.random.seed(seed)
    se = float(np.sqrt(vcov_synthdid(est, method="placebo", replications=reps)))
    t2 = time.perf_counter()
    return est.estimate, se, t1 - t0, (t2 - t1) / reps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--peer-reps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    df = national_panel(args.seed)
    n_units = df["comune"].nunique()
    print(f"panel: {n_units} comuni x {df['anno'].nunique()} years, 10 treated from 2020; "
          f"placebo variance, {args.reps} replications")

    t0 = time.perf_counter()
    ours = synthetic_did(df, "y", "comune", "anno", "d", vcov="placebo", n_reps=args.reps,
                         seed=args.seed)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    synthetic_did(df, "y", "comune", "anno", "d", vcov="placebo", n_reps=2, seed=args.seed)
    t_est = time.perf_counter() - t0
    print(f"ours          estimate {ours.estimate:.10f}  se {ours.se:.6f}  "
          f"total {t_ours:7.1f} s  (estimate + 2 replications {t_est:.1f} s)")

    rows = []
    for name, fn in (("synthdid-py", peer_synthdid_py), ("mad-sdid", peer_mad_sdid)):
        try:
            est, se, t_fit, t_rep = fn(df, args.peer_reps, args.seed)
        except ImportError as exc:
            print(f"{name:13s} not installed ({exc})")
            continue
        total = t_fit + t_rep * args.reps
        rows.append((name, est, total))
        print(f"{name:13s} estimate {est:.10f}  se {se:.6f} ({args.peer_reps} reps)  "
              f"total {total:7.1f} s  (extrapolated: estimate {t_fit:.1f} s + "
              f"{t_rep:.2f} s x {args.reps} replications)")
    ref = {name: est for name, est, _ in rows}
    if "synthdid-py" in ref:
        diff = abs(ours.estimate - ref["synthdid-py"])
        print(f"|ours - synthdid-py| = {diff:.2e} (must be < 1e-6 relative: "
              f"{'ok' if diff <= 1e-6 * abs(ref['synthdid-py']) else 'FAILED'})")
    if rows:
        name, _, fastest = min(rows, key=lambda r: r[2])
        print(f"fastest peer: {name}; time ratio ours / {name} = {t_ours / fastest:.2f}")
    if "synthdid-py" in ref and args.peer_reps >= 2:
        small = synthetic_did(df, "y", "comune", "anno", "d", vcov="placebo",
                              n_reps=args.peer_reps, seed=args.seed)
        _, se_peer, _, _ = peer_synthdid_py(df, args.peer_reps, args.seed)
        print(f"placebo se on the same {args.peer_reps} draws: ours {small.se:.10f}, "
              f"synthdid-py {se_peer:.10f}")


if __name__ == "__main__":
    main()
