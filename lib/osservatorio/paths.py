"""Every path of the project, in one place. Notebooks and modules never spell a path.

The project root is found from the environment variable ``OSSERVATORIO_ROOT`` when set
(tests use it to work in a temporary copy), else from the location of this package
(``<root>/lib/osservatorio``), else from the current directory.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The project root: the folder holding notebooks/, params/, data/ and outputs/."""
    env = os.environ.get("OSSERVATORIO_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parent.parent.parent
    if (here / "params").is_dir() and (here / "notebooks").is_dir():
        return here
    return Path.cwd().resolve()


def notebooks_dir() -> Path:
    return project_root() / "notebooks"


def params_dir() -> Path:
    return project_root() / "params"


def themes_dir() -> Path:
    return params_dir() / "themes"


def defaults_file() -> Path:
    return params_dir() / "defaults.yaml"


def data_dir() -> Path:
    return project_root() / "data"


def raw_dir() -> Path:
    """Users' own sources: read-only for the workbench."""
    return data_dir() / "raw"


def demo_dir() -> Path:
    """Synthetic demo sources written by ``osservatorio demo``."""
    return data_dir() / "demo"


def sources_dir(data_source: str) -> Path:
    """Folder of the Observatory source tables for a theme's ``data_source``."""
    return demo_dir() if data_source == "demo" else raw_dir()


def outputs_dir() -> Path:
    return project_root() / "outputs"


def cache_dir() -> Path:
    """Caches shared by every stage and theme (e.g. validated sources): rebuilt from data
    and code when missing, so always safe to delete."""
    return outputs_dir() / ".cache"


def theme_outputs_dir(theme_id: str) -> Path:
    return outputs_dir() / theme_id


def interactive_dir(theme_id: str) -> Path:
    """Notebooks and results of interactive work on a theme (JupyterLab), untracked."""
    return theme_outputs_dir(theme_id) / "interactive"


def site_dir() -> Path:
    return outputs_dir() / "site"


def findings_dir() -> Path:
    return outputs_dir() / "findings"
