"""The theme-independent indicators cached once per data version, the fast workbook
writer and the cached map geometry give exactly what the direct computations give."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from osservatorio.data.sources import load_sources
from osservatorio.indicators import shared
from osservatorio.indicators.tables import (AREA_LEVELS, aggregate, area_sums, comune_indicators, outcome_by_unit,
                                            shared_comune_indicators, theme_comune_indicators)
from osservatorio.publishing.workbook import write_xlsx

EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "examples" / "codici"


@pytest.fixture
def cache_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache" / "indicators"
    monkeypatch.setattr(shared, "cache_root", lambda: root)
    return root


@pytest.fixture
def sources(tmp_path):
    folder = tmp_path / "sources"
    shutil.copytree(EXAMPLES, folder)
    return folder


def _assert_same(a: shared.SharedIndicators, b: shared.SharedIndicators) -> None:
    pd.testing.assert_frame_equal(a.comuni, b.comuni, check_exact=True)
    assert list(a.sums) == list(b.sums) == AREA_LEVELS
    for level in AREA_LEVELS:
        pd.testing.assert_frame_equal(a.sums[level], b.sums[level], check_exact=True)


def test_split_equals_the_direct_computation():
    src = load_sources(EXAMPLES)
    out = outcome_by_unit(src["esiti"], "esempio_esito", "2016", "2023")
    direct = comune_indicators(src.tables, "esempio", out)
    split = theme_comune_indicators(shared_comune_indicators(src.tables), src.tables["pilot"], "esempio", out)
    pd.testing.assert_frame_equal(split, direct, check_exact=True)
    assert "pilota_n" not in shared_comune_indicators(src.tables).columns
    common = shared_comune_indicators(src.tables)
    for level in AREA_LEVELS:
        want = aggregate(direct, level, outcome_by_area=out)
        got = aggregate(split, level, outcome_by_area=out, sums=area_sums(common, level))
        pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_cache_equals_a_fresh_computation(cache_root, sources):
    tables = load_sources(sources, cache=False).tables
    cold = shared.shared_indicators(tables)
    assert len(list(cache_root.iterdir())) == 1
    warm = shared.shared_indicators(tables)
    _assert_same(cold, shared.compute(tables))
    _assert_same(warm, shared.compute(tables))


def test_changed_source_file_invalidates(cache_root, sources):
    tables = load_sources(sources, cache=False).tables
    before = shared.shared_indicators(tables)
    path = sources / "enti_terzo_settore.csv"
    df = pd.read_csv(path, dtype=str)
    df.loc[0, "volontari"] = str(int(df.loc[0, "volontari"]) + 7)
    df.to_csv(path, index=False)
    changed = load_sources(sources, cache=False).tables
    after = shared.shared_indicators(changed)
    assert len(list(cache_root.iterdir())) == 2
    _assert_same(after, shared.compute(changed))
    assert after.comuni["volontari_n"].sum() == before.comuni["volontari_n"].sum() + 7


def test_corrupt_entry_is_rebuilt(cache_root, sources):
    tables = load_sources(sources, cache=False).tables
    shared.shared_indicators(tables)
    (entry,) = list(cache_root.iterdir())
    target = entry / "comuni.parquet"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    _assert_same(shared.shared_indicators(tables), shared.compute(tables))
    # the corrupt entry was discarded and stored again, intact
    assert (entry / "comuni.parquet").is_file() and (entry / "comuni.parquet").read_bytes() != bytes(data)
    _assert_same(shared.shared_indicators(tables), shared.compute(tables))


def test_workbook_reads_back_as_openpyxl_wrote_it(tmp_path):
    src = load_sources(EXAMPLES)
    ind = comune_indicators(src.tables, "esempio", outcome_by_unit(src["esiti"], "esempio_esito", "2016", "2023"))
    edge = pd.DataFrame({"x": [1.0, 2.5, np.nan, 35414.0, 1e-5, 1e20, np.inf, -np.inf, 0.1 + 0.2, 1 / 3],
                         "testo": ["a", None, "a&b<>", " b ", "c", "", "è", 'q"', "l\nm", "w"],
                         "classe": pd.Categorical(["u", "v", None, "u", "v", "u", "v", "u", "v", "u"]),
                         "flag": [True, False] * 5, "n": np.arange(10), "uno": [1.0] * 10,
                         "misto": [1, "a", 2.5, None, True, "x", 3, "", np.nan, "y"]})
    sheets = {"comuni": ind, "regioni": aggregate(ind, "regione"), "casi": edge}
    with pd.ExcelWriter(tmp_path / "openpyxl.xlsx", engine="openpyxl") as xl:
        for name, df in sheets.items():
            df.to_excel(xl, sheet_name=name, index=False)
    write_xlsx(tmp_path / "new.xlsx", sheets)
    want = pd.read_excel(tmp_path / "openpyxl.xlsx", sheet_name=None)
    got = pd.read_excel(tmp_path / "new.xlsx", sheet_name=None)
    assert list(got) == list(want) == list(sheets)
    for name in sheets:
        pd.testing.assert_frame_equal(got[name], want[name], check_exact=True)


@pytest.mark.parametrize("dated", [False, True])  # the fast path, and pandas' for other types
def test_workbook_layout_freezes_and_sizes_columns(tmp_path, dated):
    import openpyxl

    df = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"], "motivi": ["lungo", "testo"]})
    if dated:
        df["quando"] = pd.to_datetime(["2024-01-01", "2024-02-01"])
    write_xlsx(tmp_path / "l.xlsx", {"lista": df, "note": df[["b"]]},
               layout={"lista": {"freeze": (1, 2), "width": 14, "widths": {"motivi": 110}}})
    book = openpyxl.load_workbook(tmp_path / "l.xlsx")
    ws = book["lista"]
    assert ws.freeze_panes == "C2"
    assert ws.column_dimensions["A"].width == pytest.approx(14, abs=1)
    assert ws.column_dimensions["C"].width == pytest.approx(110, abs=1)
    assert book["note"].freeze_panes is None
    assert ws["B2"].value == "x" and ws["A3"].value == 2


def test_stage_outputs_equal_with_and_without_cache(project_root, tmp_path, monkeypatch):
    """Stage 10's indicatori_*.parquet and indicatori.xlsx: the same from a cold cache, a
    warm one, and the direct computation written by pandas with openpyxl."""
    from osservatorio.indicators import steps
    from osservatorio.running.stage import open_stage

    monkeypatch.setattr(shared, "cache_root", lambda: tmp_path / "cache")
    runs = {}
    for name in ("cold", "warm"):
        stage = open_stage("coprogettazione-anziani", tmp_path / name, {}, stage=10)
        steps.indicators(stage)
        runs[name] = stage
    th, src = runs["cold"].theme, runs["cold"].sources
    outcome = outcome_by_unit(src["esiti"], th.outcome, th.period_start, th.period_end)
    direct = {"comuni": comune_indicators(src.tables, th.id, outcome)}
    direct.update({lv: aggregate(direct["comuni"], lv, outcome_by_area=outcome) for lv in AREA_LEVELS})
    with pd.ExcelWriter(tmp_path / "direct.xlsx", engine="openpyxl") as xl:
        for key, df in direct.items():
            df.to_excel(xl, sheet_name="comuni" if key == "comuni" else steps.SHEETS[key], index=False)
    want_xlsx = pd.read_excel(tmp_path / "direct.xlsx", sheet_name=None)
    for stage in runs.values():
        for key, df in direct.items():
            name = "comune" if key == "comuni" else key
            got = pd.read_parquet(stage.data_dir / f"indicatori_{'comuni' if key == 'comuni' else name}.parquet")
            pd.testing.assert_frame_equal(got, df, check_exact=True)
        got_xlsx = pd.read_excel(stage.run_dir / "indicatori.xlsx", sheet_name=None)
        assert list(got_xlsx) == list(want_xlsx)
        for sheet, df in want_xlsx.items():
            pd.testing.assert_frame_equal(got_xlsx[sheet], df, check_exact=True)


def test_map_geometry_cached_equals_fresh_and_corrupt_is_rebuilt(tmp_path, monkeypatch):
    from osservatorio.publishing import maps

    monkeypatch.setattr(maps, "geometry_cache_root", lambda: tmp_path / "geo")
    maps.map_geometry.cache_clear()
    try:
        fresh = maps._geometry_frames()
        cold = maps.map_geometry()
        maps.map_geometry.cache_clear()
        (entry,) = list((tmp_path / "geo").iterdir())
        hit = maps.entry_store.read_entry(tmp_path / "geo", entry.name)
        for name, df in fresh.items():
            pd.testing.assert_frame_equal(hit[0][name], df, check_exact=True)
        (entry / "vertices.parquet").write_bytes(b"not parquet")
        rebuilt = maps.map_geometry()
        assert len(rebuilt.fills) == len(cold.fills) == len(fresh["index"])
        np.testing.assert_array_equal(rebuilt.fills[100].vertices, cold.fills[100].vertices)
        np.testing.assert_array_equal(rebuilt.bounds, cold.bounds)
    finally:
        maps.map_geometry.cache_clear()


def test_cached_centroids_and_region_fills_equal_the_geometry_they_come_from(tmp_path, monkeypatch):
    """The network map's comuni centroids and grey regions come from the cache: the same
    numbers geopandas computes from the boundaries (centroids in EPSG:3035)."""
    from matplotlib.path import Path

    from osservatorio.data import reference
    from osservatorio.publishing import maps

    monkeypatch.setattr(maps, "geometry_cache_root", lambda: tmp_path / "geo")
    maps.map_geometry.cache_clear()
    try:
        geo = maps.map_geometry()
        raw = reference.comuni_geometry()
        laea = raw.to_crs(3035).geometry.centroid
        c = laea.to_crs(4326)
        np.testing.assert_array_equal(geo.centroids.index, raw["codice_istat"].to_numpy())
        np.testing.assert_array_equal(geo.centroids["x_3035"], laea.x)  # the distances to the capoluogo use these
        np.testing.assert_array_equal(geo.centroids["y_3035"], laea.y)
        np.testing.assert_allclose(geo.centroids["lon"], c.x, rtol=0, atol=1e-12)
        np.testing.assert_allclose(geo.centroids["lat"], c.y, rtol=0, atol=1e-12)
        regions = maps._simplified_regions()
        assert len(geo.region_fills) == len(regions) == 20
        for path, geom in zip(geo.region_fills, regions.geometry.normalize()):
            rings = maps._rings(geom)  # closed rings: the last vertex repeats the first (drawn as CLOSEPOLY)
            np.testing.assert_array_equal(path.vertices, np.concatenate(rings))
            assert (path.codes == Path.CLOSEPOLY).sum() == len(rings)
    finally:
        maps.map_geometry.cache_clear()
