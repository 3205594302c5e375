"""Reference numbers for osservatorio.evaluate.twfe from pyfixest.

Writes two simulated panels (fixed seed) to CSV and, for each case, pyfixest's
coefficients, standard errors, p-values, intervals, N and number of clusters to
``reference.json``. The tests read these files, so CI needs no pyfixest.

Run from the repository root: ``.venv/bin/python tests/reference/twfe/make_reference.py``
(pyfixest 0.60; defaults: fixef_rm="singleton", ssc(k_adj=True, k_fixef="nonnested",
G_adj=True); fixef_tol tightened to 1e-13 so the reference is exact to ~1e-12).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf

HERE = Path(__file__).parent
SEED = 20240611
N_UNITS, N_PERIODS, FIRST_YEAR = 120, 10, 2014


def make_panels(seed: int = SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Balanced panel with staggered adoption, districts of ~8 units, weights, a covariate.

    The unbalanced panel drops 15% of rows at random and keeps only one row of
    two units, which become singletons (pyfixest drops them by default).
    """
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(N_UNITS), N_PERIODS)
    year = np.tile(np.arange(FIRST_YEAR, FIRST_YEAR + N_PERIODS), N_UNITS)
    cohort = rng.choice([0, 2016, 2018, 2020], N_UNITS, p=[0.4, 0.2, 0.2, 0.2])
    cohort_rows = np.repeat(cohort, N_PERIODS)
    d = ((cohort_rows > 0) & (year >= cohort_rows)).astype(float)
    x = rng.normal(size=unit.size) + 0.3 * d
    effect = 1.0 + 0.2 * np.clip(year - cohort_rows, 0, None) * d
    y = (np.repeat(rng.normal(0, 2, N_UNITS), N_PERIODS) + 0.3 * (year - FIRST_YEAR)
         + effect * d + 0.5 * x + rng.normal(size=unit.size) * (1 + 0.5 * (unit % 3)))
    balanced = pd.DataFrame({
        "unit": unit, "year": year, "district": unit // 8, "cohort": cohort_rows,
        "d": d, "x": x, "w": rng.uniform(0.5, 3.0, unit.size).round(3), "y": y,
    })
    keep = rng.random(unit.size) >= 0.15
    for u in (5, 77):
        rows = np.flatnonzero(unit == u)
        keep[rows] = False
        keep[rows[3]] = True
    unbalanced = balanced.loc[keep].reset_index(drop=True)
    return balanced, unbalanced


CASES = [
    # name, panel, formula, vcov, weights
    ("balanced_unit", "balanced", "y ~ d | unit + year", {"CRV1": "unit"}, None),
    ("balanced_district", "balanced", "y ~ d | unit + year", {"CRV1": "district"}, None),
    ("balanced_cov_weights", "balanced", "y ~ d + x | unit + year", {"CRV1": "unit"}, "w"),
    ("balanced_hc1", "balanced", "y ~ d | unit + year", "hetero", None),
    ("balanced_iid", "balanced", "y ~ d | unit + year", "iid", None),
    ("unbalanced_unit", "unbalanced", "y ~ d | unit + year", {"CRV1": "unit"}, None),
    ("unbalanced_district", "unbalanced", "y ~ d + x | unit + year", {"CRV1": "district"}, None),
    ("unbalanced_weights", "unbalanced", "y ~ d | unit + year", {"CRV1": "district"}, "w"),
]


def fit_case(data: pd.DataFrame, formula: str, vcov, weights) -> dict:
    fit = pf.feols(formula, data, vcov=vcov, weights=weights, fixef_tol=1e-13)
    ci = fit.confint(alpha=0.05)
    return {
        "coef": {k: float(v) for k, v in fit.coef().items()},
        "se": {k: float(v) for k, v in fit.se().items()},
        "p_value": {k: float(v) for k, v in fit.pvalue().items()},
        "ci_low": {k: float(v) for k, v in ci.iloc[:, 0].items()},
        "ci_high": {k: float(v) for k, v in ci.iloc[:, 1].items()},
        "n_obs": int(fit._N),
        "n_clusters": int(np.min(fit._G)) if getattr(fit, "_is_clustered", False) else None,
    }


def main() -> None:
    warnings.filterwarnings("ignore")
    panels = dict(zip(("balanced", "unbalanced"), make_panels()))
    for name, frame in panels.items():
        frame.to_csv(HERE / f"panel_{name}.csv", index=False)
    out = {"pyfixest": pf.__version__, "seed": SEED, "cases": {}}
    for name, panel, formula, vcov, weights in CASES:
        ref = fit_case(panels[panel], formula, vcov, weights)
        out["cases"][name] = {"panel": panel, "formula": formula, "vcov": vcov,
                              "weights": weights, **ref}
    (HERE / "reference.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
