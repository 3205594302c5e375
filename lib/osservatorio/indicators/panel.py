"""Build the analysis panel of a theme from validated sources.

One row per unit x period with the outcome ``y``, its weight (``denominatore``), the
first treated period ``cohort`` (0 = never treated in the window), the cluster id and
context moderators. Periods are integers: the year, or ``year * 12 + month - 1`` for
monthly data (see ``period_to_int``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from osservatorio.data import reference
from osservatorio.exceptions import DataValidationError
from osservatorio.themes import Theme

CONTEXT_COLUMNS = ["ripartizione", "classe_ampiezza", "piccolo_comune", "capoluogo", "popolazione",
                   "quota_over65", "indice_vecchiaia", "regione", "provincia"]


def period_to_int(periodo: pd.Series, frequency: str) -> pd.Series:
    """'YYYY' -> YYYY; 'YYYY-MM' -> YYYY*12 + MM-1 (a running month index)."""
    if frequency == "year":
        return periodo.str.slice(0, 4).astype("int64")
    year = periodo.str.slice(0, 4).astype("int64")
    month = periodo.str.slice(5, 7).astype("int64")
    return year * 12 + month - 1


def int_to_period(value: int, frequency: str) -> str:
    if frequency == "year":
        return str(int(value))
    return f"{int(value) // 12:04d}-{int(value) % 12 + 1:02d}"


def date_to_period(dates: pd.Series, frequency: str) -> pd.Series:
    """Adoption date 'YYYY-MM-DD' to the first treated period (integer)."""
    return period_to_int(dates.str.slice(0, 7 if frequency == "month" else 4), frequency)


def unit_frame(theme: Theme, ambiti: pd.DataFrame) -> pd.DataFrame:
    """Comuni in the theme's universe with their context and mapping columns."""
    units = reference.comuni().merge(
        ambiti[["codice_istat", "ambito_sociale", "distretto_sanitario", "asl"]], on="codice_istat", how="left"
    )
    if theme.universe == "capoluoghi":
        units = units[units["capoluogo"]]
    elif theme.universe == "sopra_100000":
        units = units[units["popolazione"] > 100_000]
    return units.reset_index(drop=True)


def treated_cohorts(pilot: pd.DataFrame, theme: Theme, units: pd.DataFrame) -> pd.Series:
    """First treated period per analysis unit, from the theme's rows of pilot."""
    rows = pilot[pilot["tema"] == theme.pilot_tema]
    if rows.empty:
        raise DataValidationError(f"pilot: no row with tema == '{theme.pilot_tema}'; the theme has no treated units")
    rows = rows.assign(cohort=date_to_period(rows["data_avvio"], theme.frequency))
    if theme.unit_level != "comune":
        rows = rows.merge(units[["codice_istat", theme.unit_level]], on="codice_istat", how="inner")
        key = theme.unit_level
    else:
        key = "codice_istat"
    return rows.groupby(key)["cohort"].min()


def build_panel(sources, theme: Theme) -> pd.DataFrame:
    """The theme's analysis panel (see module docstring)."""
    units = unit_frame(theme, sources["ambiti"])
    esiti = sources["esiti"]
    esiti = esiti[esiti["indicatore"] == theme.outcome]
    if esiti.empty:
        raise DataValidationError(f"esiti: no row with indicatore == '{theme.outcome}'")
    esiti = esiti.assign(time=period_to_int(esiti["periodo"], theme.frequency))
    start = period_to_int(pd.Series([theme.period_start]), theme.frequency).iloc[0]
    end = period_to_int(pd.Series([theme.period_end]), theme.frequency).iloc[0]
    esiti = esiti[(esiti["time"] >= start) & (esiti["time"] <= end)]
    data = esiti.merge(units, left_on="unita", right_on="codice_istat", how="inner")
    data["w"] = data["denominatore"].fillna(1.0)
    if theme.unit_level == "comune":
        data["unit"] = data["codice_istat"]
        ctx = units.set_index("codice_istat")
        panel = data[["unit", "time", "valore", "w"]].rename(columns={"valore": "y"})
    else:
        level = theme.unit_level
        data = data.dropna(subset=[level])
        data["yw"] = data["valore"] * data["w"]
        panel = data.groupby([level, "time"], as_index=False).agg(yw=("yw", "sum"), w=("w", "sum"))
        panel["y"] = panel["yw"] / panel["w"]
        panel = panel.rename(columns={level: "unit"}).drop(columns="yw")
        panel = _with_direct_rows(panel, esiti, set(units[level].dropna()))
        ctx = _aggregate_context(units, level)
    cohorts = treated_cohorts(sources["pilot"], theme, units)
    panel["cohort"] = panel["unit"].map(cohorts).fillna(0).astype("int64")
    panel.loc[panel["cohort"] > end, "cohort"] = 0  # adopted after the window: not yet treated
    cluster = "codice_istat" if theme.cluster == "comune" else theme.cluster
    ctx = ctx.assign(cluster=ctx[cluster] if cluster in ctx.columns else ctx.index)
    keep = [c for c in [*CONTEXT_COLUMNS, "cluster"] if c in ctx.columns]
    panel = panel.merge(ctx[keep], left_on="unit", right_index=True, how="left")
    panel["treated"] = ((panel["cohort"] > 0) & (panel["time"] >= panel["cohort"])).astype("int64")
    panel["event_time"] = np.where(panel["cohort"] > 0, panel["time"] - panel["cohort"], np.nan)
    return panel.sort_values(["unit", "time"], ignore_index=True)


def _with_direct_rows(panel: pd.DataFrame, esiti: pd.DataFrame, district_codes: set[str]) -> pd.DataFrame:
    """Add outcome rows keyed directly on a district code (``unita`` = the district).

    Sources measured by health district come that way; where the same district and
    period are also built from its comuni, the direct measurement wins.
    """
    direct = esiti[esiti["unita"].isin(district_codes)]
    if direct.empty:
        return panel
    direct = pd.DataFrame({"unit": direct["unita"], "time": direct["time"], "y": direct["valore"],
                           "w": direct["denominatore"].fillna(1.0)})
    keys = pd.MultiIndex.from_frame(direct[["unit", "time"]])
    built = panel[~pd.MultiIndex.from_frame(panel[["unit", "time"]]).isin(keys)]
    return pd.concat([built, direct[built.columns]], ignore_index=True)


def _aggregate_context(units: pd.DataFrame, level: str) -> pd.DataFrame:
    """Context of a district: population-weighted shares, the modal macro-area."""
    g = units.dropna(subset=[level]).groupby(level)
    ctx = pd.DataFrame(
        {
            "popolazione": g["popolazione"].sum(),
            "quota_over65": g["popolazione_65_piu"].sum() / g["popolazione"].sum(),
            "ripartizione": g["ripartizione"].agg(lambda s: s.mode().iat[0]),
            "regione": g["regione"].agg(lambda s: s.mode().iat[0]),
            "provincia": g["provincia"].agg(lambda s: s.mode().iat[0]),
            "asl": g["asl"].first(),
            "n_comuni": g.size(),
        }
    )
    ctx["classe_ampiezza"] = reference.size_class(ctx["popolazione"])
    return ctx
