"""Benchmark osservatorio.evaluate.staggered against the Python ports of R ``did``.

National yearly panel: every comune in ``osservatorio.data.reference.comuni()`` x 10
years (2015-2024), six adoption cohorts (2017-2022) plus never-treated, outcome with
comune effects, a common trend and heterogeneous dynamic effects. Times the ATT(g,t) +
simple aggregation with analytic standard errors for ours, moderndid and csdid in the
same run (best of ``--repeat``), checks that the simple ATT agrees (1e-8) and its se
(1e-6 relative), and prints the time ratio to the fastest peer and peak memory
(tracemalloc, Python + numpy allocations). Then runs ours on the monthly national panel
(120 months, monthly cohorts over 8 years) with every aggregation and the uniform band.

    .venv/bin/python benchmarks/bench_staggered.py [--repeat 3] [--skip-monthly]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import resource
import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd

from osservatorio.data.reference import comuni
from osservatorio.evaluate.staggered import staggered_did


def national_panel(periods: np.ndarray, cohorts: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """Long panel: one row per comune and period; cohort 0 = never treated."""
    rng = np.random.default_rng(seed)
    codes = comuni()["codice_istat"].astype(int).to_numpy()
    n, t = len(codes), len(periods)
    g = rng.choice(np.r_[0, cohorts], size=n, p=np.r_[0.4, np.full(len(cohorts), 0.6 / len(cohorts))])
    tt = np.tile(periods, n)
    gg = np.repeat(g, t)
    e = tt - gg
    effect = np.where((gg > 0) & (e >= 0), 1.0 + 0.05 * e, 0.0)
    y = np.repeat(rng.normal(size=n), t) + 0.01 * (tt - periods[0]) + effect + rng.normal(size=n * t)
    return pd.DataFrame({"comune": np.repeat(codes, t), "t": tt, "g": gg, "y": y})


def timed(fn, repeat: int):
    """Best wall time over ``repeat`` runs, the last result, and peak traced memory (MB)."""
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return best, out, peak


def ours_simple(df):
    res = staggered_did(df, "y", "comune", "t", "g", bootstrap=False)
    s = res.aggregate("simple")
    return s.estimate, s.se


PEER_METHOD = "reg"  # no covariates: "reg" and "dr" give the same numbers; "dr" is the peers' default


def moderndid_simple(df):
    import moderndid as md
    import polars as pl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = md.att_gt(data=pl.from_pandas(df), yname="y", tname="t", idname="comune", gname="g",
                      est_method=PEER_METHOD, boot=False, cband=False)
        a = md.aggte(r, type="simple", boot=False, cband=False)
    return a.overall_att, a.overall_se


def csdid_simple(df):
    from csdid.att_gt import ATTgt

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        m = ATTgt(yname="y", tname="t", idname="comune", gname="g", data=df).fit(est_method=PEER_METHOD, bstrap=False)
        a = m.aggte(typec="simple", bstrap=False)
    agg = a.atte if hasattr(a, "atte") else a
    return float(agg["overall_att"]), float(agg["overall_se"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-monthly", action="store_true")
    ap.add_argument("--peer-method", choices=["reg", "dr"], default="reg")
    args = ap.parse_args()
    global PEER_METHOD
    PEER_METHOD = args.peer_method

    yearly = national_panel(np.arange(2015, 2025), np.arange(2017, 2023))
    print(f"yearly panel: {yearly['comune'].nunique()} comuni x {yearly['t'].nunique()} years, 6 cohorts")
    t_ours, (est, se), mem_ours = timed(lambda: ours_simple(yearly), args.repeat)
    print(f"  ours       {t_ours:7.3f} s  peak {mem_ours:7.1f} MB  ATT {est:.10f} se {se:.10f}")
    peers = {}
    for name, fn in (("moderndid", moderndid_simple), ("csdid", csdid_simple)):
        try:
            t_p, (pe, ps), mem_p = timed(lambda fn=fn: fn(yearly), args.repeat)
        except Exception as exc:  # a peer failing must not hide our figures
            print(f"  {name:10s} failed: {type(exc).__name__}: {exc}")
            continue
        peers[name] = t_p
        ok_att, ok_se = abs(pe - est) <= 1e-8, abs(ps / se - 1) <= 1e-6
        print(f"  {name:10s} {t_p:7.3f} s  peak {mem_p:7.1f} MB  ATT {pe:.10f} se {ps:.10f}"
              f"  agree: att {ok_att} se {ok_se}")
    if peers:
        fastest = min(peers, key=peers.get)
        print(f"  ratio ours / fastest peer ({fastest}) = {t_ours / peers[fastest]:.3f} (target <= 0.25)")

    if args.skip_monthly:
        return
    months = np.arange(2015 * 12, 2025 * 12)
    monthly = national_panel(months, np.arange(2016 * 12, 2024 * 12))
    print(f"monthly panel: {monthly['comune'].nunique()} comuni x {len(months)} months, "
          f"{monthly.loc[monthly['g'] > 0, 'g'].nunique()} monthly cohorts")

    tracemalloc.start()
    t0 = time.perf_counter()
    res = staggered_did(monthly, "y", "comune", "t", "g", bootstrap=True, n_boot=999)
    t1 = time.perf_counter()
    s = res.aggregate("simple")
    t2 = time.perf_counter()
    ev = res.aggregate("event")
    t3 = time.perf_counter()
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    print(f"  ATT(g,t): {len(res.att_gt)} cells in {t1 - t0:.2f} s; simple {t2 - t1:.2f} s "
          f"(ATT {s.estimate:.4f} se {s.se:.4f}); event study with sup-t band "
          f"({len(ev)} event times, B=999) {t3 - t2:.2f} s; peak {peak:.0f} MB")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    print(f"  process max RSS so far (imports, peers, both panels): {rss:.0f} MB")
    print(f"  a dense units x cells float64 IF matrix would take {res.info['n_units'] * len(res.att_gt) * 8 / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
