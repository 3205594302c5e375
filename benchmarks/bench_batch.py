"""How long a theme run and a batch take, next to the compute they do.

Prints, in one run on the demo data (in a temporary copy of the project, caches warmed
by an untimed run of the theme): a theme's full run through papermill beside the same notebook cells executed in one
Python process, and their ratio; the six-theme batch with 1 and with 2 workers; a rerun
after touching only stage 30's notebook; a batch with nothing changed; the peak memory of
a batch worker (the worker process with its kernel). Then the scale run: every demo theme
times the 20 regions (a variant per region, written on the fly: the theme's pilots,
``pilot_theme``, with pilots proposed only in that region, ``selection.regions``) through
the process pool and through a local Dask cluster of 2 worker processes (``--scheduler``):
runs per minute and peak memory per worker. Targets from the issue are printed beside
each figure. Wall times drift on a shared machine: compare the ratios.

    .venv/bin/python benchmarks/bench_batch.py [--theme coprogettazione-anziani] [--regions 20] [--repeats 3]

The theme run, the same cells in one process and the rerun are each measured ``--repeats``
times (the run and the in-process cells alternating) and their medians printed.

``--regions 0`` skips the scale run (120 runs per executor: about 16-25 minutes each on 2
cores). Last, ``make demo`` is timed on a fresh clone of the repository's committed HEAD
(virtual environment, install, demo data, the six themes, the site), as a new user runs it;
``--no-fresh-clone`` skips it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
CLI = [PY, "-m", "osservatorio.cli"]

# One theme's stage notebooks executed cell by cell in this process (no kernels): the
# same steps as a run, without papermill.
IN_PROCESS = r'''
import contextlib, io, os, sys
import osservatorio.running  # as the runner does: nbformat imports without rfc3987_syntax's grammar
import nbformat
import matplotlib; matplotlib.use("Agg")
from osservatorio import paths
from osservatorio.themes import STAGE_NOTEBOOKS
theme, run_dir = sys.argv[1], sys.argv[2]
for name in STAGE_NOTEBOOKS.values():
    cells = [c for c in nbformat.read(paths.notebooks_dir() / name, as_version=4).cells if c.cell_type == "code"]
    ns = {"__name__": "__main__"}
    exec(cells[0].source, ns)
    ns.update(theme_id=theme, run_dir=run_dir, overrides={})
    with contextlib.redirect_stdout(io.StringIO()):
        for cell in cells[1:]:
            exec(cell.source, ns)
'''


def make_project(root: Path) -> Path:
    for folder in ("notebooks", "params"):
        shutil.copytree(REPO / folder, root / folder)
    (root / "data" / "raw").mkdir(parents=True)
    demo = REPO / "data" / "demo"
    if (demo / "ground_truth.json").is_file():
        shutil.copytree(demo, root / "data" / "demo")
    return root


class PeakMemory:
    """Peak resident memory of a batch worker together with its kernel, sampled every
    0.2 s. A worker is the parent of a running kernel (whatever started it: the batch
    itself with one worker, a process forked by the forkserver, a Dask worker); its
    memory is its own plus that of all its descendants. (Summing each child of the batch
    with its descendants counted the forkserver, hence every worker, as one.)"""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self):
        import psutil

        while not self._stop.is_set():
            try:
                procs = psutil.Process(self.pid).children(recursive=True)
                workers = {p.parent().pid: p.parent() for p in procs
                           if any("ipykernel_launcher" in part for part in _cmdline(p))}
                for worker in workers.values():
                    tree = [worker, *worker.children(recursive=True)]
                    self.peak = max(self.peak, sum(_rss(p) for p in tree))
            except psutil.Error:
                pass
            time.sleep(0.2)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / 2**20


def _cmdline(proc) -> list[str]:
    import psutil

    try:
        return proc.cmdline()
    except psutil.Error:
        return []


def _rss(proc) -> int:
    import psutil

    try:
        return proc.memory_info().rss
    except psutil.Error:
        return 0


def timed(cmd: list[str], env: dict, memory: bool = False, cwd: Path | None = None) -> tuple[float, float, str]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd)
    mem = PeakMemory(proc.pid) if memory else None
    out, _ = proc.communicate()
    wall = time.perf_counter() - start
    peak = mem.stop() if mem else float("nan")
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-3000:]}")
    return wall, peak, out


def row(label: str, value: str, target: str = "") -> None:
    print(f"  {label:<58} {value:>14}   {target}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--theme", default="coprogettazione-anziani")
    ap.add_argument("--regions", type=int, default=20, help="regions per theme in the scale run (0: skip it)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="times the theme run, its in-process twin and the rerun are measured (medians shown)")
    ap.add_argument("--fresh-clone", action=argparse.BooleanOptionalAction, default=True,
                    help="time `make demo` on a fresh clone of HEAD, install included")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        root = make_project(Path(tmp) / "project")
        env = {**os.environ, "OSSERVATORIO_ROOT": str(root)}
        subprocess.run([*CLI, "validate"], env=env, check=True, capture_output=True)  # demo data + source cache
        # one untimed run of the theme warms every cache it uses (shared indicators, map
        # geometry, workbooks), so the timed run and the in-process cells both find them warm
        subprocess.run([*CLI, "run", args.theme], env=env, check=True, capture_output=True)
        print(f"osservatorio batch benchmark (project {root}, {os.cpu_count()} cores)")

        # the two alternate, so a busy moment of the shared machine weighs on both
        runs, inprocs = [], []
        for _ in range(args.repeats):
            runs.append(timed([*CLI, "run", args.theme, "--force"], env)[0])
            inprocs.append(timed([PY, "-c", IN_PROCESS, args.theme, str(Path(tmp) / "in-process")], env)[0])
        run, inproc = statistics.median(runs), statistics.median(inprocs)
        row(f"one theme ({args.theme}), all four stages, papermill", f"{run:.1f} s", "target <= 20 s")
        row("the same cells in one Python process", f"{inproc:.1f} s")
        row("ratio run / in-process", f"{run / inproc:.2f}x", "target <= 1.3x")
        row(f"  each of the {args.repeats} pairs (run / in-process, s)",
            ", ".join(f"{r:.1f}/{i:.1f}" for r, i in zip(runs, inprocs)))

        one, mem1, _ = timed([*CLI, "batch", "--force", "--workers", "1"], env, memory=True)
        two, mem2, _ = timed([*CLI, "batch", "--force", "--workers", "2"], env, memory=True)
        row("six demo themes, 1 worker", f"{one:.1f} s")
        row("six demo themes, 2 workers", f"{two:.1f} s", "target <= 60 s")
        row("peak memory of a worker with its kernel (1 / 2 workers)", f"{mem1:.0f} / {mem2:.0f} MB")

        nb = root / "notebooks" / "30_evaluation.ipynb"
        import nbformat

        reruns = []
        for i in range(args.repeats):  # a new note each time: each rerun has stage 30 changed
            book = nbformat.read(nb, as_version=4)
            book.cells.append(nbformat.v4.new_markdown_cell(f"A note added by the benchmark ({i + 1})."))
            nbformat.write(book, nb)
            reruns.append(timed([*CLI, "run", args.theme], env)[0])
        rerun = statistics.median(reruns)
        manifest = json.loads((root / "outputs" / args.theme / "latest" / "manifest.json").read_text())
        stages = {s["stage"]: s for s in manifest["stages"]}
        row("rerun after editing only stage 30's notebook", f"{rerun:.1f} s", "target <= 8 s, only 30 and 40")
        row(f"  each of the {args.repeats} reruns (s)", ", ".join(f"{r:.1f}" for r in reruns))
        row("  stages run (seconds in the kernel)", ", ".join(f"{k} {s['duration_s']:.1f}" for k, s in stages.items()
                                                       if s["status"] != "reused"))
        row("  stages copied from the previous run", ", ".join(str(k) for k, s in stages.items()
                                                        if s["status"] == "reused"))
        subprocess.run([*CLI, "batch"], env=env, check=True, capture_output=True)  # the other themes catch up
        same, _, _ = timed([*CLI, "batch"], env)
        row("batch with nothing changed", f"{same:.1f} s", "target <= 3 s")
        if args.regions > 0:
            scale_run(root, env, args.regions)
        if args.fresh_clone:
            fresh_clone_demo(Path(tmp) / "clone")


def fresh_clone_demo(clone: Path) -> None:
    """Wall time of ``make demo`` in a fresh clone of the committed HEAD: what a new user
    waits for (virtual environment, packages from the package cache, the kernel, demo
    data, six themes, site)."""
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("OSSERVATORIO_ROOT", "VIRTUAL_ENV", "PYTHONPATH")}
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True,
                           text=True).stdout.strip()
    wall, _, _ = timed(["make", "demo"], env, cwd=clone)
    print("fresh clone" + (" (of HEAD: uncommitted changes are not in it)" if dirty else ""))
    row("`make demo` on a fresh clone, install included", f"{wall:.0f} s", "target <= 120 s")


REGIONS = ["Piemonte", "Valle d'Aosta/Vallée d'Aoste", "Lombardia", "Trentino-Alto Adige/Südtirol", "Veneto",
           "Friuli-Venezia Giulia", "Liguria", "Emilia-Romagna", "Toscana", "Umbria", "Marche", "Lazio", "Abruzzo",
           "Molise", "Campania", "Puglia", "Basilicata", "Calabria", "Sicilia", "Sardegna"]  # ISTAT order, codes 01-20

CLUSTER = r'''
import sys, time
from distributed import LocalCluster
cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, memory_limit=0)
print(cluster.scheduler_address, flush=True)
sys.stdin.read()  # until the benchmark closes the pipe
cluster.close()
'''


def region_variants(root: Path, n_regions: int) -> list[str]:
    """A theme file per demo theme and region: the theme's pilots, new pilots proposed
    only in that region."""
    import yaml

    ids = []
    themes = root / "params" / "themes"
    for path in sorted(themes.glob("*.yaml")):
        base = yaml.safe_load(path.read_text(encoding="utf-8"))
        for code, region in enumerate(REGIONS[:n_regions], start=1):
            theme = {**base, "id": f"{base['id']}-r{code:02d}", "pilot_theme": base["id"],
                     "selection": {**base.get("selection", {}), "regions": [region]},
                     "title": {k: f"{v} ({region})" for k, v in base["title"].items()}}
            (themes / f"{theme['id']}.yaml").write_text(yaml.safe_dump(theme, allow_unicode=True, sort_keys=False),
                                                         encoding="utf-8")
            ids.append(theme["id"])
    return ids


def scale_run(root: Path, env: dict, n_regions: int) -> None:
    ids = region_variants(root, n_regions)
    n = len(ids)
    pool, pool_mem, _ = timed([*CLI, "batch", *ids, "--force", "--workers", "2"], env, memory=True)
    cluster = subprocess.Popen([PY, "-c", CLUSTER], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        address = cluster.stdout.readline().strip()
        mem = PeakMemory(cluster.pid)
        dask, _, _ = timed([*CLI, "batch", *ids, "--force", "--scheduler", address], env)
        dask_mem = mem.stop()
    finally:
        cluster.stdin.close()
        cluster.wait(timeout=60)
    print(f"scale run: {n} region variants of the demo themes, 2 workers")
    row("process pool: runs per minute", f"{60 * n / pool:.1f}")
    row("Dask LocalCluster (--scheduler): runs per minute", f"{60 * n / dask:.1f}")
    row("ratio Dask / process pool (wall)", f"{dask / pool:.2f}x", "target <= 1.2x")
    row("peak memory of a worker with its kernel (pool / Dask)", f"{pool_mem:.0f} / {dask_mem:.0f} MB",
        "target <= 1536 MB")


if __name__ == "__main__":
    main()
