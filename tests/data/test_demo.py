"""Tests of the synthetic demo data: determinism, schema, codes, and ground truth.

The ground truth is checked two independent ways: (1) from the generated potential
outcomes (valore in esiti.csv minus the untreated outcome y0 of the generator) over the
treated cells identified from pilot.csv, and (2) from the effect formulas stated in the
brief, recomputed here from the real reference covariates.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from osservatorio.data import reference
from osservatorio.data.demo import DEFAULT_SEED, build_demo, generate_demo, write_demo

SIX = re.compile(r"^\d{6}$")
COLUMNS = {
    "ambiti": ["codice_istat", "comune", "ambito_sociale", "distretto_sanitario", "asl"],
    "enti_terzo_settore": [
        "codice_fiscale", "denominazione", "sezione", "codice_istat", "comune",
        "data_iscrizione", "volontari", "dipendenti",
    ],
    "atti_amministrazione_condivisa": [
        "id_atto", "codice_istat", "comune", "tipo", "data", "tema", "enti_partner", "importo_euro",
    ],
    "strumenti_finanza_sociale": [
        "id", "codice_istat", "comune", "tipo", "data_avvio", "importo_euro", "metrica_esito", "capitale_euro",
        "soglia_esito", "prezzo_unitario_euro", "tetto_euro", "durata_anni", "unita_per_effetto", "pagatore",
    ],
    "costi_pilota": ["id_pilota", "anno", "voce", "importo_euro", "fonte", "beneficiari"],
    "pilot": [
        "id_pilota", "tema", "codice_istat", "comune", "data_avvio", "pratica", "costo_euro", "beneficiari",
    ],
    "esiti": ["unita", "periodo", "indicatore", "valore", "denominatore"],
}
THEMES = [
    "coprogettazione-anziani", "patti-beni-comuni", "finanza-sociale-neet",
    "case-comunita", "citta-pilota", "cooperative-aree-interne",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    data = build_demo(DEFAULT_SEED)
    out = tmp_path_factory.mktemp("demo_a")
    paths = write_demo(data, out)
    return data, paths


def _read(paths, name):
    return pd.read_csv(paths[name], dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def tables(demo):
    _, paths = demo
    return {name: _read(paths, name) for name in COLUMNS}


@pytest.fixture(scope="module")
def truth(demo):
    return json.loads(demo[1]["ground_truth"].read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def ref():
    return reference.comuni().dropna(subset=["popolazione"]).set_index("codice_istat")


def test_regeneration_is_byte_identical(demo, tmp_path):
    _, paths = demo
    again = generate_demo(tmp_path / "b", seed=DEFAULT_SEED)
    assert set(again) == set(paths)
    for name, path in paths.items():
        assert again[name].read_bytes() == path.read_bytes(), name
    assert not list((tmp_path / "b").glob(".*.tmp"))


def test_other_seed_changes_data_not_mapping(demo):
    data, _ = demo
    other = build_demo(DEFAULT_SEED + 1)
    pd.testing.assert_frame_equal(other.tables["ambiti"], data.tables["ambiti"])
    assert not other.tables["esiti"]["valore"].equals(data.tables["esiti"]["valore"])
    assert other.ground_truth["themes"]["citta-pilota"]["att_simple"] == 1.25


def test_files_and_columns(demo, tables, truth):
    _, paths = demo
    for name, cols in COLUMNS.items():
        assert list(tables[name].columns) == cols, name
        assert len(tables[name]) > 0, name
    assert truth["synthetic"] is True and truth["seed"] == DEFAULT_SEED
    assert list(truth["themes"]) == THEMES
    assert len(truth["excluded_comuni"]) == 3
    note = paths["leggimi"].read_text(encoding="utf-8")
    assert "SINTETICI" in note and "SYNTHETIC" in note and str(DEFAULT_SEED) in note


def test_codes_are_six_digit_strings_of_real_comuni(tables, ref):
    for name in [n for n in COLUMNS if n != "costi_pilota"]:  # costs name pilots, not comuni
        col = "unita" if name == "esiti" else "codice_istat"
        codes = tables[name][col]
        assert codes.str.match(SIX).all(), name
        assert codes.isin(ref.index).all(), name
    assert tables["ambiti"]["codice_istat"].is_unique
    assert len(tables["ambiti"]) == len(ref) == 7896


def test_ambiti_mapping(tables, ref):
    amb = tables["ambiti"].set_index("codice_istat")
    pop = ref["popolazione"]
    sizes = pop.groupby(amb["ambito_sociale"]).agg(["sum", "size"])
    multi = sizes[sizes["size"] > 1]
    assert multi["sum"].between(25_000, 130_000).mean() > 0.95
    assert (sizes.loc[sizes["sum"] > 200_000, "size"] == 1).all()  # big cities alone
    assert (amb["asl"].str[4:] == amb.index.str[:3]).all()
    assert (amb["ambito_sociale"].str[4:7] == amb.index.str[:3]).all()
    per_district = amb.groupby("distretto_sanitario")["ambito_sociale"].nunique()
    assert per_district.isin([1, 2]).all()
    assert amb.groupby("ambito_sociale")["distretto_sanitario"].nunique().eq(1).all()


def _check_digit_ok(cf: str) -> bool:
    d = [int(ch) for ch in cf]
    s = sum(d[0:10:2]) + sum(2 * x - 9 if 2 * x > 9 else 2 * x for x in d[1:10:2])
    return (10 - s % 10) % 10 == d[10]


def test_enti_terzo_settore(tables):
    ets = tables["enti_terzo_settore"]
    assert 40_000 <= len(ets) <= 70_000
    assert ets["codice_fiscale"].str.match(r"^\d{11}$").all() and ets["codice_fiscale"].is_unique
    assert all(_check_digit_ok(cf) for cf in ets["codice_fiscale"].iloc[::97])
    assert set(ets["sezione"]) == {
        "ODV", "APS", "Impresa sociale", "Ente filantropico", "Rete associativa",
        "Società di mutuo soccorso", "Altri enti",
    }
    dates = pd.to_datetime(ets["data_iscrizione"], format="%Y-%m-%d")
    assert dates.dt.year.between(2021, 2024).all()
    assert (ets["volontari"].astype(int) >= 0).all() and (ets["dipendenti"].astype(int) >= 0).all()


def _pilot(tables, theme):
    p = tables["pilot"]
    return p[p["tema"] == theme]


def test_pilot_matches_ground_truth(tables, truth):
    amb = tables["ambiti"].set_index("codice_istat")
    for theme in THEMES:
        gt, p = truth["themes"][theme], _pilot(tables, theme)
        assert p["codice_istat"].is_unique, theme
        if theme == "case-comunita":
            units = amb.loc[p["codice_istat"], "distretto_sanitario"]
            cohort = p["data_avvio"].str[:7]
        else:
            units, cohort = p["codice_istat"], p["data_avvio"].str[:4]
        assert sorted(units) == sorted(gt["treated_units"]), theme
        assert cohort.value_counts().sort_index().to_dict() == gt["cohorts"], theme
        cost, ben = p["costo_euro"].astype(float), p["beneficiari"].astype(int)
        assert (cost > 0).all() and (ben > 0).all(), theme
    assert sum(truth["themes"]["finanza-sociale-neet"]["cohorts"].values()) == 18
    assert truth["themes"]["citta-pilota"]["treated_units"] == ["037006"]
    case = truth["themes"]["case-comunita"]
    n_dis = tables["ambiti"]["distretto_sanitario"].nunique()
    assert abs(len(case["treated_units"]) / n_dis - 0.3) < 0.01
    assert min(case["cohorts"]) >= "2021-07" and max(case["cohorts"]) <= "2022-12"


def test_acts_and_instruments_follow_adoption(tables, truth):
    atti, ets = tables["atti_amministrazione_condivisa"], tables["enti_terzo_settore"]
    assert atti["id_atto"].is_unique
    assert set(atti["tipo"]) <= {"regolamento", "patto", "co-programmazione", "co-progettazione", "convenzione"}
    assert set(atti["tema"]) <= set(THEMES) | {"altro"}
    pb = _pilot(tables, "patti-beni-comuni").set_index("codice_istat")["data_avvio"]
    reg = atti[(atti["tema"] == "patti-beni-comuni") & (atti["tipo"] == "regolamento")]
    assert reg.set_index("codice_istat")["data"].sort_index().equals(pb.sort_index())
    patti = atti[(atti["tema"] == "patti-beni-comuni") & (atti["tipo"] == "patto")]
    assert (patti["data"] > patti["codice_istat"].map(pb)).all()
    assert patti["codice_istat"].value_counts().min() >= 2 and set(patti["codice_istat"]) == set(pb.index)
    ca = _pilot(tables, "coprogettazione-anziani").set_index("codice_istat")["data_avvio"]
    cop = atti[(atti["tema"] == "coprogettazione-anziani")]
    assert (cop["tipo"] == "co-progettazione").all()
    assert cop.set_index("codice_istat")["data"].sort_index().equals(ca.sort_index())
    # partners are ETS of the same province
    prov = ets.set_index("codice_fiscale")["codice_istat"].str[:3]
    pairs = atti.loc[atti["enti_partner"] != "", ["codice_istat", "enti_partner"]]
    exploded = pairs.assign(cf=pairs["enti_partner"].str.split(";")).explode("cf")
    assert (exploded["cf"].map(prov) == exploded["codice_istat"].str[:3]).all()
    fin = tables["strumenti_finanza_sociale"]
    sib = fin[fin["tipo"] == "social impact bond"]
    assert sorted(sib["codice_istat"]) == sorted(truth["themes"]["finanza-sociale-neet"]["treated_units"])
    assert (sib["metrica_esito"] == "tasso_neet_15_29").all() and (sib["data_avvio"].str[:4] == "2019").all()


def test_esiti_panels(tables, truth, ref):
    es = tables["esiti"]
    n_by = es.groupby("indicatore").size()
    gt = truth["themes"]
    n_all, n_cap = len(ref), int(ref["capoluogo"].sum())
    n_big = int(((ref["popolazione"] > 100_000) | (ref.index == "037006")).sum())
    expected = {
        "copertura_adi_over65": (n_all, 10), "volontari_civici_per_1000": (n_all, 10),
        "tasso_neet_15_29": (n_cap, 11), "ospedalizzazioni_evitabili_over65": (n_all, 120),
        "indice_partecipazione_civica": (n_big, 19), "saldo_migratorio_per_1000": (n_all, 10),
    }
    for theme in THEMES:
        ind = gt[theme]["indicatore"]
        n_units, n_periods = expected[ind]
        sub = es[es["indicatore"] == ind]
        assert n_by[ind] == n_units * n_periods, ind
        assert sub.groupby("unita").size().eq(n_periods).all(), ind
        periods = sorted(sub["periodo"].unique())
        assert [periods[0], periods[-1]] == gt[theme]["periods"], ind
    assert n_by["ospedalizzazioni_evitabili_over65"] == 947_520
    monthly = es.loc[es["indicatore"] == "ospedalizzazioni_evitabili_over65", "periodo"]
    assert monthly.str.match(r"^\d{4}-\d{2}$").all()
    assert np.isfinite(es["valore"].astype(float)).all()
    assert (es["denominatore"].astype(int) > 0).all()


def _treated_cells(tables, theme, panel, monthly=False):
    """Boolean mask of treated post-adoption cells of a comune panel, from pilot.csv."""
    p = _pilot(tables, theme)
    if theme == "case-comunita":
        amb = tables["ambiti"].set_index("codice_istat")["distretto_sanitario"]
        start_by_district = dict(zip(amb.loc[p["codice_istat"]], p["data_avvio"].str[:7]))
        start = panel["unita"].map(amb).map(start_by_district)
    else:
        start = panel["unita"].map(dict(zip(p["codice_istat"], p["data_avvio"].str[:4])))
    return start.notna() & (panel["periodo"] >= start.fillna("9999"))


@pytest.mark.parametrize("theme", [t for t in THEMES if t != "case-comunita"])
def test_att_from_potential_outcomes(demo, tables, truth, theme):
    data, _ = demo
    gt = truth["themes"][theme]
    panel = data.themes[theme].panel[["unita", "periodo", "y0"]].reset_index(drop=True)
    es = tables["esiti"]
    es = es[es["indicatore"] == gt["indicatore"]].reset_index(drop=True)
    assert (es["unita"].to_numpy() == panel["unita"].to_numpy()).all()
    effect = es["valore"].astype(float).to_numpy() - panel["y0"].to_numpy()
    post = _treated_cells(tables, theme, panel).to_numpy()
    assert np.abs(effect[~post]).max() < 6e-5  # untreated cells: valore = y0 up to rounding
    assert abs(effect[post].mean() - gt["att_simple"]) < 1e-4
    assert post.sum() == gt["n_treated_cells"]


def _formula_cells(tables, theme, ref):
    """Treated post cells (unit, cohort, event time) from pilot.csv and the periods."""
    p = _pilot(tables, theme)
    rows = []
    for code, date in zip(p["codice_istat"], p["data_avvio"]):
        g = int(date[:4])
        for year in range(g, 2024):
            rows.append((code, str(g), year - g))
    cells = pd.DataFrame(rows, columns=["unit", "g", "e"])
    return cells.join(ref, on="unit")


def test_att_from_stated_formulas(tables, truth, ref):
    oracles = {
        "coprogettazione-anziani": lambda c: (0.4 + 0.2 * c["e"]) * np.where(c["popolazione"] <= 5_000, 1.5, 1.0),
        "patti-beni-comuni": lambda c: np.minimum(1.0 + 0.25 * c["e"], 2.5)
        * np.where(c["ripartizione"] == "Nord-est", 1.4, 1.0),
        "finanza-sociale-neet": lambda c: 0.0 * c["e"],
        "citta-pilota": lambda c: 0.5 + 1.5 * c["e"] / 8,
        "cooperative-aree-interne": lambda c: (1.5 + 0.15 * c["e"])
        * np.clip(1 + 3 * (c["quota_over65"] - 0.28), 0.5, 2.0),
    }
    for theme, tau in oracles.items():
        gt = truth["themes"][theme]
        cells = _formula_cells(tables, theme, ref)
        cells = cells.assign(tau=tau(cells))
        assert abs(cells["tau"].mean() - gt["att_simple"]) < 1e-6, theme
        by_e = cells.groupby("e")["tau"].mean()
        for e, v in by_e.items():
            assert abs(v - gt["att_by_event_time"][str(e)]) < 1e-6, (theme, e)
        by_g = cells.groupby("g")["tau"].mean()
        for g, v in by_g.items():
            assert abs(v - gt["att_by_cohort"][g]) < 1e-6, (theme, g)
    assert truth["themes"]["finanza-sociale-neet"]["att_simple"] == 0.0
    assert set(truth["themes"]["finanza-sociale-neet"]["att_by_event_time"].values()) == {0.0}
    by_year = truth["themes"]["citta-pilota"]["effect_by_year"]
    assert by_year["2015"] == 0.5 and by_year["2023"] == 2.0


def test_case_comunita_truth_and_pretrend(demo, tables, truth):
    data, _ = demo
    gt = truth["themes"]["case-comunita"]
    assert gt["att_simple"] == -0.15 and gt["unit_level"] == "distretto_sanitario"
    panel = data.themes["case-comunita"].panel
    post = _treated_cells(tables, "case-comunita", panel).to_numpy()
    eff = panel["effetto"].to_numpy()
    assert np.all(eff[post] == -0.15) and np.all(eff[~post] == 0.0)
    # End to end on the file: the 65+-weighted treated-minus-never-treated gap in the
    # observed rate drifts by about pretrend_per_month before any adoption.
    es = tables["esiti"]
    es = es[es["indicatore"] == gt["indicatore"]]
    dis = tables["ambiti"].set_index("codice_istat")["distretto_sanitario"]
    treated = es["unita"].map(dis).isin(gt["treated_units"])
    w = es["denominatore"].astype(float)
    wy = w * es["valore"].astype(float)
    frame = pd.DataFrame({"t": es["periodo"], "tr": treated, "w": w, "wy": wy})
    agg = frame.groupby(["t", "tr"])[["wy", "w"]].sum()
    rate = (agg["wy"] / agg["w"]).unstack("tr")
    gap = (rate[True] - rate[False]).loc[: "2021-06"]
    t = np.arange(len(gap))
    months = np.eye(12)[t % 12]
    beta = np.linalg.lstsq(np.column_stack([months, t]), gap.to_numpy(), rcond=None)[0]
    assert abs(beta[-1] - gt["pretrend_per_month"]) < 0.001


@pytest.mark.parametrize("seed", [-1, 1.5, "1", True])
def test_bad_seed_is_rejected(seed, tmp_path):
    from osservatorio.exceptions import InputError

    with pytest.raises(InputError, match="seed"):
        generate_demo(tmp_path, seed=seed)


def test_costs_add_up_to_each_pilot_and_contracts_belong_to_the_bonds(tables, truth):
    def numbers(df, cols):
        return df.assign(**{c: pd.to_numeric(df[c]) for c in cols})

    costi = numbers(tables["costi_pilota"], ["anno", "importo_euro", "beneficiari"])
    pilot = numbers(tables["pilot"], ["costo_euro"])
    strumenti = numbers(tables["strumenti_finanza_sociale"], ["capitale_euro", "prezzo_unitario_euro",
                                                              "unita_per_effetto"])
    total = costi.groupby("id_pilota")["importo_euro"].sum().reindex(pilot["id_pilota"])
    assert (total.to_numpy() == pilot["costo_euro"].to_numpy()).all()  # to the euro
    assert costi.groupby(["id_pilota", "anno"])["beneficiari"].nunique().max() == 1
    neet = pilot.loc[pilot["tema"] == "finanza-sociale-neet", "id_pilota"]
    assert set(costi.loc[costi["id_pilota"].isin(neet), "fonte"]) == {"investitori privati"}
    terms = ["capitale_euro", "soglia_esito", "prezzo_unitario_euro", "tetto_euro", "durata_anni",
             "unita_per_effetto", "pagatore"]
    sib = strumenti["tipo"] == "social impact bond"
    given = strumenti[terms].replace("", np.nan).notna()
    assert given[sib].all().all() and not given[~sib].any().any()
    # the price repays the capital with 25% on top at a fall of 2 points
    row = strumenti[sib].iloc[0]
    assert row["prezzo_unitario_euro"] * row["unita_per_effetto"] * 2 == pytest.approx(1.25 * row["capitale_euro"],
                                                                                     rel=1e-3)
    # the true cost per unit of outcome: yearly cost of a treated unit's pilot over the true gain
    for tid, th in truth["themes"].items():
        ids = pilot.loc[pilot["tema"] == tid, "id_pilota"]
        yearly = costi[costi["id_pilota"].isin(ids)].groupby(["id_pilota", "anno"])["importo_euro"].sum()
        mean_yearly = yearly.groupby(level=0).mean().mean()
        assert th["costo_medio_unita_anno_euro"] == pytest.approx(mean_yearly, abs=0.01)
        gain = th["direzione_favorevole"] * th["att_simple"]
        if gain == 0:
            assert th["costo_per_unita_esito_euro"] is None
        else:
            assert th["costo_per_unita_esito_euro"] == pytest.approx(mean_yearly / gain, abs=0.01)  # cents
    assert truth["themes"]["finanza-sociale-neet"]["contratto_prob_pagamento_vera"] == 0.0


def test_good_direction_matches_the_theme_files():
    from osservatorio.data.demo import GOOD_DIRECTION
    from osservatorio.themes import load_theme

    for tid, sign in GOOD_DIRECTION.items():
        assert load_theme(tid).higher_is_better == (sign > 0), tid


def test_the_demo_file_list_without_pandas_is_the_generators():
    from osservatorio.data.demo import FILES
    from osservatorio.data.files import DEMO_FILES

    assert sorted(DEMO_FILES) == sorted(FILES.values())


def test_demo_data_of_an_older_version_is_completed(tmp_path, monkeypatch):
    from osservatorio import paths
    from osservatorio.running.runner import ensure_demo_data

    monkeypatch.setenv("OSSERVATORIO_ROOT", str(tmp_path))
    ensure_demo_data()
    demo = paths.demo_dir()
    before = (demo / "esiti.csv").read_bytes()
    # as demo data written before costi_pilota existed: no file, not in the generator's list
    truth = json.loads((demo / "ground_truth.json").read_text(encoding="utf-8"))
    truth["files"].remove("costi_pilota.csv")
    (demo / "ground_truth.json").write_text(json.dumps(truth), encoding="utf-8")
    (demo / "costi_pilota.csv").unlink()
    ensure_demo_data()
    assert (demo / "costi_pilota.csv").is_file() and (demo / "esiti.csv").read_bytes() == before
    # a file the user removed (replaced by a workbook, say) is not brought back
    (demo / "pilot.csv").unlink()
    ensure_demo_data()
    assert not (demo / "pilot.csv").exists()
