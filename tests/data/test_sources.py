"""Source validation: a bad file gets file, row, column and reason."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from osservatorio.data.sources import load_sources, read_table
from osservatorio.exceptions import DataValidationError


@pytest.fixture
def sources_copy(tmp_path, project_root):
    folder = tmp_path / "src"
    shutil.copytree(project_root / "data" / "demo", folder)
    return folder


def _edit(path, row: int, column: str, value: str) -> None:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[row, column] = value
    df.to_csv(path, index=False)


def test_demo_sources_are_valid(project_root):
    src = load_sources(project_root / "data" / "demo")
    assert {"pilot", "esiti", "ambiti", "enti_terzo_settore"} <= set(src.tables)
    assert src["esiti"]["valore"].dtype == "float64"
    assert src["pilot"]["codice_istat"].str.fullmatch(r"\d{6}").all()


def test_bad_value_names_file_row_column(sources_copy):
    _edit(sources_copy / "pilot.csv", 3, "data_avvio", "2020/05/01")
    with pytest.raises(DataValidationError) as exc:
        load_sources(sources_copy)
    msg = str(exc.value)
    assert "pilot.csv, row 5, column 'data_avvio'" in msg  # data row 3 is line 5 (header is line 1)
    assert "2020/05/01" in msg
    assert exc.value.exit_code == 2


def test_impossible_date_is_reported_once(sources_copy):
    _edit(sources_copy / "pilot.csv", 3, "data_avvio", "2021-02-30")  # right format, no such day
    _edit(sources_copy / "pilot.csv", 4, "data_avvio", "2021-13-01")
    with pytest.raises(DataValidationError) as exc:
        load_sources(sources_copy)
    msg = str(exc.value)
    assert msg.count("pilot.csv, row 5, column 'data_avvio'") == 1 and "2021-02-30" in msg
    assert msg.count("pilot.csv, row 6, column 'data_avvio'") == 1 and "2021-13-01" in msg
    assert "calendar date" in msg


def test_unknown_category_and_bad_code(sources_copy):
    _edit(sources_copy / "atti_amministrazione_condivisa.csv", 0, "tipo", "delibera")
    _edit(sources_copy / "ambiti.csv", 10, "codice_istat", "999999")
    with pytest.raises(DataValidationError) as exc:
        load_sources(sources_copy)
    msg = str(exc.value)
    assert "atti_amministrazione_condivisa.csv, row 2, column 'tipo'" in msg and "delibera" in msg
    assert "ambiti.csv, row 12, column 'codice_istat': '999999' is not the ISTAT code of a comune" in msg


def test_missing_column_and_missing_table(sources_copy):
    df = pd.read_csv(sources_copy / "esiti.csv", dtype=str, nrows=50)
    df.drop(columns="valore").to_csv(sources_copy / "esiti.csv", index=False)
    (sources_copy / "ambiti.csv").unlink()
    with pytest.raises(DataValidationError) as exc:
        load_sources(sources_copy)
    msg = str(exc.value)
    assert "esiti.csv, column 'valore': required column is missing" in msg
    assert "ambiti.csv: required source table is missing" in msg


def test_non_numeric_value(sources_copy):
    df = pd.read_csv(sources_copy / "esiti.csv", dtype=str, nrows=20)
    df.loc[7, "valore"] = "tre"
    df.to_csv(sources_copy / "esiti.csv", index=False)
    with pytest.raises(DataValidationError, match=r"esiti.csv, row 9, column 'valore'"):
        load_sources(sources_copy)


def test_xlsx_sources_are_read(sources_copy):
    pilot = pd.read_csv(sources_copy / "pilot.csv", dtype=str)
    (sources_copy / "pilot.csv").unlink()
    pilot.to_excel(sources_copy / "pilot.xlsx", index=False)
    assert read_table(sources_copy / "pilot.xlsx")["codice_istat"].iloc[0] == pilot["codice_istat"].iloc[0]
    src = load_sources(sources_copy, tables=["pilot", "ambiti", "esiti"])
    assert src.files["pilot"].suffix == ".xlsx"
