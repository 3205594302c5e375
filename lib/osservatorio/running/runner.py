"""Run one theme: validate, execute the stage notebooks with papermill, render, publish.

``run_theme`` is the one orchestrating function; it calls small named steps in order:
``prepare_run`` (theme + sources validated before any notebook starts), ``execute_stages``,
``render_report``, ``write_manifest``, ``publish_run``. The run folder is written as
``outputs/<theme>/.tmp-<run-id>@<host>.<pid>`` and renamed to ``outputs/<theme>/<run-id>``
when complete; ``outputs/<theme>/latest`` points to the newest successful run.

A run holds its theme's lock from start to end (a second run of the theme waits). A run
that is interrupted, or cannot write its outputs (disk full), is not published: its folder
is removed and ``latest`` stays where it was.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from osservatorio import paths
from osservatorio.exceptions import InputError
from osservatorio.running.kernel import KERNEL_NAME, ensure_kernel
from osservatorio.running.leftovers import (LATEST_TMP_PREFIX, TMP_PREFIX, kernel_connection_file, kernel_ipc_prefix,
                                           owner_tag, sweep_theme)
from osservatorio.running.locks import DEFAULT_TIMEOUT_S, theme_lock
from osservatorio.running.provenance import (fingerprint, git_commit, input_hashes, package_versions,
                                              stage_fingerprints)
from osservatorio.running.stopping import deferred, kernel_launch_options
from osservatorio.running.writing import OutputError, atomic_write_text, is_disk_full, os_error_message

if TYPE_CHECKING:
    from osservatorio.themes import Theme

LATEST = "latest"
# Kernels log only errors: their start-up warnings would drown the batch progress.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]
# Seconds papermill waits for the kernel: it imports the stages' modules while booting,
# which takes long on a busy machine.
KERNEL_START_TIMEOUT = 300


@dataclass
class RunOutcome:
    theme_id: str
    status: str  # "success" | "failed" | "skipped" | "interrupted" | "not started"
    run_dir: Path | None = None
    error: str | None = None
    duration_s: float = 0.0
    stages: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"theme": self.theme_id, "status": self.status, "run_dir": str(self.run_dir) if self.run_dir else None,
                "error": self.error, "duration_s": round(self.duration_s, 2)}


@dataclass
class PreparedRun:
    theme: Theme
    theme_file: Path
    inputs: dict[str, str]
    fingerprint: str
    overrides: dict[str, Any] = field(default_factory=dict)
    stage_fingerprints: dict[int, str] = field(default_factory=dict)
    design_check: str = ""
    notes: list[str] = field(default_factory=list)  # about the sources: how a file was read, empty tables

    @property
    def theme_ref(self) -> str:
        """How the notebooks load the theme: its id when it is in params/themes, else its file."""
        in_themes = self.theme_file.parent.resolve() == paths.themes_dir().resolve()
        return self.theme.id if in_themes and self.theme_file.stem == self.theme.id else str(self.theme_file)


def ensure_demo_data() -> None:
    """Generate the synthetic demo sources if they are missing, or were written by an older
    generator (its ground_truth.json lists fewer files: before costi_pilota): seeded,
    deterministic. A demo file a user edited, converted or removed is left as it is."""
    from osservatorio.data.files import DEMO_FILES

    truth = paths.demo_dir() / "ground_truth.json"
    try:
        listed = set(json.loads(truth.read_text(encoding="utf-8")).get("files", []))
    except (OSError, ValueError, AttributeError):
        listed = None
    if listed is None or not set(DEMO_FILES) - {truth.name} <= listed:
        from osservatorio.data.demo import generate_demo

        generate_demo(paths.demo_dir())


def prepare_run(theme: str | Path, overrides: dict[str, Any] | None = None, validate: bool = True) -> PreparedRun:
    """Validate the theme file and (``validate``) its sources. Raises InputError before any
    notebook runs. Without ``validate`` only the theme file is read and the sources
    hashed: enough to decide whether the run is up to date; ``validate_sources`` then
    does the rest."""
    from osservatorio.themes import load_theme, resolve_theme_path

    t = load_theme(theme, overrides)
    if t.data_source == "demo":
        ensure_demo_data()
    folder = paths.sources_dir(t.data_source)
    if not folder.is_dir():
        raise InputError(f"{folder}: data folder not found for data_source={t.data_source!r}")
    inputs = input_hashes(t)
    stage_fps = stage_fingerprints(t, inputs)
    prepared = PreparedRun(theme=t, theme_file=resolve_theme_path(theme), inputs=inputs,
                           fingerprint=fingerprint(t, inputs, stage_fps), overrides=dict(overrides or {}),
                           stage_fingerprints=stage_fps, design_check=design_check_key(t, inputs))
    if validate:
        validate_sources(prepared)
    return prepared


def validate_sources(prepared: PreparedRun, sources=None) -> None:
    """The sources are valid (through the validated-table cache), hold the theme's data,
    and the design can work on them (skipped when the last successful run checked it on
    the same data, options and code). ``sources``: the theme's sources, already loaded."""
    from osservatorio.data.sources import load_sources

    t = prepared.theme
    if sources is None:
        sources = load_sources(paths.sources_dir(t.data_source))
    check_theme_data(t, sources)
    if not validated_before(prepared):
        check_design(t, sources)
    prepared.notes = list(sources.notes)


def design_check_key(theme: Theme, inputs: dict[str, str]) -> str:
    """What the design check depends on: the theme's parameters, the sources, the library
    (not the notebooks: editing a cell does not repeat the check)."""
    from osservatorio.running.provenance import library_hash

    parts = {"theme": theme.notebook_parameters(), "inputs": inputs, "lib": library_hash()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def check_design(theme: Theme, sources) -> None:
    """The theme's design must be able to work on its panel (else exit 2 before any notebook),
    with the reason and what would work instead."""
    from osservatorio.evaluate import designs
    from osservatorio.exceptions import DesignError
    from osservatorio.indicators.panel import build_panel

    if 30 not in theme.stages:
        return
    problems = designs.for_theme(theme).check(build_panel(sources, theme))
    if problems:
        raise DesignError(f"theme {theme.id}: design '{theme.design}' cannot work on its data:\n  "
                          + "\n  ".join(problems))


def check_theme_data(theme: Theme, sources) -> None:
    """The theme's outcome and pilots must be in the sources (else exit 2 before any notebook)."""
    problems = []
    esiti, pilot = sources["esiti"], sources["pilot"]
    if not (esiti["indicatore"] == theme.outcome).any():
        known = ", ".join(sorted(esiti["indicatore"].unique())[:12])
        problems.append(f"{sources.files['esiti']}: no row with indicatore '{theme.outcome}' (theme key 'outcome'); "
                        f"indicators present: {known}")
    if not (pilot["tema"] == theme.pilot_tema).any():
        known = ", ".join(sorted(pilot["tema"].unique())[:12])
        key = "the theme key 'pilot_theme'" if theme.pilot_theme else "the theme id"
        problems.append(f"{sources.files['pilot']}: no row with tema '{theme.pilot_tema}' ({key}); temi present: {known}")
    if problems:
        raise InputError(f"theme {theme.id}: its data are not in the sources:\n  " + "\n  ".join(problems))


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")[:-4] + f"-{os.getpid() % 100000:05d}"


def latest_manifest(theme_id: str) -> dict[str, Any] | None:
    """The manifest of the theme's latest run; None when there is none or it cannot be
    read (damaged by hand or by the disk): then nothing is reused or skipped on its word."""
    manifest = paths.theme_outputs_dir(theme_id) / LATEST / "manifest.json"
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def validated_before(prepared: PreparedRun) -> bool:
    """The last successful run of the theme validated these same sources, with the same
    theme parameters and library (its ``design_check`` key): validating them again would
    find what it found."""
    m = latest_manifest(prepared.theme.id)
    return bool(m and m.get("status") == "success" and m.get("design_check") == prepared.design_check)


def is_up_to_date(prepared: PreparedRun) -> bool:
    m = latest_manifest(prepared.theme.id)
    return bool(m and m.get("status") == "success" and m.get("fingerprint") == prepared.fingerprint)


def plan_stages(prepared: PreparedRun, previous: dict[str, Any] | None, force: bool = False,
                from_stage: int | None = None) -> dict[int, dict[str, Any] | None]:
    """For each stage of the theme, the previous run's record to reuse, or None to run it.

    A stage is reused when the last successful run executed (or itself reused) it with the
    same fingerprint, and every file it wrote is still there; ``force`` reruns all,
    ``from_stage`` the stages from that one on. Fingerprints chain (a stage's includes
    those of the stages it reads), so a rerun stage reruns the stages that read it."""
    done: dict[int, dict[str, Any]] = {}
    if previous and previous.get("status") == "success" and not force:
        folder = paths.theme_outputs_dir(prepared.theme.id) / previous["run_id"]
        for rec in previous.get("stages", []):
            files = rec.get("files")
            if (rec.get("status") in ("success", "reused") and files is not None
                    and rec.get("fingerprint") == prepared.stage_fingerprints.get(rec["stage"])
                    and all((folder / f).is_file() for f in files)):
                done[rec["stage"]] = {**rec, "folder": folder}
    return {stage: None if from_stage is not None and stage >= from_stage else done.get(stage)
            for stage in prepared.theme.stages}


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


def reuse_stage(record: dict[str, Any], tmp_dir: Path) -> None:
    """Copy the files a stage wrote in an earlier run into the new run folder, which stays
    complete and self-contained (copies, not links: a later stage may rewrite a file)."""
    for name in record["files"]:
        src, dst = record["folder"] / name, tmp_dir / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)


# What each stage's notebook imports first: a kernel started for a run imports them while
# it boots (IPython's exec_lines), in parallel with the parent's checks of the sources.
STAGE_MODULES: dict[int, str] = {10: "osservatorio.indicators.steps", 20: "osservatorio.selection.steps",
                                 30: "osservatorio.evaluate.designs", 40: "osservatorio.synthesis.steps"}


def warm_imports(stages: list[int], gate: bool = False) -> str:
    """One line of code importing the modules of ``stages`` without binding a name the
    notebooks could see (``%reset`` between stages keeps modules, not names). With
    ``gate`` (a kernel started early), it then waits for the run's order (running.gate)."""
    modules = ["osservatorio.running.stage", "matplotlib.pyplot"] + [STAGE_MODULES[s] for s in stages]
    wait = "_w.import_module('osservatorio.running.gate').wait_for_run(); " if gate else ""
    return (f"import importlib as _w, gc as _g; [_w.import_module(_m) for _m in {modules!r}]; {wait}_g.freeze(); "
            "del _w, _g")


def _start_kernel(cwd: Path, exec_lines: str | None, holder: dict[str, Any], **launch: Any):
    """Create the kernel manager (into ``holder``, so it is shut down even if starting is
    interrupted) and start the kernel in ``cwd``."""
    from jupyter_client.manager import KernelManager

    ensure_kernel()
    # the connection file (it holds the kernel's key) names this process, so a leftover
    # of a killed run is found and removed (leftovers.kernel_leftovers)
    connection_file = kernel_connection_file()
    sockets = kernel_ipc_prefix(connection_file)
    transport = {"transport": "ipc", "ip": str(sockets)} if sockets else {}
    km = KernelManager(kernel_name=KERNEL_NAME, connection_file=str(connection_file),
                       client_class="osservatorio.running.client.ReadyKernelClient", **transport)
    extra = [f"--IPKernelApp.exec_lines={exec_lines}"] if exec_lines else []
    holder["km"] = km
    km.start_kernel(extra_arguments=KERNEL_ARGUMENTS + extra, cwd=str(cwd), **kernel_launch_options(), **launch)
    return km


# The kernel ``early_kernel`` started, and the write end of its gate, until a theme run
# takes them (theme_kernel) or the command ends.
_EARLY: dict[str, Any] = {}


@contextmanager
def early_kernel():
    """Start a theme run's kernel now, before the theme is read and the run planned; the
    first ``theme_kernel`` inside takes it. ``osservatorio run`` wraps its whole work in
    this: the kernel boots (2-3 s) while the command reads the theme, hashes the sources,
    takes the lock and plans, instead of after. It waits at its gate (running.gate) for the
    run folder and the stages to import; a run found up to date, a bad theme or an
    interrupt closes the gate and shuts the kernel down. If the kernel cannot start here,
    the run starts its own (and reports what is wrong)."""
    from osservatorio.running.gate import GATE_ENV

    read, write = os.pipe()
    holder: dict[str, Any] = {}
    try:
        os.environ["OSSERVATORIO_ROOT"] = str(paths.project_root())  # as the run sets it for its kernel
        _start_kernel(paths.project_root(), warm_imports([], gate=True), holder,
                      env={**os.environ, GATE_ENV: str(read)}, pass_fds=(read,))
        _EARLY.update(km=holder["km"], gate=write)
    except BaseException as exc:  # an interrupt while starting, or a failure the run's own start reports
        os.close(write)
        if "km" in holder:
            _shutdown(holder["km"])
        if not isinstance(exc, Exception):
            raise
    finally:
        os.close(read)
    try:
        yield
    finally:
        gate, km = _EARLY.pop("gate", None), _EARLY.pop("km", None)
        if gate is not None:
            os.close(gate)  # nothing written: the kernel ends itself
        if km is not None:
            _shutdown(km)


def _take_early_kernel(cwd: Path, stages: list[int]):
    """The kernel ``early_kernel`` started, sent to ``cwd`` with the modules of
    ``stages`` to import; None if there is none."""
    km, gate = _EARLY.pop("km", None), _EARLY.pop("gate", None)
    if km is None:
        return None
    try:
        os.write(gate, json.dumps({"cwd": str(cwd), "modules": [STAGE_MODULES[s] for s in stages]}).encode())
    except OSError:  # the kernel is dead: papermill finds it so and the stage fails with that
        pass
    finally:
        os.close(gate)
    return km


@contextmanager
def theme_kernel(cwd: Path, warm: list[int] | None = None):
    """One kernel for the stages of a theme run (always shut down): the one
    ``early_kernel`` started, else a new one. With ``warm`` (the stages to run) it starts
    at once and imports their modules while booting; else on first use.

    Starting a kernel and importing the scientific stack cost seconds per stage; the
    stages share the kernel, but not their variables: ``reset_namespace`` empties it
    before each stage, so stages still hand data over through files only."""
    holder: dict[str, Any] = {}

    def get():
        if "km" not in holder:
            early = _take_early_kernel(cwd, warm or [])
            if early is not None:
                holder["km"] = early
            else:
                _start_kernel(cwd, warm_imports(warm) if warm else None, holder)
        return holder["km"]

    try:
        if warm:
            get()  # boots in the background; papermill waits until it is ready
        yield get
    finally:
        km = holder.get("km")
        if km is not None:
            _shutdown(km)


def _shutdown(km) -> None:
    """Kill the kernel and remove its connection file (it holds the kernel's key), also
    when the kernel never started (jupyter_client's cleanup fails then)."""
    _cancel_stale_tasks()
    try:
        if km.has_kernel:
            _kill_and_reap(km)
            km.shutdown_kernel(now=True)
    finally:
        try:
            km.cleanup_resources()
        except Exception:  # noqa: BLE001 - a kernel that never started has no ports to release
            km.cleanup_connection_file()


def _kill_and_reap(km) -> None:
    """Kill the kernel's process group and wait for the kernel to die. jupyter_client's
    shutdown then finds it dead at once; alone it polls every 0.1 s after the kill (0.1 s
    per run). The kernel runs nothing worth ending gently: its stages' files are written."""
    import signal

    process = getattr(km.provisioner, "process", None)
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(km.provisioner.pgid, signal.SIGKILL)  # as jupyter_client kills: the kernel's process group
    except (OSError, TypeError):  # no group recorded
        process.kill()
    try:
        process.wait(timeout=5)
    except Exception:  # noqa: BLE001 - jupyter_client's shutdown waits and warns on its own
        pass


def _cancel_stale_tasks() -> None:
    """Cancel the tasks a notebook client left in this thread's event loop when an
    interrupt cut a stage short. jupyter_client's shutdown runs that loop again, and would
    resume them: one blocks the loop in a ZeroMQ poll waiting for the cell's reply."""
    import asyncio

    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:  # no loop in this thread: nothing left behind
        return
    if loop.is_running() or loop.is_closed():
        return
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


# Figures closed first, so the full garbage collection %reset makes (IPython's displayhook
# flush) frees them; a second collection would cost another 0.2 s for nothing. What
# survives it (modules a stage imported, their caches) is frozen: gc.freeze() moves it out
# of the collector's reach, as the warm imports' objects were, so later collections (this
# one, and the automatic ones while cells run) traverse only the objects of the stage.
RESET_CODE = ("import matplotlib.pyplot as _plt; _plt.close('all'); del _plt\n"
              "get_ipython().run_line_magic('reset', '-f')\n"
              "import gc as _g; _g.freeze(); del _g")


def reset_namespace(km) -> None:
    """Empty the kernel's user namespace (variables of the previous stage), close figures.

    Only the shell channel is used (request and reply on one socket): the kernel has just
    replied to the previous stage, so no ``wait_for_ready``, which exists for IOPub's
    late subscription and waits for it to stay quiet for 0.2 s and more."""
    kc = km.client()
    kc.start_channels(iopub=False, stdin=False, hb=False, control=False)
    try:
        msg_id = kc.execute(RESET_CODE, silent=True, store_history=False)
        deadline = time.monotonic() + 60
        while True:
            reply = kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        if reply["content"].get("status") != "ok":
            raise RuntimeError(f"could not reset the kernel between stages: {reply['content'].get('evalue')}")
    finally:
        kc.stop_channels()


def execute_stages(prepared: PreparedRun, tmp_dir: Path, plan: dict[int, dict[str, Any] | None],
                   on_stage: Callable[[str, int, str], None] | None = None,
                   on_notebook: Callable[[int, Path], None] | None = None) -> list[dict[str, Any]]:
    """Run or reuse each stage in order; stop at the first failure (kept, with its error).

    Each record names the files the stage wrote (relative to the run folder), so a later
    run can reuse them. ``on_notebook(stage, path)`` is called with each stage's executed
    (or copied) notebook as soon as it is there."""
    with theme_kernel(tmp_dir) as kernel:
        return _execute_stages(prepared, tmp_dir, plan, kernel, on_stage, on_notebook)


def _execute_stages(prepared: PreparedRun, tmp_dir: Path, plan: dict[int, dict[str, Any] | None], kernel,
                    on_stage: Callable[[str, int, str], None] | None,
                    on_notebook: Callable[[int, Path], None] | None = None) -> list[dict[str, Any]]:
    import papermill as pm

    from osservatorio.running.engine import ENGINE_NAME
    from osservatorio.themes import STAGE_NOTEBOOKS

    params = {"theme_id": prepared.theme_ref, "run_dir": str(tmp_dir), "overrides": prepared.overrides}
    nb_out = tmp_dir / "notebooks"
    nb_out.mkdir(parents=True, exist_ok=True)
    records = []
    fresh = True
    for stage in prepared.theme.stages:
        name = STAGE_NOTEBOOKS[stage]
        record: dict[str, Any] = {"stage": stage, "notebook": name, "status": "success", "error": None,
                                  "fingerprint": prepared.stage_fingerprints[stage]}
        start = time.perf_counter()
        previous = plan.get(stage)
        if previous is not None:
            reuse_stage(previous, tmp_dir)
            record.update(status="reused", files=previous["files"],
                          reused_from=previous.get("reused_from") or previous["folder"].name)
        else:
            if on_stage:
                on_stage(prepared.theme.id, stage, "start")
            before = _listing(tmp_dir)
            try:
                km = kernel()
                if not fresh:
                    reset_namespace(km)
                fresh = False
                pm.execute_notebook(str(paths.notebooks_dir() / name), str(nb_out / name), parameters=params,
                                    engine_name=ENGINE_NAME, kernel_name=KERNEL_NAME, progress_bar=False,
                                    cwd=str(tmp_dir), log_output=False,
                                    km=km, start_timeout=KERNEL_START_TIMEOUT)
            except Exception as exc:  # papermill raises PapermillExecutionError, kernels can die
                record["status"] = "failed"
                record["error"] = _short_error(exc)
            after = _listing(tmp_dir)
            record["files"] = sorted(f for f, sig in after.items() if before.get(f) != sig)
        record["duration_s"] = round(time.perf_counter() - start, 2)
        records.append(record)
        if on_notebook and (nb_out / name).is_file():
            on_notebook(stage, nb_out / name)
        if on_stage:
            on_stage(prepared.theme.id, stage, record["status"])
        if record["status"] == "failed":
            break
    return records


def _short_error(exc: Exception) -> str:
    name = getattr(exc, "ename", type(exc).__name__)
    value = getattr(exc, "evalue", str(exc))
    return f"{name}: {value}"[:2000]


def detach_executed_notebooks(tmp_dir: Path, final_dir: Path, stages: list[dict[str, Any]]) -> None:
    """Executed copies name the temporary folder as ``run_dir``: point them at the
    interactive folder instead, so rerunning one never recreates ``.tmp-*`` nor writes
    into a published run (the run folder is recorded in a comment). Reused stages' copies
    were detached by the run that executed them."""
    import nbformat

    for rec in stages:
        path = tmp_dir / "notebooks" / rec["notebook"]
        if rec["status"] == "reused" or not path.is_file():
            continue
        nb = nbformat.read(path, as_version=4)
        changed = False
        for cell in nb.cells:
            if "injected-parameters" in cell.metadata.get("tags", []):
                lines = [f'run_dir = ""  # executed in {final_dir}; rerunning writes to the interactive folder'
                         if line.startswith("run_dir = ") else line for line in cell.source.splitlines()]
                cell.source, changed = "\n".join(lines), True
        if changed:
            nbformat.write(nb, path)


def write_manifest(tmp_dir: Path, manifest: dict[str, Any]) -> None:
    atomic_write_text(tmp_dir / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False))


def publish_run(theme_id: str, tmp_dir: Path, run_id: str, success: bool) -> Path:
    """Rename the finished folder into place; point ``latest`` at it when successful.

    The new link is made first (the step that can fail on a full disk), then two renames;
    if one fails the folder goes back to its temporary name, for the caller to discard."""
    final = tmp_dir.parent / run_id
    tmp_link = None
    if success:
        tmp_link = final.parent / f"{LATEST_TMP_PREFIX}{run_id}{owner_tag()}"
        tmp_link.symlink_to(run_id, target_is_directory=True)
    try:
        tmp_dir.rename(final)
        if tmp_link is not None:
            os.replace(tmp_link, final.parent / LATEST)
    except BaseException:
        if tmp_link is not None:
            tmp_link.unlink(missing_ok=True)
        if final.is_dir() and not tmp_dir.exists():
            final.rename(tmp_dir)
        raise
    return final


def discard_run(tmp_dir: Path) -> None:
    """Remove an unpublished run folder (interrupted, or its outputs could not be written)."""
    shutil.rmtree(tmp_dir, ignore_errors=True)


def run_theme(theme: str | Path, force: bool = False, overrides: dict[str, Any] | None = None,
              on_stage: Callable[[str, int, str], None] | None = None,
              root: str | None = None, from_stage: int | None = None,
              lock_timeout: float = DEFAULT_TIMEOUT_S, on_wait: Callable[[str], None] | None = None,
              validated: str | None = None) -> RunOutcome:
    """Run one theme end to end, rerunning only the stages whose fingerprint changed
    (``force``: all; ``from_stage``: that stage and the later ones). Raises InputError for
    bad input, OutputError when the outputs cannot be written, ``Interrupted`` when told to
    stop (neither publishes anything); returns the outcome.

    The theme's lock is held throughout (``on_wait`` is told when another run holds it,
    ``lock_timeout`` bounds the wait); stale leftovers of the theme's dead runs are removed
    first. ``validated`` is the ``design_check`` key of a validation the caller already
    made (a batch validates every theme before starting any): when it matches, or the
    theme's last successful run validated the same inputs (``validated_before``), the
    sources are not validated again."""
    if root:
        os.environ["OSSERVATORIO_ROOT"] = root
    started = time.perf_counter()
    prepared = prepare_run(theme, overrides, validate=False)
    tid = prepared.theme.id
    with theme_lock(tid, lock_timeout, on_wait):
        sweep_theme(tid)
        if not force and from_stage is None and is_up_to_date(prepared):
            # same theme, sources, notebooks and code as the last successful run, which validated them
            return RunOutcome(tid, "skipped", paths.theme_outputs_dir(tid) / LATEST,
                              duration_s=time.perf_counter() - started)
        plan = plan_stages(prepared, latest_manifest(tid), force=force, from_stage=from_stage)
        run_id = new_run_id()
        tmp_dir = paths.theme_outputs_dir(tid) / f"{TMP_PREFIX}{run_id}{owner_tag()}"
        try:
            tmp_dir.mkdir()
            os.environ["OSSERVATORIO_ROOT"] = str(paths.project_root())
            manifest = execute_run(prepared, tmp_dir, run_id, plan, on_stage,
                                   validate=validated != prepared.design_check and not validated_before(prepared))
            raise_if_disk_full(manifest)
            manifest["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            manifest["duration_s"] = round(time.perf_counter() - started, 2)
            with deferred():  # a stop signal waits until the run is published whole
                write_manifest(tmp_dir, manifest)
                final = publish_run(tid, tmp_dir, run_id, success=manifest["status"] == "success")
        except OSError as exc:
            discard_run(tmp_dir)
            inside = str(exc.filename or "").startswith(str(tmp_dir))  # a folder now removed
            raise OutputError(f"{os_error_message(exc, tmp_dir.parent if inside else None)}; the run of {tid} "
                              f"was not published ({LATEST} unchanged)") from None
        except BaseException:
            discard_run(tmp_dir)
            raise
    return RunOutcome(tid, manifest["status"], final, manifest.get("error"), manifest["duration_s"],
                      manifest.get("stages", []))


def execute_run(prepared: PreparedRun, tmp_dir: Path, run_id: str, plan: dict[int, dict[str, Any] | None],
                on_stage: Callable[[str, int, str], None] | None = None, validate: bool = True) -> dict[str, Any]:
    """Validate (``validate``), execute the stages, render the report into ``tmp_dir``;
    the manifest of the run, successful or failed.

    Work is overlapped where it does not change what runs: the kernel boots and imports
    the stages' modules while this process validates the sources (a bad source still stops
    the run before any notebook executes), and each executed notebook is rendered for the
    report in a thread while the kernel runs the next stage. An error of the workbench
    outside the notebooks fails the run (kept as evidence, with its error); OS errors,
    bad input and interrupts are raised."""
    from concurrent.futures import ThreadPoolExecutor

    tid = prepared.theme.id
    # the kernel is started before the renderer thread: it is forked from a process whose
    # only thread is this one; and before the report's imports (pandas, nbconvert), which
    # this process makes while the kernel boots
    with theme_kernel(tmp_dir, warm=[s for s, rec in plan.items() if rec is None]) as kernel:
        from osservatorio.publishing import report

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="report") as renderer:
            try:
                renderer.submit(report.exporter)  # nbconvert's import and templates, while the kernel boots
                bodies: dict[int, Any] = {}

                def on_notebook(stage: int, path: Path) -> None:
                    bodies[stage] = renderer.submit(report.notebook_body, path)

                if validate:
                    validate_sources(prepared)
                manifest: dict[str, Any] = {
                    "run_id": run_id, "theme": tid, "theme_file": str(prepared.theme_file),
                    "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "parameters": prepared.theme.notebook_parameters(), "inputs": prepared.inputs,
                    "fingerprint": prepared.fingerprint, "design_check": prepared.design_check,
                    "overrides": prepared.overrides, "git": git_commit(),
                    "packages": package_versions(),
                    "synthetic_data": prepared.theme.data_source == "demo",
                }
                try:
                    stages = _execute_stages(prepared, tmp_dir, plan, kernel, on_stage, on_notebook)
                except (OSError, InputError):
                    raise
                except Exception as exc:  # the workbench's own error, outside the notebooks
                    return {**manifest, "status": "failed", "error": _short_error(exc),
                            "traceback": traceback.format_exc()[-4000:]}
            except BaseException:
                renderer.shutdown(wait=False, cancel_futures=True)
                raise
    try:
        detach_executed_notebooks(tmp_dir, tmp_dir.parent / run_id, stages)
        failed = [s for s in stages if s["status"] == "failed"]
        manifest.update(stages=stages, status="failed" if failed else "success",
                        error=failed[0]["error"] if failed else None)
        try:
            report.render_report(prepared.theme, tmp_dir, manifest,
                                 bodies={stage: fut.result() for stage, fut in bodies.items()})
        except OSError:
            raise
        except Exception as exc:
            manifest.update(status="failed", error=f"report: {_short_error(exc)}",
                            report_traceback=traceback.format_exc()[-4000:])
    except (OSError, InputError):
        raise
    except Exception as exc:
        manifest.update(status="failed", error=_short_error(exc), traceback=traceback.format_exc()[-4000:])
    return manifest


_ERROR_PATH = re.compile(r"\[Errno \d+\][^:]*: '([^']+)'")


def raise_if_disk_full(manifest: dict[str, Any]) -> None:
    """A stage or the report failed because the disk is full: raised as the OSError it
    was (in the kernel it is only text), so the run is not published."""
    if manifest["status"] == "failed" and is_disk_full(manifest.get("error")):
        path = _ERROR_PATH.search(manifest["error"])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path.group(1) if path else None)
