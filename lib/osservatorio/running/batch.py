"""Run several themes at once: local processes, or an existing Dask cluster.

Every theme is validated first (``validate_all``): if any theme file or data file is bad,
nothing runs and the batch exits with code 2. Then themes run in parallel; a failing
theme does not stop the others; the batch returns one outcome per theme.

Locally each theme runs in a worker process of its own, at most ``workers`` at once, so a
worker that dies (killed, out of memory) fails only its theme. Workers are forked from a
fork server (a single-threaded process: the batch itself has threads, such as the
progress display's) and die with the batch, whatever kills it (``stopping.init_worker``).

On Ctrl-C or SIGTERM the batch stops: no theme starts any more, each running worker is
told to stop (SIGTERM: it shuts its kernel down and removes its run folder, so nothing
half done is published and ``latest`` does not move), a worker still there after
``WORKER_GRACE_S`` is killed (its kernel dies with it, its leftovers are removed here),
and ``Interrupted`` is raised carrying every theme's outcome. On a Dask cluster the batch
does not own the workers: an interrupt cancels its tasks (``client.cancel``) and sets a
Dask ``Event`` that a running theme checks before each stage; it stops there, unpublished.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import uuid
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Callable

from osservatorio import paths
from osservatorio.exceptions import InputError, OsservatorioError
from osservatorio.running.leftovers import all_leftovers, kernel_leftovers, remove_leftovers, run_leftovers
from osservatorio.running.locks import DEFAULT_TIMEOUT_S
from osservatorio.running.runner import (LATEST, PreparedRun, RunOutcome, is_up_to_date, latest_manifest, prepare_run,
                                         run_theme)
from osservatorio.running.stopping import WORKER_GRACE_S, Interrupted, deferred, init_worker

Callback = Callable[[RunOutcome], None]
Notice = Callable[[str], None]
STOPPED = "stopped by the interrupt, not published"
NOT_STARTED = "not started: the batch was interrupted"


@dataclass(frozen=True)
class Job:
    """A theme to run: as named on the command line, its id, the key of its validation."""

    theme: str
    theme_id: str
    validated: str


def validate_all(themes: list[str], header: str = "batch not started, bad input",
                 force: bool = True, on_validating: Callable[[], None] | None = None) -> list[PreparedRun]:
    """Validate every theme and its sources (loaded once per data folder); raise one
    InputError listing all problems under ``header``. Without ``force``, a theme whose
    last successful run had the same fingerprint (theme, sources, notebooks, library) is
    not validated again: that run validated these same inputs. ``on_validating`` is
    called once, before the first theme is validated (when some theme will run)."""
    from osservatorio.data.sources import load_sources
    from osservatorio.running.runner import validate_sources

    problems, prepared, sources = [], [], {}
    for theme in themes:
        try:
            p = prepare_run(theme, validate=False)
            if not force and is_up_to_date(p):
                prepared.append(p)
                continue
            if on_validating:
                on_validating()
                on_validating = None
            folder = paths.sources_dir(p.theme.data_source)
            if folder not in sources:
                sources[folder] = load_sources(folder)
            validate_sources(p, sources[folder])
            prepared.append(p)
        except InputError as exc:
            if str(exc) not in problems:  # a bad source file is every theme's problem: said once
                problems.append(str(exc))
    if problems:
        raise InputError(f"{header}:\n" + "\n".join(problems))
    return prepared


def _run_safely(theme: str, theme_id: str, force: bool, root: str, **options) -> RunOutcome:
    try:
        return run_theme(theme, force=force, root=root, **options)
    except OsservatorioError as exc:  # the one-line message (outputs not writable, lock timeout)
        return RunOutcome(theme_id, "failed", error=str(exc))
    except Exception as exc:  # an error outside the notebooks must not stop the batch
        return RunOutcome(theme_id, "failed", error=f"{type(exc).__name__}: {exc}")


def run_batch(themes: list[str], workers: int = 2, force: bool = False, scheduler: str | None = None,
              on_done: Callback | None = None, on_notice: Notice | None = None,
              lock_timeout: float = DEFAULT_TIMEOUT_S) -> list[RunOutcome]:
    """Run ``themes`` in parallel; with ``scheduler`` (a Dask address) on that cluster.

    Themes whose last successful run has the same fingerprint are reported as skipped by
    this process, without starting a worker. ``on_notice`` receives a worker's one-line
    notices (waiting for another run of its theme). Raises ``Interrupted`` (with the
    outcomes) when told to stop."""
    remove_leftovers(all_leftovers())
    outcomes, todo = [], []
    # the local fork server imports what the workers need while the themes are validated
    for theme, prepared in zip(themes, validate_all(themes, force=force, on_validating=None if scheduler
                                                    else _start_fork_server), strict=True):
        if not force and is_up_to_date(prepared):
            outcomes.append(RunOutcome(prepared.theme.id, "skipped",
                                       paths.theme_outputs_dir(prepared.theme.id) / LATEST))
            if on_done:
                on_done(outcomes[-1])
        else:
            todo.append(Job(str(theme), prepared.theme.id, prepared.design_check))
    if not todo:
        return outcomes
    # longest first (each theme's last run; a theme never run counts as longest): the two
    # longest themes no longer start last, so the batch ends closer to its work / workers
    todo.sort(key=lambda job: -expected_seconds(job.theme_id))  # stable: ties keep the given order
    root = str(paths.project_root())
    try:
        if scheduler:
            return outcomes + _run_dask(todo, force, root, scheduler, lock_timeout, on_done)
        return outcomes + _run_local(todo, workers, force, root, lock_timeout, on_done, on_notice)
    except Interrupted as exc:
        raise Interrupted(exc.signum, outcomes + exc.outcomes) from None


def expected_seconds(theme_id: str) -> float:
    """How long the theme's last run took (its manifest's ``duration_s``); infinity when
    it has none or it cannot be read."""
    try:
        return float(latest_manifest(theme_id)["duration_s"])
    except (KeyError, TypeError, ValueError):
        return float("inf")


# --- local worker processes --------------------------------------------------------


def _worker_main(conn: Connection, job: Job, force: bool, root: str, lock_timeout: float) -> None:
    """A worker process: run one theme, send notices and then its outcome to the batch."""
    outcome = RunOutcome(job.theme_id, "interrupted", error=STOPPED)
    try:
        init_worker()
        outcome = _run_safely(job.theme, job.theme_id, force, root, validated=job.validated,
                              lock_timeout=lock_timeout, on_wait=lambda text: conn.send(("notice", text)))
    except Interrupted:
        pass  # run_theme removed the run folder and shut its kernel down
    try:
        with deferred():
            conn.send(("outcome", outcome))
    except (Interrupted, OSError):
        pass  # the batch is gone, or stopping: it knows


@dataclass
class _Worker:
    job: Job
    process: multiprocessing.Process
    conn: Connection | None
    outcome: RunOutcome | None = None


# What the fork server imports once, so that every worker forks with it: the package's
# runner and, beyond it, what a theme run imports in its worker: jupyter_client and
# papermill to drive the kernel, pandas and nbconvert for the report (about 1.5 s a worker).
WORKER_PRELOAD = (__name__, "jupyter_client.manager", "osservatorio.running.client", "osservatorio.running.engine",
                  "osservatorio.publishing.report", "nbconvert.exporters.html")


def _context():
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(WORKER_PRELOAD))
    return ctx


def _start_fork_server() -> None:
    """Start the fork server now: it imports ``WORKER_PRELOAD`` in its own process while
    the batch validates the themes, instead of delaying the first workers."""
    from multiprocessing import forkserver

    _context()
    forkserver.ensure_running()


def _start(ctx, job: Job, force: bool, root: str, lock_timeout: float) -> _Worker:
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_worker_main, args=(send, job, force, root, lock_timeout),
                          name=f"osservatorio-{job.theme_id}")
    process.start()
    send.close()
    return _Worker(job, process, receive)


def _receive(worker: _Worker, on_notice: Notice | None) -> None:
    """Read what the worker sent so far (its connection closes when it ends)."""
    try:
        while worker.conn is not None and worker.conn.poll():
            kind, payload = worker.conn.recv()
            if kind == "outcome":
                worker.outcome = payload
            elif on_notice:
                on_notice(f"{worker.job.theme_id}: {payload}")
    except (EOFError, OSError):
        worker.conn.close()
        worker.conn = None


def _wait(running: list[_Worker], on_notice: Notice | None, timeout: float | None = None) -> list[_Worker]:
    """Wait for messages or ended workers; the workers that ended (joined)."""
    handles = [w.conn for w in running if w.conn is not None] + [w.process.sentinel for w in running]
    wait(handles, timeout)
    ended = []
    for w in running:
        _receive(w, on_notice)
        if not w.process.is_alive():
            w.process.join()
            _receive(w, on_notice)
            ended.append(w)
    return ended


def _outcome(worker: _Worker) -> RunOutcome:
    """What the worker reported; or, when it died without a word, a failure (and its
    leftovers removed: its kernel died with it)."""
    if worker.outcome is not None:
        return worker.outcome
    code = worker.process.exitcode or 0
    how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
    remove_leftovers(run_leftovers(paths.theme_outputs_dir(worker.job.theme_id)) + kernel_leftovers())
    return RunOutcome(worker.job.theme_id, "failed", error=f"worker process died ({how}); the run was not published")


def _run_local(jobs: list[Job], workers: int, force: bool, root: str, lock_timeout: float,
               on_done: Callback | None, on_notice: Notice | None) -> list[RunOutcome]:
    ctx = _context()
    waiting, running, outcomes = list(jobs), [], []
    try:
        while waiting or running:
            with deferred():  # a started worker is always in ``running`` when a stop comes
                while waiting and len(running) < workers:
                    running.append(_start(ctx, waiting.pop(0), force, root, lock_timeout))
            ended = _wait(running, on_notice)
            with deferred():
                for w in ended:
                    running.remove(w)
                    outcomes.append(_outcome(w))
                    if on_done:
                        on_done(outcomes[-1])
    except (Interrupted, KeyboardInterrupt) as exc:
        outcomes += _stop(running, on_notice)
        outcomes += [RunOutcome(j.theme_id, "not started", error=NOT_STARTED) for j in waiting]
        raise Interrupted(getattr(exc, "signum", signal.SIGINT), outcomes) from None
    return outcomes


def _stop(running: list[_Worker], on_notice: Notice | None) -> list[RunOutcome]:
    """Tell the running workers to stop, wait ``WORKER_GRACE_S``, kill those left; their outcomes."""
    for w in running:
        if w.process.is_alive():
            os.kill(w.process.pid, signal.SIGTERM)
    deadline = time.monotonic() + WORKER_GRACE_S
    left = list(running)
    while left and time.monotonic() < deadline:
        for w in _wait(left, on_notice, timeout=max(0.0, deadline - time.monotonic())):
            left.remove(w)
    for w in left:
        w.process.kill()  # its kernel gets SIGKILL from Linux (PR_SET_PDEATHSIG)
        w.process.join()
    outcomes = []
    for w in running:
        if w.outcome is None:  # killed, or ended before it could tell
            remove_leftovers(run_leftovers(paths.theme_outputs_dir(w.job.theme_id)) + kernel_leftovers())
        outcomes.append(w.outcome or RunOutcome(w.job.theme_id, "interrupted", error=STOPPED))
    return outcomes


# --- Dask --------------------------------------------------------------------------


def _run_on_dask(job: Job, force: bool, root: str, lock_timeout: float, stop_event: str) -> RunOutcome:
    """A theme run as a Dask task: stops before its next stage once the batch is interrupted."""
    from distributed import Event

    stop = Event(stop_event)

    def on_stage(theme_id: str, stage: int, status: str) -> None:
        if status == "start" and stop.is_set():
            raise Interrupted(signal.SIGINT)

    try:
        return _run_safely(job.theme, job.theme_id, force, root, validated=job.validated,
                           lock_timeout=lock_timeout, on_stage=on_stage)
    except Interrupted:
        return RunOutcome(job.theme_id, "interrupted", error=STOPPED)


def _run_dask(jobs: list[Job], force: bool, root: str, address: str, lock_timeout: float,
              on_done: Callback | None) -> list[RunOutcome]:
    from distributed import Client, Event, as_completed as dask_completed

    outcomes = []
    stop_event = f"osservatorio-stop-{uuid.uuid4().hex}"
    with Client(address, timeout="30s") as client:
        # Dask runs higher priorities first: the jobs come longest first
        futures = {client.submit(_run_on_dask, job, force, root, lock_timeout, stop_event, priority=len(jobs) - i,
                                 key=f"osservatorio-{job.theme_id}-{os.getpid()}", pure=False): job
                   for i, job in enumerate(jobs)}
        try:
            for fut in dask_completed(futures):
                try:
                    outcome = fut.result()
                except Exception as exc:
                    outcome = RunOutcome(futures[fut].theme_id, "failed", error=f"dask task failed: {exc}")
                outcomes.append(outcome)
                if on_done:
                    on_done(outcome)
        except (Interrupted, KeyboardInterrupt) as exc:
            Event(stop_event, client=client).set()
            client.cancel(list(futures))
            done = {o.theme_id for o in outcomes}
            outcomes += [RunOutcome(j.theme_id, "interrupted", error="cancelled on the Dask cluster; a running theme "
                                    "stops before its next stage, unpublished") for j in jobs if j.theme_id not in done]
            raise Interrupted(getattr(exc, "signum", signal.SIGINT), outcomes) from None
    return outcomes


__all__ = ["Job", "expected_seconds", "run_batch", "validate_all"]
