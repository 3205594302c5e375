"""Reference numbers for osservatorio.evaluate.few_treated from the `wildboottest` package.

Run from the repository root with the peer installed (`pip install wildboottest==0.3.2`):

    .venv/bin/python tests/reference/few_treated/make_reference.py

Writes ``panel.csv`` (a small seeded staggered DiD panel: 10 clusters x 2 units x 8
periods, heteroskedastic cluster shocks) and ``wildboottest.json``. The peer has no
fixed-effect absorption, so unit and period dummies are passed as regressors (this is
exactly the TWFE model); the null ``beta = beta0`` is imposed by testing 0 on
``y - beta0 * d``. Rademacher weights with B = 9999 > 2^10 trigger full enumeration in
the peer, so its p-values are deterministic. The peer's t statistics use k = all
dummy columns in the small-sample factor; ours counts only non-nested fixed effects,
so t statistics are compared after rescaling by sqrt(ssc_ours / ssc_peer) (the
p-values do not depend on the factor).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import wildboottest
from wildboottest.wildboottest import WildboottestCL

HERE = Path(__file__).resolve().parent
BETA0S = [0.0, 0.5, -0.3, 1.2]


def make_panel(seed: int = 20261125) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_clusters, units_per, n_times = 10, 2, 8
    rows = []
    adopt = {0: 3, 1: 3, 2: 5, 3: 6}  # clusters 0-3 treated, staggered; others never
    cluster_sd = rng.uniform(0.5, 2.0, n_clusters)
    for g in range(n_clusters):
        shock = rng.normal(0, cluster_sd[g], n_times)
        for u in range(units_per):
            unit_fe = rng.normal()
            for t in range(n_times):
                d = int(g in adopt and t >= adopt[g])
                y = unit_fe + 0.3 * t + 0.8 * d + shock[t] + rng.normal(0, 0.5)
                rows.append({"cluster": f"c{g:02d}", "unit": f"u{g:02d}{u}", "time": 2020 + t,
                             "d": d, "y": y})
    return pd.DataFrame(rows)


def peer(panel: pd.DataFrame, beta0: float) -> dict:
    unit_d = pd.get_dummies(panel["unit"], dtype=float).to_numpy()
    time_d = pd.get_dummies(panel["time"], dtype=float).to_numpy()[:, 1:]
    X = np.column_stack([panel["d"].to_numpy(float), unit_d, time_d])
    Y = panel["y"].to_numpy(float) - beta0 * panel["d"].to_numpy(float)
    R = np.zeros(X.shape[1])
    R[0] = 1.0
    clu = pd.factorize(panel["cluster"], sort=True)[0]
    wb = WildboottestCL(X=X, Y=Y, cluster=clu, R=R, B=9999, seed=1, parallel=False)
    wb.get_scores(bootstrap_type="11", impose_null=True)
    _, _, enumerated = wb.get_weights(weights_type="rademacher")
    wb.get_numer()
    wb.get_denom()
    wb.get_tboot()
    wb.get_vcov()
    wb.get_tstat()
    wb.get_pvalue(pval_type="two-tailed")
    return {"beta0": beta0, "p_value": float(wb.pvalue), "t_stat": float(np.ravel(wb.t_stat)[0]),
            "t_boot": np.ravel(wb.t_boot).tolist(), "ssc": float(wb.ssc),
            "full_enumeration": bool(enumerated), "n_boot": int(wb.B)}


def main() -> None:
    panel = make_panel()
    panel.to_csv(HERE / "panel.csv", index=False)
    panel = pd.read_csv(HERE / "panel.csv")
    out = {"peer": f"wildboottest {getattr(wildboottest, '__version__', '0.3.2')} WildboottestCL, "
                   "bootstrap_type='11', impose_null=True, rademacher, B=9999",
           "tests": [peer(panel, b) for b in BETA0S]}
    (HERE / "wildboottest.json").write_text(json.dumps(out, indent=1))
    for t in out["tests"]:
        print(t["beta0"], t["p_value"], t["t_stat"], t["full_enumeration"], t["n_boot"])


if __name__ == "__main__":
    main()
