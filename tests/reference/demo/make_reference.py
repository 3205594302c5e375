"""Headline numbers and padlocks of every demo theme, from a batch run's catalogue.

Run after `make demo` on the commit whose results are the reference (recorded below):
    .venv/bin/python tests/reference/demo/make_reference.py outputs/findings/catalogo.json COMMIT
The test (tests/test_demo_reference.py) recomputes the headline with the design objects,
without papermill, and compares at 1e-9: a refactoring must not change a published number.
"""

import json
import sys
from pathlib import Path

FIELDS = ["effetto", "ci_low", "ci_high", "p_value", "n_trattati", "n_confronto", "n_cluster", "pretrend_p",
          "placebo_p", "livello_maryland", "lucchetti", "lucchetti_senza_limite_sintetico", "valore_rottura_mbar"]

catalogue = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
out = {"source": f"batch run of commit {sys.argv[2] if len(sys.argv) > 2 else '?'}, seed 20261125",
       "themes": {f["tema"]: {k: f[k] for k in FIELDS} for f in catalogue["findings"]}}
Path(__file__).with_name("headline.json").write_text(json.dumps(out, indent=1, sort_keys=True) + "\n", encoding="utf-8")
