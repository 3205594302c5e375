"""Reference numbers for osservatorio.evaluate.synth from `pysyncon` (test peer).

    .venv/bin/python tests/reference/synth/make_reference.py

Writes ``panel.csv``: a seeded factor-model panel (20 donors + 1 treated unit "T",
30 periods, treatment from period 21 with effect +3; two covariates x1, x2), and
``pysyncon.json``:

- ``outcome_only``: donor weights matching pre-treatment outcomes (periods 1-20) with
  an identity V. pysyncon scales each predictor row by its standard deviation across
  units before applying V, so ``custom_V = sd**2`` undoes the scaling and leaves the
  plain problem ``min ||Y1_pre - Y0_pre w||^2`` on the simplex. Also every in-space
  placebo (each donor treated, the other donors as pool): gaps and RMSPEs.
- ``predictors``: Abadie's nested problem with predictors x1, x2, y averaged over the
  pre-treatment periods, V chosen by pysyncon's Nelder-Mead from equal weights; and
  the inner problem alone for a fixed V = (0.2, 0.3, 0.5), with its objective
  ``(X1 - X0 w)' V (X1 - X0 w)`` on the scaled predictors. With 3 predictors and 20
  donors the inner minimiser is not unique (many weight vectors fit exactly), so only
  objectives, not weights, are comparable in this mode.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from pysyncon import Dataprep, Synth

HERE = Path(__file__).resolve().parent
T_PRE, T_ALL = 20, 30


def make_panel(seed: int = 11252026) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_donors = 20
    loadings = rng.uniform(0, 2, size=(n_donors, 2))
    treated_loading = loadings[:5].mean(axis=0)  # inside the donors' hull
    factors = np.cumsum(rng.normal(0, 1, size=(T_ALL, 2)), axis=0)
    trend = np.linspace(10, 15, T_ALL)
    rows = []
    for j, lam in enumerate([*loadings, treated_loading]):
        name = "T" if j == n_donors else f"d{j:02d}"
        y = trend + factors @ lam + rng.normal(0, 0.3, T_ALL)
        if name == "T":
            y[T_PRE:] += 3.0
        x1 = lam[0] + rng.normal(0, 0.1, T_ALL)
        x2 = lam[1] * 2 + rng.normal(0, 0.1, T_ALL)
        for t in range(T_ALL):
            rows.append({"unit": name, "time": t + 1, "y": y[t], "x1": x1[t], "x2": x2[t]})
    return pd.DataFrame(rows)


def fit_outcome_only(wide: pd.DataFrame, target: str, donors: list[str]) -> dict:
    pre = wide.index <= T_PRE
    Z0, Z1 = wide.loc[pre, donors], wide.loc[pre, target]
    scale = pd.concat([Z0, Z1], axis=1).std(axis=1)
    synth = Synth()
    synth.fit(X0=Z0, X1=Z1, Z0=Z0, Z1=Z1, custom_V=(scale**2).to_numpy())
    w = np.asarray(synth.W)
    gap = wide[target].to_numpy() - wide[donors].to_numpy() @ w
    return {"weights": dict(zip(donors, w.tolist())), "gap": gap.tolist(),
            "pre_rmspe": float(np.sqrt(np.mean(gap[:T_PRE] ** 2))),
            "post_rmspe": float(np.sqrt(np.mean(gap[T_PRE:] ** 2)))}


def fit_predictors(panel: pd.DataFrame, donors: list[str]) -> dict:
    prep = Dataprep(foo=panel, predictors=["x1", "x2", "y"], predictors_op="mean",
                    dependent="y", unit_variable="unit", time_variable="time",
                    treatment_identifier="T", controls_identifier=donors,
                    time_predictors_prior=range(1, T_PRE + 1),
                    time_optimize_ssr=range(1, T_PRE + 1))
    synth = Synth()
    synth.fit(dataprep=prep, optim_method="Nelder-Mead", optim_initial="equal")
    fixed = Synth()
    v_fixed = np.array([0.2, 0.3, 0.5])
    fixed.fit(dataprep=prep, custom_V=v_fixed)
    X0, X1 = prep.make_covariate_mats()
    X = pd.concat([X0, X1], axis=1)
    X = X.divide(X.std(axis=1), axis=0)
    resid = X["T"].to_numpy() - X[donors].to_numpy() @ np.asarray(fixed.W)
    return {"weights": dict(zip(donors, np.asarray(synth.W).tolist())),
            "v": np.asarray(synth.V).tolist(), "loss_v": float(synth.loss_V),
            "fixed_v": v_fixed.tolist(), "fixed_v_objective": float(resid @ (v_fixed * resid)),
            "fixed_v_weights": dict(zip(donors, np.asarray(fixed.W).tolist()))}


def main() -> None:
    make_panel().to_csv(HERE / "panel.csv", index=False)
    panel = pd.read_csv(HERE / "panel.csv")
    wide = panel.pivot(index="time", columns="unit", values="y").sort_index()
    donors = [u for u in wide.columns if u != "T"]
    out = {"peer": "pysyncon 1.7.0 Synth", "outcome_only": fit_outcome_only(wide, "T", donors),
           "placebos": {j: fit_outcome_only(wide, j, [u for u in donors if u != j])
                        for j in donors},
           "predictors": fit_predictors(panel, donors)}
    (HERE / "pysyncon.json").write_text(json.dumps(out, indent=1))
    print({k: round(v, 4) for k, v in out["outcome_only"]["weights"].items() if v > 1e-4})
    print("predictors loss_V", out["predictors"]["loss_v"], "V", out["predictors"]["v"])


if __name__ == "__main__":
    main()
