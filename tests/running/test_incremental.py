"""Stage-level incremental runs: a change reruns the first stage it touches and the stages
that read it; the others are copied from the last successful run, and every run folder
stays complete and self-contained."""

from __future__ import annotations

import json

import nbformat
import pytest

from osservatorio.exceptions import InputError
from osservatorio.running.provenance import STAGE_UPSTREAM, stage_fingerprints
from osservatorio.running.runner import run_theme
from osservatorio.themes import load_theme

THEME = "finanza-sociale-neet"


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _status(outcome):
    manifest = json.loads((outcome.run_dir / "manifest.json").read_text())
    return {s["stage"]: s["status"] for s in manifest["stages"]}, manifest


def test_stage_fingerprints_follow_what_each_stage_reads(fresh_project):
    theme = load_theme(THEME)
    base = stage_fingerprints(theme, {"esiti.csv": "x"})
    # selection keys only reach stage 20; design options only 30 and 40
    sel = stage_fingerprints(load_theme(THEME, {"selection": {"n_pilots": 7}}), {"esiti.csv": "x"})
    assert [s for s in base if base[s] != sel[s]] == [20]
    win = stage_fingerprints(load_theme(THEME, {"event_window": 2}), {"esiti.csv": "x"})
    assert [s for s in base if base[s] != win[s]] == [30, 40]
    data = stage_fingerprints(theme, {"esiti.csv": "y"})
    assert all(base[s] != data[s] for s in base)  # new data rerun everything
    assert STAGE_UPSTREAM[40] == (10, 30)


@pytest.mark.e2e
def test_editing_one_notebook_reruns_that_stage_and_the_later_ones(fresh_project, monkeypatch):
    # the stages share a kernel but not their variables: stage 10's are gone in stage 20
    path = fresh_project / "notebooks" / "20_selection.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(3, nbformat.v4.new_code_cell('assert "indicators" not in dir() and "panel" not in dir()'))
    nbformat.write(nb, path)
    first = run_theme(THEME)
    assert first.status == "success"
    status, _ = _status(first)
    assert set(status.values()) == {"success"}
    findings = json.loads((first.run_dir / "findings.json").read_text())["findings"][0]

    path = fresh_project / "notebooks" / "30_evaluation.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("A researcher's note."))
    nbformat.write(nb, path)
    from osservatorio.data import sources

    loads = []
    with monkeypatch.context() as patch:  # the last run validated these same sources: not again
        patch.setattr(sources, "load_sources", lambda *a, **k: loads.append(a))
        second = run_theme(THEME)
    assert loads == []
    status, manifest = _status(second)
    assert status == {10: "reused", 20: "reused", 30: "success", 40: "success"}
    assert {s["reused_from"] for s in manifest["stages"] if s["status"] == "reused"} == {first.run_dir.name}
    assert _files(second.run_dir) == _files(first.run_dir)  # complete and self-contained
    again = json.loads((second.run_dir / "findings.json").read_text())["findings"][0]
    assert {k: v for k, v in again.items() if k != "id_run"} == {k: v for k, v in findings.items() if k != "id_run"}

    assert run_theme(THEME).status == "skipped"  # nothing changed
    # nor does a batch load or validate anything for it: its last run validated the same inputs
    from osservatorio.running.batch import run_batch

    loads = []
    with monkeypatch.context() as patch:
        patch.setattr(sources, "load_sources", lambda *a, **k: loads.append(a))
        assert [o.status for o in run_batch([THEME], workers=1)] == ["skipped"] and loads == []
    third = run_theme(THEME, from_stage=40)
    status, manifest = _status(third)
    assert status == {10: "reused", 20: "reused", 30: "reused", 40: "success"}
    # a reused stage names the run that executed it, not the one that reused it
    assert {s["reused_from"] for s in manifest["stages"] if s["stage"] < 30} == {first.run_dir.name}

    # a file of a reused stage gone from the last run: that stage is rerun, not trusted
    (third.run_dir / "data" / "panel.parquet").unlink()
    fourth = run_theme(THEME, from_stage=40)
    assert _status(fourth)[0][10] == "success"

    # a source changed since: validated again, and a bad row stops the run before any notebook
    pilot = fresh_project / "data" / "demo" / "pilot.csv"
    pilot.write_text(pilot.read_text(encoding="utf-8") + f"PIL-99999,{THEME},001149,Meana di Susa,2019-13-45,x,abc,1\n",
                     encoding="utf-8")
    latest = (fresh_project / "outputs" / THEME / "latest").resolve()
    with pytest.raises(InputError, match="pilot.csv"):
        run_theme(THEME)
    assert (fresh_project / "outputs" / THEME / "latest").resolve() == latest
