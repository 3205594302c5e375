"""Reference numbers for osservatorio.evaluate.staggered from an independent implementation.

Peer: moderndid (Python port of R ``did``; ``att_gt`` + ``aggte`` with analytic standard
errors, ``boot=False``). Run from the repository root with the peer installed:

    .venv/bin/python tests/reference/staggered/make_reference.py

Writes ``mpdta.csv`` (R did's published example, shipped by moderndid), ``sim_panel.csv``
(a seeded simulated staggered panel with heterogeneous dynamic effects) and
``reference.json`` with, per configuration, ATT(g,t) and se, the simple / dynamic /
group / calendar aggregations (estimate, analytic se, overall summary) and the Wald
pre-test statistic. Also records ATT(g,t) for mpdta as printed by R ``did`` itself
(4 decimals, est_method="reg", never-treated; https://rstudio-pubs-static.s3.amazonaws.com/736765_c47909c746704c79922fdc03ab352edf.html).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import moderndid as md
import numpy as np
import pandas as pd
import polars as pl

HERE = Path(__file__).parent
KINDS = {"simple": "simple", "event": "dynamic", "cohort": "group", "calendar": "calendar"}

# R did 2.x output for mpdta, att_gt(est_method="reg"), printed to 4 decimals.
R_PRINTED_MPDTA = {
    "att_gt": [
        [2004, 2004, -0.0105], [2004, 2005, -0.0704], [2004, 2006, -0.1373], [2004, 2007, -0.1008],
        [2006, 2004, 0.0065], [2006, 2005, -0.0028], [2006, 2006, -0.0046], [2006, 2007, -0.0412],
        [2007, 2004, 0.0305], [2007, 2005, -0.0027], [2007, 2006, -0.0311], [2007, 2007, -0.0261],
    ],
    "pretest_p_value": 0.16812,
}


def simulate_panel(seed: int = 20211) -> pd.DataFrame:
    """600 units x 8 years, cohorts 2012/2013/2014/2016 + never, dynamic heterogeneous effects."""
    rng = np.random.default_rng(seed)
    n, years = 600, np.arange(2010, 2018)
    cohort = rng.choice([0, 2012, 2013, 2014, 2016], size=n, p=[0.35, 0.15, 0.2, 0.15, 0.15])
    prov = rng.integers(0, 60, size=n)
    x = rng.normal(size=n) + 0.5 * (cohort > 0)
    unit_fe = rng.normal(size=n) + 0.3 * (cohort == 2013)
    rows = []
    for i in range(n):
        for t in years:
            e = t - cohort[i]
            effect = (0.5 + 0.2 * e + 0.1 * (cohort[i] - 2012)) if cohort[i] and e >= 0 else 0.0
            y = unit_fe[i] + 0.1 * (t - 2010) + 0.2 * x[i] * (t - 2010) / 7 + effect + rng.normal()
            rows.append((i + 1, t, cohort[i], prov[i], round(x[i], 6), round(y, 6)))
    return pd.DataFrame(rows, columns=["id", "year", "cohort", "prov", "x", "y"])


def run_peer(df: pd.DataFrame, spec: dict) -> dict:
    """ATT(g,t), aggregations and pre-test from moderndid for one configuration."""
    kw = dict(
        yname=spec["outcome"], tname=spec["time"], idname=spec["unit"], gname=spec["cohort"],
        control_group={"never": "nevertreated", "notyet": "notyettreated"}[spec["control"]],
        anticipation=spec["anticipation"], base_period=spec["base_period"],
        est_method=spec.get("est_method", "reg"), boot=False, cband=False,
    )
    if spec.get("covariates"):
        kw["xformla"] = "~" + "+".join(spec["covariates"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = md.att_gt(data=pl.from_pandas(df), **kw)
        out = {
            "spec": spec,
            "att_gt": {"cohort": r.groups.astype(int).tolist(), "time": r.times.astype(int).tolist(),
                       "att": r.att_gt.tolist(), "se": [float(s) for s in r.se_gt]},
            "wald_statistic": None if r.wald_stat is None else float(r.wald_stat),
        }
        for ours, theirs in KINDS.items():
            a = md.aggte(r, type=theirs, boot=False, cband=False)
            agg = {"overall_estimate": float(a.overall_att), "overall_se": float(a.overall_se)}
            if ours != "simple":
                agg.update(label=np.asarray(a.event_times).astype(int).tolist(),
                           estimate=np.asarray(a.att_by_event, float).tolist(),
                           se=np.asarray(a.se_by_event, float).tolist())
            out[ours] = agg
    return out


def main() -> None:
    mpdta = md.load_mpdta().to_pandas()[["year", "countyreal", "lpop", "lemp", "first.treat"]]
    mpdta.to_csv(HERE / "mpdta.csv", index=False)
    simulate_panel().to_csv(HERE / "sim_panel.csv", index=False)
    mp = dict(file="mpdta.csv", outcome="lemp", unit="countyreal", time="year", cohort="first.treat")
    sim = dict(file="sim_panel.csv", outcome="y", unit="id", time="year", cohort="cohort")
    specs = []
    for base in (mp, sim):
        for control in ("never", "notyet"):
            for ant in (0, 1):
                specs.append(dict(base, control=control, anticipation=ant, base_period="varying"))
        specs.append(dict(base, control="notyet", anticipation=0, base_period="universal"))
        specs.append(dict(base, control="never", anticipation=1, base_period="universal"))
    specs.append(dict(mp, control="never", anticipation=0, base_period="varying", covariates=["lpop"], est_method="dr"))
    specs.append(dict(mp, control="notyet", anticipation=0, base_period="varying", covariates=["lpop"], est_method="reg"))
    specs.append(dict(sim, control="notyet", anticipation=0, base_period="varying", covariates=["x"], est_method="dr"))
    specs.append(dict(sim, control="never", anticipation=1, base_period="varying", covariates=["x"], est_method="reg"))
    cases = []
    for spec in specs:
        df = pd.read_csv(HERE / spec["file"])  # exactly the numbers the tests will read
        cases.append(run_peer(df, spec))
    ref = {"peer": f"moderndid {md.__version__}", "r_did_printed_mpdta": R_PRINTED_MPDTA, "cases": cases}
    (HERE / "reference.json").write_text(json.dumps(ref, indent=1))


if __name__ == "__main__":
    main()
