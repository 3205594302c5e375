"""costi_pilota and the contract terms of strumenti_finanza_sociale: read from the
examples in both layouts, each kind of bad row named with file, row, column and what is
allowed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from osservatorio.data.sources import load_sources
from osservatorio.exceptions import DataValidationError

EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "examples"


@pytest.fixture
def folder(tmp_path) -> Path:
    return Path(shutil.copytree(EXAMPLES / "codici", tmp_path / "src"))


def _edit(path: Path, edits: dict[tuple[int, str], str]) -> None:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for (row, column), value in edits.items():
        df.loc[row, column] = value
    df.to_csv(path, index=False)


def _lines(folder: Path) -> list[str]:
    with pytest.raises(DataValidationError) as exc:
        load_sources(folder, cache=False)
    assert exc.value.exit_code == 2
    return str(exc.value).splitlines()[1:]


@pytest.mark.parametrize("layout", ["codici", "nomi"])
def test_costs_and_contract_terms_are_read_in_both_layouts(layout):
    s = load_sources(EXAMPLES / layout, cache=False)
    costi = s["costi_pilota"]
    assert len(costi) == 11 and costi["importo_euro"].sum() == 195000
    assert costi.groupby("id_pilota")["importo_euro"].sum().to_dict() == {"P-1": 120000, "P-2": 45000, "P-3": 30000}
    sib = s["strumenti_finanza_sociale"].set_index("id").loc["F-1"]
    assert (sib["capitale_euro"], sib["soglia_esito"], sib["prezzo_unitario_euro"], sib["tetto_euro"],
            sib["durata_anni"], sib["unita_per_effetto"], sib["pagatore"]) == (1250000, 2, 900, 1600000, 4, 450,
                                                                                "comune")
    assert s["strumenti_finanza_sociale"].set_index("id").loc["F-2", "capitale_euro"] != \
        s["strumenti_finanza_sociale"].set_index("id").loc["F-2", "capitale_euro"]  # NaN: no contract


def test_a_cost_row_is_checked_cell_by_cell(folder):
    _edit(folder / "costi_pilota.csv", {(0, "voce"): "caffè", (1, "fonte"): "lotteria", (2, "anno"): "20",
                                        (3, "importo_euro"): "", (4, "importo_euro"): "-5"})
    lines = _lines(folder)
    path = folder / "costi_pilota.csv"
    assert f"  {path}, row 2, column 'voce': value 'caffè' is not one of: personale, servizi, coordinamento, " \
           "valutazione, altro" in lines
    assert f"  {path}, row 3, column 'fonte': value 'lotteria' is not one of: comune, regione, fondazione, " \
           "investitori privati, PNRR, fondi UE, altro" in lines
    assert f"  {path}, row 4, column 'anno': value '20' is not a year from 2000 to 2100" in lines
    assert f"  {path}, row 5, column 'importo_euro': empty value not allowed" in lines
    assert f"  {path}, row 6, column 'importo_euro': value '-5' is not a number >= 0" in lines


def test_a_cost_row_names_a_known_pilot_and_one_beneficiary_count_per_year(folder):
    _edit(folder / "costi_pilota.csv", {(6, "id_pilota"): "P-9", (1, "beneficiari"): "111"})
    lines = _lines(folder)
    path = folder / "costi_pilota.csv"
    assert f"  {path}, row 8, column 'id_pilota': 'P-9' is not an id_pilota of pilot.csv" in lines
    assert any(line.startswith(f"  {path}, row 2, column 'beneficiari': pilot 'P-1' gives different beneficiari "
                               "for 2020 on different rows") for line in lines)


def test_the_same_item_twice_for_a_pilot_year_and_source_is_refused(folder):
    costi = pd.read_csv(folder / "costi_pilota.csv", dtype=str, keep_default_na=False)
    pd.concat([costi, costi.iloc[[0]]]).to_csv(folder / "costi_pilota.csv", index=False)
    lines = _lines(folder)
    assert any("row 13" in line and "(id_pilota='P-1', anno='2020', voce='personale', fonte='comune') is repeated "
               "(first on row 2)" in line for line in lines), lines


def test_half_a_contract_is_refused_with_the_terms_left_empty(folder):
    _edit(folder / "strumenti_finanza_sociale.csv", {(0, "tetto_euro"): "", (0, "pagatore"): "",
                                                     (1, "capitale_euro"): "50000"})
    lines = _lines(folder)
    path = folder / "strumenti_finanza_sociale.csv"
    assert f"  {path}, row 2: a contract gives every term or none; empty here: tetto_euro, pagatore" in lines
    assert any(line.startswith(f"  {path}, row 3: a contract gives every term or none; empty here: soglia_esito")
               for line in lines)


def test_contract_terms_out_of_range_are_named(folder):
    _edit(folder / "strumenti_finanza_sociale.csv", {(0, "prezzo_unitario_euro"): "0", (0, "durata_anni"): "2.5",
                                                     (0, "pagatore"): "il sindaco"})
    lines = _lines(folder)
    path = folder / "strumenti_finanza_sociale.csv"
    assert f"  {path}, row 2, column 'prezzo_unitario_euro': value '0' is not a number > 0" in lines
    assert f"  {path}, row 2, column 'durata_anni': value '2.5' is not a whole number" in lines
    assert f"  {path}, row 2, column 'pagatore': value 'il sindaco' is not one of: comune, regione, ministero, " \
           "ASL, fondazione, altro" in lines


def test_files_without_costs_or_contract_columns_still_load(folder):
    (folder / "costi_pilota.csv").unlink()
    strumenti = pd.read_csv(folder / "strumenti_finanza_sociale.csv", dtype=str, keep_default_na=False)
    strumenti.iloc[:, :7].to_csv(folder / "strumenti_finanza_sociale.csv", index=False)
    s = load_sources(folder, cache=False)
    assert "costi_pilota" not in s.tables and "capitale_euro" not in s["strumenti_finanza_sociale"].columns
