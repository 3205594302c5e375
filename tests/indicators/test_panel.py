"""Analysis panel: periods as integers, cohorts from pilots, districts from comuni or direct rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from osservatorio.data.sources import load_sources
from osservatorio.indicators.panel import build_panel, int_to_period, period_to_int
from osservatorio.themes import load_theme


def test_period_round_trip():
    s = pd.Series(["2014-01", "2021-12"])
    ints = period_to_int(s, "month")
    assert list(ints) == [2014 * 12, 2021 * 12 + 11]
    assert [int_to_period(v, "month") for v in ints] == list(s)
    assert list(period_to_int(pd.Series(["2019"]), "year")) == [2019]


def test_comune_panel_matches_pilots(project_root):
    src = load_sources(project_root / "data" / "demo")
    theme = load_theme("patti-beni-comuni")
    panel = build_panel(src, theme)
    pilots = src["pilot"][src["pilot"]["tema"] == theme.id]
    first = pilots.groupby("codice_istat")["data_avvio"].min().str.slice(0, 4).astype(int)
    treated = panel[panel["cohort"] > 0].groupby("unit")["cohort"].first()
    assert treated.to_dict() == first.to_dict()
    assert panel.groupby("unit")["time"].nunique().eq(10).all()  # balanced 2014-2023
    assert ((panel["treated"] == 1) == ((panel["cohort"] > 0) & (panel["time"] >= panel["cohort"]))).all()


def test_district_panel_from_comuni_and_direct_rows(project_root):
    src = load_sources(project_root / "data" / "demo")
    theme = load_theme("case-comunita")
    panel = build_panel(src, theme)
    district = panel["unit"].iloc[0]
    esiti, amb = src["esiti"], src["ambiti"]
    members = amb.loc[amb["distretto_sanitario"] == district, "codice_istat"]
    rows = esiti[(esiti["indicatore"] == theme.outcome) & esiti["unita"].isin(members) & (esiti["periodo"] == "2015-03")]
    expected = np.average(rows["valore"], weights=rows["denominatore"])
    got = panel[(panel["unit"] == district) & (panel["time"] == 2015 * 12 + 2)]["y"].iloc[0]
    assert abs(got - expected) < 1e-10
    # a source measured directly by district replaces the comuni aggregate for that cell
    direct = pd.DataFrame([{"unita": district, "periodo": "2015-03", "indicatore": theme.outcome,
                            "valore": 99.0, "denominatore": 1000.0}])
    src.tables["esiti"] = pd.concat([esiti, direct], ignore_index=True)
    panel2 = build_panel(src, theme)
    cell = panel2[(panel2["unit"] == district) & (panel2["time"] == 2015 * 12 + 2)]
    assert len(cell) == 1 and cell["y"].iloc[0] == 99.0
    assert len(panel2) == len(panel)
