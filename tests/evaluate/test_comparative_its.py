"""Comparative ITS: exact on noiseless data, equal to a plain OLS of the aligned gap,
intervals that cover in simulation (the HAC intervals it replaces did not)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from osservatorio.evaluate.comparative_its import comparative_its
from osservatorio.exceptions import EstimationError


def _panel(rng, n_units=60, n_clusters=20, months=96, shift=-0.15, drift=-0.004, noise=0.3):
    """Monthly panel: seasonality shared by all, a treated differential trend, a level shift."""
    unit = np.arange(n_units)
    cohort = np.where(unit < n_units // 2, 60 + unit % 12, 0)
    t = np.arange(months)
    season = 0.3 * np.sin(2 * np.pi * t / 12)
    level = rng.normal(2, 0.2, n_units)
    y = level[:, None] + season[None, :] + (cohort > 0)[:, None] * drift * t[None, :]
    y = y + shift * ((cohort[:, None] > 0) & (t[None, :] >= cohort[:, None]))
    y = y + noise * rng.normal(size=y.shape)
    return pd.DataFrame({"unit": np.repeat(unit, months), "time": np.tile(t, n_units), "y": y.ravel(),
                         "cohort": np.repeat(cohort, months), "cluster": np.repeat(unit % n_clusters, months),
                         "w": np.repeat(rng.integers(500, 5000, n_units), months).astype(float)})


def test_noiseless_shift_and_trend_recovered_exactly():
    df = _panel(np.random.default_rng(1), noise=0.0)
    r = comparative_its(df, "y", "unit", "time", "cohort", weight="w", n_boot=50)
    assert r.level_change.estimate == pytest.approx(-0.15, abs=1e-10)
    assert r.pretrend_slope.estimate == pytest.approx(-0.004, abs=1e-12)
    assert r.slope_change.estimate == pytest.approx(0.0, abs=1e-12)


def test_point_estimate_equals_ols_on_the_aligned_gap():
    df = _panel(np.random.default_rng(2))
    r = comparative_its(df, "y", "unit", "time", "cohort", weight="w", n_boot=50)
    # independent path: pandas groupby means and a statsmodels OLS of the segmented model
    df = df.assign(yw=df["y"] * df["w"])
    ctrl = df[df["cohort"] == 0].groupby("time")[["yw", "w"]].sum()
    cmean = ctrl["yw"] / ctrl["w"]
    parts = []
    for g, d in df[df["cohort"] > 0].groupby("cohort"):
        s = d.groupby("time")[["yw", "w"]].sum()
        gap = s["yw"] / s["w"] - cmean
        parts.append(pd.DataFrame({"e": gap.index - g, "gap": gap.to_numpy(), "n": d["unit"].nunique()}))
    allg = pd.concat(parts)
    counts = allg.groupby("e")["n"].sum()
    allg = allg[allg["e"].isin(counts[counts == counts.max()].index)]
    series = allg.groupby("e").apply(lambda d: np.average(d["gap"], weights=d["n"]), include_groups=False)
    e = series.index.to_numpy(float)
    X = np.column_stack([np.ones_like(e), e, e >= 0, e * (e >= 0)])
    ols = sm.OLS(series.to_numpy(), X).fit()
    assert r.level_change.estimate == pytest.approx(ols.params[2], abs=1e-10)
    assert r.series["gap"].to_numpy() == pytest.approx(series.to_numpy(), abs=1e-12)


@pytest.mark.slow
def test_interval_coverage_in_simulation():
    rng = np.random.default_rng(3)
    cover = [comparative_its(_panel(rng), "y", "unit", "time", "cohort", cluster="cluster", weight="w",
                             n_boot=199, seed=i).level_change for i in range(120)]
    rate = np.mean([c.ci_low <= -0.15 <= c.ci_high for c in cover])
    assert 0.88 <= rate <= 0.995, rate


def test_needs_never_treated_units():
    df = _panel(np.random.default_rng(4))
    with pytest.raises(EstimationError, match="never-treated"):
        comparative_its(df[df["cohort"] > 0], "y", "unit", "time", "cohort")
