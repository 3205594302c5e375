"""Compile, once at install, the bytecode of the modules a run imports, and only those.

Every process of a run (the command, and each theme's kernel) imports the scientific
stack. Without compiled bytecode each of them compiles it again from source, seconds per
process; and machines that set ``PYTHONDONTWRITEBYTECODE`` (as this project's CI does)
never cache what was compiled. ``uv pip install --compile-bytecode`` compiles every
installed file, tests and unused subpackages included (about 25 s of a 34 s install,
measured); a run imports about a fifth of them.

``python -m osservatorio.running.bytecode`` (``make env`` runs it with bytecode writing
on) imports what the project imports: every module named in an import statement of the
``osservatorio`` package, at module level or inside a function (read from the source with
``ast``, so a new lazy import is included without editing a list), plus the kernel's own
start-up stack (``ipykernel``). Python writes each module's ``.pyc`` as it imports it;
later processes read them, with or without ``PYTHONDONTWRITEBYTECODE``. A module missed
here is compiled in memory when used: slower, never wrong (Python checks each ``.pyc``
against its source).
"""

from __future__ import annotations

import ast
import importlib
import os
import sys
from pathlib import Path

# What a kernel imports before any cell runs (ipykernel_launcher): not named by the package.
KERNEL_MODULES = ("ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger")
# Compiled by a second process while the first compiles the numeric stack (numpy, pandas,
# scipy, matplotlib, ...), which none of these import: the kernel, notebook and command
# line stacks. Only a split of the work: a name missing here is compiled by the first.
SECOND_PROCESS = (*KERNEL_MODULES, "papermill", "nbconvert", "nbformat", "nbclient", "jinja2", "mistune", "typer",
                  "rich.console", "rich.progress", "yaml", "pydantic", "distributed", "filelock", "psutil")


def imported_modules(package_dir: Path) -> list[str]:
    """Absolute module names in the import statements of every ``.py`` file under
    ``package_dir`` (relative imports are the package's own, imported through it)."""
    names: set[str] = set()
    for path in sorted(package_dir.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
    return sorted(names)


def modules() -> list[str]:
    """What to import: the package's imports, then the kernel's."""
    return [*imported_modules(Path(__file__).resolve().parents[1]), *KERNEL_MODULES]


def precompile(names: list[str]) -> tuple[int, list[str]]:
    """Import ``names`` writing their bytecode; (number of modules now loaded, names that
    failed to import: optional dependencies that are not installed)."""
    sys.dont_write_bytecode = False  # this process writes the .pyc of what it imports
    # debugpy (imported by ipykernel) warns about frozen modules on import: not this step's business
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    if any(name.startswith("matplotlib") for name in names):
        import matplotlib

        matplotlib.use("Agg")  # as the kernels draw: no GUI backend probed
    failed = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - optional (bench-only) packages, platform-only modules
            failed.append(name)
    return len(sys.modules), failed


def main() -> None:
    """Two processes: a second one compiles ``SECOND_PROCESS`` while this one compiles
    everything else, then this one imports the rest (reading what the other wrote: Python
    writes a .pyc atomically, so neither reads a half-written one)."""
    import subprocess

    if sys.argv[1:] == ["--second"]:
        precompile(list(SECOND_PROCESS))
        return
    other = subprocess.Popen([sys.executable, "-m", "osservatorio.running.bytecode", "--second"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    second = {name.split(".")[0] for name in SECOND_PROCESS}
    names = [m for m in modules() if m.split(".")[0] not in second]
    # third-party first: the package's own modules import the second process's stacks too
    names = sorted(names, key=lambda m: m.startswith("osservatorio")) + list(SECOND_PROCESS)
    loaded, missing = precompile(names)
    other.wait()
    print(f"bytecode compiled for {loaded} modules" + (f" (not installed: {', '.join(missing)})" if missing else ""))


if __name__ == "__main__":
    main()
