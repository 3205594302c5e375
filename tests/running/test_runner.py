"""Runner and CLI: bad input stops before any notebook and leaves outputs untouched;
a batch keeps going when one theme fails; runs are published atomically."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

CLI = [sys.executable, "-m", "osservatorio.cli"]


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under outputs/ but the cache of validated sources (outputs/.cache), which
    may gain entries for the files that were valid, and the (empty) lock files a run takes."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"" for p in sorted(folder.rglob("*"))
            if p.relative_to(folder).parts[0] != ".cache" and p.suffix != ".lock"}


def _cli(args, root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OSSERVATORIO_ROOT": str(root)}
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture
def project_with_outputs(fresh_project):
    """A project whose outputs/ already holds a previous (fake) run, to prove nothing changes."""
    old = fresh_project / "outputs" / "patti-beni-comuni" / "20260101T000000-old"
    old.mkdir(parents=True)
    (old / "manifest.json").write_text(json.dumps({"status": "success"}))
    (old / "report.html").write_text("<html>old</html>")
    return fresh_project


def test_bad_theme_file_exit_2_nothing_written(project_with_outputs):
    root = project_with_outputs
    bad = root / "params" / "themes" / "patti-beni-comuni.yaml"
    bad.write_text(bad.read_text().replace("design: staggered_did", "design: regression_magic"))
    before = _snapshot(root / "outputs")
    res = _cli(["run", "patti-beni-comuni"], root)
    assert res.returncode == 2
    assert "patti-beni-comuni.yaml" in res.stderr and "design" in res.stderr and "staggered_did" in res.stderr
    assert _snapshot(root / "outputs") == before


def test_bad_data_file_exit_2_before_any_notebook(project_with_outputs):
    root = project_with_outputs
    pilot = root / "data" / "demo" / "pilot.csv"
    df = pd.read_csv(pilot, dtype=str, keep_default_na=False)
    df.loc[0, "costo_euro"] = "-100"
    df.to_csv(pilot, index=False)
    before = _snapshot(root / "outputs")
    res = _cli(["batch", "patti-beni-comuni", "coprogettazione-anziani"], root)
    assert res.returncode == 2
    assert "pilot.csv, row 2, column 'costo_euro'" in res.stderr.replace("\n", " ")
    assert res.stderr.count("column 'costo_euro'") == 1  # once, not once per theme
    assert _snapshot(root / "outputs") == before


def test_missing_outcome_is_bad_input(fresh_project):
    theme = fresh_project / "params" / "themes" / "patti-beni-comuni.yaml"
    theme.write_text(theme.read_text().replace("outcome: volontari_civici_per_1000", "outcome: felicita"))
    res = _cli(["validate", "patti-beni-comuni"], fresh_project)
    assert res.returncode == 2 and "no row with indicatore 'felicita'" in res.stderr


@pytest.mark.parametrize(("design", "reason"), [
    ("did_few_treated", "adoption varies within"), ("event_study_its", "the cohorts share 1 pre-adoption"),
    ("synthetic_control", "500 treated units")])
def test_design_that_cannot_work_is_bad_input(project_with_outputs, design, reason):
    """Fail early: a design that cannot work on the theme's data stops validate and run with
    exit 2, the reason and what would work, before any notebook (outputs untouched)."""
    root = project_with_outputs
    theme = root / "params" / "themes" / "patti-beni-comuni.yaml"
    theme.write_text(theme.read_text().replace("design: staggered_did", f"design: {design}"))
    before = _snapshot(root / "outputs")
    for cmd in ("validate", "run"):
        res = _cli([cmd, "patti-beni-comuni"], root)
        err = " ".join(res.stderr.split())
        assert res.returncode == 2, res.stderr
        assert f"design '{design}' cannot work" in err and reason in err and "use design: staggered_did" in err
        assert "Traceback" not in res.stderr
    assert _snapshot(root / "outputs") == before


def test_window_without_adoption_is_bad_input(fresh_project):
    theme = fresh_project / "params" / "themes" / "coprogettazione-anziani.yaml"
    theme.write_text(theme.read_text().replace('period_end: "2023"', 'period_end: "2016"'))
    res = _cli(["validate", "coprogettazione-anziani"], fresh_project)
    assert res.returncode == 2 and "no treated unit in the panel" in " ".join(res.stderr.split())


def test_unknown_cli_option_value_exit_2(fresh_project):
    res = _cli(["run", "patti-beni-comuni", "--lang", "fr"], fresh_project)
    assert res.returncode == 2 and "fr" in res.stderr


@pytest.mark.e2e
def test_batch_one_failure_others_complete(fresh_project):
    """Two demo themes and one that fails at run time (a cell of stage 30 raises for it:
    what validation can see, such as a window without adoption, stops the batch before it
    starts, so the failure is planted in the test project's notebook)."""
    import nbformat

    root = fresh_project
    src = (root / "params" / "themes" / "coprogettazione-anziani.yaml").read_text()
    (root / "params" / "themes" / "finestra-vuota.yaml").write_text(
        src.replace("id: coprogettazione-anziani", "id: finestra-vuota"))
    nb_path = root / "notebooks" / "30_evaluation.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells.insert(3, nbformat.v4.new_code_cell(
        'assert stage.theme.id != "finestra-vuota", "failure planted by the test"'))
    nbformat.write(nb, nb_path)
    pilot = root / "data" / "demo" / "pilot.csv"
    df = pd.read_csv(pilot, dtype=str, keep_default_na=False)
    extra = df[df["tema"] == "coprogettazione-anziani"].copy()
    extra["tema"] = "finestra-vuota"
    extra["id_pilota"] = extra["id_pilota"] + "-X"
    pd.concat([df, extra]).to_csv(pilot, index=False)

    res = _cli(["batch", "finanza-sociale-neet", "finestra-vuota", "cooperative-aree-interne", "--workers", "2"], root)
    assert res.returncode == 1, res.stdout + res.stderr
    out = root / "outputs"
    for tid in ("finanza-sociale-neet", "cooperative-aree-interne"):
        latest = out / tid / "latest"
        manifest = json.loads((latest / "manifest.json").read_text())
        assert manifest["status"] == "success"
        assert [s["stage"] for s in manifest["stages"]] == [10, 20, 30, 40]
        assert manifest["git"] and manifest["packages"]["papermill"] and manifest["inputs"]["esiti.csv"]
        report = (latest / "report.html").read_text()
        assert "DATI SINTETICI" in report and "Risultato principale" in report
        assert "<code" not in report.split("id=\"provenance\"")[0] or "import" not in report
        findings = json.loads((latest / "findings.json").read_text())["findings"]
        assert findings[0]["tema"] == tid and findings[0]["dati_sintetici"] is True
        ref = json.loads((Path(__file__).parents[1] / "reference" / "demo" / "headline.json").read_text())["themes"][tid]
        for key in ("effetto", "ci_low", "ci_high", "livello_maryland", "lucchetti", "lucchetti_senza_limite_sintetico"):
            assert findings[0][key] == pytest.approx(ref[key], rel=1e-9), key  # same numbers, same padlocks
        assert (latest / "figures" / "event_study.png").is_file() or tid == "citta-pilota"
        for nb in (latest / "notebooks").glob("*.ipynb"):  # a rerun of an executed copy never recreates .tmp-
            cells = json.loads(nb.read_text())["cells"]
            injected = "".join(next(c for c in cells if "injected-parameters" in c["metadata"].get("tags", []))["source"])
            assert ".tmp-" not in injected and 'run_dir = ""' in injected and f"theme_id = \"{tid}\"" in injected
    failed = [d for d in (out / "finestra-vuota").iterdir() if d.name != "latest" and not d.name.startswith(".")]
    assert len(failed) == 1 and not (out / "finestra-vuota" / "latest").exists()
    manifest = json.loads((failed[0] / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["error"]
    executed = json.loads((failed[0] / "notebooks" / "30_evaluation.ipynb").read_text())
    assert any(o.get("output_type") == "error" for c in executed["cells"] for o in c.get("outputs", []))
    assert not list((out).glob("*/.tmp-*"))
    index = (out / "site" / "index.html").read_text()
    assert "finanza-sociale-neet/latest/report.html" in index and "finestra-vuota" in index
    for ext in ("csv", "json", "xlsx"):
        assert (out / "findings" / f"catalogo.{ext}").is_file()
    # unchanged themes are not rerun
    again = _cli(["batch", "finanza-sociale-neet"], root)
    assert again.returncode == 0 and "skipped" in again.stdout + again.stderr


def test_stages_share_the_kernel_not_its_variables(tmp_path):
    """reset_namespace between stages: the previous stage's names and figures are gone,
    imported modules stay."""
    from osservatorio.running.runner import reset_namespace, theme_kernel

    def run(kc, code):
        out = []
        reply = kc.execute_interactive(code, timeout=120, output_hook=lambda m: out.append(
            m["content"].get("text", "")) if m["msg_type"] == "stream" else None)
        return reply["content"]["status"], "".join(out).strip()

    def stage(km, code):  # as papermill runs a stage: a client of its own
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=300)
            return run(kc, code)
        finally:
            kc.stop_channels()

    with theme_kernel(tmp_path, warm=[10]) as kernel:
        km = kernel()
        assert stage(km, "import matplotlib.pyplot as plt; fig = plt.figure(); stage_value = 42")[0] == "ok"
        reset_namespace(km)
        status, out = stage(km, "import sys, matplotlib.pyplot as plt\n"
                                "print('stage_value' in globals(), len(plt.get_fignums()),"
                                " 'osservatorio.indicators.steps' in sys.modules)")
        assert (status, out) == ("ok", "False 0 True")
