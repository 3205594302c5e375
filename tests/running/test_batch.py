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
