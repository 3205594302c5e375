"""Tests of osservatorio.data.names against real names and the packages' ISTAT lists."""

from __future__ import annotations

import importlib.util
import re
import time
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from osservatorio.data import names as nm
from osservatorio.data.names import OUTPUT_COLUMNS, match_comuni
from osservatorio.data.reference import comuni
from osservatorio.exceptions import InputError

REF_DIR = Path(__file__).parents[1] / "reference" / "names"


def _load_checker():
    spec = importlib.util.spec_from_file_location(
        "check_difficult_names", REF_DIR / "check_difficult_names.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CHECKER = _load_checker()
ROWS = CHECKER.read_rows()


def _codes(candidati) -> set[str]:
    return set() if pd.isna(candidati) else set(re.findall(r"\b\d{6}\b", candidati))


def test_reference_csv_agrees_with_package_data():
    """Each expectation in difficult_names.csv holds in the ISTAT / geopop lists."""
    src = CHECKER.load_sources()
    assert len(ROWS) >= 40
    for row in ROWS:
        problems, official, fonte = CHECKER.check_row(row, src)
        assert problems == []
        assert (row["nome_ufficiale"], row["fonte"]) == (official, fonte)


def test_reference_checker_catches_a_wrong_expectation():
    src = CHECKER.load_sources()
    row = next(r for r in ROWS if r["nome"] == "S. Antonio Abate")
    assert CHECKER.check_row({**row, "codice_atteso": "063072"}, src)[0]  # another comune
    samone = next(r for r in ROWS if r["nome"] == "Samone" and not r["provincia"])
    assert CHECKER.check_row({**samone, "candidati_attesi": "001235;041041"}, src)[0]


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['nome']!r}-{r['provincia']}" for r in ROWS])
def test_difficult_name(row):
    out = match_comuni([row["nome"]], [row["provincia"] or None]).iloc[0]
    assert out["stato"] == row["stato_atteso"], out.to_dict()
    expected_code = row["codice_atteso"]
    expected_cands = {c for c in row["candidati_attesi"].split(";") if c}
    if row["stato_atteso"] == "matched":
        assert out["codice_istat"] == expected_code
        assert pd.isna(out["candidati"])
    else:
        assert pd.isna(out["codice_istat"])
        assert pd.isna(out["comune_ufficiale"])
    if row["stato_atteso"] == "ambiguous":
        assert _codes(out["candidati"]) == expected_cands
    if row["stato_atteso"] == "unmatched" and expected_code:
        assert out["metodo"] == "variazione_amministrativa"
        assert expected_code in out["nota"]
    if row["stato_atteso"] == "unmatched" and expected_cands:
        assert out["metodo"] == "provincia_diversa"
        assert _codes(out["candidati"]) == expected_cands


def test_every_homonym_in_the_data_is_ambiguous_without_province_and_matched_with_it():
    ref = comuni().dropna(subset=["comune"])
    homonyms = ref[ref["comune"].duplicated(keep=False)]
    assert len(homonyms) >= 10  # Calliano, Castro, Livo, Peglio, Samone, San Teodoro
    bare = match_comuni(homonyms["comune"].tolist())
    assert (bare["stato"] == "ambiguous").all()
    for cands, name in zip(bare["candidati"], homonyms["comune"]):
        assert _codes(cands) == set(homonyms.loc[homonyms["comune"] == name, "codice_istat"])
    with_prov = match_comuni(homonyms["comune"].tolist(), homonyms["sigla_provincia"].tolist())
    assert (with_prov["stato"] == "matched").all()
    assert with_prov["codice_istat"].tolist() == homonyms["codice_istat"].tolist()
    assert (with_prov["metodo"] == "provincia").all()


def _upper_apostrophe(s: str) -> str:
    s = unicodedata.normalize("NFD", s)
    s = re.sub("([aeiouAEIOU])[\u0300\u0301]", r"\1'", s)
    return unicodedata.normalize("NFC", s).upper()


def _ascii(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", s) if not unicodedata.combining(c))


def _abbreviated(s: str) -> str:
    return re.sub(r"\bSan(t[oa]?)?\b'?\s*", "S. ", s)


@pytest.mark.parametrize(
    "transform",
    [str, _upper_apostrophe, _ascii, _abbreviated],
    ids=["as_is", "UPPER'", "ascii", "S."],
)
def test_every_2023_name_finds_its_own_code(transform):
    """Official names, as written or transformed, match their code or list it as candidate."""
    idx = nm._index()
    ref = comuni()
    written = [transform(idx.official[c]) for c in ref["codice_istat"]]
    out = match_comuni(written, suggest=False)
    own = out["codice_istat"].eq(ref["codice_istat"].to_numpy()).fillna(False)
    listed = pd.Series([
        s == "ambiguous" and code in _codes(c)
        for s, c, code in zip(out["stato"], out["candidati"], ref["codice_istat"])
    ], index=out.index)
    assert (own | listed).all(), out[~(own | listed)]
    assert own.sum() >= len(ref) - 20  # only homonyms and Paterno/Paternò-like pairs


def test_rows_keep_order_length_and_index():
    names = pd.Series(
        ["Roma", None, "Samone", "", np.nan, "Milano", "xyzzy"], index=list("abcdefg")
    )
    out = match_comuni(names)
    assert list(out.columns) == OUTPUT_COLUMNS
    assert list(out.index) == list("abcdefg")
    assert out["stato"].tolist() == [
        "matched", "unmatched", "ambiguous", "unmatched", "unmatched", "matched", "unmatched"
    ]
    assert out["codice_istat"].tolist()[0] == "058091"
    assert out.loc[["b", "d", "e"], "metodo"].eq("vuoto").all()
    assert out.loc[["b", "d", "e"], "codice_istat"].isna().all()
    assert all(str(t) == "string" for t in out.dtypes)
    # a list gives a RangeIndex
    assert list(match_comuni(["Roma", "Milano"]).index) == [0, 1]


def test_province_forms_and_alignment():
    out = match_comuni(
        ["Samone"] * 6, ["TO", "to", 1, "001", "Torino", "Trento"]
    )
    assert out["codice_istat"].tolist() == ["001235"] * 5 + ["022165"]
    for prov in ["Reggio Emilia", "Reggio nell'Emilia", "RE", 35, "035"]:
        assert nm.parse_province(prov) == frozenset({"035"})
    for prov in ["Bolzano", "Bozen", "Bolzano/Bozen", "BZ"]:
        assert nm.parse_province(prov) == frozenset({"021"})
    assert nm.parse_province("Valle d'Aosta") == nm.parse_province("Aosta") == {"007"}
    assert nm.parse_province("nowhere") is None
    with pytest.raises(InputError, match="province"):
        match_comuni(["Roma", "Milano"], ["RM"])


def test_unrecognised_province_is_reported_not_used():
    out = match_comuni(["Roma", "Samone"], ["XX", "XX"])
    assert out["stato"].tolist() == ["matched", "ambiguous"]
    assert out["nota"].str.contains("provincia non riconosciuta").all()


def test_similarity_only_suggests():
    out = match_comuni(["Milnao", "Monguelfo", "Milnao"], suggest=True)
    assert (out["stato"] == "unmatched").all()
    assert out["codice_istat"].isna().all()
    assert "015146" in _codes(out["candidati"].iloc[0])
    assert "021052" in _codes(out["candidati"].iloc[1])  # Monguelfo-Tesido/Welsberg-Taisten
    assert pd.isna(match_comuni(["Milnao"], suggest=False)["candidati"].iloc[0])


def test_keys_unify_spellings():
    forms = ["Forlì", "Forli'", "FORLI'", "Forlí", "Forli`"]
    assert len({nm.accented_key(f) for f in forms}) == 1
    assert nm.accented_key("Paternò") != nm.accented_key("Paterno")
    assert nm.abbreviation_key(nm.plain_key(nm.accented_key("S.ta Maria"))) == "s maria"
    assert nm.abbreviation_key("ss cosma e damiano") == nm.abbreviation_key("santi cosma e damiano")
    assert nm.short_key("reggio nell emilia") == nm.short_key("reggio emilia")


def test_speed_100k_names():
    ref = comuni()
    rng = np.random.default_rng(0)
    pool = [nm._index().official[c] for c in ref["codice_istat"]]
    pool += [_upper_apostrophe(x) for x in pool[:2000]]
    names = list(rng.choice(np.array(pool, dtype=object), size=100_000))
    start = time.perf_counter()
    out = match_comuni(names)
    elapsed = time.perf_counter() - start
    assert len(out) == 100_000
    assert elapsed < 10.0


@pytest.mark.parametrize(
    ("name", "province", "metodo"),
    [
        ("Forlì", None, "esatto"),
        ("FORLI'", None, "normalizzato"),
        ("Bozen", None, "altra_lingua"),
        ("Aosta/Aoste", None, "parte_di_nome"),
        ("S.ta Maria Capua Vetere", None, "abbreviazione"),
        ("Reggio Emilia", None, "forma_lunga"),
        ("Popoli Terme", None, "variazione_amministrativa"),
        ("Samone", "TN", "provincia"),
        ("Samone", None, "omonimi"),
        ("Roma", "MI", "provincia_diversa"),
        ("Setteville", None, "variazione_amministrativa"),
        ("Xyzzy Nonexistent", None, "non_trovato"),
        ("   ", None, "vuoto"),
    ],
)
def test_metodo(name, province, metodo):
    assert match_comuni([name], province)["metodo"].iloc[0] == metodo


def test_notes_name_what_was_not_used():
    out = match_comuni(["Aosta/Aoste", "Sovizzo", "Peglio (XX)"])
    assert "Aoste" in out["nota"].iloc[0]
    assert "024128" in out["nota"].iloc[1]  # the later merged Sovizzo, not in 2023
    assert "(XX)" in out["nota"].iloc[2]
    assert out["stato"].iloc[2] == "ambiguous"


def test_bilingual_split_needs_name_like_parts():
    # a part with digits is not a name: no match through the other part
    out = match_comuni(["Braies/Prags 178", "Massa/Carrara"], suggest=False)
    assert out["stato"].tolist() == ["unmatched", "ambiguous"]
    assert _codes(out["candidati"].iloc[1]) == {"045010", "045003"}


def test_numpy_and_series_inputs():
    out = match_comuni(pd.Series(["Samone", "Livo"]), np.array(["TO", "CO"]))
    assert out["codice_istat"].tolist() == ["001235", "013130"]
    assert match_comuni(["Samone"], np.int64(1))["codice_istat"].iloc[0] == "001235"
    with pytest.raises(InputError, match="names"):
        match_comuni("Roma")
