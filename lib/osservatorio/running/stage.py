"""What a stage notebook needs: its theme, run folder, sources and the analysis panel.

A notebook opens its stage in one line, ``stage = open_stage(theme_id, run_dir, overrides)``:
the theme file is loaded and validated from its id, the overrides on top. Stages hand data
to each other through files in ``<run folder>/data`` (parquet, JSON), never through hidden
state.

In a batch run the runner gives the run folder. Interactively (``run_dir`` empty, or the
theme's interactive folder) the run folder is
``outputs/<theme>/interactive/<key>/``, where the key hashes every theme parameter and
the content of the source files: changing the outcome, the cluster, a period or a data
file opens a new folder, so a panel or an estimate made with other parameters is never
reused. Each interactive folder has a ``manifest.json`` with the parameters, the
overrides, the source hashes and the stages opened.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from osservatorio import paths
from osservatorio.data.sources import Sources, load_sources, source_hashes
from osservatorio.themes import Theme, load_theme

KEY_LENGTH = 12  # hex digits of the interactive folder key


@dataclass
class StageContext:
    """An open stage: the validated theme, the run folder and, on demand, the sources and
    the analysis panel."""

    theme: Theme
    run_dir: Path
    overrides: dict[str, Any] = field(default_factory=dict)
    interactive: bool = False
    _tables: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False, compare=False)

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

    def table(self, name: str) -> pd.DataFrame:
        """One source table, validated: from ``sources`` when the stage loaded them all,
        else loaded alone (a stage that needs only the pilots does not load and check
        the other five tables)."""
        if "sources" in self.__dict__:
            return self.sources[name]
        if name not in self._tables:
            self._tables[name] = load_sources(paths.sources_dir(self.theme.data_source), tables=[name])[name]
        return self._tables[name]

    def panel(self) -> pd.DataFrame:
        """The analysis panel, from the run folder if an earlier stage wrote it (the folder
        is specific to the parameters), else built from the sources and saved."""
        path = self.data_dir / "panel.parquet"
        if path.is_file():
            return pd.read_parquet(path)
        from osservatorio.indicators.panel import build_panel

        panel = build_panel(self.sources, self.theme)
        tmp = path.with_suffix(".parquet.tmp")
        panel.to_parquet(tmp, index=False)
        tmp.replace(path)
        return panel

    def options_record(self) -> dict[str, Any]:
        """The parameters that produced this stage's results (recorded with them)."""
        return {"parameters": self.theme.notebook_parameters(), "overrides": self.overrides}

    def write_json(self, name: str, obj: Any) -> Path:
        path = self.data_dir / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default), encoding="utf-8")
        tmp.replace(path)
        return path

    def read_json(self, name: str) -> Any:
        return json.loads((self.data_dir / name).read_text(encoding="utf-8"))

    def require(self, name: str, stage: int) -> Path:
        """A file an earlier stage wrote in this run folder, or a clear error naming the
        notebook to run first (with these parameters)."""
        from osservatorio.exceptions import StageOrderError
        from osservatorio.themes import STAGE_NOTEBOOKS

        path = self.data_dir / name
        if not path.is_file():
            raise StageOrderError(f"{path} not found: run {STAGE_NOTEBOOKS[stage]} first with the same theme and "
                                  f"overrides ({self.theme.id}, {self.overrides or 'no overrides'})")
        return path

    def save_figure(self, fig, name: str) -> Path:
        """Write the figure as PNG to the run's figures folder. The PNG is kept on the
        figure, so ``show.figure`` displays these same bytes instead of drawing it again."""
        import io

        from osservatorio.publishing.show import FIGURE_DPI, PNG_ATTRIBUTE

        path = self.figures_dir / f"{name}.png"
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=FIGURE_DPI, bbox_inches="tight")
        path.write_bytes(buf.getvalue())
        setattr(fig, PNG_ATTRIBUTE, buf.getvalue())
        return path

    def __repr__(self) -> str:
        mode = "interactive" if self.interactive else "run"
        return (f"<stage of theme {self.theme.id!r} ({self.theme.design}, outcome {self.theme.outcome!r}); "
                f"{mode} folder {self.run_dir}>")


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


def interactive_key(theme: Theme, hashes: dict[str, str]) -> str:
    """Hash of every theme parameter and of the source files' content."""
    blob = json.dumps({"theme": theme.notebook_parameters(), "sources": hashes}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:KEY_LENGTH]


def _record_interactive(folder: Path, theme: Theme, overrides: dict, hashes: dict, stage: int | None) -> None:
    """Create or update the interactive folder's manifest.json."""
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {
        "mode": "interactive", "theme": theme.id, "parameters": theme.notebook_parameters(),
        "overrides": overrides, "inputs": hashes, "synthetic_data": theme.data_source == "demo", "stages": {}}
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    manifest.setdefault("stages", {})[str(stage or "?")] = {"opened_at": now}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


def open_stage(theme_id: str, run_dir: str | Path = "", overrides: dict[str, Any] | None = None,
               stage: int | None = None) -> StageContext:
    """Load and validate the theme ``theme_id`` (an id in params/themes or a theme file),
    apply ``overrides`` (theme keys, e.g. ``{"cluster": "regione"}``) and open the run folder.

    ``run_dir`` empty (or the theme's interactive folder) opens the interactive folder
    keyed on the parameters and the data (module docstring); a bad theme or override
    raises ThemeError naming the key and what is allowed.
    """
    overrides = dict(overrides or {})
    theme = load_theme(theme_id, overrides)
    base = paths.interactive_dir(theme.id)
    if not run_dir or Path(run_dir).resolve() == base.resolve():
        hashes = source_hashes(paths.sources_dir(theme.data_source))
        folder = base / interactive_key(theme, hashes)
        folder.mkdir(parents=True, exist_ok=True)
        _record_interactive(folder, theme, overrides, hashes, stage)
        return StageContext(theme=theme, run_dir=folder, overrides=overrides, interactive=True)
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return StageContext(theme=theme, run_dir=folder, overrides=overrides)
