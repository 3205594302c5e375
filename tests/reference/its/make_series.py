"""Write the seeded monthly series used by reference.R (run once; output committed).

    .venv/bin/python tests/reference/its/make_series.py
"""

from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.default_rng(20261125)
n = 60
periods = pd.period_range("2019-01", periods=n, freq="M")
t = np.arange(n)
t0 = 36  # intervention 2022-01
season = 3 * np.sin(2 * np.pi * periods.month / 12) + np.where(periods.month == 8, -4, 0)
e = np.zeros(n)
for i in range(1, n):  # AR(1) errors: what HAC is for
    e[i] = 0.5 * e[i - 1] + rng.normal(0, 1.5)
post = t >= t0
y = 50 + 0.2 * t + season + 2.5 * post + 0.15 * (t - t0) * post + e
control = 30 + 0.1 * t + season + 0.7 * e + rng.normal(0, 1.0, n)
pd.DataFrame({"period": periods.astype(str), "y": y.round(6), "control": control.round(6)}).to_csv(
    Path(__file__).with_name("series.csv"), index=False)
