"""Faults and concurrency with real processes, on the demo data in a temporary project:
an interrupted batch stops within seconds and leaves nothing running nor half published; a
killed batch takes its workers and kernels with it; a killed worker fails only its theme;
concurrent runs and site builds all succeed; a full disk is told in one line and keeps
``latest``."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from conftest import make_project

CLI = [sys.executable, "-m", "osservatorio.cli"]
THEMES = ["finanza-sociale-neet", "citta-pilota", "patti-beni-comuni"]


def _env(root: Path) -> dict[str, str]:
    """The project, and a Jupyter runtime folder of its own (to see the connection files)."""
    return {**os.environ, "OSSERVATORIO_ROOT": str(root), "JUPYTER_RUNTIME_DIR": str(root / "runtime")}


def _start(args: list[str], root: Path, log: Path) -> subprocess.Popen:
    """A command in a session of its own (as a shell job), output to files (pipes left
    unread could fill and block it)."""
    log.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([*CLI, *args], env=_env(root), stdout=open(log / "stdout", "w"),
                            stderr=open(log / "stderr", "w"), start_new_session=True)


def _cli(args: list[str], root: Path, prefix: list[str] | None = None, timeout: float = 900):
    return subprocess.run([*(prefix or CLI), *args], env=_env(root), capture_output=True, text=True, timeout=timeout)


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except psutil.NoSuchProcess:
            pass
    return alive


def _all_gone(procs: list[psutil.Process], within: float) -> list[psutil.Process]:
    """The processes still alive after ``within`` seconds (polling)."""
    deadline = time.monotonic() + within
    while _alive(procs) and time.monotonic() < deadline:
        time.sleep(0.2)
    return _alive(procs)


def _working_in(root: Path) -> list[psutil.Process]:
    """Processes whose current folder is inside the project: kernels run in a run folder."""
    found = []
    for p in psutil.process_iter(["cwd"]):
        cwd = p.info.get("cwd")
        if cwd and Path(cwd).is_relative_to(root) and p.pid != os.getpid():
            found.append(p)
    return _alive(found)


def _kernel_files(root: Path) -> list[Path]:
    folder = root / "runtime"
    return sorted(folder.glob("kernel-*.json")) if folder.is_dir() else []


def _wait_for_first_stage(root: Path, proc: subprocess.Popen, log: Path, timeout: float = 900) -> None:
    """Until a run folder holds the notebook papermill is executing."""
    deadline = time.monotonic() + timeout
    while not list((root / "outputs").glob("*/.tmp-*/notebooks/*.ipynb")):
        assert proc.poll() is None, (log / "stderr").read_text()
        assert time.monotonic() < deadline, "no stage started"
        time.sleep(0.2)


def _end(proc: subprocess.Popen) -> None:
    """Whatever happened in the test, nothing it started keeps running."""
    for p in _alive(_descendants(proc.pid)):
        p.kill()
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _site_matches_latest(root: Path) -> None:
    """The site's index links exactly the themes that have a ``latest`` run."""
    outputs = root / "outputs"
    with_latest = {link.parent.name for link in outputs.glob("*/latest")}
    index = outputs / "site" / "index.html"
    if not index.is_file():
        assert not with_latest
        return
    text = index.read_text(encoding="utf-8")
    linked = {d.name for d in outputs.iterdir() if f"../{d.name}/latest/report.html" in text}
    assert linked == with_latest


@pytest.mark.e2e
@pytest.mark.parametrize("target", ["batch process", "process group"])
def test_interrupted_batch_stops_within_seconds_and_leaves_nothing(fresh_project, tmp_path, target):
    """SIGINT to the batch alone (kill -INT) or to its process group (Ctrl-C in a terminal)
    once the first stage runs: exit 130 within 20 s with a one-line summary, no worker or
    kernel left, no run published (no latest, no .tmp- folder), no connection file."""
    root, log = fresh_project, tmp_path / "log"
    proc = _start(["batch", *THEMES, "--workers", "2"], root, log)
    try:
        _wait_for_first_stage(root, proc, log)
        started = _descendants(proc.pid)
        assert any("ipykernel" in " ".join(p.cmdline()) for p in _alive(started))
        stop = time.monotonic()
        if target == "process group":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, signal.SIGINT)
        proc.wait(timeout=20)
        took = time.monotonic() - stop
    finally:
        _end(proc)
    stderr = (log / "stderr").read_text()
    assert proc.returncode == 130, stderr
    assert took <= 20
    assert "Traceback" not in stderr and "zmq" not in stderr.lower() and "nbclient" not in stderr
    (summary,) = [line for line in stderr.splitlines() if line.startswith("interrupted")]
    assert summary.startswith("interrupted (SIGINT): stopped, not published: finanza-sociale-neet, citta-pilota")
    assert summary.endswith("not started: patti-beni-comuni")
    assert not _all_gone(started, within=10)
    assert not _working_in(root)
    outputs = root / "outputs"
    assert not list(outputs.glob("*/latest")) and not list(outputs.glob("*/.tmp-*"))
    assert not _kernel_files(root)
    _site_matches_latest(root)


@pytest.mark.e2e
def test_killed_batch_takes_its_workers_and_kernels_with_it(fresh_project, tmp_path):
    root, log = fresh_project, tmp_path / "log"
    proc = _start(["batch", *THEMES[:2], "--workers", "2"], root, log)
    try:
        _wait_for_first_stage(root, proc, log)
        started = _descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        left = _all_gone(started, within=15)
    finally:
        _end(proc)
    assert not left, [" ".join(p.cmdline())[:120] for p in left]
    assert not _working_in(root)
    cleaned = _cli(["clean"], root)  # whatever the workers could not remove
    assert cleaned.returncode == 0, cleaned.stderr
    assert not list((root / "outputs").glob("*/.tmp-*")) and not _kernel_files(root)
    assert not list((root / "outputs").glob("*/latest"))


@pytest.mark.e2e
@pytest.mark.slow
def test_killed_worker_fails_only_its_theme(fresh_project, tmp_path):
    """kill -9 of the worker running citta-pilota: that theme fails, its kernel dies; the
    theme running beside it and the one not yet started both succeed."""
    root, log = fresh_project, tmp_path / "log"
    proc = _start(["batch", *THEMES, "--workers", "2"], root, log)
    try:
        kernel = None
        deadline = time.monotonic() + 900
        while kernel is None:
            assert proc.poll() is None and time.monotonic() < deadline, (log / "stderr").read_text()
            for p in _working_in(root / "outputs" / "citta-pilota"):
                if "ipykernel" in " ".join(p.cmdline()):
                    kernel = p
            time.sleep(0.2)
        worker = kernel.parent()
        worker.kill()
        assert not _all_gone([worker, kernel], within=10)
        proc.wait(timeout=1800)
    finally:
        _end(proc)
    stderr = " ".join((log / "stderr").read_text().split())
    assert proc.returncode == 1, stderr
    assert "citta-pilota: failed (worker process died (killed by SIGKILL); the run was not published)" in stderr
    outputs = root / "outputs"
    for theme in ("finanza-sociale-neet", "patti-beni-comuni"):
        assert f"{theme}: success" in stderr
        assert (outputs / theme / "latest" / "report.html").is_file()
    assert not (outputs / "citta-pilota" / "latest").exists()
    assert not list(outputs.glob("*/.tmp-*")) and not _kernel_files(root)
    _site_matches_latest(root)


# --- concurrent commands, full disk: on a project where finanza-sociale-neet ran ----------


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, project_root):
    """Two ``run`` of one theme started together, on a new project: (project, results)."""
    base = tmp_path_factory.mktemp("two-runs")
    root = make_project(base / "project", demo_from=project_root / "data" / "demo")
    return root, _together([[*CLI, "run", "finanza-sociale-neet"]] * 2, root, base / "log")


def _together(commands: list[list[str]], root: Path, log: Path) -> list[tuple[int, str, str]]:
    """Start the commands at once; (exit code, stdout, stderr) of each."""
    log.mkdir(parents=True, exist_ok=True)
    procs = [subprocess.Popen(cmd, env=_env(root), stdout=open(log / f"{i}.out", "w"),
                              stderr=open(log / f"{i}.err", "w")) for i, cmd in enumerate(commands)]
    codes = [p.wait(timeout=1800) for p in procs]
    return [(code, (log / f"{i}.out").read_text(), (log / f"{i}.err").read_text()) for i, code in enumerate(codes)]


@pytest.mark.e2e
def test_two_runs_of_a_theme_take_turns(two_runs):
    root, results = two_runs
    assert [code for code, _, _ in results] == [0, 0], results
    texts = [" ".join((out + err).split()) for _, out, err in results]
    waited = [t for t in texts if "waiting for another run of finanza-sociale-neet to finish" in t]
    assert len(waited) == 1 and "skipped" in waited[0]  # after the first run, it is up to date
    theme = root / "outputs" / "finanza-sociale-neet"
    runs = [d for d in theme.iterdir() if d.is_dir() and not d.is_symlink() and not d.name.startswith(".")]
    assert len(runs) == 1 and (theme / "latest").resolve() == runs[0].resolve()
    assert not list(theme.glob(".tmp-*"))


@pytest.mark.e2e
def test_three_site_builds_at_once_all_succeed(two_runs, tmp_path):
    root, _ = two_runs
    for attempt in range(3):
        results = _together([[*CLI, "site"]] * 3, root, tmp_path / str(attempt))
        assert [code for code, _, _ in results] == [0, 0, 0], results
        assert not any("Traceback" in err for _, _, err in results)
    outputs = root / "outputs"
    partial = [p.name for folder in ("site", "findings") for p in (outputs / folder).glob(".*")
               if p.name != ".build.lock"]
    assert not partial
    assert (outputs / "findings" / "trasferibilita.csv").is_file()
    _site_matches_latest(root)


# Run the command line with one write failing as on a full disk.
NO_SPACE_IN_STAGE = """
import errno, sys, papermill
def no_space(notebook, output, **kwargs):  # papermill cannot write the executed notebook
    raise OSError(errno.ENOSPC, "No space left on device", str(output))
papermill.execute_notebook = no_space
from osservatorio.cli import app
app(sys.argv[1:], prog_name="osservatorio")
"""
NO_SPACE_FOR_MANIFEST = """
import errno, pathlib, sys
write_text = pathlib.Path.write_text
def full_disk(self, data, *args, **kwargs):  # the manifest gets a few bytes, then the disk is full
    if self.name.startswith(".manifest.json."):
        write_text(self, data[:10])
        raise OSError(errno.ENOSPC, "No space left on device", str(self))
    return write_text(self, data, *args, **kwargs)
pathlib.Path.write_text = full_disk
from osservatorio.cli import app
app(sys.argv[1:], prog_name="osservatorio")
"""


@pytest.mark.e2e
@pytest.mark.parametrize("script", [NO_SPACE_IN_STAGE, NO_SPACE_FOR_MANIFEST], ids=["stage", "manifest"])
def test_full_disk_is_one_line_and_keeps_latest(two_runs, tmp_path, script):
    """Stage 40 rerun (10-30 reused) on a copy of the project, with one write failing with
    ENOSPC: exit 1, one line naming the path and what to do, ``latest`` where it was, no
    run folder, no temporary file, no kernel connection file."""
    root = tmp_path / "project"
    shutil.copytree(two_runs[0], root, symlinks=True)
    theme = root / "outputs" / "finanza-sociale-neet"
    before = os.readlink(theme / "latest")
    res = _cli(["run", "finanza-sociale-neet", "--from-stage", "40"], root, prefix=[sys.executable, "-c", script])
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    (error,) = [line for line in res.stderr.splitlines() if "error" in line.lower()]
    assert error.startswith("error: ") and "No space left on device (ENOSPC)" in error
    assert f"df -h {theme}" in error and "the run of finanza-sociale-neet was not published (latest unchanged)" in error
    assert os.readlink(theme / "latest") == before
    assert not list(theme.glob(".tmp-*")) and not list(theme.glob(".latest.*"))
    assert not [p for p in (root / "outputs").rglob("*.tmp") if ".cache" not in p.parts]
    assert not _kernel_files(root)
