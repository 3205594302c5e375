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
``ast``, so a new lazy import is included without editing a list), every module of the
package itself (the command line and the stages' step modules are imported by no other
module), the kernel's own start-up stack (``ipykernel``), and ``LAZY_MODULES``: what the
libraries import inside their own functions when a run first uses a feature (a styled
table, a parquet file, a PNG, papermill's parameter formatting), which no import
statement of the package names. Python writes each module's ``.pyc`` as it imports it;
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
# Imported by the libraries inside their functions, on first use of a feature a run
# calls: missing here, each was compiled from source in every command and kernel of a run
# (0.14 s in a run's command, 0.11 s in its kernel, measured). Found by listing, after a
# run, the loaded modules that have no .pyc; tests/running/test_bytecode.py repeats that
# check on a stage's cells.
LAZY_MODULES = (
    # pandas: DataFrame.style (report tables), to_csv, to_dict, to_html, pivots
    "pandas.io.formats.style", "pandas.io.formats.style_render", "pandas.io.formats.csvs",
    "pandas.io.formats.html", "pandas.core.methods.to_dict", "pandas.core.reshape.reshape",
    "pandas.core.arrays.arrow.extension_types",
    # pyarrow: parquet files of the stages and the caches
    "pyarrow.parquet", "pyarrow.parquet.core", "pyarrow.dataset", "pyarrow.pandas_compat",
    "pyarrow.vendored.version", "pyarrow.substrait",
    # matplotlib's Agg canvas and Pillow's image plugins, when a figure is saved as PNG
    "matplotlib.backends.backend_agg", "PIL.BmpImagePlugin", "PIL.GifImagePlugin", "PIL.JpegImagePlugin",
    "PIL.JpegPresets", "PIL.PpmImagePlugin", "PIL.features",
    # papermill formats the injected parameters with black (which reads gitignore patterns)
    "black.files", "black.output", "black.report", "blib2to3.pgen2", "_black_version", "pathspec",
    "pathspec.gitignore", "pathspec.pathspec", "pathspec.patterns.gitwildmatch", "pathspec.patterns.gitignore.basic",
    "pathspec.patterns.gitignore.spec", "pathspec._backends.simple.pathspec", "pathspec._backends.simple.gitignore",
    "pathspec._backends.hyperscan.pathspec", "pathspec._backends.hyperscan.gitignore",
    "pathspec._backends.re2.pathspec", "pathspec._backends.re2.gitignore",
    # the report (nbconvert's markdown plugins and templates) and the command line
    "mistune.plugins.def_list", "mistune.plugins.task_lists", "mistune.plugins.url", "jinja2.ext",
    "pygments.styles.default", "rich._emoji_codes", "rich._unicode_data.unicode17-0-0", "typer._adapters",
    "typer._click.decorators", "pydantic.type_adapter", "pydantic._internal._dataclasses",
)
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


def package_modules(package_dir: Path) -> list[str]:
    """Every module of the package in ``package_dir`` (named from its parent folder)."""
    root = package_dir.parent
    return sorted(".".join(path.relative_to(root).with_suffix("").parts[:-1] if path.name == "__init__.py"
                           else path.relative_to(root).with_suffix("").parts)
                  for path in package_dir.rglob("*.py"))


def modules() -> list[str]:
    """What to import: the package's imports, its own modules, the kernel's start-up and
    the libraries' lazy imports."""
    package_dir = Path(__file__).resolve().parents[1]
    names = [*imported_modules(package_dir), *package_modules(package_dir), *KERNEL_MODULES, *LAZY_MODULES]
    return list(dict.fromkeys(names))


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
    everything = modules()
    names = [m for m in everything if m.split(".")[0] not in second]
    # third-party first: the package's own modules import the second process's stacks too;
    # last, the second process's packages' other modules (typer's, jinja2's lazy ones)
    names = (sorted(names, key=lambda m: m.startswith("osservatorio")) + list(SECOND_PROCESS)
             + [m for m in everything if m.split(".")[0] in second])
    loaded, missing = precompile(names)
    other.wait()
    print(f"bytecode compiled for {loaded} modules" + (f" (not installed: {', '.join(missing)})" if missing else ""))


if __name__ == "__main__":
    main()
