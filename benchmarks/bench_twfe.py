"""Benchmark: osservatorio twfe vs pyfixest.feols on every comune x 120 months.

Builds a national monthly panel (all comuni with a population, 120 months, about
950k rows) with staggered adoption and clusters by province, times
``twfe(..., cluster="provincia")`` against
``pyfixest.feols("y ~ d | comune + month", vcov={"CRV1": "provincia"})`` on the same
data (best of 3 after a warm-up call, so numba/rust start-up is excluded), checks the
coefficient (1e-8) and the standard error (1e-6 relative), and reports the time
ratio and the peak traced memory. Repeats on an unbalanced panel (10% of rows
dropped at random).

Run: ``.venv/bin/python benchmarks/bench_twfe.py``. Targets: balanced twfe time at
most 1/4 of pyfixest; unbalanced no slower than pyfixest.
"""

from __future__ import annotations

import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd
import pyfixest as pf

from osservatorio.data.reference import comuni
from osservatorio.evaluate.twfe import twfe

N_MONTHS = 120
SEED = 20240501


def build_panel(seed: int = SEED) -> pd.DataFrame:
    """Every comune x 120 months; staggered adoption more likely in larger comuni."""
    rng = np.random.default_rng(seed)
    ref = comuni().dropna(subset=["popolazione"])
    n_units = len(ref)
    logpop = np.log(ref["popolazione"].to_numpy())
    p_adopt = 1 / (1 + np.exp(-(logpop - np.median(logpop))))
    adopt = rng.random(n_units) < 0.6 * p_adopt
    cohort = np.where(adopt, rng.integers(24, 108, n_units), 0)
    unit = np.repeat(ref["codice_istat"].to_numpy(), N_MONTHS)
    month = np.tile(np.arange(N_MONTHS, dtype=np.int64), n_units)
    cohort_rows = np.repeat(cohort, N_MONTHS)
    d = ((cohort_rows > 0) & (month >= cohort_rows)).astype(np.float64)
    unit_effect = np.repeat(rng.normal(0, 2, n_units), N_MONTHS)
    season = np.sin(2 * np.pi * month / 12)
    y = unit_effect + 0.01 * month + season + 0.5 * d + rng.normal(0, 1, unit.size)
    return pd.DataFrame({
        "comune": unit, "month": month,
        "provincia": np.repeat(ref["sigla_provincia"].to_numpy(), N_MONTHS),
        "d": d, "y": y,
    })


def best_of(fn, repeats: int = 3) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def peak_memory_mb(fn) -> float:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def compare(label: str, data: pd.DataFrame) -> dict:
    def ours():
        return twfe(data, "y", "d", "comune", "month", cluster="provincia")

    def theirs():
        return pf.feols("y ~ d | comune + month", data, vcov={"CRV1": "provincia"})

    theirs()  # warm-up: JIT / first-call costs
    ours()
    t_ours, res = best_of(ours)
    t_theirs, fit = best_of(theirs)
    b, s = float(fit.coef()["d"]), float(fit.se()["d"])
    coef_diff = abs(res.estimate - b)
    se_rel = abs(res.se / s - 1)
    out = {
        "panel": label, "rows": len(data), "n_obs": res.n_obs, "n_clusters": res.n_clusters,
        "twfe_s": t_ours, "pyfixest_s": t_theirs, "ratio": t_ours / t_theirs,
        "coef_absdiff": coef_diff, "se_reldiff": se_rel,
        "coef_ok": coef_diff <= 1e-8 * max(1.0, abs(b)), "se_ok": se_rel <= 1e-6,
        "twfe_peak_mb": peak_memory_mb(ours), "pyfixest_peak_mb": peak_memory_mb(theirs),
    }
    return out


def main() -> None:
    warnings.filterwarnings("ignore")
    panel = build_panel()
    rng = np.random.default_rng(SEED + 1)
    unbalanced = panel.loc[rng.random(len(panel)) >= 0.10].reset_index(drop=True)
    rows = [compare("balanced", panel), compare("unbalanced (10% dropped)", unbalanced)]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(pd.DataFrame(rows).to_string(index=False))
    print(f"pyfixest {pf.__version__}; targets: balanced ratio <= 0.25, unbalanced <= 1")


if __name__ == "__main__":
    main()
