"""What a stage notebook needs: its theme, run folder, sources and the analysis panel.

Notebooks call ``open_stage(**parameters)`` once; everything they hand to later stages
goes through files in ``run_dir/data`` (parquet/JSON), never through hidden state.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from osservatorio import paths
from osservatorio.data.sources import Sources, load_sources
from osservatorio.indicators.panel import build_panel
from osservatorio.themes import Theme


@dataclass
class StageContext:
    theme: Theme
    run_dir: Path

    @property
    def lang(self) -> str:
        return self.theme.language

    @property
    def data_dir(self) -> Path:
        d = self.run_dir / "data"
        d.mkdir(parents=True, exist_ok=True)
        return d

    @property
    def figures_dir(self) -> Path:
        d = self.run_dir / "figures"
        d.mkdir(parents=True, exist_ok=True)
        return d

    @functools.cached_property
    def sources(self) -> Sources:
        return load_sources(paths.sources_dir(self.theme.data_source))

    def panel(self) -> pd.DataFrame:
        """The analysis panel, from the run folder if an earlier stage wrote it."""
        path = self.data_dir / "panel.parquet"
        if path.is_file():
            return pd.read_parquet(path)
        panel = build_panel(self.sources, self.theme)
        panel.to_parquet(path, index=False)
        return panel

    def write_json(self, name: str, obj: Any) -> Path:
        path = self.data_dir / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default), encoding="utf-8")
        tmp.replace(path)
        return path

    def read_json(self, name: str) -> Any:
        return json.loads((self.data_dir / name).read_text(encoding="utf-8"))

    def save_figure(self, fig, name: str) -> Path:
        path = self.figures_dir / f"{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        return path


def _json_default(obj):
    import numpy as np

    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return None if np.isnan(obj) else float(obj)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj)}")


def open_stage(run_dir: str = "", **theme_params: Any) -> StageContext:
    """Validate the parameters as a theme and open the run folder.

    ``run_dir`` empty (interactive use in JupyterLab) means
    ``outputs/<theme>/interactive``.
    """
    theme = Theme.model_validate(theme_params)
    folder = Path(run_dir) if run_dir else paths.theme_outputs_dir(theme.id) / "interactive"
    folder.mkdir(parents=True, exist_ok=True)
    return StageContext(theme=theme, run_dir=folder)
