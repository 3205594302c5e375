"""Leftovers of killed runs: found by their owner process, removed when it is dead,
kept when it is alive or on another host; ``osservatorio clean`` lists and removes them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from osservatorio.running.leftovers import KERNEL_FILE_PREFIX, all_leftovers, sweep_theme

THEME = "patti-beni-comuni"
HOST = socket.gethostname()


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def live_pid():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.fixture
def runtime_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "runtime"
    folder.mkdir()
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(folder))
    return folder


def _leftovers(root: Path, runtime: Path, dead: int, live: int) -> dict[str, Path]:
    theme = root / "outputs" / THEME
    theme.mkdir(parents=True)
    made = {
        "dead run": theme / f".tmp-20260101T000000000-1@{HOST}.{dead}",
        "live run": theme / f".tmp-20260101T000000000-2@{HOST}.{live}",
        "other host": theme / f".tmp-20260101T000000000-3@elsewhere.example.{dead}",
        "dead kernel": runtime / f"{KERNEL_FILE_PREFIX}0123456789ab@{HOST}.{dead}.json",
        "live kernel": runtime / f"{KERNEL_FILE_PREFIX}ba9876543210@{HOST}.{live}.json",
        "dead kernel socket": runtime / f"{KERNEL_FILE_PREFIX}0123456789ab@{HOST}.{dead}.ipc-1",
        "live kernel socket": runtime / f"{KERNEL_FILE_PREFIX}ba9876543210@{HOST}.{live}.ipc-1",
        "jupyter's own": runtime / "kernel-4f3c.json",
    }
    for name, path in made.items():
        if "kernel" in name or "jupyter" in name:
            path.write_text("{}")
        else:
            (path / "notebooks").mkdir(parents=True)
            (path / "notebooks" / "10_indicators.ipynb").write_text("{}")
    made["dead link"] = theme / f".latest.20260101T000000000-1@{HOST}.{dead}"
    made["dead link"].symlink_to("20260101T000000000-1")
    return made


def test_stale_leftovers_removed_live_ones_kept(fresh_project, runtime_dir, dead_pid, live_pid):
    made = _leftovers(fresh_project, runtime_dir, dead_pid, live_pid)
    found = {item.path for item in all_leftovers()}
    assert found == {made["dead run"], made["dead kernel"], made["dead kernel socket"], made["dead link"]}
    removed = sweep_theme(THEME)  # what a run does when it starts
    assert {item.path for item in removed} == found
    for name, path in made.items():
        assert (path.exists() or path.is_symlink()) is ("dead" not in name), name


def test_clean_command_lists_then_removes(fresh_project, runtime_dir, dead_pid, live_pid):
    made = _leftovers(fresh_project, runtime_dir, dead_pid, live_pid)
    env = {**os.environ, "OSSERVATORIO_ROOT": str(fresh_project), "JUPYTER_RUNTIME_DIR": str(runtime_dir)}
    cli = [sys.executable, "-m", "osservatorio.cli", "clean"]

    listed = subprocess.run([*cli, "--dry-run"], env=env, capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr
    assert "4 leftovers found" in listed.stdout
    assert made["dead run"].is_dir() and made["dead kernel"].is_file()  # a dry run removes nothing

    cleaned = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=300)
    assert cleaned.returncode == 0, cleaned.stderr
    out = " ".join(cleaned.stdout.split())
    assert f"removed run folder: {made['dead run']}" in out and "4 leftovers removed" in out
    assert not made["dead run"].exists() and not made["dead kernel"].exists() and not made["dead link"].is_symlink()
    assert not made["dead kernel socket"].exists() and made["live kernel socket"].exists()
    assert made["live run"].is_dir() and made["live kernel"].is_file() and made["other host"].is_dir()
    assert made["jupyter's own"].is_file()  # not a run's kernel: never touched


def test_run_kernel_talks_over_unix_sockets_named_by_its_owner(fresh_project, tmp_path, monkeypatch):
    """Two kernels starting at once cannot be handed the same TCP port: a run's kernel
    uses Unix sockets next to its connection file, removed with it at shutdown."""
    import json
    import tempfile

    runtime_dir = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))  # pytest's tmp_path is too deep for a socket
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime_dir))

    from osservatorio.running.leftovers import owner_of
    from osservatorio.running.runner import theme_kernel

    with theme_kernel(tmp_path) as kernel:
        km = kernel()
        info = json.loads(Path(km.connection_file).read_text())
        assert info["transport"] == "ipc"
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=120)
            sockets = sorted(runtime_dir.glob(f"{KERNEL_FILE_PREFIX}*.ipc-*"))
            assert len(sockets) == 5 and all(owner_of(p.name) == (HOST, os.getpid()) for p in sockets)
            assert kc.execute_interactive("x = 1", timeout=60)["content"]["status"] == "ok"
        finally:
            kc.stop_channels()
    assert list(runtime_dir.iterdir()) == []
    runtime_dir.rmdir()


def test_a_runtime_folder_too_deep_for_unix_sockets_falls_back_to_tcp(tmp_path):
    from osservatorio.running.leftovers import kernel_ipc_prefix

    deep = tmp_path / ("d" * 120) / f"{KERNEL_FILE_PREFIX}0123456789ab@{HOST}.1.json"
    assert kernel_ipc_prefix(deep) is None
    short = Path("/tmp") / f"{KERNEL_FILE_PREFIX}0123456789ab@h.1.json"
    assert kernel_ipc_prefix(short) == Path(f"/tmp/{KERNEL_FILE_PREFIX}0123456789ab@h.1.ipc")
