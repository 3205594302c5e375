"""Calibration of osservatorio.selection.power: simulated power at the computed MDE (target 80%)
and size at zero effect (target 5%), for post-only and DiD cluster designs.

Units have random intercepts (ICC of the grid) and i.i.d. noise; the test is the unit-level
two-sample t test the formulas describe. Run: .venv/bin/python benchmarks/calibrate_power.py
"""

from __future__ import annotations

import itertools
import time

import numpy as np
from scipy import stats

from osservatorio.selection.power import mde

REPS = 20_000


def simulate(rng, nt, nc, m_pre, m_post, icc, effect, design):
    n = nt + nc
    y = rng.normal(0, np.sqrt(icc), (REPS, n, 1)) + rng.normal(0, np.sqrt(1 - icc), (REPS, n, m_pre + m_post))
    y[:, :nt, m_pre:] += effect
    post = y[:, :, m_pre:].mean(axis=2)
    vals = post if design == "post" else post - y[:, :, :m_pre].mean(axis=2)
    p = stats.ttest_ind(vals[:, :nt], vals[:, nt:], axis=1).pvalue
    return float(np.mean(p < 0.05))


def main() -> None:
    rng = np.random.default_rng(20261125)
    t0 = time.time()
    print(f"{'design':6} {'icc':>4} {'nt':>3} {'nc':>3} {'pre':>3} {'post':>4} {'MDE':>7} {'power@MDE':>10} {'size':>6}")
    worst = 0.0
    for design, icc, (nt, nc), (m_pre, m_post) in itertools.product(
            ["post", "did"], [0.1, 0.4, 0.7], [(10, 10), (30, 20)], [(3, 3), (12, 6)]):
        d = mde(1.0, icc, nt, nc, m_post, m_pre, design)
        pw = simulate(rng, nt, nc, m_pre, m_post, icc, d, design)
        size = simulate(rng, nt, nc, m_pre, m_post, icc, 0.0, design)
        worst = max(worst, abs(pw - 0.8))
        print(f"{design:6} {icc:4.1f} {nt:3d} {nc:3d} {m_pre:3d} {m_post:4d} {d:7.3f} {pw:10.3f} {size:6.3f}")
    se = np.sqrt(0.8 * 0.2 / REPS)
    print(f"largest |power - 0.80| = {worst:.3f} (Monte Carlo SE {se:.4f}); {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
