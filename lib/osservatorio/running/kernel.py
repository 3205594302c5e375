"""The ``osservatorio`` Jupyter kernel: the project's Python, registered in its environment.

Notebooks name this kernel in their metadata, papermill runs them with it and ``make lab``
makes it JupyterLab's default, so a notebook always runs with the interpreter that has
the package installed. ``make env`` registers it; ``ensure_kernel`` does it when missing
(after a plain ``pip install``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

KERNEL_NAME = "osservatorio"
# No Python version in the name: JupyterLab writes it into the notebooks it saves, and a
# name that differed between machines would show as a change in git.
DISPLAY_NAME = "osservatorio (Python 3)"
PRE_SAVE_HOOK = "osservatorio.running.lab.strip_tracked_notebook"


def kernel_dir() -> Path:
    """Where the kernel spec lives: in this environment's prefix (``--sys-prefix``)."""
    return Path(sys.prefix) / "share" / "jupyter" / "kernels" / KERNEL_NAME


def kernel_is_registered() -> bool:
    """The spec exists in this prefix and starts this interpreter."""
    spec = kernel_dir() / "kernel.json"
    try:
        argv = json.loads(spec.read_text(encoding="utf-8"))["argv"]
    except (OSError, ValueError, KeyError):
        return False
    return bool(argv) and Path(argv[0]).absolute() == Path(sys.executable).absolute()


def ensure_kernel() -> Path:
    """Register the kernel from this interpreter if it is missing (idempotent); its folder."""
    if not kernel_is_registered():
        from ipykernel.kernelspec import install

        try:
            install(kernel_name=KERNEL_NAME, display_name=DISPLAY_NAME, prefix=sys.prefix)
        except OSError:  # parallel runs registering at once: one of them wins
            if not kernel_is_registered():
                raise
    return kernel_dir()


def ensure_server_config() -> Path:
    """Every Jupyter server started from this environment (``make lab`` or a plain
    ``jupyter lab``) saves the tracked stage notebooks stripped, exactly as committed
    (``osservatorio.running.lab.strip_tracked_notebook``). The setting goes into the
    environment's ``etc/jupyter/jupyter_server_config.json`` (Jupyter reads general
    settings there; its ``.d`` folder holds only extension switches), merged with what
    the file already holds."""
    path = Path(sys.prefix) / "etc" / "jupyter" / "jupyter_server_config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except ValueError:
        config = {}
    if config.get("ContentsManager", {}).get("pre_save_hook") != PRE_SAVE_HOOK:
        config.setdefault("ContentsManager", {})["pre_save_hook"] = PRE_SAVE_HOOK
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
    return path


if __name__ == "__main__":  # python -m osservatorio.running.kernel (used by make env)
    print(ensure_kernel())
    print(ensure_server_config())
