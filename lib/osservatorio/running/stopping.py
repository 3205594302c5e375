"""How runs stop: a signal becomes an ``Interrupted`` exception, and child processes
(batch workers, kernels) die with the process that started them.

Ctrl-C, ``kill`` (SIGTERM) and a closed terminal (SIGHUP) raise ``Interrupted`` in the main
thread of the command, once: cleanup code after it is not interrupted again, and code
inside ``deferred()`` (publishing a run) finishes before the exception is raised. Batch
workers ignore SIGINT (the batch stops them with SIGTERM, so a Ctrl-C from the terminal,
which reaches the whole process group, is handled once, by the batch) and turn SIGTERM into
``Interrupted``. A worker watches the batch that started it and stops when it ends,
however it ended (``kill -9`` included); on Linux every worker and kernel also asks the
kernel for a signal when its parent dies (``prctl(PR_SET_PDEATHSIG)``), so a dead worker
takes its kernel with it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
from contextlib import contextmanager

PR_SET_PDEATHSIG = 1  # linux/prctl.h
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Seconds a worker told to stop has to shut its kernel down and remove its run folder
# before SIGALRM ends it (also when the batch that told it is gone).
WORKER_GRACE_S = 10


class Interrupted(KeyboardInterrupt):
    """The command was told to stop (Ctrl-C, SIGTERM, SIGHUP). A KeyboardInterrupt, so
    ``except Exception`` clauses let it through and asyncio re-raises it at once from the
    task it hit (any other exception stays in that task: raised inside a notebook client's
    polling task, the stop would wait for the cell to finish)."""

    def __init__(self, signum: int = signal.SIGINT, outcomes: list | None = None):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.outcomes = outcomes or []  # what a batch did before it stopped

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # as a shell reports a process ended by the signal


_state = {"signum": None, "deferred": 0, "pending": False}


def _raise_interrupted(signum, frame) -> None:
    if _state["signum"] is not None:
        return  # stopping already: let the cleanup finish
    _state["signum"] = signum
    if _state["deferred"]:
        _state["pending"] = True
        return
    raise Interrupted(signum)


def install_handlers(signals=STOP_SIGNALS) -> None:
    """Make ``signals`` raise ``Interrupted`` in the main thread (once)."""
    _state.update(signum=None, deferred=0, pending=False)
    for sig in signals:
        signal.signal(sig, _raise_interrupted)


@contextmanager
def deferred():
    """Code that must finish once started (publishing a run, rebuilding the site): a stop
    signal arriving inside raises ``Interrupted`` at the end of the block instead."""
    _state["deferred"] += 1
    try:
        yield
    finally:
        _state["deferred"] -= 1
        if not _state["deferred"] and _state["pending"]:
            _state["pending"] = False
            raise Interrupted(_state["signum"])


def _load_prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()  # resolved at import: kernel_preexec runs between fork and exec


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """Ask Linux to send ``sig`` to this process when the thread that started it ends
    (elsewhere: False, nothing done)."""
    return _PRCTL is not None and _PRCTL(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


def kernel_preexec() -> None:
    """``preexec_fn`` of a kernel started by a run: SIGKILL when its parent dies. Runs in
    the child between fork and exec, so it imports nothing and allocates nearly nothing."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, 9, 0, 0, 0)


def kernel_launch_options() -> dict:
    """Extra ``Popen`` options for a run's kernel. The death signal is tied to the thread
    that forks, so it is asked for only from the main thread (a Dask worker starts kernels
    from pool threads; there ipykernel's own parent poller ends an orphaned kernel)."""
    if _PRCTL is None or threading.current_thread() is not threading.main_thread():
        return {}
    return {"preexec_fn": kernel_preexec}


def _stop_worker(signum, frame) -> None:
    signal.alarm(WORKER_GRACE_S)  # default SIGALRM action ends a worker stuck in cleanup
    _raise_interrupted(signum, frame)


def _watch_parent() -> None:
    """Stop (SIGTERM to itself) when the batch that started this worker ends: the batch
    holds the write end of ``parent_process().sentinel``, so it reads end-of-file then,
    however the batch died. Needed beside the death signal: a worker started by the fork
    server is the server's child, and the server outlives the batch while its children live."""
    import multiprocessing
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="osservatorio-parent-watch", daemon=True).start()


def _unraisable(args) -> None:
    """``sys.unraisablehook`` of a worker: a stop signal whose ``Interrupted`` was raised
    where no exception can propagate (a weakref callback of the import machinery, a
    ``__del__``) is not printed as "Exception ignored" with a traceback, and not lost:
    the signal is sent again (from a timer thread, once this hook has returned), to be
    raised at the next point that can take it."""
    if isinstance(args.exc_value, Interrupted):
        signum = _state.get("signum") or signal.SIGTERM
        _state["signum"] = None  # not stopping yet: the exception went nowhere
        # from another thread, shortly: a signal sent here would be handled inside this hook
        threading.Timer(0.05, os.kill, (os.getpid(), signum)).start()
        return
    sys.__unraisablehook__(args)


def init_worker() -> None:
    """First thing a batch worker does: leave SIGINT to the batch, turn SIGTERM into
    ``Interrupted``, and stop when the batch ends (its sentinel) or the process that
    forked this one dies (the death signal)."""
    parent = os.getppid()
    _state.update(signum=None, deferred=0, pending=False)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop_worker)
    sys.unraisablehook = _unraisable
    die_with_parent(signal.SIGTERM)
    if parent == 1 or os.getppid() != parent:  # the parent died before the request took effect
        _stop_worker(signal.SIGTERM, None)
    _watch_parent()


__all__ = ["Interrupted", "WORKER_GRACE_S", "deferred", "die_with_parent", "init_worker", "install_handlers",
           "kernel_launch_options", "kernel_preexec"]
