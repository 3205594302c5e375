"""Locks on what several commands write: one per theme for its runs
(``outputs/<theme>/.run.lock``), one for the shared ``outputs/findings`` and
``outputs/site`` (``outputs/site/.build.lock``).

A second ``run`` of a theme waits for the first (saying so in one line), then finds the
theme up to date; ``--lock-timeout`` bounds the wait, as pip and conda do. The locks are
``filelock`` locks (``flock`` on a file): the operating system releases them when their
holder dies, so a killed run never leaves a theme locked.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from osservatorio import paths
from osservatorio.exceptions import OsservatorioError

RUN_LOCK = ".run.lock"
SITE_LOCK = ".build.lock"
DEFAULT_TIMEOUT_S = 3600.0


class LockTimeout(OsservatorioError):
    """Another command held a lock for longer than the timeout (exit code 1)."""


@contextmanager
def held(lock_file: Path, what: str, timeout: float = DEFAULT_TIMEOUT_S,
         on_wait: Callable[[str], None] | None = None):
    """Hold ``lock_file`` inside the block. When another process holds it, ``on_wait`` is
    told once and the wait lasts at most ``timeout`` seconds (negative: no limit)."""
    from filelock import FileLock, Timeout

    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_file, thread_local=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        limit = "no time limit" if timeout < 0 else f"at most {timeout:g} s (--lock-timeout)"
        if on_wait:
            on_wait(f"waiting for {what} to finish ({lock_file} is held), {limit}")
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise LockTimeout(f"{lock_file}: {what} still holds this lock after {timeout:g} s; wait for it to "
                              f"finish, or pass a longer --lock-timeout") from None
    try:
        yield
    finally:
        lock.release()


def theme_lock(theme_id: str, timeout: float = DEFAULT_TIMEOUT_S, on_wait: Callable[[str], None] | None = None):
    """Held for the whole of a run of ``theme_id``."""
    return held(paths.theme_outputs_dir(theme_id) / RUN_LOCK, f"another run of {theme_id}", timeout, on_wait)


def site_lock(timeout: float = DEFAULT_TIMEOUT_S, on_wait: Callable[[str], None] | None = None):
    """Held while outputs/findings and outputs/site are written."""
    return held(paths.site_dir() / SITE_LOCK, "another build of the site", timeout, on_wait)


__all__ = ["DEFAULT_TIMEOUT_S", "LockTimeout", "RUN_LOCK", "SITE_LOCK", "held", "site_lock", "theme_lock"]
