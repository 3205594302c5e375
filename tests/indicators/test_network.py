"""Governance network measures on a small hand-made example.

Acts: comune A with entities x, y (act 1) and x again (act 2); comune B with x, z;
comune C with w; comune D with z. So x is shared by A and B, z by B and D; A-B-D form
one component, C another. A theme filter keeps only its acts.
"""

from __future__ import annotations

import pandas as pd
import pytest

from osservatorio.indicators.network import (comune_links, comune_measures, components, entity_measures, partner_edges,
                                  summary)

ACTS = pd.DataFrame({
    "id_atto": ["1", "2", "3", "4", "5", "6", "7"],
    "codice_istat": ["A", "A", "B", "C", "D", "E", None],
    "enti_partner": ["x; y", "X;x", "x;z", "w", "z", None, "q"],
    "tema": ["t", "t", "t", "t", "t", "t", "t"],
})


@pytest.fixture
def edges():
    return partner_edges(ACTS)


def test_edges(edges):
    got = {(r.codice_istat, r.codice_fiscale): r.atti for r in edges.itertuples()}
    assert got == {("A", "X"): 2, ("A", "Y"): 1, ("B", "X"): 1, ("B", "Z"): 1, ("C", "W"): 1, ("D", "Z"): 1}


def test_comune_measures(edges):
    m = comune_measures(edges)
    assert m.loc["A"].to_dict() == {"partner": 2, "legami_atti": 3, "partner_condivisi": 1, "comuni_collegati": 1}
    assert m.loc["B"].to_dict() == {"partner": 2, "legami_atti": 2, "partner_condivisi": 2, "comuni_collegati": 2}
    assert m.loc["C"].to_dict() == {"partner": 1, "legami_atti": 1, "partner_condivisi": 0, "comuni_collegati": 0}


def test_entities_links_components(edges):
    ent = entity_measures(edges).set_index("codice_fiscale")
    assert ent.loc["X"].tolist() == [2, 3] and ent.loc["W"].tolist() == [1, 1]
    assert entity_measures(edges)["codice_fiscale"].iloc[0] == "X"
    links = comune_links(edges)
    assert sorted(map(tuple, links[["comune_a", "comune_b", "enti_condivisi"]].values.tolist())) == [
        ("A", "B", 1), ("B", "D", 1)]
    comp = components(["A", "B", "C", "D"], links)
    assert comp["A"] == comp["B"] == comp["D"] == 0 and comp["C"] == 1


def test_summary(edges):
    s = summary(edges)
    assert s["comuni"] == 4 and s["enti"] == 4 and s["legami"] == 6
    assert s["enti_condivisi"] == 2 and s["quota_enti_condivisi"] == 0.5
    assert s["partner_medi_per_comune"] == pytest.approx(6 / 4)
    assert s["densita"] == pytest.approx(6 / 16)
    assert s["comuni_collegati"] == 3 and s["componente_maggiore"] == 3


def test_theme_filter_and_empty():
    acts = ACTS.assign(tema=["t", "u", "u", "u", "u", "u", "u"])
    e = partner_edges(acts, tema="t")
    assert e[["codice_istat", "codice_fiscale"]].values.tolist() == [["A", "X"], ["A", "Y"]]
    empty = partner_edges(acts, tema="none")
    assert empty.empty and summary(empty)["comuni"] == 0 and comune_measures(empty).empty
