"""Stage 10 of one theme in one process: ``indicators`` and ``indicator_map`` with cold
caches (shared indicators and map geometry absent) and warm ones, and indicatori.xlsx
written with pandas + openpyxl (as before) and with ``publishing.workbook.write_xlsx``.

    OSSERVATORIO_ROOT=<project with demo data> python benchmarks/bench_stage10.py [theme]
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")


def timed(fn, *args):
    t = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        out = fn(*args)
    return out, time.perf_counter() - t


def main(theme_id: str = "coprogettazione-anziani") -> None:
    import pandas as pd

    from osservatorio.indicators import shared, steps
    from osservatorio.publishing import maps
    from osservatorio.publishing.workbook import write_xlsx
    from osservatorio.running.stage import open_stage

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        stage = open_stage(theme_id, tmp / "run", {}, stage=10)
        _, t_src = timed(lambda: stage.sources)
        print(f"{theme_id}: sources loaded in {t_src:.2f} s (not counted below)")
        real_shared, real_geo = shared.cache_root, maps.geometry_cache_root
        shared.cache_root = lambda: tmp / "cache" / "indicators"  # cold: empty caches
        maps.geometry_cache_root = lambda: tmp / "cache" / "map_geometry"
        maps.map_geometry.cache_clear()
        ind, t_ind_cold = timed(steps.indicators, stage)
        _, t_map_cold = timed(steps.indicator_map, stage, ind)
        maps.map_geometry.cache_clear()  # warm: entries on disk, nothing in memory
        ind, t_ind_warm = timed(steps.indicators, stage)
        _, t_map_warm = timed(steps.indicator_map, stage, ind)
        shared.cache_root, maps.geometry_cache_root = real_shared, real_geo
        sheets = {"comuni": ind["comune"], **{steps.SHEETS[lv]: ind[lv] for lv in steps.SHEETS}}
        t = time.perf_counter()
        with pd.ExcelWriter(tmp / "openpyxl.xlsx", engine="openpyxl") as xl:
            for name, df in sheets.items():
                df.to_excel(xl, sheet_name=name, index=False)
        t_openpyxl = time.perf_counter() - t
        _, t_new = timed(write_xlsx, tmp / "new.xlsx", sheets)
    cells = sum(df.size for df in sheets.values())
    print(f"{'step':<16}{'cold':>8}{'warm':>8}")
    print(f"{'indicators':<16}{t_ind_cold:8.2f}{t_ind_warm:8.2f}")
    print(f"{'indicator_map':<16}{t_map_cold:8.2f}{t_map_warm:8.2f}")
    print(f"indicatori.xlsx ({cells:,} cells): openpyxl {t_openpyxl:.2f} s, write_xlsx {t_new:.2f} s")


if __name__ == "__main__":
    main(*sys.argv[1:])
