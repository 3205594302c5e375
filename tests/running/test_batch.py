"""Batch on a real Dask cluster (LocalCluster): the same work as local processes."""

from __future__ import annotations

import json

import pytest

from osservatorio.running.batch import run_batch
from osservatorio.exceptions import InputError


@pytest.mark.e2e
def test_batch_on_local_dask_cluster(fresh_project):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        outcomes = run_batch(["finanza-sociale-neet"], scheduler=cluster.scheduler_address)
    assert [o.status for o in outcomes] == ["success"]
    latest = fresh_project / "outputs" / "finanza-sociale-neet" / "latest"
    manifest = json.loads((latest / "manifest.json").read_text())
    assert manifest["status"] == "success" and (latest / "report.html").is_file()


def test_batch_refuses_to_start_with_a_bad_theme(fresh_project):
    bad = fresh_project / "params" / "themes" / "rotto.yaml"
    bad.write_text("id: rotto\nlanguage: fr\n")
    with pytest.raises(InputError) as exc:
        run_batch(["finanza-sociale-neet", str(bad)])
    msg = str(exc.value)
    assert "rotto.yaml" in msg and "language" in msg and "'it'" in msg
    assert not (fresh_project / "outputs" / "finanza-sociale-neet").exists()


def test_batch_starts_the_longest_themes_first(fresh_project, monkeypatch):
    """Themes are dispatched by their last run's duration, longest first; a theme never run
    (or with an unreadable manifest, which no longer stops the batch) counts as longest;
    ties keep the order given."""
    from osservatorio.running import batch

    durations = {"patti-beni-comuni": 19.4, "case-comunita": 22.6, "citta-pilota": 24.2,
                 "finanza-sociale-neet": 16.6, "coprogettazione-anziani": None}
    for theme, seconds in durations.items():
        latest = fresh_project / "outputs" / theme / "latest"
        latest.mkdir(parents=True)
        (latest / "manifest.json").write_text("{not json" if seconds is None else json.dumps({"duration_s": seconds}))
    dispatched = []
    monkeypatch.setattr(batch, "_run_local", lambda jobs, *a, **k: dispatched.extend(j.theme_id for j in jobs) or [])
    given = ["finanza-sociale-neet", "patti-beni-comuni", "cooperative-aree-interne", "citta-pilota",
             "coprogettazione-anziani", "case-comunita"]
    run_batch(given, force=True)
    assert dispatched == ["cooperative-aree-interne", "coprogettazione-anziani", "citta-pilota", "case-comunita",
                          "patti-beni-comuni", "finanza-sociale-neet"]
    assert batch.expected_seconds("citta-pilota") == 24.2
    assert batch.expected_seconds("coprogettazione-anziani") == float("inf")
    # the damaged manifest is no previous run: validated again, nothing reused or skipped on its word
    assert batch.latest_manifest("coprogettazione-anziani") is None

