"""Schemas of the Observatory source tables (pandera), one per file of DESIGN.md.

Columns keep the Italian snake_case names of the sources. Comuni are identified by
``codice_istat`` (6-digit string) when the file has it, else by the name in ``comune``,
which the loader reconciles to codes. Each check's ``error`` completes the sentence
"value '...' is not <error>" of the messages (``data/validation.py`` runs the checks).
Numeric columns (float) must hold finite numbers: inf and nan written as text are refused.

pandera is imported only when a schema is used (``SCHEMAS`` is built on first access):
loading tables from the source cache, as every stage kernel does, needs none.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Final

import pandas as pd

from osservatorio.data.files import TABLES  # noqa: F401 - the table list, where no pandas is needed

if TYPE_CHECKING:
    import pandera.pandas as pa

ISTAT_CODE: Final = r"^\d{6}$"
DATE: Final = r"^\d{4}-\d{2}-\d{2}$"
PERIOD: Final = r"^\d{4}(-(0[1-9]|1[0-2]))?$"

SEZIONI_RUNTS: Final = [
    "ODV",
    "APS",
    "Impresa sociale",
    "Ente filantropico",
    "Rete associativa",
    "Società di mutuo soccorso",
    "Altri enti",
]
TIPI_ATTO: Final = ["regolamento", "patto", "co-programmazione", "co-progettazione", "convenzione"]
TIPI_FINANZA: Final = [
    "social impact bond",
    "titoli di solidarietà",
    "social lending",
    "social bonus",
    "fondo innovazione sociale",
    "fondazione di comunità",
]
# The terms of a payment-by-results contract (social impact bond, outcome contract) in
# strumenti_finanza_sociale: all given, or none (synthesis/costs.py, Contract).
CONTRACT_COLUMNS: Final = ["capitale_euro", "soglia_esito", "prezzo_unitario_euro", "tetto_euro", "durata_anni",
                           "unita_per_effetto", "pagatore"]
PAGATORI: Final = ["comune", "regione", "ministero", "ASL", "fondazione", "altro"]
# costi_pilota: what a pilot's money pays for and who puts it in.
VOCI_COSTO: Final = ["personale", "servizi", "coordinamento", "valutazione", "altro"]
FONTI_COSTO: Final = ["comune", "regione", "fondazione", "investitori privati", "PNRR", "fondi UE", "altro"]


@functools.cache
def _schemas() -> dict[str, pa.DataFrameSchema]:
    import pandera.pandas as pa
    from pandera.pandas import Check, Column

    def _comune_columns() -> dict[str, Column]:
        return {
            "codice_istat": Column(str, Check.str_matches(ISTAT_CODE, error="a 6-digit ISTAT code"), required=False,
                                   nullable=True),
            "comune": Column(str, nullable=True, required=False),
        }

    def _real_date(s: pd.Series) -> pd.Series:
        """True where the YYYY-MM-DD string is a calendar date (2021-02-30 is not)."""
        return pd.to_datetime(s, format="%Y-%m-%d", errors="coerce").notna() | ~s.str.match(DATE)

    def _date(name: str, nullable: bool = False) -> Column:
        # the pattern reports the format; the second check a well-formed but impossible date
        return Column(str, [Check.str_matches(DATE, error="a date YYYY-MM-DD or DD/MM/YYYY"),
                            Check(_real_date, error="a calendar date (YYYY-MM-DD)")],
                      nullable=nullable, coerce=True)

    def _money(nullable: bool = True, required: bool = True) -> Column:
        return Column(float, Check.ge(0, error="a number >= 0"), nullable=nullable, coerce=True, required=required)

    def _positive() -> Column:  # an optional column of numbers > 0
        return Column(float, Check.gt(0, error="a number > 0"), nullable=True, required=False, coerce=True)

    def _count(nullable: bool = False) -> Column:
        return Column(float, [Check.ge(0, error="a number >= 0"),
                              Check(lambda s: (s.dropna() % 1 == 0), element_wise=False, error="a whole number")],
                      nullable=nullable, coerce=True)

    def _one_of(values: list[str]) -> Check:
        return Check.isin(values, error="one of: " + ", ".join(values))

    def _has_comune_key(df) -> bool:
        return "codice_istat" in df.columns or "comune" in df.columns

    _KEY_CHECK = Check(_has_comune_key, error="needs a 'codice_istat' or a 'comune' column")

    schemas = {
        "enti_terzo_settore": pa.DataFrameSchema(
            {
                "codice_fiscale": Column(str, Check.str_matches(r"^\d{11}$|^[A-Z0-9]{16}$",
                                                                error="11 digits or 16 capital letters and digits"),
                                         unique=True),
                "denominazione": Column(str, Check.str_length(min_value=1)),
                "sezione": Column(str, _one_of(SEZIONI_RUNTS)),
                **_comune_columns(),
                "data_iscrizione": _date("data_iscrizione"),
                "volontari": _count(nullable=True),
                "dipendenti": _count(nullable=True),
            },
            checks=[_KEY_CHECK],
            strict=False,
        ),
        "atti_amministrazione_condivisa": pa.DataFrameSchema(
            {
                "id_atto": Column(str, unique=True),
                **_comune_columns(),
                "tipo": Column(str, _one_of(TIPI_ATTO)),
                "data": _date("data"),
                "tema": Column(str, nullable=True),
                "enti_partner": Column(str, nullable=True),
                "importo_euro": _money(),
            },
            checks=[_KEY_CHECK],
        ),
        "strumenti_finanza_sociale": pa.DataFrameSchema(
            {
                "id": Column(str, unique=True),
                **_comune_columns(),
                "tipo": Column(str, _one_of(TIPI_FINANZA)),
                "data_avvio": _date("data_avvio"),
                "importo_euro": _money(),
                "metrica_esito": Column(str, nullable=True),
                # contract terms (CONTRACT_COLUMNS): optional columns, all filled or all empty in a row
                "capitale_euro": _money(required=False),
                "soglia_esito": Column(float, nullable=True, required=False, coerce=True),
                "prezzo_unitario_euro": _positive(),
                "tetto_euro": _positive(),
                "durata_anni": Column(float, [Check.in_range(1, 30, error="a number of years from 1 to 30"),
                                              Check(lambda s: (s.dropna() % 1 == 0), element_wise=False,
                                                    error="a whole number")],
                                      nullable=True, required=False, coerce=True),
                "unita_per_effetto": _positive(),
                "pagatore": Column(str, _one_of(PAGATORI), nullable=True, required=False),
            },
            checks=[_KEY_CHECK],
        ),
        "pilot": pa.DataFrameSchema(
            {
                "id_pilota": Column(str, unique=True),
                "tema": Column(str, Check.str_length(min_value=1)),
                **_comune_columns(),
                "data_avvio": _date("data_avvio"),
                "pratica": Column(str),
                "costo_euro": _money(),
                "beneficiari": _count(nullable=True),
            },
            checks=[_KEY_CHECK],
        ),
        "costi_pilota": pa.DataFrameSchema(
            {
                "id_pilota": Column(str, Check.str_length(min_value=1)),
                "anno": Column(float, [Check.in_range(2000, 2100, error="a year from 2000 to 2100"),
                                       Check(lambda s: (s.dropna() % 1 == 0), element_wise=False,
                                             error="a whole number")], coerce=True),
                "voce": Column(str, _one_of(VOCI_COSTO)),
                "importo_euro": _money(nullable=False),
                "fonte": Column(str, _one_of(FONTI_COSTO)),
                "beneficiari": _count(nullable=True),
            },
            unique=["id_pilota", "anno", "voce", "fonte"],
        ),
        "esiti": pa.DataFrameSchema(
            {
                "unita": Column(str, Check.str_length(min_value=1)),
                "periodo": Column(str, Check.str_matches(PERIOD, error="a period YYYY or YYYY-MM (month 01-12)")),
                "indicatore": Column(str, Check.str_length(min_value=1)),
                "valore": Column(float, nullable=False, coerce=True),
                "denominatore": Column(float, Check.ge(0, error="a number >= 0"), nullable=True, coerce=True),
            },
            unique=["unita", "periodo", "indicatore"],
        ),
        "ambiti": pa.DataFrameSchema(
            {
                **_comune_columns(),
                "ambito_sociale": Column(str),
                "distretto_sanitario": Column(str),
                "asl": Column(str),
            },
            checks=[_KEY_CHECK],
        ),
    }
    return schemas


def __getattr__(name: str):
    if name == "SCHEMAS":
        return _schemas()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# The tables in the order of DESIGN.md (the keys of SCHEMAS, checked by a test).
REQUIRED_TABLES: Final = ["pilot", "esiti", "ambiti"]
