"""The maps drawn from the cached geometry: the governance network on the comuni centroids."""

from __future__ import annotations

import numpy as np
import pandas as pd


def test_network_map_draws_links_between_the_comuni_centroids(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection, PathCollection

    from osservatorio.publishing import maps

    monkeypatch.setattr(maps, "geometry_cache_root", lambda: tmp_path / "geo")
    maps.map_geometry.cache_clear()
    try:
        centroids = maps.comuni_centroids()
        a, b = "058091", "015146"  # Roma, Milano
        links = pd.DataFrame({"comune_a": [a], "comune_b": [b], "enti_condivisi": [2]})
        fig = maps.network_map(pd.Series([3, 1], index=[a, b]), links, "rete", "comuni", "legami")
        ax = fig.axes[0]
        (lines,) = [c for c in ax.collections if isinstance(c, LineCollection)]
        (segment,) = lines.get_segments()
        np.testing.assert_array_equal(segment, centroids.loc[[a, b], ["lon", "lat"]].to_numpy())
        assert lines.get_linewidths()[0] == 1.5  # 1 + 0.5 per shared entity beyond the first
        regions = [c for c in ax.collections if isinstance(c, PathCollection) and len(c.get_paths()) == 20]
        assert len(regions) == 1  # the 20 regions in grey under the network
        plt.close(fig)
    finally:
        maps.map_geometry.cache_clear()
