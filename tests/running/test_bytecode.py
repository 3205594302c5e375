"""The install-time bytecode step: which modules it imports, and that it writes their .pyc
even where PYTHONDONTWRITEBYTECODE is set."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

from osservatorio.running import bytecode


def test_imported_modules_include_lazy_imports_and_skip_relative_ones(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("import json\nfrom . import sub\n")
    (pkg / "sub" / "__init__.py").write_text(textwrap.dedent("""
        from collections import OrderedDict
        from .x import y

        def later():
            import decimal
            from email.message import Message
            return Message
    """))
    assert bytecode.imported_modules(pkg) == ["collections", "decimal", "email.message", "json"]


def test_the_package_list_holds_its_lazy_imports_and_the_kernel():
    names = bytecode.modules()
    # imported inside functions only: the stages' lazy imports are compiled too
    assert "osservatorio.evaluate.sdid" in names and "scipy.optimize" in names
    assert set(bytecode.KERNEL_MODULES) <= set(names)
    assert all(not name.startswith(".") for name in names)


def test_precompile_writes_bytecode_even_when_the_environment_forbids_it(tmp_path):
    (tmp_path / "fresh_module_for_bytecode.py").write_text("VALUE = 41 + 1\n")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from osservatorio.running.bytecode import precompile; "
            "loaded, failed = precompile(['fresh_module_for_bytecode', 'no_such_module_anywhere']); print(failed)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert out.stdout.strip() == "['no_such_module_anywhere']"
    pyc = importlib.util.cache_from_source(str(tmp_path / "fresh_module_for_bytecode.py"))
    assert os.path.isfile(pyc)


def test_the_list_holds_every_module_of_the_package_and_the_libraries_lazy_imports():
    names = bytecode.modules()
    # imported by no module of the package: the entry point, the kernel client (named in a
    # string), the stages' step modules (imported by the notebooks)
    assert {"osservatorio.cli", "osservatorio.running.client", "osservatorio.synthesis.steps",
            "osservatorio.selection.steps", "osservatorio.synthesis.costs"} <= set(names)
    assert set(bytecode.LAZY_MODULES) <= set(names)
    assert len(names) == len(set(names))


def test_every_lazy_module_exists_in_the_installed_libraries():
    """A module renamed by a library's new version would silently be compiled no more."""
    code = ("import importlib, sys\nfrom osservatorio.running.bytecode import LAZY_MODULES\nbad = []\n"
            "for name in LAZY_MODULES:\n    try:\n        importlib.import_module(name)\n"
            "    except Exception as exc:\n        bad.append(f'{name}: {exc}')\nprint(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# What a stage and the run's command do with the libraries: a styled table, a parquet
# file, a PNG, a CSV, records, papermill's parameters, the report's markdown, the progress
# bar. Afterwards every loaded module of the virtual environment must have its .pyc: one
# without was compiled from source in this process, as it would be in every run.
FEATURES = r'''
import importlib.util, io, os, sys
import matplotlib; matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import osservatorio.publishing.show, osservatorio.running.stage
df = pd.DataFrame({"comune": ["Roma", "Milano"], "valore": [1.5, 2.0], "anno": [2020, 2021]})
df.style.format(precision=1).to_html(); df.to_html(); df.to_csv(io.StringIO()); df.to_dict("records")
df.pivot(index="comune", columns="anno", values="valore").stack()
buf = io.BytesIO(); df.to_parquet(buf); pd.read_parquet(io.BytesIO(buf.getvalue()))
fig, ax = plt.subplots(); ax.plot([1, 2], [3, 4]); fig.savefig(io.BytesIO(), format="png", bbox_inches="tight")
from papermill.translators import translate_parameters
translate_parameters("python", "python", {"theme_id": "x", "overrides": {}}, "Parameters")
from nbconvert.filters.markdown_mistune import markdown2html_mistune
markdown2html_mistune("**a** [b](http://c)\n\n- [x] d\n\nterm\n: def")
from rich.console import Console
Console(file=io.StringIO()).print(":smiley: [bold]x[/]")
venv = sys.prefix
missing = [name for name, module in list(sys.modules.items())
           if (getattr(module, "__file__", None) or "").endswith(".py") and module.__file__.startswith(venv)
           and not os.path.exists(importlib.util.cache_from_source(module.__file__))]
print(sorted(missing))
'''


def test_what_a_run_uses_of_the_libraries_has_its_bytecode():
    import pandas

    if not os.path.exists(importlib.util.cache_from_source(pandas.__file__)):
        pytest.skip("this environment was not set up by `make env` (no bytecode compiled)")
    out = subprocess.run([sys.executable, "-c", FEATURES], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert out.stdout.strip().splitlines()[-1] == "[]", "compiled from source: add them to bytecode.LAZY_MODULES"
