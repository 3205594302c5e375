"""Running: open a stage in a notebook, execute a theme's notebooks with papermill,
batches in parallel processes or on a Dask cluster, provenance of every run."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types


def defer_rfc3987_syntax() -> None:
    """Let nbformat (hence papermill) import in 0.4 s instead of 1.2 s.

    jsonschema imports ``rfc3987_syntax`` when it is installed (JupyterLab's dependencies
    bring it), and that module compiles a Lark grammar on import, for the "iri" string
    formats that notebooks never use. A stand-in module imports the real one the first
    time its function is called, so validation of those formats still works."""
    if "rfc3987_syntax" in sys.modules or importlib.util.find_spec("rfc3987_syntax") is None:
        return
    real: list[types.ModuleType] = []

    def is_valid_syntax(*args, **kwargs):
        if not real:
            sys.modules.pop("rfc3987_syntax", None)
            real.append(importlib.import_module("rfc3987_syntax"))
        return real[0].is_valid_syntax(*args, **kwargs)

    stub = types.ModuleType("rfc3987_syntax", "stand-in: the real module is imported on first use")
    stub.is_valid_syntax = is_valid_syntax
    sys.modules["rfc3987_syntax"] = stub


defer_rfc3987_syntax()
