"""Write the small example sources of data/README.md (run: .venv/bin/python data/examples/make_examples.py).

Two folders with the same (invented) content, each a complete set that ``load_sources``
reads:

- ``codici/``: comma-separated UTF-8 CSV keyed on ``codice_istat``, the reference format;
- ``nomi/``: files as they often arrive: names only with a province column, real-export
  headers ("Codice fiscale", "Prov."), XLSX with date cells, ';'-separated CSV with
  Italian decimals and DD/MM/YYYY dates, difficult spellings (FORLI', Bolzano/Bozen,
  Reggio Emilia, S. Giovanni in Persiceto, Brixen), and three names that must be
  reported: "Paterno" without province (ambiguous: PZ or CT) and "Borgo Panigale"
  (a quarter of Bologna, not a comune: unmatched).

The values are invented for illustration; they describe no real entity or act.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent

# codice_istat, name as written in the 'nomi' files, province as written there
COMUNI = [
    ("037006", "BOLOGNA", "BO"),
    ("037011", "Casalecchio di Reno", "BO"),
    ("037054", "San Lazzaro di Savena", "Bologna"),
    ("037053", "S. Giovanni in Persiceto", "BO"),
    ("037056", "Sant'Agata Bolognese", "BO"),
    ("037061", "Valsamoggia", "BO"),
    ("035033", "Reggio Emilia", "RE"),
    ("040012", "FORLI'", "FC"),
    ("021008", "Bolzano/Bozen", "BZ"),
    ("021011", "Brixen", "Bozen"),
    ("075096", "Castro", "LE"),
    ("001235", "Samone", "TO"),
]
NAME = dict((c, n) for c, n, _ in COMUNI)
PROV = dict((c, p) for c, _, p in COMUNI)

ETS = [  # codice_fiscale, denominazione, sezione, comune, data_iscrizione, volontari, dipendenti
    ("80000010371", "Auser Bologna", "ODV", "037006", "2022-03-01", 120, 4),
    ("80000020372", "Arci Porta Galliera", "APS", "037006", "2022-05-10", 35, 1),
    ("80000030373", "Cooperativa sociale Il Cerchio", "Impresa sociale", "037006", "2022-06-15", 5, 80),
    ("80000040374", "Fondazione di comunità Felsinea", "Ente filantropico", "037006", "2023-01-20", 2, 6),
    ("80000050375", "Pubblica assistenza Casalecchio", "ODV", "037011", "2022-04-02", 60, 2),
    ("80000060376", "Circolo La Fattoria", "APS", "037054", "2022-09-30", 18, 0),
    ("80000070377", "Centro sociale Persicetano", "APS", "037053", "2022-11-11", 25, 0),
    ("80000080378", "Volontari Sant'Agata", "ODV", "037056", "2023-02-14", 14, 0),
    ("80000090379", "Proloco Valsamoggia", "APS", "037061", "2022-07-07", 40, 0),
    ("80000100351", "Cooperativa sociale Reggio Insieme", "Impresa sociale", "035033", "2022-05-05", 10, 45),
    ("80000110352", "Auser Reggio Emilia", "ODV", "035033", "2022-06-06", 90, 3),
    ("80000120401", "Associazione Forlì Solidale", "ODV", "040012", "2022-08-08", 30, 1),
    ("80000130211", "Volontariato Bozen", "ODV", "021008", "2022-10-10", 55, 2),
    ("80000140212", "Jugendtreff Brixen", "APS", "021011", "2023-03-03", 12, 1),
    ("80000150751", "Associazione Castro Marina", "APS", "075096", "2023-04-04", 9, 0),
    ("80000160012", "Società di mutuo soccorso Samone", "Società di mutuo soccorso", "001235", "2022-12-12", 7, 0),
]

ATTI = [  # id_atto, comune, tipo, data, tema, enti_partner, importo_euro
    ("A-01", "037006", "regolamento", "2014-05-19", "esempio", None, None),
    ("A-02", "037006", "patto", "2019-03-01", "esempio", "80000010371;80000020372", 5200.5),
    ("A-03", "037006", "co-progettazione", "2020-02-10", "esempio", "80000030373;80000050375", 120000),
    ("A-04", "037011", "co-progettazione", "2020-06-01", "esempio", "80000030373;80000050375", 45000),
    ("A-05", "037054", "patto", "2021-04-12", "esempio", "80000060376", 1500),
    ("A-06", "037053", "convenzione", "2021-09-20", "esempio", "80000070377;80000030373", 8000),
    ("A-07", "035033", "co-programmazione", "2019-11-05", "esempio", "80000100351;80000110352", None),
    ("A-08", "040012", "patto", "2022-01-15", "altro", "80000120401", 900),
    ("A-09", "021008", "convenzione", "2022-05-30", "esempio", "80000130211;80000140212", 30000),
    ("A-10", "021011", "convenzione", "2022-06-30", "esempio", "80000140212;80000130211", 12000),
]
# Rows only in the 'nomi' files: names the crossing must report, never guess.
ATTI_TO_REPORT = [
    ("A-11", "Paterno", None, "patto", "2023-02-01", "altro", None, None),       # ambiguous: PZ or CT
    ("A-12", "Borgo Panigale", "BO", "patto", "2023-03-01", "altro", None, None),  # not a comune
]

FINANZA = [  # id, comune, tipo, data_avvio, importo_euro, metrica_esito
    ("F-1", "037006", "social impact bond", "2021-01-10", 1250000.0, "riduzione accessi al pronto soccorso"),
    ("F-2", "035033", "titoli di solidarietà", "2020-09-01", 300000.0, None),
    ("F-3", "075096", "social lending", "2022-03-15", 25000.0, None),
]
# The contract terms of the social impact bond F-1 (the others have none): capitale_euro,
# soglia_esito (gain in the outcome's unit that triggers payment), prezzo_unitario_euro (per unit
# of outcome), tetto_euro, durata_anni, unita_per_effetto (units of outcome per unit of gain), pagatore
CONTRATTI = {"F-1": (1250000.0, 2.0, 900.0, 1600000.0, 4, 450.0, "comune")}
CONTRACT_COLUMNS = ["capitale_euro", "soglia_esito", "prezzo_unitario_euro", "tetto_euro", "durata_anni",
                    "unita_per_effetto", "pagatore"]
COSTI = [  # id_pilota, anno, voce, importo_euro, fonte, beneficiari (one number per pilot and year)
    ("P-1", 2020, "personale", 42000, "comune", 110), ("P-1", 2020, "servizi", 12000, "fondazione", 110),
    ("P-1", 2020, "coordinamento", 6000, "comune", None), ("P-1", 2021, "personale", 44000, "comune", 130),
    ("P-1", 2021, "servizi", 10000, "regione", 130), ("P-1", 2021, "valutazione", 6000, "fondazione", None),
    ("P-2", 2020, "personale", 20000, "comune", 35), ("P-2", 2021, "personale", 21000, "comune", 25),
    ("P-2", 2021, "coordinamento", 4000, "PNRR", None),
    ("P-3", 2022, "servizi", 18000, "comune", 30), ("P-3", 2023, "servizi", 12000, "fondi UE", 20),
]

PILOT = [  # id_pilota, tema, comune, data_avvio, pratica, costo_euro, beneficiari
    ("P-1", "esempio", "037006", "2020-02-10", "Co-progettazione dell'assistenza domiciliare", 120000, 240),
    ("P-2", "esempio", "037011", "2020-06-01", "Co-progettazione dell'assistenza domiciliare", 45000, 60),
    ("P-3", "esempio", "021008", "2022-05-30", "Co-progettazione dell'assistenza domiciliare", 30000, 50),
]

AMBITI = {  # comune -> (ambito_sociale, distretto_sanitario, asl)
    "037006": ("AMB-BO-CITTA", "DIS-BO-CITTA", "ASL-BO"),
    "037011": ("AMB-BO-RENO", "DIS-BO-RENO", "ASL-BO"),
    "037061": ("AMB-BO-RENO", "DIS-BO-RENO", "ASL-BO"),
    "037054": ("AMB-BO-SAVENA", "DIS-BO-EST", "ASL-BO"),
    "037053": ("AMB-BO-PIANURA", "DIS-BO-PIANURA", "ASL-BO"),
    "037056": ("AMB-BO-PIANURA", "DIS-BO-PIANURA", "ASL-BO"),
    "035033": ("AMB-RE", "DIS-RE", "ASL-RE"),
    "040012": ("AMB-FC", "DIS-FC", "ASL-ROMAGNA"),
    "021008": ("AMB-BZ", "DIS-BZ", "ASL-ALTO-ADIGE"),
    "021011": ("AMB-BZ-ISARCO", "DIS-BZ-ISARCO", "ASL-ALTO-ADIGE"),
    "075096": ("AMB-LE-SUD", "DIS-LE-SUD", "ASL-LE"),
    "001235": ("AMB-TO-EPOREDIESE", "DIS-TO-EPOREDIESE", "ASL-TO4"),
}


def esiti() -> pd.DataFrame:
    """An outcome per comune and year 2016-2023 (a smooth invented series)."""
    rows = []
    for i, (code, _, _) in enumerate(COMUNI):
        for year in range(2016, 2024):
            noise = 0.05 * ((7 * i + 3 * year) % 5 - 2)  # deterministic wiggle, so variances are not 0
            value = 3.0 + 0.4 * (i % 5) + 0.1 * (year - 2016) + noise + (
                0.8 if code in ("037006", "037011") and year >= 2020 else 0)
            rows.append((code, str(year), "esempio_esito", round(value, 3), 500 + 100 * i))
    return pd.DataFrame(rows, columns=["unita", "periodo", "indicatore", "valore", "denominatore"])


def _it_date(iso: str) -> str:
    y, m, d = iso.split("-")
    return f"{d}/{m}/{y}"


def _it_number(x) -> str | None:
    if x is None:
        return None
    return f"{x:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")


def write_codes(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([(cf, d, s, c, NAME_OFFICIAL[c], di, v, e) for cf, d, s, c, di, v, e in ETS],
                 columns=["codice_fiscale", "denominazione", "sezione", "codice_istat", "comune", "data_iscrizione",
                          "volontari", "dipendenti"]).to_csv(folder / "enti_terzo_settore.csv", index=False)
    pd.DataFrame([(i, c, NAME_OFFICIAL[c], t, d, tema, p, imp) for i, c, t, d, tema, p, imp in ATTI],
                 columns=["id_atto", "codice_istat", "comune", "tipo", "data", "tema", "enti_partner",
                          "importo_euro"]).to_csv(folder / "atti_amministrazione_condivisa.csv", index=False)
    pd.DataFrame([(i, c, NAME_OFFICIAL[c], t, d, imp, m, *CONTRATTI.get(i, (None,) * 7))
                  for i, c, t, d, imp, m in FINANZA],
                 columns=["id", "codice_istat", "comune", "tipo", "data_avvio", "importo_euro",
                          "metrica_esito", *CONTRACT_COLUMNS]).to_csv(folder / "strumenti_finanza_sociale.csv",
                                                                     index=False)
    pd.DataFrame(COSTI, columns=["id_pilota", "anno", "voce", "importo_euro", "fonte", "beneficiari"]).astype(
        {"beneficiari": "Int64"}).to_csv(folder / "costi_pilota.csv", index=False)
    pd.DataFrame([(i, tema, c, NAME_OFFICIAL[c], d, p, cost, b) for i, tema, c, d, p, cost, b in PILOT],
                 columns=["id_pilota", "tema", "codice_istat", "comune", "data_avvio", "pratica", "costo_euro",
                          "beneficiari"]).to_csv(folder / "pilot.csv", index=False)
    esiti().to_csv(folder / "esiti.csv", index=False)
    pd.DataFrame([(c, NAME_OFFICIAL[c], *AMBITI[c]) for c, _, _ in COMUNI],
                 columns=["codice_istat", "comune", "ambito_sociale", "distretto_sanitario", "asl"]
                 ).to_csv(folder / "ambiti.csv", index=False)


def write_names(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    # Registry export (XLSX): own headers, real date cells, no ISTAT code.
    pd.DataFrame(
        [(cf, d, s, NAME[c], PROV[c], pd.Timestamp(di), v, e) for cf, d, s, c, di, v, e in ETS],
        columns=["Codice fiscale", "Denominazione", "Sezione", "Comune", "Prov.", "Data iscrizione", "Volontari",
                 "Dipendenti"],
    ).to_excel(folder / "enti_terzo_settore.xlsx", index=False)
    # Acts (CSV from an Italian spreadsheet): ';', DD/MM/YYYY, 1.234,56.
    atti = [(i, NAME[c], PROV[c], t, _it_date(d), tema, p, _it_number(imp)) for i, c, t, d, tema, p, imp in ATTI]
    atti += [(i, n, pr, t, _it_date(d), tema, p, imp) for i, n, pr, t, d, tema, p, imp in ATTI_TO_REPORT]
    pd.DataFrame(atti, columns=["ID atto", "Comune", "Provincia", "Tipo", "Data", "Tema", "Enti partner",
                                "Importo euro"]).to_csv(folder / "atti_amministrazione_condivisa.csv", index=False,
                                                        sep=";")
    pd.DataFrame([(i, NAME[c], PROV[c], t, _it_date(d), _it_number(imp), m,
                   *[_it_number(v) if isinstance(v, float) else v for v in CONTRATTI.get(i, (None,) * 7)])
                  for i, c, t, d, imp, m in FINANZA],
                 columns=["id", "comune", "provincia", "tipo", "data_avvio", "importo_euro", "metrica_esito",
                          *CONTRACT_COLUMNS]).to_csv(folder / "strumenti_finanza_sociale.csv", index=False, sep=";")
    # Costs as a finance office keeps them: a workbook, Italian headers, one sheet.
    pd.DataFrame(COSTI, columns=["ID pilota", "Anno", "Voce", "Importo euro", "Fonte", "Beneficiari"]).astype(
        {"Beneficiari": "Int64"}).to_excel(folder / "costi_pilota.xlsx", index=False)
    pd.DataFrame([(i, tema, NAME[c], PROV[c], pd.Timestamp(d), p, cost, b) for i, tema, c, d, p, cost, b in PILOT],
                 columns=["id_pilota", "tema", "comune", "provincia", "data_avvio", "pratica", "costo_euro",
                          "beneficiari"]).to_excel(folder / "pilot.xlsx", index=False)
    # Outcomes come keyed on codes (the 'unita' column: ISTAT code or district code).
    esiti().to_csv(folder / "esiti.csv", index=False)
    pd.DataFrame([(NAME[c], PROV[c], *AMBITI[c]) for c, _, _ in COMUNI],
                 columns=["Comune", "Provincia", "Ambito sociale", "Distretto sanitario", "ASL"]
                 ).to_excel(folder / "ambiti.xlsx", index=False)


def _official_names() -> dict[str, str]:
    import sys

    sys.path.insert(0, str(HERE.parents[1] / "lib"))
    from osservatorio.data import reference

    names = reference.comuni().set_index("codice_istat")["comune"]
    return {c: names[c] for c, _, _ in COMUNI}


NAME_OFFICIAL: dict[str, str] = {}

if __name__ == "__main__":
    NAME_OFFICIAL.update(_official_names())
    write_codes(HERE / "codici")
    write_names(HERE / "nomi")
    print(f"written {HERE / 'codici'} and {HERE / 'nomi'}")
