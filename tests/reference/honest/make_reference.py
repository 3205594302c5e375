"""Reference numbers for tests/evaluate/test_honest.py (run by hand; needs no R).

1. ``event_studies.json`` (``python make_reference.py fixtures``, workbench venv):
   "mpdta_cs": the Callaway-Sant'Anna event study (universal base) of R did's mpdta
   example (tests/reference/staggered/mpdta.csv), event times -4..3, betahat and the
   influence-function covariance from ``StaggeredResult.event_covariance``;
   "synthetic": 4 + 4 periods, seeded, an AR(1)+common covariance and a clear effect.
   (R HonestDiD's own examples, BCdata/LWdata, and the README's ehec data come from a
   repository snapshot and are not committed; see test_honest.py's docstring.)
2. ``reference.json`` (``python make_reference.py peer``): robust intervals from the PyPI
   port ``honestdid==0.1.1`` (a line-by-line translation of R HonestDiD, independent of
   osservatorio; slow: ~15 minutes). Needs a separate virtualenv
   (pip install honestdid==0.1.1): it pulls in torch and cvxpy.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
CASES = [  # (data, restriction, l_vec, m values)
    ("synthetic", "smoothness", "first", [0.0, 0.01, 0.03]),
    ("synthetic", "smoothness", "average", [0.0, 0.01]),
    ("mpdta_cs", "smoothness", "average", [0.0, 0.02, 0.05]),
    ("synthetic", "relative_magnitudes", "first", [0.0, 0.5, 1.0, 2.0]),
    ("mpdta_cs", "relative_magnitudes", "first", [0.5, 1.0]),
    ("synthetic", "relative_magnitudes", "average", [1.0]),
]


def fixtures() -> None:
    import pandas as pd

    from osservatorio.evaluate.staggered import staggered_did

    out = {}
    mpdta = pd.read_csv(HERE.parent / "staggered" / "mpdta.csv")
    res = staggered_did(mpdta, "lemp", "countyreal", "year", "first.treat", base_period="universal",
                        bootstrap=False)
    times, est, vcov = res.event_covariance()
    keep = times != -1
    out["mpdta_cs"] = {"betahat": est[keep].tolist(), "sigma": vcov[np.ix_(keep, keep)].tolist(),
                       "timeVec": times[keep].tolist(), "referencePeriod": -1,
                       "numPre": int((times < -1).sum()), "numPost": int((times >= 0).sum())}
    k = t = 4
    idx = np.arange(k + t)
    sigma = 0.01**2 * (0.6 ** np.abs(idx[:, None] - idx[None, :]) + 0.3)
    rng = np.random.default_rng(20230501)
    trend = 0.004 * np.concatenate([np.arange(-k, 0), np.arange(1, t + 1)])
    beta = trend + np.concatenate([np.zeros(k), np.full(t, 0.05)]) + rng.multivariate_normal(np.zeros(k + t), sigma)
    out["synthetic"] = {"betahat": beta.tolist(), "sigma": sigma.tolist(),
                        "timeVec": [*range(-k - 1, -1), *range(0, t)], "referencePeriod": -1,
                        "numPre": k, "numPost": t}
    (HERE / "event_studies.json").write_text(json.dumps(out, indent=1))


def peer() -> None:
    """Run the port on CASES; cases already in reference.json are kept (the port is slow)."""
    import honestdid as hd

    warnings.filterwarnings("ignore")
    data = json.loads((HERE / "event_studies.json").read_text())
    path = HERE / "reference.json"
    cases = json.loads(path.read_text())["cases"] if path.exists() else []
    done = {(c["data"], c["restriction"], c["l_vec"], tuple(c["m"])) for c in cases}
    for name, restriction, l_name, m in CASES:
        if (name, restriction, l_name, tuple(m)) in done:
            continue
        d = data[name]
        b, s, k, t = np.array(d["betahat"]), np.array(d["sigma"]), d["numPre"], d["numPost"]
        l_vec = np.eye(t)[0] if l_name == "first" else np.full(t, 1 / t)
        case = {"data": name, "restriction": restriction, "l_vec": l_name, "m": m, "source": "honestdid==0.1.1"}
        try:
            if restriction == "smoothness":
                res = hd.createSensitivityResults(b, s, k, t, l_vec=l_vec, Mvec=m)
            else:
                res = hd.createSensitivityResults_relativeMagnitudes(b, s, k, t, l_vec=l_vec, Mbarvec=m)
        except Exception as exc:  # recorded, not compared: the port fails on this case
            case["error"] = f"{type(exc).__name__}: {exc}"
        else:
            case["lb"] = res["lb"].astype(float).tolist()
            case["ub"] = res["ub"].astype(float).tolist()
        orig = hd.constructOriginalCS(b, s, k, t, l_vec=l_vec)
        case["original"] = [float(orig["lb"].iloc[0]), float(orig["ub"].iloc[0])]
        cases.append(case)
        print(case, flush=True)
        path.write_text(json.dumps({"cases": cases}, indent=1))


if __name__ == "__main__":
    {"fixtures": fixtures, "peer": peer}[sys.argv[1]]()
