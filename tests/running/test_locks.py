"""Locks with real processes: a command that finds its lock held says so in one line,
waits, and goes on when the lock is released, or gives up after --lock-timeout."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from osservatorio.running.locks import site_lock, theme_lock

CLI = [sys.executable, "-m", "osservatorio.cli"]


def _cli(args, root, timeout=600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OSSERVATORIO_ROOT": str(root)}
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_run_gives_up_after_lock_timeout(fresh_project):
    with theme_lock("finanza-sociale-neet", timeout=0):
        res = _cli(["run", "finanza-sociale-neet", "--lock-timeout", "1"], fresh_project)
    assert res.returncode == 1, res.stderr
    assert "finanza-sociale-neet: waiting for another run of finanza-sociale-neet to finish" in res.stderr
    (error,) = _errors(res.stderr)
    assert ".run.lock: another run of finanza-sociale-neet still holds this lock after 1 s" in error
    assert "--lock-timeout" in error and "Traceback" not in res.stderr
    assert not list((fresh_project / "outputs" / "finanza-sociale-neet").glob(".tmp-*"))


def test_site_waits_for_the_build_holding_the_lock(fresh_project):
    held = threading.Event()

    def hold() -> None:
        with site_lock(timeout=0):
            held.set()
            time.sleep(4)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait()
    res = _cli(["site", "--lock-timeout", "120"], fresh_project)
    holder.join()
    assert res.returncode == 0, res.stderr
    assert "site: waiting for another build of the site to finish" in res.stderr
    assert (fresh_project / "outputs" / "site" / "index.html").is_file()


def test_site_gives_up_after_lock_timeout(fresh_project):
    with site_lock(timeout=0):
        res = _cli(["site", "--lock-timeout", "0.5"], fresh_project)
    assert res.returncode == 1
    (error,) = _errors(res.stderr)
    assert "another build of the site still holds this lock after 0.5 s" in error
    assert "Traceback" not in res.stderr
