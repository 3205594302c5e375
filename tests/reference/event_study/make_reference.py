"""Reference numbers for osservatorio.evaluate.event_study from pyfixest.

Uses the panels committed in ``tests/reference/twfe`` (staggered adoption, column
``cohort`` = first treated year, 0 = never treated). Event-time indicators are built
here independently with pyfixest's ``i(rel, ref=-1)``; never-treated rows get
``rel = -1`` (the reference, so all indicators are zero); endpoints are binned with
``clip`` or, for the trimmed case, treated rows outside the window are dropped.
The joint pre-trend statistic is pyfixest's ``wald_test`` (chi2 form W; the test
compares W / q).

Run from the repository root:
``.venv/bin/python tests/reference/event_study/make_reference.py`` (pyfixest 0.60).
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf

HERE = Path(__file__).parent
PANELS = HERE.parent / "twfe"

CASES = [
    # name, panel, leads, lags, bin_endpoints, cluster, weights
    ("balanced_binned_unit", "balanced", 3, 3, True, "unit", None),
    ("unbalanced_binned_district", "unbalanced", 4, 3, True, "district", None),
    ("balanced_trimmed_unit", "balanced", 2, 2, False, "unit", None),
    ("balanced_binned_weights", "balanced", 3, 2, True, "district", "w"),
]


def fit_case(data: pd.DataFrame, leads: int, lags: int, binned: bool, cluster: str,
             weights: str | None) -> dict:
    data = data.copy()
    treated = data["cohort"] > 0
    rel = np.where(treated, data["year"] - data["cohort"], -1)
    if binned:
        data["rel"] = np.clip(rel, -leads, lags)
    else:
        data["rel"] = rel
        data = data.loc[~treated | ((rel >= -leads) & (rel <= lags))]
    fit = pf.feols("y ~ i(rel, ref=-1) | unit + year", data, vcov={"CRV1": cluster},
                   weights=weights, fixef_tol=1e-13)
    event_times = [int(re.search(r"(-?\d+)\]?$", name).group(1)) for name in fit.coef().index]
    leads_idx = [j for j, k in enumerate(event_times) if k < 0]
    R = np.zeros((len(leads_idx), len(event_times)))
    R[np.arange(len(leads_idx)), leads_idx] = 1.0
    wald = fit.wald_test(R=R, distribution="chi2")
    ci = fit.confint(alpha=0.05)
    return {
        "event_time": event_times,
        "estimate": fit.coef().tolist(), "se": fit.se().tolist(),
        "p_value": fit.pvalue().tolist(), "ci_low": ci.iloc[:, 0].tolist(),
        "ci_high": ci.iloc[:, 1].tolist(), "n_obs": int(fit._N),
        "n_clusters": int(np.min(fit._G)),
        "wald_chi2": float(wald["statistic"]), "wald_q": len(leads_idx),
    }


def main() -> None:
    warnings.filterwarnings("ignore")
    panels = {name: pd.read_csv(PANELS / f"panel_{name}.csv")
              for name in ("balanced", "unbalanced")}
    out = {"pyfixest": pf.__version__, "cases": {}}
    for name, panel, leads, lags, binned, cluster, weights in CASES:
        out["cases"][name] = {
            "panel": panel, "leads": leads, "lags": lags, "bin_endpoints": binned,
            "cluster": cluster, "weights": weights,
            **fit_case(panels[panel], leads, lags, binned, cluster, weights),
        }
    (HERE / "reference.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
