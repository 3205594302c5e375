"""The pooled transferability lists are copied from the cache when no theme's list
changed, written anew when one did, and rebuilt (never copied) from a corrupt entry."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from osservatorio import paths
from osservatorio.publishing import site
from osservatorio.publishing.site import TRANSFER_FILES, transfer_cache_root, write_transfer_lists

COLUMNS = ["tema", "posizione", "codice", "nome", "ripartizione", "regione", "classe_ampiezza", "popolazione",
           "quota_over65_pct", "ets_per_10000", "effetto_previsto", "ip_low", "ip_high", "ic_low", "ic_high",
           "effetto_prudente", "prob_beneficio", "distanza", "sito_piu_simile", "fuori_supporto", "motivi"]


def _theme_list(folder: Path, theme: str, effect: float) -> dict:
    folder.mkdir(parents=True)
    rows = [[theme, i + 1, f"{i + 1:06d}", f"Comune {i}", "Nord-ovest", "Lombardia", "0-1.000", 600.0 + i, 23.8, 16.0,
             effect, 0.9, 1.6, 1.0, 1.5, 0.9, 99.0, 0.8, "AMB-019-02 (2018)", "", "=HYPERLINK(\"x\") motivo"]
            for i in range(40)]
    pd.DataFrame(rows, columns=COLUMNS).to_csv(folder / "trasferibilita.csv", index=False)
    return {"theme": theme, "run_dir": folder}


@pytest.fixture
def entries(fresh_project, tmp_path) -> list[dict]:
    paths.findings_dir().mkdir(parents=True, exist_ok=True)
    return [_theme_list(tmp_path / "a", "tema-a", 1.25), _theme_list(tmp_path / "b", "tema-b", -0.5)]


def _spy(monkeypatch) -> list[Path]:
    calls: list[Path] = []
    real = site.write_csv
    monkeypatch.setattr(site, "write_csv", lambda frame, path: (calls.append(path), real(frame, path)))
    return calls


def _outputs() -> dict[str, bytes]:
    return {name: (paths.findings_dir() / name).read_bytes() for name in TRANSFER_FILES}


def _uncached(entries, monkeypatch) -> dict[str, bytes]:
    with monkeypatch.context() as patch:
        patch.setattr("osservatorio.data.cache.read_file_entry", lambda *a, **k: None)
        patch.setattr("osservatorio.data.cache.write_file_entry", lambda *a, **k: False)
        write_transfer_lists(entries, "it")
    return _outputs()


def test_unchanged_lists_are_copied(entries, monkeypatch):
    calls = _spy(monkeypatch)
    write_transfer_lists(entries, "it")
    first = _outputs()
    write_transfer_lists(entries, "it")
    assert len(calls) == 1 and _outputs() == first
    assert first == _uncached(entries, monkeypatch)  # the copy is what writing would give
    pooled = pd.read_csv(paths.findings_dir() / "trasferibilita.csv", dtype=str)
    assert pooled["motivi"].str.startswith("'=").all()  # still neutralised


def test_a_changed_theme_list_is_pooled_anew(entries, tmp_path, monkeypatch):
    write_transfer_lists(entries, "it")
    changed = [entries[0], _theme_list(tmp_path / "b2", "tema-b", 2.75)]
    calls = _spy(monkeypatch)
    write_transfer_lists(changed, "it")
    assert len(calls) == 1
    pooled = pd.read_csv(paths.findings_dir() / "trasferibilita.csv", dtype={"codice": str})
    assert set(pooled.loc[pooled["tema"] == "tema-b", "effetto_previsto"]) == {2.75}
    write_transfer_lists(changed, "en")  # another language: another codebook, another entry
    assert len(calls) == 2


@pytest.mark.parametrize("damage", ["truncate", "flip", "remove"])
def test_a_corrupt_entry_is_rebuilt_never_copied(entries, monkeypatch, damage):
    write_transfer_lists(entries, "it")
    good = _outputs()
    (entry,) = [p for p in transfer_cache_root().iterdir() if not p.name.startswith(".")]
    target = entry / TRANSFER_FILES[0]
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:100])
    elif damage == "flip":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
    else:
        target.unlink()
    (paths.findings_dir() / TRANSFER_FILES[0]).unlink()
    calls = _spy(monkeypatch)
    write_transfer_lists(entries, "it")
    assert len(calls) == 1 and _outputs() == good
    write_transfer_lists(entries, "it")  # the rebuilt entry is used again
    assert len(calls) == 1 and _outputs() == good


def test_a_workbook_written_twice_a_second_apart_has_the_same_bytes(tmp_path, monkeypatch):
    import time

    from osservatorio.publishing.workbook import write_xlsx

    frame = pd.DataFrame({"a": [1.5, 2.0], "b": ["x", "y"]})
    first = write_xlsx(tmp_path / "a.xlsx", {"s": frame}, cache=False).read_bytes()
    time.sleep(1.1)  # XlsxWriter stamps the second of writing unless told a creation date
    assert write_xlsx(tmp_path / "b.xlsx", {"s": frame}, cache=False).read_bytes() == first
