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
    import honestdid as hd

    warnings.filterwarnings("ignore")
    data = json.loads((HERE / "event_studies.json").read_text())
    cases = []
    for name, restriction, l_name, m in CASES:
        d = data[name]
        b, s, k, t = np.array(d["betahat"]), np.array(d["sigma"]), d["numPre"], d["numPost"]
        l_vec = np.eye(t)[0] if l_name == "first" else np.full(t, 1 / t)
        if restriction == "smoothness":
            res = hd.createSensitivityResults(b, s, k, t, l_vec=l_vec, Mvec=m)
        else:
            res = hd.createSensitivityResults_relativeMagnitudes(b, s, k, t, l_vec=l_vec, Mbarvec=m)
        orig = hd.constructOriginalCS(b, s, k, t, l_vec=l_vec)
        cases.append({"data": name, "restriction": restriction, "l_vec": l_name, "m": m,
                      "lb": res["lb"].astype(float).tolist(), "ub": res["ub"].astype(float).tolist(),
                      "original": [float(orig["lb"].iloc[0]), float(orig["ub"].iloc[0])],
                      "source": "honestdid==0.1.1"})
        print(cases[-1], flush=True)
    (HERE / "reference.json").write_text(json.dumps({"cases": cases}, indent=1))


if __name__ == "__main__":
    {"extract": lambda: extract(sys.argv[2]), "peer": peer}[sys.argv[1]]()
