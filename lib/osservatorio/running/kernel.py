"""The ``osservatorio`` Jupyter kernel: the project's Python, registered in its environment.

Notebooks name this kernel in their metadata, papermill runs them with it and ``make lab``
makes it JupyterLab's default, so a notebook always runs with the interpreter that has
the package installed. ``make env`` registers it; ``ensure_kernel`` does it when missing
(after a plain ``pip install``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

KERNEL_NAME = "osservatorio"
# No Python version in the name: JupyterLab writes it into the notebooks it saves, and a
# name that differed between machines would show as a change in git.
DISPLAY_NAME = "osservatorio (Python 3)"


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


if __name__ == "__main__":  # python -m osservatorio.running.kernel (used by make env)
    print(ensure_kernel())
