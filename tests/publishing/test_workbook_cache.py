"""The workbook cache: a workbook of the same content is copied from the cache, a
different content or layout is written anew, and a corrupt or half-written entry is
rebuilt, never copied."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from osservatorio.publishing import workbook
from osservatorio.publishing.workbook import WORKBOOK_FILE, content_key, write_xlsx


@pytest.fixture
def cache_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache" / "workbooks"
    monkeypatch.setattr(workbook, "cache_root", lambda: root)
    return root


@pytest.fixture
def sheets() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(7)
    df = pd.DataFrame({"codice_istat": pd.array([f"{i:06d}" for i in range(1000)], dtype="string"),
                       "valore": rng.normal(size=1000), "n": rng.integers(0, 9, 1000),
                       "misto": pd.Series([1, "1", None, 2.5] * 250, dtype=object)})
    df.loc[3, "valore"] = np.nan
    return {"comuni": df, "note": pd.DataFrame({"testo": pd.array(["=1+1", "ok"], dtype="string")})}


def _read(path: Path) -> dict[str, pd.DataFrame]:
    return pd.read_excel(path, sheet_name=None)


def _entries(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if not p.name.startswith("."))


def _spy(monkeypatch) -> list[str]:
    """Record each time cells are written (a cache miss)."""
    calls: list[str] = []
    real = workbook._write_fast
    monkeypatch.setattr(workbook, "_write_fast", lambda path, *a: (calls.append(path), real(path, *a)))
    return calls


def test_same_content_is_copied_from_the_cache(cache_root, sheets, tmp_path, monkeypatch):
    calls = _spy(monkeypatch)
    write_xlsx(tmp_path / "a.xlsx", sheets)
    write_xlsx(tmp_path / "b.xlsx", {k: v.copy() for k, v in sheets.items()})
    assert len(calls) == 1 and len(_entries(cache_root)) == 1
    assert (tmp_path / "a.xlsx").read_bytes() == (tmp_path / "b.xlsx").read_bytes()
    write_xlsx(tmp_path / "c.xlsx", sheets, cache=False)
    want, got = _read(tmp_path / "c.xlsx"), _read(tmp_path / "b.xlsx")
    for name in sheets:
        pd.testing.assert_frame_equal(got[name], want[name], check_exact=True)


@pytest.mark.parametrize("change", ["value", "bits", "nan", "text", "type", "column", "sheet", "layout", "order"])
def test_any_change_of_content_or_layout_changes_the_key(sheets, change):
    before = content_key(sheets, {})
    s = {k: v.copy() for k, v in sheets.items()}
    layout = {}
    df = s["comuni"]
    if change == "value":
        df.loc[500, "valore"] += 1
    elif change == "bits":  # the next float: a workbook shows 17 significant digits
        df.loc[500, "valore"] = np.nextafter(df.loc[500, "valore"], np.inf)
    elif change == "nan":
        df.loc[4, "valore"] = np.nan
    elif change == "text":
        s["note"].loc[1, "testo"] = "ok!"
    elif change == "type":  # the number 1 and the text "1" are different cells
        df.loc[1, "misto"] = 1
    elif change == "column":
        s["comuni"] = df.rename(columns={"n": "numero"})
    elif change == "sheet":
        s = {"altro" if k == "note" else k: v for k, v in s.items()}
    elif change == "layout":
        layout = {"comuni": {"freeze": (1, 1)}}
    elif change == "order":
        s = dict(reversed(list(s.items())))
    assert content_key(s, layout) != before


@pytest.mark.parametrize("damage", ["truncated", "flipped", "entry", "missing"])
def test_a_corrupt_entry_is_rebuilt_never_copied(cache_root, sheets, tmp_path, monkeypatch, damage):
    write_xlsx(tmp_path / "a.xlsx", sheets)
    (entry,) = _entries(cache_root)
    cached = entry / WORKBOOK_FILE
    data = cached.read_bytes()
    if damage == "truncated":  # a write cut short
        cached.write_bytes(data[: len(data) // 2])
    elif damage == "flipped":  # one byte changed on disk: still a valid zip member size
        cached.write_bytes(data[:100] + bytes([data[100] ^ 0xFF]) + data[101:])
    elif damage == "entry":
        (entry / "entry.json").write_text("{not json")
    else:
        cached.unlink()
    calls = _spy(monkeypatch)
    write_xlsx(tmp_path / "b.xlsx", sheets)
    assert len(calls) == 1  # written again from the frames
    with zipfile.ZipFile(tmp_path / "b.xlsx") as z:
        assert z.testzip() is None
    for name, df in _read(tmp_path / "b.xlsx").items():
        pd.testing.assert_frame_equal(df, _read(tmp_path / "a.xlsx")[name], check_exact=True)
    (entry,) = _entries(cache_root)  # the rebuilt entry replaces the corrupt one
    assert workbook.entry_store_read(entry.name) == (tmp_path / "b.xlsx").read_bytes()


def test_an_unwritable_cache_only_means_writing_every_time(sheets, tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setattr(workbook, "cache_root", lambda: blocked / "workbooks")
    write_xlsx(tmp_path / "a.xlsx", sheets)
    assert _read(tmp_path / "a.xlsx")["note"]["testo"].tolist() == ["'=1+1", "ok"]
