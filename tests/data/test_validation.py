"""Validation of source tables: every problem counted exactly, each bad cell reported
once and quoted as written in the file, non-finite numbers and unknown units refused,
header-only required tables refused."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from osservatorio.data.sources import load_sources
from osservatorio.data.validation import MAX_LISTED, to_float
from osservatorio.exceptions import DataValidationError

CODICI = Path(__file__).resolve().parents[2] / "data" / "examples" / "codici"


@pytest.fixture
def folder(tmp_path) -> Path:
    return Path(shutil.copytree(CODICI, tmp_path / "src"))


def _edit(path: Path, edits: dict[tuple[int, str], str]) -> None:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for (row, column), value in edits.items():
        df.loc[row, column] = value
    df.to_csv(path, index=False)


def _problems(folder: Path) -> tuple[str, list[str]]:
    with pytest.raises(DataValidationError) as exc:
        load_sources(folder, cache=False)
    assert exc.value.exit_code == 2
    head, *lines = str(exc.value).splitlines()
    return head, lines


def test_count_is_exact_and_the_rest_is_said_where(folder):
    """2,500 bad numbers and 3 bad dates: 2,503 problems, 20 listed (first rows first),
    '... and 2483 more' with where they are."""
    esiti = pd.read_csv(folder / "esiti.csv", dtype=str)
    big = pd.concat([esiti.assign(indicatore=f"x{i}") for i in range(27)], ignore_index=True)
    big.loc[:2499, "valore"] = "n/d"
    big.to_csv(folder / "esiti.csv", index=False)
    _edit(folder / "pilot.csv", {(0, "data_avvio"): "ieri", (1, "data_avvio"): "oggi", (2, "data_avvio"): "domani"})
    head, lines = _problems(folder)
    assert head == f"2503 problem(s) in the sources of {folder}:"
    listed = [line for line in lines if ", row " in line]
    assert len(listed) == MAX_LISTED
    assert listed[0].endswith("pilot.csv, row 2, column 'data_avvio': value 'ieri' is not a date YYYY-MM-DD or "
                              "DD/MM/YYYY")
    assert listed[3].endswith("esiti.csv, row 2, column 'valore': value 'n/d' is not a number")
    assert lines[-1] == f"  ... and 2483 more: 2483 in column 'valore' of {folder / 'esiti.csv'}"


def test_a_bad_number_is_reported_once(folder):
    _edit(folder / "pilot.csv", {(0, "costo_euro"): "molto", (1, "beneficiari"): "-2.5"})
    head, lines = _problems(folder)
    assert head.startswith("2 problem(s)")
    assert lines == [f"  {folder / 'pilot.csv'}, row 2, column 'costo_euro': value 'molto' is not a number",
                     f"  {folder / 'pilot.csv'}, row 3, column 'beneficiari': value '-2.5' is not a number >= 0"]


@pytest.mark.parametrize("value", ["inf", "-inf", "+inf", "Infinity", "nan", "NaN", "1e999"])
def test_non_finite_numbers_are_refused(folder, value):
    _edit(folder / "esiti.csv", {(3, "valore"): value})
    _, lines = _problems(folder)
    assert lines == [f"  {folder / 'esiti.csv'}, row 5, column 'valore': value '{value}' is not a finite number"]


def test_to_float_reads_decimal_numbers_only():
    s = pd.Series(["1", "+1.5", "-.5", "1e3", "1E-2", "0007", "1e999", "inf", "nan", "1_000", "1,5", "x", None],
                  dtype="str")
    got = to_float(s)
    assert got.dtype == "float64"
    assert got.iloc[:7].tolist() == [1.0, 1.5, -0.5, 1000.0, 0.01, 7.0, float("inf")]
    assert got.iloc[7:].isna().all()


@pytest.mark.parametrize(("unita", "says"), [
    ("999999", "'999999' is not the ISTAT code of a comune (2023 list) nor a district code in ambiti.csv"),
    ("ABCDEF", "'ABCDEF' is neither the 6-digit ISTAT code of a comune nor a code of ambito_sociale, "
               "distretto_sanitario or asl in ambiti.csv"),
    ("37006", "('037006' without its leading zeros? write the code as text)")])
def test_esiti_unit_must_exist_at_its_level(folder, unita, says):
    _edit(folder / "esiti.csv", {(0, "unita"): unita})
    _, lines = _problems(folder)
    assert len(lines) == 1 and f"esiti.csv, row 2, column 'unita': " in lines[0] and says in lines[0]


def test_esiti_unit_may_be_a_district_of_ambiti(folder):
    esiti = pd.read_csv(folder / "esiti.csv", dtype=str)
    extra = pd.DataFrame({"unita": ["DIS-BO-CITTA", "AMB-BO-RENO", "ASL-BO"], "periodo": "2020",
                          "indicatore": "esempio_esito", "valore": "1.5", "denominatore": ""})
    pd.concat([esiti, extra]).to_csv(folder / "esiti.csv", index=False)
    assert set(extra["unita"]) <= set(load_sources(folder, cache=False)["esiti"]["unita"])


def test_messages_quote_the_file_not_the_repair(folder):
    _edit(folder / "pilot.csv", {(0, "codice_istat"): "99999", (1, "data_avvio"): "12/25/2021"})
    _, lines = _problems(folder)
    assert lines == [
        f"  {folder / 'pilot.csv'}, row 2, column 'codice_istat': '99999' (read as '099999') is not the ISTAT "
        "code of a comune (2023 list)",
        f"  {folder / 'pilot.csv'}, row 3, column 'data_avvio': value '12/25/2021' (read as '2021-25-12') is not "
        "a calendar date (YYYY-MM-DD)"]


def test_header_only_required_table_is_refused(folder):
    path = folder / "pilot.csv"
    path.write_text(path.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    _, lines = _problems(folder)
    assert lines == [f"  {path}: no rows: the file has a header line only, and this table is required"]


def test_header_only_optional_table_is_a_note(folder):
    path = folder / "strumenti_finanza_sociale.csv"
    path.write_text(path.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    src = load_sources(folder, cache=False)
    assert src["strumenti_finanza_sociale"].empty
    assert src.notes == [f"{path}: no rows (a header line only): the table is used empty"]


def test_duplicates_name_the_first_row(folder):
    pilot = folder / "pilot.csv"
    pilot.write_text(pilot.read_text(encoding="utf-8") + pilot.read_text(encoding="utf-8").splitlines()[2] + "\n",
                     encoding="utf-8")
    esiti = folder / "esiti.csv"
    esiti.write_text(esiti.read_text(encoding="utf-8") + "037006,2017,esempio_esito,9,500\n", encoding="utf-8")
    _, lines = _problems(folder)
    assert lines[0].endswith("pilot.csv, row 5, column 'id_pilota': value 'P-2' is repeated (first on row 3)")
    assert lines[1].endswith("esiti.csv, row 98: (unita='037006', periodo='2017', indicatore='esempio_esito') "
                             "is repeated (first on row 3); (unita, periodo, indicatore) must be unique")


def test_xlsx_missing_columns_lists_the_sheets(folder):
    pilot = pd.read_csv(folder / "pilot.csv", dtype=str)
    (folder / "pilot.csv").unlink()
    with pd.ExcelWriter(folder / "pilot.xlsx") as book:
        pd.DataFrame({"Nota": ["i dati sono nel foglio Dati"]}).to_excel(book, sheet_name="Leggimi", index=False)
        pilot.to_excel(book, sheet_name="Dati", index=False)
    _, lines = _problems(folder)
    assert len(lines) == 1
    assert re.search(r"pilot.xlsx: required columns are missing: 'id_pilota', .*'beneficiari'; needs a "
                     r"'codice_istat' or a 'comune' column \(the file's columns: 'Nota'; read from the first sheet, "
                     r"'Leggimi', of 2: 'Leggimi', 'Dati'; the table must be on the first sheet\)$", lines[0])


def test_cp1252_file_is_named_in_the_message(folder):
    path = folder / "pilot.csv"
    text = path.read_text(encoding="utf-8").replace("2020-02-10", "10 febbraio").replace("assistenza", "attività")
    path.write_bytes(text.encode("cp1252"))
    _, lines = _problems(folder)
    assert lines[0].startswith(f"  note: {path} read as Windows-1252: not UTF-8 from byte 0xE0 at offset")
    assert lines[1].endswith("row 2, column 'data_avvio': value '10 febbraio' is not a date YYYY-MM-DD or DD/MM/YYYY")


def test_corrupt_files_in_a_folder_are_each_named(folder):
    import gzip

    (folder / "pilot.csv").unlink()
    (folder / "pilot.xlsx").write_bytes(b"PK\x03\x04 not really")
    data = gzip.compress((folder / "esiti.csv").read_bytes())
    (folder / "esiti.csv").unlink()
    (folder / "esiti.csv.gz").write_bytes(data[: len(data) // 2])
    head, lines = _problems(folder)
    assert head.startswith("2 problem(s)")
    assert lines[0].startswith(f"  {folder / 'pilot.xlsx'}: not a readable XLSX workbook")
    assert lines[1].startswith(f"  {folder / 'esiti.csv.gz'}: not a valid gzip file (EOFError")
