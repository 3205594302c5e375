"""Sources as they come: every example format of data/README.md loads through load_sources.

The 'nomi' examples (names only, XLSX and ';' CSV, Italian dates and numbers, real-export
headers) must give the same codes and values as the 'codici' examples, and the names
that cannot be matched must be reported with their file line and candidates.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from osservatorio.data.sources import find_table_file, load_sources, normalise_header, read_table

EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "examples"
KEYS = {
    "enti_terzo_settore": "codice_fiscale",
    "atti_amministrazione_condivisa": "id_atto",
    "strumenti_finanza_sociale": "id",
    "pilot": "id_pilota",
    "ambiti": "ambito_sociale",
}


def _convert(src: Path, dst: Path) -> Path:
    """The same tables in the other format: CSV -> XLSX and XLSX -> CSV (',' UTF-8)."""
    dst.mkdir()
    for path in src.iterdir():
        if path.suffix == ".csv":
            sep = ";" if path.read_text(encoding="utf-8").splitlines()[0].count(";") else ","
            pd.read_csv(path, dtype=str, sep=sep).to_excel(dst / f"{path.stem}.xlsx", index=False)
        elif path.suffix == ".xlsx":
            pd.read_excel(path).to_csv(dst / f"{path.stem}.csv", index=False)
    return dst


@pytest.fixture(scope="module")
def coded():
    return load_sources(EXAMPLES / "codici")


@pytest.mark.parametrize("folder", ["codici", "nomi"])
@pytest.mark.parametrize("converted", [False, True])
def test_every_example_loads_in_both_formats(folder, converted, coded, tmp_path):
    path = _convert(EXAMPLES / folder, tmp_path / "x") if converted else EXAMPLES / folder
    src = load_sources(path)
    assert set(src.tables) == set(coded.tables)
    suffixes = {p.suffix for p in src.files.values()}
    assert suffixes <= {".csv", ".xlsx"}
    for table, key in KEYS.items():
        got = src[table].dropna(subset=["codice_istat"]).sort_values(key).reset_index(drop=True)
        want = coded[table].sort_values(key).reset_index(drop=True)
        assert got["codice_istat"].tolist() == want["codice_istat"].tolist(), table
    for table, cols in {"enti_terzo_settore": ["volontari", "dipendenti", "data_iscrizione"],
                        "atti_amministrazione_condivisa": ["importo_euro", "data", "enti_partner"],
                        "pilot": ["data_avvio", "costo_euro"], "strumenti_finanza_sociale": ["importo_euro"]}.items():
        key = KEYS[table]
        got = src[table].dropna(subset=["codice_istat"]).set_index(key).sort_index()[cols]
        want = coded[table].set_index(key).sort_index()[cols]
        pd.testing.assert_frame_equal(got, want, check_dtype=False)
    pd.testing.assert_frame_equal(src["esiti"], coded["esiti"])


def test_names_report_ambiguous_and_unmatched():
    src = load_sources(EXAMPLES / "nomi")
    rep = src.match_report.set_index("nome")
    assert set(rep.index) == {"Paterno", "Borgo Panigale"}
    assert rep.at["Paterno", "stato"] == "ambiguous"
    assert "076100" in rep.at["Paterno", "candidati"] and "087033" in rep.at["Paterno", "candidati"]
    assert rep.at["Paterno", "righe"] == "12"  # data row 11 of the file is line 12 (header is line 1)
    assert rep.at["Borgo Panigale", "stato"] == "unmatched"
    summ = src.match_summary.set_index("tabella")
    assert summ.at["atti_amministrazione_condivisa", "abbinati_per_nome"] == 10
    assert summ.at["atti_amministrazione_condivisa", "ambigui"] == 1
    assert summ.at["enti_terzo_settore", "abbinati_per_nome"] == 16
    assert summ.at["enti_terzo_settore", "con_codice"] == 0


def test_coded_examples_have_an_empty_report(coded):
    assert coded.match_report.empty
    assert (coded.match_summary["con_codice"] == coded.match_summary["righe"]).all()


def test_province_column_resolves_homonyms(tmp_path):
    folder = _convert(EXAMPLES / "codici", tmp_path / "x")
    amb = pd.read_excel(folder / "ambiti.xlsx", dtype=str).drop(columns="codice_istat")
    amb.loc[len(amb)] = ["Castro", "AMB-BG", "DIS-BG", "ASL-BG"]
    amb["provincia"] = None
    amb.loc[amb.index[-1], "provincia"] = "BG"
    amb.loc[amb["ambito_sociale"] == "AMB-LE-SUD", "provincia"] = "Lecce"
    amb.to_excel(folder / "ambiti.xlsx", index=False)
    src = load_sources(folder)
    castro = src["ambiti"].set_index("ambito_sociale")["codice_istat"]
    assert castro["AMB-BG"] == "016065" and castro["AMB-LE-SUD"] == "075096"


def test_read_table_repairs_what_spreadsheets_do(tmp_path):
    path = tmp_path / "pilot.csv"
    path.write_bytes("ID Pilota;Tema;Codice ISTAT;Data avvio;Pràtica;Costo euro;Beneficiari\n"
                     "P1;t;37006;05/03/2021;co-progettazione;1.234,50;12\n".encode("cp1252"))
    df = read_table(path)
    assert list(df.columns) == ["id_pilota", "tema", "codice_istat", "data_avvio", "pratica", "costo_euro",
                                "beneficiari"]
    row = df.iloc[0]
    assert (row["codice_istat"], row["data_avvio"], row["costo_euro"]) == ("037006", "2021-03-05", "1234.50")
    assert normalise_header(" Codice comune ") == "codice_istat" and normalise_header("Prov.") == "provincia"
    assert find_table_file(tmp_path, "pilot") == path


def test_ambiguous_date_order_is_not_rewritten(tmp_path):
    """Only DD/MM/YYYY is rewritten; other orders stay as written and fail validation."""
    path = tmp_path / "t.csv"
    path.write_text("data\n2020/05/01\n", encoding="utf-8")
    assert read_table(path)["data"].iloc[0] == "2020/05/01"


THEME = """id: esempio
title: {it: Esempio su dati propri, en: Example on own data}
question: {it: "La co-progettazione aumenta l'esito?", en: "Does co-design raise the outcome?"}
practice: {it: co-progettazione, en: co-design}
outcome: esempio_esito
outcome_label: {it: esito di esempio, en: example outcome}
outcome_unit: {it: punti, en: points}
design: staggered_did
cluster: comune
frequency: year
period_start: "2016"
period_end: "2023"
data_source: raw
stages: [10, 20]
selection:
  n_pilots: 2
"""


@pytest.mark.slow
def test_names_only_files_in_raw_run_stages_10_and_20(fresh_project):
    """Done-when of the issue: names-only files dropped in data/raw give, in the report,
    the match report, indicators, maps, network figure and a pilot proposal with power."""
    import os
    import shutil
    import subprocess
    import sys

    raw = fresh_project / "data" / "raw"
    shutil.rmtree(raw)
    shutil.copytree(EXAMPLES / "nomi", raw)
    (fresh_project / "params" / "themes" / "esempio.yaml").write_text(THEME, encoding="utf-8")
    env = {**os.environ, "OSSERVATORIO_ROOT": str(fresh_project)}
    res = subprocess.run([sys.executable, "-m", "osservatorio.cli", "run", "esempio"], env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    run = fresh_project / "outputs" / "esempio" / "latest"
    report = (run / "report.html").read_text(encoding="utf-8")
    for text in ("Paterno (PZ, 076100); Paternò (CT, 087033)", "Borgo Panigale", "Rete di governance",
                 "Proposta di selezione stratificata", "effetto minimo rilevabile"):
        assert text in report, text
    for name in ("mappa_ets", "mappa_esito", "rete_governance", "potenza"):
        assert (run / "figures" / f"{name}.png").is_file(), name
    rep = pd.read_excel(run / "abbinamento_comuni.xlsx")
    assert set(rep["nome"]) == {"Paterno", "Borgo Panigale"}
    prop = pd.read_csv(run / "proposta_pilota.csv", dtype=str)
    assert len(prop) == 2 and prop["motivo"].notna().all()
    assert not set(prop["codice_istat"]) & {"037006", "037011", "021008"}  # the pilots already have it
