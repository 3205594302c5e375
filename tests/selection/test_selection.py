"""Stage 20: eligibility, allocation, ranking, matching and balance on hand-made examples;
propensity matching on a simulation with known selection; the steps end to end on the
district theme."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from osservatorio.selection.matching import (allocate, balance_table, eligibility, exclusion_counts, km_from_capoluogo, match,
                                    propensity_logit, rank_by_need, stratified_proposal, unit_outcomes)
from osservatorio.themes import Selection


def _units():
    return pd.DataFrame({
        "unit": list("abcdef"),
        "popolazione": [800, 2_000, 4_000, 9_000, 30_000, 3_000],
        "ripartizione": ["Sud", "Sud", "Nord-est", "Sud", "Sud", "Isole"],
        "classe_ampiezza": ["0-1.000", "1.001-5.000", "1.001-5.000", "5.001-10.000", "20.001-60.000", "1.001-5.000"],
        "quota_over65": [0.30, 0.20, 0.31, 0.28, 0.26, 0.35],
        "distanza_capoluogo_km": [40, 35, 50, 10, 30, 60],
        "esito_base": [1.0, 2.0, 3.0, np.nan, 5.0, 6.0],
    })


def test_eligibility_rules_and_counts():
    rules = Selection(min_population=1_000, macro_areas=["Sud", "Isole"], min_share_over65=0.25,
                      inner_area_min_km=20, exclude_prior_act="patto")
    flags = eligibility(_units(), rules, treated={"f"}, prior_act={"e"})
    assert flags.loc[flags["ammissibile"], "unit"].tolist() == []
    rules = Selection(min_population=1_000, min_share_over65=0.25)
    flags = eligibility(_units(), rules, treated=set(), prior_act=set())
    assert flags.loc[flags["ammissibile"], "unit"].tolist() == ["c", "e", "f"]
    # context columns survive (rule flags have their own names)
    assert flags["quota_over65"].dtype == float and flags["ripartizione"].iloc[0] == "Sud"
    counts = exclusion_counts(flags).set_index("regola")
    assert counts.loc["popolazione_min", "escluse"] == 1 and counts.loc["quota_over65", "escluse"] == 1
    assert counts.loc["esito_mancante", "escluse"] == 1
    assert counts.loc["popolazione_min", "escluse_solo_da_questa"] == 1
    sized = eligibility(_units(), Selection(size_classes=["1.001-5.000"]), set(), set())
    assert sized.loc[sized["ammissibile"], "unit"].tolist() == ["b", "c", "f"]


def test_region_rule():
    units = _units().assign(regione=["Puglia", "Calabria", "Veneto", "Puglia", "Puglia", "Sardegna"])
    flags = eligibility(units, Selection(regions=["Puglia", "Sardegna"]), treated={"e"}, prior_act=set())
    assert flags.loc[flags["ammissibile"], "unit"].tolist() == ["a", "f"]  # d: no outcome; e: treated
    counts = exclusion_counts(flags).set_index("regola")
    assert counts.loc["regione", "escluse"] == 2 and counts.loc["regione", "escluse_solo_da_questa"] == 2
    with pytest.raises(ValueError):
        Selection(regions=["Padania"])


def test_allocation_by_largest_remainders():
    assert allocate(pd.Series({"A": 10, "B": 5, "C": 5}), 4).tolist() == [2, 1, 1]
    got = allocate(pd.Series({"A": 7, "B": 2, "C": 1}), 5)  # quotas 3.5, 1.0, 0.5
    assert got.tolist() == [4, 1, 0]
    got = allocate(pd.Series({"A": 1, "B": 1}), 5)  # never more than a stratum holds
    assert got.tolist() == [1, 1]


def test_ranking_and_proposal_by_need():
    df = pd.DataFrame({"unit": list("abcdef"), "classe_ampiezza": ["x"] * 4 + ["y"] * 2,
                       "ripartizione": ["Sud"] * 6, "esito_base": [3.0, 1.0, 2.0, 4.0, 9.0, 8.0]})
    r = rank_by_need(df, higher_is_better=True)
    assert r.set_index("unit")["rango_strato"].to_dict() == {"a": 3, "b": 1, "c": 2, "d": 4, "e": 2, "f": 1}
    prop = stratified_proposal(r, 3)  # strata of 4 and 2: quotas 2, 1
    assert sorted(prop["unit"]) == ["b", "c", "f"]
    worse_high = rank_by_need(df, higher_is_better=False).set_index("unit")["rango_strato"]
    assert worse_high["d"] == 1 and worse_high["e"] == 1


def test_mahalanobis_match_by_hand():
    # one covariate with variance v: distance = |dx| / sd of all six values
    treated = pd.DataFrame({"unit": ["t1", "t2"], "x": [0.0, 10.0], "ripartizione": ["Sud", "Sud"]})
    pool = pd.DataFrame({"unit": ["p1", "p2", "p3", "p4"], "x": [0.5, 1.0, 9.0, 30.0],
                         "ripartizione": ["Sud", "Sud", "Sud", "Nord-est"]})
    sd = np.std([0.0, 10.0, 0.5, 1.0, 9.0, 30.0], ddof=1)
    m = match(treated, pool, ["x"], "mahalanobis", caliper=3.0)
    pairs = dict(zip(m["unit_pilota"], m["unit_confronto"]))
    assert pairs == {"t1": "p1", "t2": "p3"}
    assert m.set_index("unit_pilota").loc["t2", "distanza"] == pytest.approx(1.0 / sd, rel=1e-9)
    # two matches each, in rounds, caliper 0.5: t1 gets p1, p2; t2 gets p3 only (p2 is 9/sd = 0.79
    # away, p4 is in another macro-area)
    m2 = match(treated, pool, ["x"], "mahalanobis", caliper=0.5, n_matches=2)
    assert sorted(m2.loc[m2["unit_pilota"] == "t1", "unit_confronto"]) == ["p1", "p2"]
    assert m2.loc[m2["unit_pilota"] == "t2", "unit_confronto"].tolist() == ["p3"]
    # caliper: 0.05 Mahalanobis units keeps only t1-p1 (0.5/sd = 0.044)
    m3 = match(treated, pool, ["x"], "mahalanobis", caliper=0.05)
    assert m3["unit_confronto"].tolist() == ["p1"]
    with pytest.raises(ValueError, match="matching"):
        match(treated, pool, ["x"], "nearest")


def test_hardest_first_keeps_the_only_close_match():
    treated = pd.DataFrame({"unit": ["easy", "hard"], "x": [1.0, 0.0], "ripartizione": ["Sud"] * 2})
    pool = pd.DataFrame({"unit": ["p0", "p2"], "x": [0.1, 1.2], "ripartizione": ["Sud"] * 2})
    pairs = dict(zip(*match(treated, pool, ["x"], caliper=10)[["unit_pilota", "unit_confronto"]].T.values))
    assert pairs == {"hard": "p0", "easy": "p2"}


def test_propensity_logit_equals_glm_binomial():
    import statsmodels.api as sm

    rng = np.random.default_rng(5)
    pool = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    treated = pd.DataFrame({"a": rng.normal(1, 1, 40), "b": rng.normal(-0.5, 1, 40)})
    lt, lp = propensity_logit(treated, pool, ["a", "b"])
    X = pd.concat([treated, pool]).to_numpy()
    X = (X - X.mean(0)) / X.std(0)
    y = np.r_[np.ones(40), np.zeros(300)]
    glm = sm.GLM(y, sm.add_constant(X), family=sm.families.Binomial()).fit()
    np.testing.assert_allclose(np.r_[lt, lp], glm.predict(which="linear"), rtol=1e-6, atol=1e-8)


def test_propensity_matching_restores_balance_in_simulation():
    """Selection on two covariates (true logit 1.2 a - 0.8 b): before matching |SMD| > 0.5,
    after propensity matching with the 0.2 SD caliper |SMD| < 0.1 on both."""
    rng = np.random.default_rng(42)
    n = 3000
    df = pd.DataFrame({"unit": [f"u{i}" for i in range(n)], "a": rng.normal(size=n), "b": rng.normal(size=n),
                       "ripartizione": "Sud"})
    p = 1 / (1 + np.exp(-(-3.5 + 1.2 * df["a"] - 0.8 * df["b"])))
    chosen = rng.random(n) < p
    treated, pool = df[chosen].reset_index(drop=True), df[~chosen].reset_index(drop=True)
    m = match(treated, pool, ["a", "b"], "propensity")
    bal = balance_table(treated, pool, m, ["a", "b"]).set_index("variabile")
    assert (bal["smd_prima"].abs() > 0.5).all()
    assert (bal["smd_dopo"].abs() < 0.1).all()
    assert len(m) >= 0.9 * len(treated)


def test_balance_table_by_hand():
    treated = pd.DataFrame({"unit": ["t1", "t2"], "x": [1.0, 3.0]})
    pool = pd.DataFrame({"unit": ["p1", "p2", "p3"], "x": [0.0, 2.0, 4.0]})
    matched = pd.DataFrame({"unit_pilota": ["t1", "t2"], "unit_confronto": ["p1", "p3"], "distanza": [1.0, 1.0]})
    row = balance_table(treated, pool, matched, ["x"]).iloc[0]
    sd = np.sqrt((2.0 + 4.0) / 2)  # var(1,3) = 2, var(0,2,4) = 4
    assert row["smd_prima"] == pytest.approx((2 - 2) / sd)
    assert row["smd_dopo"] == pytest.approx((2 - 2) / sd)
    assert row["rapporto_varianze_dopo"] == pytest.approx(2 / 8)


def test_unit_outcomes_by_hand():
    panel = pd.DataFrame({"unit": ["a"] * 4 + ["b"] * 4, "time": [2020, 2021, 2022, 2023] * 2,
                          "y": [1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 6.0], "w": [1.0] * 8})
    out = unit_outcomes(panel, 1)
    assert out.loc["a", "esito_base"] == 4.0 and out.loc["a", "esito_tendenza"] == pytest.approx(1.0)
    assert out.loc["b", "esito_tendenza"] == pytest.approx(0.3)  # slope of 5,5,5,6 on 0..3
    monthly = panel.assign(time=[24240, 24241, 24242, 24243] * 2)  # 4 consecutive months
    assert unit_outcomes(monthly, 12).loc["a", "esito_tendenza"] == pytest.approx(12.0)


def test_distance_from_capoluogo():
    d = km_from_capoluogo()
    assert d["037006"] == 0.0 and d["058091"] == 0.0  # Bologna, Roma
    assert 15 < d["037061"] < 25  # Valsamoggia: about 20 km west of Bologna
    assert d["084020"] > 150  # Lampedusa e Linosa
    assert (d >= 0).all() and len(d) == 7899


def test_selection_steps_on_district_theme(project_root):
    """case-comunita: the proposal is made of health districts, exported with reasons."""
    from osservatorio.running.stage import open_stage
    from osservatorio.selection import steps as step
    from osservatorio.themes import load_theme

    th = load_theme("case-comunita")
    ctx = open_stage("case-comunita", str(project_root / "outputs" / "test-selection"))
    cand = step.candidates(ctx)
    assert cand["unit"].str.startswith("DIS-").all()
    prop = step.proposal(ctx, cand)
    assert len(prop) == th.selection.n_pilots
    matches = step.comparisons(ctx, cand, prop)
    power = step.power_analysis(ctx, cand, prop, matches)
    tab = power["tabella"]
    assert set(tab["disegno"]) == {"post", "did"} and (tab["mde"] > 0).all()
    out = step.export(ctx, prop, matches, power)
    assert "distretto_sanitario" in out.columns and out["motivo"].str.len().gt(20).all()
    assert (ctx.run_dir / "proposta_pilota.xlsx").is_file()
    treated = set(ctx.panel().query("cohort > 0")["unit"])
    assert not treated & set(out["distretto_sanitario"])


def test_region_variant_studies_the_pilots_of_its_theme(project_root, tmp_path):
    """A variant (pilot_theme: the theme it derives from; selection.regions: one region)
    evaluates the same pilots and proposes new ones only in its region; with one region
    too small for matching, stage 20 says so instead of failing."""
    import yaml

    from osservatorio.running.stage import open_stage
    from osservatorio.selection import steps as step

    base = yaml.safe_load((project_root / "params" / "themes" / "patti-beni-comuni.yaml").read_text(encoding="utf-8"))
    results = {}
    for region in ("Puglia", "Valle d'Aosta/Vallée d'Aoste"):
        variant = {**base, "id": "patti-variante", "pilot_theme": base["id"],
                   "selection": {**base["selection"], "regions": [region]}}
        path = tmp_path / f"{len(results)}.yaml"
        path.write_text(yaml.safe_dump(variant, allow_unicode=True), encoding="utf-8")
        ctx = open_stage(str(path), str(tmp_path / f"run{len(results)}"))
        assert ctx.theme.pilot_tema == "patti-beni-comuni"
        cand = step.candidates(ctx)
        prop = step.proposal(ctx, cand)
        assert set(cand["regione"]) == {region} and set(prop["regione"]) <= {region}
        results[region] = (cand, prop, step.comparisons(ctx, cand, prop))
        treated = set(ctx.panel().query("cohort > 0")["unit"])
        assert treated and not treated & set(cand["unit"])  # the base theme's pilots, never proposed again
    cand, prop, matches = results["Puglia"]
    assert len(prop) > 1 and len(matches["confronti"]) > 0
    cand, prop, matches = results["Valle d'Aosta/Vallée d'Aoste"]
    assert len(cand) <= 2 and matches["confronti"].empty and matches["bilanciamento"].empty
    ctx = open_stage(str(tmp_path / "1.yaml"), str(tmp_path / "run1"))
    power = step.power_analysis(ctx, cand, prop, matches)  # too few units: said, not computed
    assert power["sintesi"] == {"n_trattate": len(prop), "n_confronto": 0} and power["tabella"].empty
    step.export(ctx, prop, matches, power)
    # no eligible unit at all: every step says so and the exports are empty
    variant = {**base, "id": "patti-variante", "pilot_theme": base["id"],
               "selection": {**base["selection"], "regions": ["Molise"], "min_population": 900000}}
    (tmp_path / "none.yaml").write_text(yaml.safe_dump(variant, allow_unicode=True), encoding="utf-8")
    ctx = open_stage(str(tmp_path / "none.yaml"), str(tmp_path / "run-none"))
    cand = step.candidates(ctx)
    prop = step.proposal(ctx, cand)
    matches = step.comparisons(ctx, cand, prop)
    power = step.power_analysis(ctx, cand, prop, matches)
    out = step.export(ctx, prop, matches, power)
    assert cand.empty and prop.empty and out.empty and power["sintesi"]["n_trattate"] == 0
