"""Run several themes at once: local processes, or an existing Dask cluster.

Every theme is validated first (``prepare_run``): if any theme file or data file is bad,
nothing runs and the batch exits with code 2. Then themes run in parallel; a failing
theme does not stop the others; the batch returns one outcome per theme.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Callable

from osservatorio import paths
from osservatorio.exceptions import InputError
from osservatorio.running.runner import LATEST, PreparedRun, RunOutcome, is_up_to_date, prepare_run, run_theme

Callback = Callable[[RunOutcome], None]


def validate_all(themes: list[str], header: str = "batch not started, bad input") -> list[PreparedRun]:
    """Validate every theme and its sources; raise one InputError listing all problems
    under ``header``."""
    problems, prepared = [], []
    for theme in themes:
        try:
            prepared.append(prepare_run(theme))
        except InputError as exc:
            if str(exc) not in problems:  # a bad source file is every theme's problem: said once
                problems.append(str(exc))
    if problems:
        raise InputError(f"{header}:\n" + "\n".join(problems))
    return prepared


def _run_safely(theme: str, force: bool, root: str) -> RunOutcome:
    try:
        return run_theme(theme, force=force, root=root)
    except Exception as exc:  # an error outside the notebooks must not stop the batch
        return RunOutcome(str(theme), "failed", error=f"{type(exc).__name__}: {exc}")


def run_batch(themes: list[str], workers: int = 2, force: bool = False, scheduler: str | None = None,
              on_done: Callback | None = None) -> list[RunOutcome]:
    """Run ``themes`` in parallel; with ``scheduler`` (a Dask address) on that cluster.

    Themes whose last successful run has the same fingerprint are reported as skipped by
    this process, without starting a worker."""
    outcomes = []
    todo = []
    for theme, prepared in zip(themes, validate_all(themes), strict=True):
        if not force and is_up_to_date(prepared):
            outcomes.append(RunOutcome(prepared.theme.id, "skipped",
                                       paths.theme_outputs_dir(prepared.theme.id) / LATEST))
            if on_done:
                on_done(outcomes[-1])
        else:
            todo.append(theme)
    root = str(paths.project_root())
    if not todo:
        return outcomes
    if scheduler:
        return outcomes + _run_dask(todo, force, root, scheduler, on_done)
    if workers <= 1:
        for theme in todo:
            outcomes.append(_run_safely(theme, force, root))
            if on_done:
                on_done(outcomes[-1])
        return outcomes
    themes = todo
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_run_safely, theme, force, root): theme for theme in themes}
        for fut in as_completed(futures):
            try:
                outcome = fut.result()
            except Exception as exc:  # the worker process itself died
                outcome = RunOutcome(futures[fut], "failed", error=f"worker died: {exc}")
            outcomes.append(outcome)
            if on_done:
                on_done(outcome)
    return outcomes


def _run_dask(themes: list[str], force: bool, root: str, address: str, on_done: Callback | None) -> list[RunOutcome]:
    from distributed import Client, as_completed as dask_completed

    outcomes = []
    with Client(address, timeout="30s") as client:
        futures = [client.submit(_run_safely, theme, force, root, key=f"osservatorio-{theme}-{os.getpid()}",
                                 pure=False) for theme in themes]
        for fut in dask_completed(futures):
            try:
                outcome = fut.result()
            except Exception as exc:
                outcome = RunOutcome("?", "failed", error=f"dask task failed: {exc}")
            outcomes.append(outcome)
            if on_done:
                on_done(outcome)
    return outcomes
