"""Tests for osservatorio.evaluate.staggered against moderndid (port of R did) and R's output.

Reference numbers: tests/reference/staggered/reference.json, written by make_reference.py
in the same folder. Tolerances: ATT and aggregates 1e-8 absolute; analytic standard
errors 1e-6 relative (same finite-sample convention as R did: se = sqrt(mean(IF^2)/n),
no small-sample factor); Wald pre-test 1e-6 relative; R's printed ATT(g,t) 5e-5 (rounded
to 4 decimals).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
import statsmodels.api as sm

from osservatorio.evaluate.results import EffectResult
from osservatorio.evaluate.staggered import staggered_did
from osservatorio.exceptions import EstimationError, InputError

REF_DIR = Path(__file__).parents[1] / "reference" / "staggered"
REF = json.loads((REF_DIR / "reference.json").read_text())
CASES = REF["cases"]
ATT_TOL = 1e-8
SE_RTOL = 1e-6


def _case_id(case: dict) -> str:
    s = case["spec"]
    cov = f"-{s['est_method']}" if s.get("covariates") else ""
    return f"{s['file'][:-4]}-{s['control']}-ant{s['anticipation']}-{s['base_period']}{cov}"


_DATA: dict[str, pd.DataFrame] = {}


def _fit(spec: dict, **kw):
    if spec["file"] not in _DATA:
        _DATA[spec["file"]] = pd.read_csv(REF_DIR / spec["file"])
    return staggered_did(
        _DATA[spec["file"]], spec["outcome"], spec["unit"], spec["time"], spec["cohort"],
        control=spec["control"], anticipation=spec["anticipation"], base_period=spec["base_period"],
        covariates=spec.get("covariates"), est_method=spec.get("est_method", "dr"), **kw,
    )


def _assert_se(ours, theirs) -> None:
    ours, theirs = np.asarray(ours, float), np.asarray(theirs, float)
    assert np.array_equal(np.isnan(ours), np.isnan(theirs))
    ok = ~np.isnan(theirs)
    np.testing.assert_allclose(ours[ok], theirs[ok], rtol=SE_RTOL, atol=0)


@pytest.fixture(scope="module", params=CASES, ids=_case_id)
def case(request):
    return request.param, _fit(request.param["spec"], bootstrap=False)


def test_att_gt_matches_peer(case):
    ref, res = case
    a = res.att_gt
    assert a["cohort"].tolist() == ref["att_gt"]["cohort"]
    assert a["time"].tolist() == ref["att_gt"]["time"]
    np.testing.assert_allclose(a["att"], ref["att_gt"]["att"], rtol=0, atol=ATT_TOL)
    _assert_se(a["se"], ref["att_gt"]["se"])


@pytest.mark.parametrize("kind", ["event", "cohort", "calendar"])
def test_aggregation_matches_peer(case, kind):
    ref, res = case
    got, want = res.aggregate(kind), ref[kind]
    label = {"event": "event_time", "cohort": "cohort", "calendar": "time"}[kind]
    assert got[label].tolist() == want["label"]
    np.testing.assert_allclose(got["estimate"], want["estimate"], rtol=0, atol=ATT_TOL)
    _assert_se(got["se"], want["se"])
    assert got.attrs["overall"]["estimate"] == pytest.approx(want["overall_estimate"], abs=ATT_TOL)
    assert got.attrs["overall"]["se"] == pytest.approx(want["overall_se"], rel=SE_RTOL)


def test_simple_matches_peer(case):
    ref, res = case
    got = res.aggregate("simple")
    assert isinstance(got, EffectResult)
    assert got.estimate == pytest.approx(ref["simple"]["overall_estimate"], abs=ATT_TOL)
    assert got.se == pytest.approx(ref["simple"]["overall_se"], rel=SE_RTOL)
    assert got.ci_low < got.estimate < got.ci_high


def test_pretrend_matches_peer(case):
    ref, res = case
    if ref["wald_statistic"] is None:
        pytest.skip("peer reports no pre-test here")
    got = res.pretrend_test()
    assert got["statistic"] == pytest.approx(ref["wald_statistic"], rel=SE_RTOL)
    n_pre = int((~res.att_gt["post"] & res.att_gt["se"].notna()).sum())
    assert got["df"] == n_pre


def test_mpdta_matches_r_printed_output():
    r = REF["r_did_printed_mpdta"]
    spec = next(c["spec"] for c in CASES if _case_id(c) == "mpdta-never-ant0-varying")
    res = _fit(spec, bootstrap=False)
    att = res.att_gt.set_index(["cohort", "time"])["att"]
    for g, t, value in r["att_gt"]:
        assert att[(g, t)] == pytest.approx(value, abs=5e-5)
    assert res.pretrend_test()["p_value"] == pytest.approx(r["pretest_p_value"], abs=5e-6)


def test_cluster_se_equals_cr0_sandwich_in_a_2x2():
    """One cell: the ATT is the OLS slope of the change on treatment, and the IF
    clustered se is the CR0 sandwich times the cluster factor sqrt(G/(G-1)) (clusters
    above the unit), with t(G-1) intervals."""
    df = pd.read_csv(REF_DIR / "sim_panel.csv")
    df = df[df["cohort"].isin([0, 2012]) & df["year"].isin([2011, 2012])]
    res = staggered_did(df, "y", "id", "year", "cohort", cluster="prov", bootstrap=False)
    wide = df.pivot(index="id", columns="year", values="y")
    unit = df.drop_duplicates("id").set_index("id").loc[wide.index]
    dy = wide[2012] - wide[2011]
    x = sm.add_constant((unit["cohort"] == 2012).astype(float).to_numpy())
    ols = sm.OLS(dy.to_numpy(), x).fit(cov_type="cluster", cov_kwds={"groups": unit["prov"].to_numpy(), "use_correction": False})
    assert res.att_gt["att"].iloc[0] == pytest.approx(ols.params[1], abs=1e-10)
    g = unit["prov"].nunique()
    assert res.att_gt["se"].iloc[0] == pytest.approx(ols.bse[1] * np.sqrt(g / (g - 1)), rel=1e-9)
    assert res.info["n_clusters"] == g
    assert res.info["df"] == g - 1
    crit = stats.t.ppf(0.975, g - 1)
    row = res.att_gt.iloc[0]
    assert row["ci_high"] - row["att"] == pytest.approx(crit * row["se"], rel=1e-12)


def test_cluster_by_unit_equals_default():
    df = pd.read_csv(REF_DIR / "sim_panel.csv")
    a = staggered_did(df, "y", "id", "year", "cohort", bootstrap=False)
    b = staggered_did(df, "y", "id", "year", "cohort", cluster="id", bootstrap=False)
    np.testing.assert_allclose(a.att_gt["se"], b.att_gt["se"], rtol=1e-12)
    assert a.aggregate("simple").se == pytest.approx(b.aggregate("simple").se, rel=1e-12)
    c = staggered_did(df, "y", "id", "year", "cohort", cluster="prov", bootstrap=False)
    assert c.aggregate("simple").n_clusters == 60
    assert not np.allclose(a.att_gt["se"], c.att_gt["se"])


def test_uniform_band_critical_value():
    df = pd.read_csv(REF_DIR / "sim_panel.csv")
    res = staggered_did(df, "y", "id", "year", "cohort", cluster="prov", n_boot=999, seed=3)
    ev = res.aggregate("event")
    crit = ev.attrs["critical_value"]
    # sup over 13 event times: above the pointwise 1.96, below Bonferroni's 3.0
    assert 1.96 < crit < 3.1
    assert (ev["cband_low"] <= ev["ci_low"]).all() and (ev["cband_high"] >= ev["ci_high"]).all()
    # seeded: same seed same band, another seed close
    again = res.aggregate("event")
    assert again.attrs["critical_value"] == crit
    # a single estimate: the sup-t value is the pointwise normal quantile
    one = res.aggregate("event", min_e=0, max_e=0).attrs["critical_value"]
    assert one == pytest.approx(1.96, abs=0.15)
    rad = staggered_did(df, "y", "id", "year", "cohort", boot_weights="rademacher", n_boot=999)
    assert rad.aggregate("event").attrs["critical_value"] == pytest.approx(crit, abs=0.3)


def test_monthly_running_time_and_unbalanced_units():
    df = pd.read_csv(REF_DIR / "sim_panel.csv")
    df["month"] = (df["year"] - 2010) + 2010 * 12  # months as a running integer
    df["cohort_m"] = np.where(df["cohort"] > 0, df["cohort"] - 2010 + 2010 * 12, 0)
    yearly = staggered_did(df, "y", "id", "year", "cohort", bootstrap=False)
    dropped = df[~((df["id"] <= 5) & (df["year"] == 2015))]
    monthly = staggered_did(dropped, "y", "id", "month", "cohort_m", bootstrap=False)
    assert monthly.info["n_dropped_unbalanced"] == 5
    assert monthly.info["n_units"] == yearly.info["n_units"] - 5
    assert monthly.aggregate("event")["event_time"].tolist() == yearly.aggregate("event")["event_time"].tolist()


def test_options_are_validated():
    df = pd.read_csv(REF_DIR / "sim_panel.csv")
    with pytest.raises(InputError, match="control"):
        staggered_did(df, "y", "id", "year", "cohort", control="later")
    with pytest.raises(InputError, match="base_period"):
        staggered_did(df, "y", "id", "year", "cohort", base_period="fixed")
    with pytest.raises(InputError, match="kind"):
        staggered_did(df, "y", "id", "year", "cohort", bootstrap=False).aggregate("dynamic")
    bad = df.copy()
    bad.loc[bad.index[0], "cohort"] = 2014
    with pytest.raises(InputError, match="varies within a unit"):
        staggered_did(bad, "y", "id", "year", "cohort")
    with pytest.raises(EstimationError, match="never-treated"):
        staggered_did(df[df["cohort"] > 0], "y", "id", "year", "cohort")


def test_pretrend_on_event_times():
    df = pd.read_csv(REF_DIR / "sim_panel.csv")
    res = staggered_did(df, "y", "id", "year", "cohort", bootstrap=False)
    ev = res.aggregate("event", max_e=-1)
    got = res.pretrend_test(on="event")
    assert got["df"] == len(ev)
    # one pre-period event time (cohort 2013 at 2012): the statistic is the squared t
    sub = df[(df["year"] >= 2011) & df["cohort"].isin([0, 2012, 2013])]
    one = staggered_did(sub, "y", "id", "year", "cohort", bootstrap=False)
    e1 = one.aggregate("event", max_e=-1)
    assert e1["event_time"].tolist() == [-1]
    t2 = float((e1["estimate"] / e1["se"]).iloc[0] ** 2)
    assert one.pretrend_test(on="event") == pytest.approx({"statistic": t2, "df": 1, "p_value": e1["p_value"].iloc[0]}, rel=1e-9)
    assert one.pretrend_test()["statistic"] == pytest.approx(t2, rel=1e-9)
    with pytest.raises(EstimationError, match="max_df"):
        res.pretrend_test(max_df=2)
