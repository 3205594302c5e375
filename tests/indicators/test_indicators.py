"""Indicators per comune and their aggregates, against numbers computed by hand.

The example sources (data/examples/codici) put 2 entities in the social district
AMB-BO-RENO: Casalecchio di Reno (35,414 residents, 1 ODV, 60 volunteers, 2 employees,
a pilot) and Valsamoggia (31,610 residents, 1 APS, 40 volunteers). The outcome
'esempio_esito' (make_examples.py: 3 + 0.4 (i mod 5) + 0.1 (year - 2016) + 0.05 ((7i + 3 year)
mod 5 - 2), + 0.8 from 2020 for the pilots) in 2016 is 3.4 - 0.1 = 3.3 for Casalecchio (i = 1,
weight 600) and 3.0 + 0.05 = 3.05 for Valsamoggia (i = 5, weight 1,000).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from osservatorio.data.sources import load_sources
from osservatorio.indicators.tables import (AREA_LEVELS, aggregate, comune_indicators, largest_gaps, outcome_by_unit)

EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "examples" / "codici"
TOL = 1e-9


@pytest.fixture(scope="module")
def ind():
    src = load_sources(EXAMPLES)
    out = outcome_by_unit(src["esiti"], "esempio_esito", "2016", "2023")
    return comune_indicators(src.tables, "esempio", out)


def test_comune_rates(ind):
    row = ind.set_index("codice_istat").loc["037011"]
    assert row["popolazione"] == 35_414
    assert row["ets_per_10000"] == pytest.approx(10_000 / 35_414, rel=TOL)
    assert row["ets_odv_per_10000"] == pytest.approx(10_000 / 35_414, rel=TOL)
    assert row["ets_aps_per_10000"] == 0
    assert row["volontari_per_1000"] == pytest.approx(60_000 / 35_414, rel=TOL)
    assert row["dipendenti_per_1000"] == pytest.approx(2_000 / 35_414, rel=TOL)
    assert row["atti_co_progettazione_n"] == 1 and row["atti_patto_n"] == 0
    assert row["copertura_pilota_popolazione"] == 1
    bo = ind.set_index("codice_istat").loc["037006"]
    assert bo["finanza_sociale_euro_per_abitante"] == pytest.approx(1_250_000 / 387_971, rel=TOL)
    assert bo["atti_n"] == 3 and bo["atti_regolamento_n"] == 1
    # a comune without any entity has rate 0, not missing
    assert ind.set_index("codice_istat").loc["037001", "ets_per_10000"] == 0


def test_outcome_first_and_last_year(ind):
    row = ind.set_index("codice_istat").loc["037011"]
    assert row["esito_inizio"] == pytest.approx(3.3, abs=1e-12)
    # 2023: trend 0.7, +0.8 from 2020, wiggle 0.05 * ((7 + 6069) mod 5 - 2) = -0.05
    assert row["esito_fine"] == pytest.approx(3.4 + 0.7 + 0.8 - 0.05, abs=1e-12)


def test_social_district_aggregate_by_hand(ind):
    a = aggregate(ind, "ambito_sociale").set_index("ambito_sociale").loc["AMB-BO-RENO"]
    pop = 35_414 + 31_610
    assert a["comuni"] == 2 and a["popolazione"] == pop
    assert a["ets_per_10000"] == pytest.approx(2 * 10_000 / pop, rel=TOL)
    assert a["volontari_per_1000"] == pytest.approx(100 * 1_000 / pop, rel=TOL)
    assert a["ets_aps_per_10000"] == pytest.approx(10_000 / pop, rel=TOL)
    assert a["copertura_pilota_comuni"] == 0.5
    assert a["copertura_pilota_popolazione"] == pytest.approx(35_414 / pop, rel=TOL)
    assert a["esito_inizio"] == pytest.approx((3.3 * 600 + 3.05 * 1000) / 1600, rel=TOL)


def test_rate_of_area_is_population_weighted_mean_of_comuni(ind):
    for level in AREA_LEVELS:
        a = aggregate(ind, level).set_index(level)
        df = ind.dropna(subset=[level])
        df = df[df["popolazione"] > 0]
        w = df["popolazione"]
        want = (df["volontari_per_1000"] * w).groupby(df[level]).sum() / w.groupby(df[level]).sum()
        np.testing.assert_allclose(a["volontari_per_1000"].reindex(want.index), want, rtol=1e-9, atol=1e-12)
    macro = aggregate(ind, "ripartizione").set_index("ripartizione")
    assert macro["popolazione"].sum() == ind["popolazione"].sum()
    assert macro.loc["Nord-est", "ets_n"] == 14  # BO (9), RE (2), FC (1), BZ (2)


def test_outcome_measured_on_areas_replaces_weighted_mean(ind):
    direct = pd.DataFrame({"esito_inizio": [9.0], "esito_fine": [10.0], "esito_peso": [1.0]},
                          index=pd.Index(["DIS-BO-RENO"]))
    a = aggregate(ind, "distretto_sanitario", outcome_by_area=direct).set_index("distretto_sanitario")
    assert a.loc["DIS-BO-RENO", "esito_variazione"] == 1.0
    assert a.loc["DIS-BO-CITTA", "esito_inizio"] == pytest.approx(3.05)  # Bologna, i = 0


def test_largest_gaps_direction():
    t = pd.DataFrame({"popolazione": [10_000, 10_000, 20_000, 100], "x": [1.0, 3.0, 2.0, -50.0],
                      "codice_istat": list("abcd")})
    low = largest_gaps(t, "x", higher_is_better=True, n=1)
    assert low["codice_istat"].tolist() == ["a"] and low["divario"].iloc[0] == pytest.approx(1.0 - 2.0)
    high = largest_gaps(t, "x", higher_is_better=False, n=1)
    assert high["codice_istat"].tolist() == ["b"] and high["divario"].iloc[0] == pytest.approx(1.0)


def test_district_outcome_matches_the_analysis_panel(project_root):
    """case-comunita is analysed by health district: the district outcome of the stage-10
    tables (first year, weighted by denominatore) equals the panel built by
    osservatorio.indicators.panel.build_panel, averaged over the same months with its weights."""
    from osservatorio.indicators.panel import build_panel
    from osservatorio.themes import load_theme

    th = load_theme("case-comunita")
    src = load_sources(project_root / "data" / "demo", tables=["esiti", "ambiti", "pilot"])
    panel = build_panel(src, th)
    first = panel[panel["time"] < 2015 * 12]
    want = (first["y"] * first["w"]).groupby(first["unit"]).sum() / first["w"].groupby(first["unit"]).sum()
    out = outcome_by_unit(src["esiti"], th.outcome, th.period_start, th.period_end)
    ind = comune_indicators(src.tables, th.id, out)
    got = aggregate(ind, "distretto_sanitario").set_index("distretto_sanitario")["esito_inizio"]
    assert len(want) > 300
    np.testing.assert_allclose(got.reindex(want.index), want, rtol=1e-10)
    # the comuni of a district are those of `ambiti`, and every district of the panel has some
    members = src["ambiti"].groupby("distretto_sanitario")["codice_istat"].nunique()
    assert set(panel["unit"]) <= set(members.index)
