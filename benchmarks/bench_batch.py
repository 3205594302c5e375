"""How long a theme run and a batch take, next to the compute they do.

Prints, in one run on the demo data (in a temporary copy of the project, source cache
warm): a theme's full run through papermill beside the same notebook cells executed in one
Python process, and their ratio; the six-theme batch with 1 and with 2 workers; a rerun
after touching only stage 30's notebook; a batch with nothing changed; the peak memory of
a batch worker (the worker process with its kernel). Targets from the issue are printed
beside each figure. Wall times drift on a shared machine: compare the ratios.

    .venv/bin/python benchmarks/bench_batch.py [--theme coprogettazione-anziani]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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
import contextlib, io, os, sys, nbformat
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
    """Peak resident memory of each child process of a command together with its own
    children (a batch worker with its kernel), sampled every 0.2 s."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self):
        import psutil

        while not self._stop.is_set():
            try:
                for child in psutil.Process(self.pid).children():
                    tree = [child, *child.children(recursive=True)]
                    rss = sum(p.memory_info().rss for p in tree if p.is_running())
                    self.peak = max(self.peak, rss)
            except psutil.Error:
                pass
            time.sleep(0.2)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / 2**20


def timed(cmd: list[str], env: dict, memory: bool = False) -> tuple[float, float, str]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        root = make_project(Path(tmp) / "project")
        env = {**os.environ, "OSSERVATORIO_ROOT": str(root)}
        subprocess.run([*CLI, "validate"], env=env, check=True, capture_output=True)  # demo data + source cache
        print(f"osservatorio batch benchmark (project {root}, {os.cpu_count()} cores)")

        run, _, _ = timed([*CLI, "run", args.theme, "--force"], env)
        inproc, _, _ = timed([PY, "-c", IN_PROCESS, args.theme, str(Path(tmp) / "in-process")], env)
        row(f"one theme ({args.theme}), all four stages, papermill", f"{run:.1f} s", "target <= 20 s")
        row("the same cells in one Python process", f"{inproc:.1f} s")
        row("ratio run / in-process", f"{run / inproc:.2f}x", "target <= 1.3x")

        one, mem1, _ = timed([*CLI, "batch", "--force", "--workers", "1"], env, memory=True)
        two, mem2, _ = timed([*CLI, "batch", "--force", "--workers", "2"], env, memory=True)
        row("six demo themes, 1 worker", f"{one:.1f} s")
        row("six demo themes, 2 workers", f"{two:.1f} s", "target <= 60 s")
        row("peak memory of a worker with its kernel (1 / 2 workers)", f"{mem1:.0f} / {mem2:.0f} MB")

        nb = root / "notebooks" / "30_evaluation.ipynb"
        import nbformat

        book = nbformat.read(nb, as_version=4)
        book.cells.append(nbformat.v4.new_markdown_cell("A note added by the benchmark."))
        nbformat.write(book, nb)
        rerun, _, _ = timed([*CLI, "run", args.theme], env)
        manifest = json.loads((root / "outputs" / args.theme / "latest" / "manifest.json").read_text())
        stages = {s["stage"]: s for s in manifest["stages"]}
        row("rerun after editing only stage 30's notebook", f"{rerun:.1f} s", "target <= 8 s, only 30 and 40")
        row("  stages run (seconds in the kernel)", ", ".join(f"{k} {s['duration_s']:.1f}" for k, s in stages.items()
                                                       if s["status"] != "reused"))
        row("  stages copied from the previous run", ", ".join(str(k) for k, s in stages.items()
                                                        if s["status"] == "reused"))
        subprocess.run([*CLI, "batch"], env=env, check=True, capture_output=True)  # the other themes catch up
        same, _, _ = timed([*CLI, "batch"], env)
        row("batch with nothing changed", f"{same:.1f} s", "target <= 3 s")


if __name__ == "__main__":
    main()
