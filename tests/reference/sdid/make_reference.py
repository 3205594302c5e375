"""Reference numbers for osservatorio.evaluate.sdid from ``synthdid-py`` 0.1.0 (test peer).

    .venv/bin/python -m pip install synthdid-py==0.1.0
    .venv/bin/python tests/reference/sdid/make_reference.py      # about 3 minutes

Peer: ``synthdid-py`` 0.1.0 (PyPI; imports as ``synthdid``), a line-by-line port of
the R package ``synthdid`` (solver, estimators, ``vcov``). Of the Python packages tried
it is the one that reproduces R's published California numbers (vignette
``synthdid.Rmd``: sdid -15.60383, sc -19.61966, did -27.34911, printed in the
package's gh-pages build); ``mad-sdid`` 0.2.1 gives sdid -15.60507 (its solver differs
from R's), ``sdid`` 0.4.0 (cvxpy, exact QP with other penalties) -12.19, ``synthdid``
0.10.1 (pins numpy 1.23) -15.60383 but rounds to 5 digits and is 20 times slower.

``california_prop99.csv`` is ``data/california_prop99.csv`` of synth-inference/synthdid
(commit 70c1ce3), ``;``-separated, unchanged: Abadie, Diamond & Hainmueller (2010)
cigarette sales per capita, 39 states x 1970-2000, California treated from 1989.

Writes ``synthdid_py.json``:

- ``published``: the R vignette / AER Table 1 figures (placebo se, 200 replications,
  ``set.seed(12345)`` in R: 8.4, 9.9, 17.7; the vignette's interval (-32.01, 0.80) gives
  the sdid se 8.37 to two decimals, the help page's example (-37.14, 5.93) 10.99: R's
  own figure moves by 2-3 units from run to run) and the vignette's rounded weights;
- ``california``: the peer's estimates, unit and time weights for sdid, sc, did, and its
  placebo se with ``random_state=0`` (200 replications; numpy draws, so not R's);
- ``block``: ``block_panel.csv``, a seeded factor panel (30 controls, 5 treated from
  period 8 of 14): estimates, weights, jackknife se, placebo and bootstrap se with
  ``random_state=0`` (200 replications) for sdid, sc, did;
- ``staggered``: ``staggered_panel.csv`` (40 never-treated, 4 units adopting at period
  7 and 3 at period 10, of 14): the peer's per-cohort estimates (``by_cohort``), the ATT
  aggregated here by hand with weights N1_a * T1_a, and the peer's fixed-weights
  jackknife se (the one staggered variance computed as Stata ``sdid`` computes it).
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import synthdid as peer

HERE = Path(__file__).resolve().parent
ESTIMATORS = {"sdid": peer.synthdid_estimate, "sc": peer.sc_estimate, "did": peer.did_estimate}


def factor_panel(n0: int, cohorts: dict[int, int], T: int, seed: int) -> pd.DataFrame:
    """Two-factor panel, loadings of treated units shifted (selection on loadings),
    effect 2 + 0.2 (t - adoption) from adoption; ``cohorts`` maps adoption period to size."""
    rng = np.random.default_rng(seed)
    n1 = sum(cohorts.values())
    N = n0 + n1
    load = rng.normal(size=(N, 2))
    load[n0:] += 0.5
    factors = np.cumsum(rng.normal(size=(T, 2)), axis=0)
    y = 10 + rng.normal(size=(N, 1)) + load @ factors.T + 0.5 * rng.normal(size=(N, T))
    adoption = np.r_[np.full(n0, T), np.repeat(list(cohorts), list(cohorts.values()))]
    t = np.arange(T)
    d = t[None, :] >= adoption[:, None]
    y = y + d * (2 + 0.2 * (t[None, :] - adoption[:, None]))
    return pd.DataFrame({"unit": np.repeat([f"u{i:02d}" for i in range(N)], T),
                         "period": np.tile(t + 1, N), "y": y.ravel().round(6),
                         "d": d.ravel().astype(int)})


def weights_of(est) -> dict:
    w, setup = est.weights, est.setup
    return {"omega": dict(zip(setup.unit_labels()[: setup.N0].tolist(), np.asarray(w.omega).tolist())),
            "lambda": dict(zip([str(t) for t in setup.period_labels()[: setup.T0]],
                               np.asarray(w.lambda_).tolist()))}


def block(Y, N0, T0, names, times, inference: bool) -> dict:
    out = {}
    for name, fn in ESTIMATORS.items():
        est = fn(Y, N0, T0, unit_names=names, time_labels=times)
        row = {"estimate": float(est), **weights_of(est),
               "placebo_se_seed0": peer.synthdid_se(est, method="placebo", replications=200,
                                                    random_state=0)}
        if inference:
            row["jackknife_se"] = peer.synthdid_se(est, method="jackknife")
            row["bootstrap_se_seed0"] = peer.synthdid_se(est, method="bootstrap",
                                                         replications=200, random_state=0)
        out[name] = row
        print(name, row["estimate"], row["placebo_se_seed0"], row.get("jackknife_se"))
    return out


def matrices(df: pd.DataFrame, unit: str, time: str, outcome: str, treated: str):
    pm = peer.panel_matrices(df, unit=unit, time=time, outcome=outcome, treatment=treated)
    return pm.Y, pm.N0, pm.T0, np.asarray(pm.units), np.asarray(pm.time)


def main() -> None:
    ca = pd.read_csv(HERE / "california_prop99.csv", sep=";")
    out = {"peer": f"synthdid-py {version('synthdid-py')}",
           "published": {
               "source": "synthdid vignettes synthdid.Rmd and paper-results.Rmd (gh-pages build "
                         "d4be2b2, 2022); Arkhangelsky et al. (2021) Table 1",
               "estimate": {"sdid": -15.60383, "sc": -19.61966, "did": -27.34911},
               "placebo_se": {"sdid": 8.4, "sc": 9.9, "did": 17.7},
               "placebo_se_sdid_from_vignette_ci": (0.80 + 32.01) / (2 * 1.96),
               # the package help page's example, another R run (seed not set): (-37.14, 5.93)
               "placebo_se_sdid_from_help_example_ci": (5.93 + 37.14) / (2 * 1.96),
               "omega_sdid_top": {"Nevada": 0.124, "New Hampshire": 0.105, "Connecticut": 0.078,
                                  "Delaware": 0.070, "Colorado": 0.058, "Illinois": 0.053},
               "lambda_sdid": {"1988": 0.427, "1986": 0.366, "1987": 0.206}}}
    out["california"] = block(*matrices(ca, "State", "Year", "PacksPerCapita", "treated"),
                              inference=False)

    bp = factor_panel(30, {7: 5}, 14, seed=20261203)
    bp.to_csv(HERE / "block_panel.csv", index=False)
    out["block"] = block(*matrices(bp, "unit", "period", "y", "d"), inference=True)

    sp = factor_panel(40, {6: 4, 9: 3}, 14, seed=20261204)
    sp.to_csv(HERE / "staggered_panel.csv", index=False)
    st = peer.staggered_synthdid_estimate(sp, unit="unit", time="period", outcome="y",
                                          treatment="d")
    cohorts = st.by_cohort
    units_periods = cohorts["n_treated"] * cohorts["n_post"]
    att = float((units_periods * cohorts["tau"]).sum() / units_periods.sum())
    out["staggered"] = {
        "cohorts": {str(int(a)): {"estimate": float(t), "n_treated": int(n), "n_post": int(p)}
                    for a, t, n, p in zip(cohorts["adoption_time"], cohorts["tau"],
                                          cohorts["n_treated"], cohorts["n_post"])},
        "att_by_hand": att, "att_peer": float(st.att),
        "jackknife_se": float(st.se(method="jackknife")),
        "omega": {str(int(a)): dict(zip(e.setup.unit_labels()[: e.setup.N0].tolist(),
                                        np.asarray(e.weights.omega).tolist()))
                  for a, e in st.estimates.items()},
        "lambda": {str(int(a)): np.asarray(e.weights.lambda_).tolist()
                   for a, e in st.estimates.items()},
    }
    print("staggered", att, st.att, out["staggered"]["jackknife_se"])
    (HERE / "synthdid_py.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
