"""The install-time bytecode step: which modules it imports, and that it writes their .pyc
even where PYTHONDONTWRITEBYTECODE is set."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

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
