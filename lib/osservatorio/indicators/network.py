"""Governance network: which comuni work with which Third Sector entities.

Built from the partners of the shared-administration acts (``enti_partner``: fiscal
codes separated by ';'). The network is bipartite: a tie comune - entity for every
pair that signed at least one act together, weighted by the number of acts. Measures:
partners per comune, comuni per entity, entities shared across comuni, and the
projection on comuni (two comuni are linked when they share at least one entity) with
its connected components. Plain pandas and a union-find: the measures are counts and
components, for which networkx would add a dependency without adding correctness.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def partner_edges(acts: pd.DataFrame, tema: str | None = None) -> pd.DataFrame:
    """Ties comune - entity: columns codice_istat, codice_fiscale, atti (acts signed together).

    Only acts with a comune code and at least one partner; ``tema`` keeps the acts of
    one theme. Partner codes are stripped and upper-cased; duplicates within an act
    count once.
    """
    a = acts.dropna(subset=["codice_istat", "enti_partner"])
    if tema is not None:
        a = a[a["tema"] == tema]
    cols = ["codice_istat", "codice_fiscale", "atti"]
    if a.empty:
        return pd.DataFrame(columns=cols)
    long = a.assign(codice_fiscale=a["enti_partner"].str.split(";")).explode("codice_fiscale")
    long["codice_fiscale"] = long["codice_fiscale"].str.strip().str.upper()
    long = long[long["codice_fiscale"].str.len() > 0].drop_duplicates(["id_atto", "codice_fiscale"])
    out = long.groupby(["codice_istat", "codice_fiscale"]).size().rename("atti").reset_index()
    return out[cols]


def comune_measures(edges: pd.DataFrame) -> pd.DataFrame:
    """Per comune: partners (distinct entities), ties weighted by acts, partners shared
    with other comuni, and the comuni reached through shared partners (projection degree)."""
    if edges.empty:
        return pd.DataFrame(columns=["partner", "legami_atti", "partner_condivisi", "comuni_collegati"])
    comuni_per_ente = edges.groupby("codice_fiscale")["codice_istat"].nunique()
    shared = edges["codice_fiscale"].map(comuni_per_ente) > 1
    g = edges.groupby("codice_istat")
    out = pd.DataFrame({
        "partner": g["codice_fiscale"].nunique(),
        "legami_atti": g["atti"].sum(),
        "partner_condivisi": edges[shared].groupby("codice_istat")["codice_fiscale"].nunique(),
    })
    links = comune_links(edges)
    degree = pd.concat([links["comune_a"], links["comune_b"]]).value_counts()
    out["comuni_collegati"] = degree
    return out.fillna(0).astype("int64")


def entity_measures(edges: pd.DataFrame) -> pd.DataFrame:
    """Per entity: comuni it works with and acts signed; sorted by comuni, then acts."""
    if edges.empty:
        return pd.DataFrame(columns=["codice_fiscale", "comuni", "atti"])
    g = edges.groupby("codice_fiscale")
    out = pd.DataFrame({"comuni": g["codice_istat"].nunique(), "atti": g["atti"].sum()}).reset_index()
    return out.sort_values(["comuni", "atti", "codice_fiscale"], ascending=[False, False, True], ignore_index=True)


def comune_links(edges: pd.DataFrame) -> pd.DataFrame:
    """Projection on comuni: one row per pair (comune_a < comune_b) sharing entities,
    with the number of shared entities."""
    cols = ["comune_a", "comune_b", "enti_condivisi"]
    if edges.empty:
        return pd.DataFrame(columns=cols)
    e = edges[["codice_fiscale", "codice_istat"]].drop_duplicates()
    pairs = e.merge(e, on="codice_fiscale", suffixes=("_a", "_b"))
    pairs = pairs[pairs["codice_istat_a"] < pairs["codice_istat_b"]]
    out = pairs.groupby(["codice_istat_a", "codice_istat_b"]).size().rename("enti_condivisi").reset_index()
    return out.set_axis(cols, axis=1)


def components(nodes: list[str], links: pd.DataFrame) -> pd.Series:
    """Connected component id (0, 1, ... by decreasing size) of each node, by union-find."""
    parent = {n: n for n in nodes}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(links["comune_a"], links["comune_b"]):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = pd.Series({n: find(n) for n in nodes}, dtype=object)
    sizes = roots.value_counts()
    order = {r: i for i, r in enumerate(sorted(sizes.index, key=lambda r: (-sizes[r], r)))}
    return roots.map(order).astype("int64")


def summary(edges: pd.DataFrame) -> dict[str, float]:
    """Network-level figures: comuni, entities, ties, entities shared across comuni (n and
    share), mean partners per comune, density of the bipartite network (ties over
    comuni x entities), comuni linked through shared entities, largest component size."""
    if edges.empty:
        return {"comuni": 0, "enti": 0, "legami": 0, "enti_condivisi": 0, "quota_enti_condivisi": np.nan,
                "partner_medi_per_comune": np.nan, "densita": np.nan, "comuni_collegati": 0,
                "componente_maggiore": 0}
    per_ente = edges.groupby("codice_fiscale")["codice_istat"].nunique()
    per_comune = edges.groupby("codice_istat")["codice_fiscale"].nunique()
    links = comune_links(edges)
    comp = components(sorted(per_comune.index), links)
    n_c, n_e = len(per_comune), len(per_ente)
    return {
        "comuni": n_c,
        "enti": n_e,
        "legami": len(edges),
        "enti_condivisi": int((per_ente > 1).sum()),
        "quota_enti_condivisi": float((per_ente > 1).mean()),
        "partner_medi_per_comune": float(per_comune.mean()),
        "densita": len(edges) / (n_c * n_e),
        "comuni_collegati": int(pd.concat([links["comune_a"], links["comune_b"]]).nunique()),
        "componente_maggiore": int(comp.value_counts().max()),
    }
