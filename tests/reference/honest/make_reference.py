"""Reference numbers for tests/evaluate/test_honest.py (run by hand; needs no R).

1. ``event_studies.json``: betahat, sigma, timeVec of the two example event studies
   shipped with R HonestDiD (data/BCdata_EventStudy.rda, Benzarti and Carloni 2019;
   data/LWdata_EventStudy.rda, Lovenheim and Willen 2019), read with the PyPI package
   ``rdata`` from a checkout of github.com/asheshrambachan/HonestDiD:
       python make_reference.py extract /path/to/HonestDiD/data
2. ``reference.json``: robust intervals from the PyPI port ``honestdid==0.1.1`` (a line
   by line translation of R HonestDiD, independent of osservatorio; slow: ~10 minutes):
       python make_reference.py peer
   Both need a separate virtualenv (pip install rdata==1.1.0 honestdid==0.1.1): the port
   pulls in torch and cvxpy, which the workbench does not use.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
CASES = [  # (data, restriction, l_vec, m values)
    ("BCdata_EventStudy", "relative_magnitudes", "first", [0.0, 0.5, 1.0, 2.0]),
    ("BCdata_EventStudy", "relative_magnitudes", "average", [0.5, 1.0]),
    ("BCdata_EventStudy", "smoothness", "first", [0.0, 0.1, 0.3]),
    ("BCdata_EventStudy", "smoothness", "average", [0.0, 0.05]),
]


def extract(data_dir: str) -> None:
    import rdata

    out = {}
    for name in ("BCdata_EventStudy", "LWdata_EventStudy"):
        d = rdata.read_rda(str(Path(data_dir) / f"{name}.rda"))[name]
        out[name] = {
            "betahat": np.asarray(d["betahat"], float).ravel().tolist(),
            "sigma": np.asarray(d["sigma"], float).tolist(),
            "timeVec": np.asarray(d["timeVec"]).ravel().tolist(),
            "referencePeriod": float(np.asarray(d["referencePeriod"]).ravel()[0]),
            "numPre": len(d["prePeriodIndices"]), "numPost": len(d["postPeriodIndices"]),
        }
    (HERE / "event_studies.json").write_text(json.dumps(out))


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
    {"extract": lambda: extract(sys.argv[2]), "peer": peer}[sys.argv[1]]()
