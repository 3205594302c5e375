"""Benchmark: loading the demo sources without the cache, on a cache miss and on a hit.

Every stage kernel is a fresh process, so each measurement runs ``load_sources`` in a
new Python process (imports excluded, timed around the call only) against an empty
temporary cache: uncached (``cache=False``: read, validate, match names), cold (a miss:
the same work plus writing the entries) and warm (a hit: hash the files, read parquet;
best of 3). Prints the times and the ratios; asserts nothing.

Run: ``.venv/bin/python benchmarks/bench_sources.py [DATA_FOLDER]`` (default: the demo
data of the project, ``osservatorio demo`` generates it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from osservatorio import paths

TIMED_LOAD = """
import sys, time
from pathlib import Path
from osservatorio.data.sources import load_sources
start = time.perf_counter()
load_sources(Path(sys.argv[1]), cache=sys.argv[2] == "cache")
print(time.perf_counter() - start)
"""


def timed_load(folder: Path, cache_root: Path, cache: bool) -> float:
    """Seconds of one ``load_sources`` call in a fresh process whose project root (and
    so cache) is ``cache_root``."""
    env = {**os.environ, "OSSERVATORIO_ROOT": str(cache_root)}
    out = subprocess.run([sys.executable, "-c", TIMED_LOAD, str(folder), "cache" if cache else "none"],
                         env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else paths.demo_dir()
    if not folder.is_dir():
        sys.exit(f"no sources in {folder}: run `osservatorio demo` first")
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / 1e6
    with tempfile.TemporaryDirectory(prefix="bench-sources-") as tmp:
        root = Path(tmp)
        uncached = timed_load(folder, root, cache=False)
        cold = timed_load(folder, root, cache=True)
        warm = min(timed_load(folder, root, cache=True) for _ in range(3))
        stored = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6
    print(f"sources: {folder} ({size:.0f} MB of files); cache entries {stored:.1f} MB")
    print(f"uncached load (cache=False)   {uncached:6.2f} s")
    print(f"cold load (miss, stores)      {cold:6.2f} s   {cold / uncached:5.2f} x uncached")
    print(f"warm load (hit, best of 3)    {warm:6.2f} s   cold / warm = {cold / warm:5.1f}, "
          f"uncached / warm = {uncached / warm:5.1f}")


if __name__ == "__main__":
    main()
