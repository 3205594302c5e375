"""Tests of osservatorio.evaluate.its against R sandwich::NeweyWest (committed numbers).

tests/reference/its/reference.csv is made by reference.R from series.csv (made by
make_series.py). Tolerances: coefficients 1e-8 relative, HAC standard errors 1e-6
relative. statsmodels' HAC ``use_correction=True`` is R's ``adjust=TRUE`` (factor
n / (n - k)) and ``use_correction=False`` is ``adjust=FALSE``; both are checked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from osservatorio.evaluate.its import default_hac_lags, interrupted_time_series, its_design
from osservatorio.exceptions import InputError

REF = Path(__file__).resolve().parents[1] / "reference" / "its"
CASES = {"month_dummies": ("month_dummies", 3, False), "fourier": ("fourier", 5, False),
         "control_none": ("none", 2, True)}


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    df = pd.read_csv(REF / "series.csv")
    df.index = pd.PeriodIndex(df["period"], freq="M")
    return df


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return pd.read_csv(REF / "reference.csv")


def _fit(data: pd.DataFrame, case: str):
    seasonality, lags, control = CASES[case]
    return interrupted_time_series(data["y"], "2022-01", seasonality=seasonality, hac_lags=lags,
                                   control_series=data["control"] if control else None)


@pytest.mark.parametrize("case", list(CASES))
def test_coefficients_and_hac_se_match_r(data, reference, case):
    res = _fit(data, case)
    ref = reference[(reference["case"] == case) & reference["adjust"]].set_index("term")
    table = res.coefficients.loc[ref.index]
    np.testing.assert_allclose(table["coef"], ref["coef"], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(table["se"], ref["se"], rtol=1e-6)
    assert res.level_change.estimate == pytest.approx(ref.loc["post", "coef"], rel=1e-8)
    assert res.level_change.se == pytest.approx(ref.loc["post", "se"], rel=1e-6)
    assert res.slope_change.se == pytest.approx(ref.loc["time_since", "se"], rel=1e-6)


@pytest.mark.parametrize("case", list(CASES))
def test_statsmodels_without_correction_is_r_adjust_false(data, reference, case):
    seasonality, lags, control = CASES[case]
    y = data["y"] - (data["control"] if control else 0)
    design = its_design(data.index, 36, seasonality)
    fit = sm.OLS(y.to_numpy(), design).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
    ref = reference[(reference["case"] == case) & ~reference["adjust"]].set_index("term")
    se = pd.Series(np.sqrt(np.diag(fit.cov_params())), index=design.columns)
    np.testing.assert_allclose(se.loc[ref.index], ref["se"], rtol=1e-6)


def test_average_effect_is_mean_gap(data):
    res = _fit(data, "month_dummies")
    gap = (res.fitted - res.counterfactual)[res.fitted.index >= pd.Period("2022-01", "M")]
    assert res.effect.estimate == pytest.approx(gap.mean(), rel=1e-12)
    # pre-period: fitted equals counterfactual
    pre = res.fitted.index < pd.Period("2022-01", "M")
    np.testing.assert_allclose(res.fitted[pre], res.counterfactual[pre], atol=1e-12)
    assert res.effect.ci_low < res.effect.estimate < res.effect.ci_high


def test_known_truth_noiseless():
    periods = pd.period_range("2018-01", periods=72, freq="M")
    t = np.arange(72)
    post = t >= 40
    y = 10 + 0.3 * t + np.cos(2 * np.pi * periods.month / 12) + 4 * post + 0.5 * (t - 40) * post
    res = interrupted_time_series(pd.Series(y, index=periods), periods[40], seasonality="fourier")
    assert res.level_change.estimate == pytest.approx(4, abs=1e-8)
    assert res.slope_change.estimate == pytest.approx(0.5, abs=1e-10)
    assert res.effect.estimate == pytest.approx(4 + 0.5 * np.mean(np.arange(32)), abs=1e-8)
    assert res.hac_lags == default_hac_lags(72) == 3


def test_yearly_series_and_validation():
    years = pd.period_range("2010", periods=12, freq="Y")
    y = pd.Series(np.arange(12.0) + np.where(np.arange(12) >= 7, 3.0, 0.0)
                  + np.random.default_rng(1).normal(0, 0.1, 12), index=years)
    res = interrupted_time_series(y, "2017", seasonality="none")
    assert res.level_change.estimate == pytest.approx(3, abs=0.5)
    with pytest.raises(InputError, match="monthly"):
        interrupted_time_series(y, "2017")
    with pytest.raises(InputError, match="seasonality"):
        interrupted_time_series(y, "2017", seasonality="weekly")
    with pytest.raises(InputError, match="gaps"):
        interrupted_time_series(y.drop(y.index[3]), "2017", seasonality="none")


def test_datetime_index_is_converted_to_periods(data):
    as_dates = data["y"].copy()
    as_dates.index = pd.date_range("2019-01-01", periods=len(as_dates), freq="MS")
    res = interrupted_time_series(as_dates, "2022-01", hac_lags=3)
    ref = _fit(data, "month_dummies")
    assert res.level_change.estimate == pytest.approx(ref.level_change.estimate, rel=1e-12)
    assert isinstance(res.fitted.index, pd.PeriodIndex)
