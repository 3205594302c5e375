"""by_moderator: subgroup estimates equal separate fits; equality test by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from osservatorio.evaluate.heterogeneity import by_moderator, equality_test
from osservatorio.evaluate.twfe import twfe
from osservatorio.exceptions import InputError


def simulate(seed: int = 5) -> pd.DataFrame:
    """Three macro-areas: effects 1 (Nord), 3 (Sud); Centro has no treated units."""
    rng = np.random.default_rng(seed)
    n_units, n_periods = 240, 8
    area = np.array(["Nord", "Centro", "Sud"])[np.arange(n_units) % 3]
    cohort = np.where((area != "Centro") & (rng.random(n_units) < 0.5), 4, 0)
    effect = np.select([area == "Nord", area == "Sud"], [1.0, 3.0], 0.0)
    unit = np.repeat(np.arange(n_units), n_periods)
    period = np.tile(np.arange(n_periods), n_units)
    d = ((np.repeat(cohort, n_periods) > 0) & (period >= 4)).astype(float)
    y = (np.repeat(rng.normal(0, 1, n_units), n_periods) + 0.1 * period
         + np.repeat(effect, n_periods) * d + rng.normal(0, 1, unit.size))
    return pd.DataFrame({"unit": unit, "period": period, "area": np.repeat(area, n_periods),
                         "d": d, "y": y})


def test_subgroups_match_separate_fits_and_skip_untreated():
    data = simulate()
    out = by_moderator(twfe, data, "area", outcome="y", treatment="d", unit="unit", time="period")
    assert out["area"].tolist() == ["Centro", "Nord", "Sud"]
    assert out.loc[0, "status"] == "skipped: no treated units"
    assert np.isnan(out.loc[0, "estimate"])
    for i, area in ((1, "Nord"), (2, "Sud")):
        alone = twfe(data[data["area"] == area], "y", "d", "unit", "period")
        assert out.loc[i, "estimate"] == pytest.approx(alone.estimate, rel=1e-12)
        assert out.loc[i, "se"] == pytest.approx(alone.se, rel=1e-12)
        assert out.loc[i, "status"] == "ok"
    test = out.attrs["equality_test"]
    assert test.n_groups == 2 and test.df == 1
    assert test.p_value < 1e-6  # effects 1 vs 3


def test_equality_test_by_hand():
    b, se = np.array([1.0, 2.0, 4.0]), np.array([0.5, 1.0, 2.0])
    w = 1 / se**2
    q = np.sum(w * (b - np.sum(w * b) / np.sum(w)) ** 2)
    res = equality_test(b, se)
    assert res.statistic == pytest.approx(q, rel=1e-12)
    assert res.p_value == pytest.approx(stats.chi2.sf(q, 2), rel=1e-12)
    assert equality_test([1.0, 1.0], [0.3, 0.4]).p_value == pytest.approx(1.0)


def test_bad_arguments():
    data = simulate()
    with pytest.raises(InputError, match="moderator column"):
        by_moderator(twfe, data, "nope", outcome="y", treatment="d", unit="unit", time="period")
    with pytest.raises(InputError, match="at least two"):
        equality_test([1.0], [0.1])
    with pytest.raises(InputError, match="finite and positive"):
        equality_test([1.0, 2.0], [0.1, 0.0])
