"""How papermill drives a stage (running/engine.py): the executed notebook is written when
the stage starts and ends, not twice per cell, and still holds the outputs before a
failing cell or a dying kernel; a kernel client is ready once the IOPub status of its own
request arrives, and every output of the next request reaches it."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import papermill as pm
import pytest
from nbclient.exceptions import DeadKernelError
from papermill.exceptions import PapermillExecutionError

from osservatorio.running.engine import ENGINE_NAME
from osservatorio.running.kernel import KERNEL_NAME, ensure_kernel
from osservatorio.running.runner import theme_kernel


def _notebook(path: Path, cells: list[str]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": KERNEL_NAME, "language": "python"}
    nbformat.write(nb, path)
    return path


def _saves(monkeypatch) -> list[str]:
    """Each write of the executed notebook: by papermill's execution manager (at the start,
    per cell, on its timer) and by ``execute_notebook`` at the end."""
    import papermill.engines as engines
    import papermill.execute as execute

    calls: list[str] = []
    for module in (engines, execute):
        real = module.write_ipynb
        monkeypatch.setattr(module, "write_ipynb", lambda nb, path, _real=real: (calls.append(path), _real(nb, path)))
    return calls


def _outputs(path: Path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []) if o["output_type"] == "stream"]


@pytest.fixture(scope="module")
def kernel_ready():
    ensure_kernel()


def test_the_notebook_is_written_at_start_and_end_not_per_cell(tmp_path, monkeypatch, kernel_ready):
    src = _notebook(tmp_path / "in.ipynb", [f"print({i})" for i in range(12)])
    saves = _saves(monkeypatch)
    pm.execute_notebook(str(src), str(tmp_path / "ours.ipynb"), engine_name=ENGINE_NAME, kernel_name=KERNEL_NAME,
                        progress_bar=False)
    ours = len(saves)
    pm.execute_notebook(str(src), str(tmp_path / "default.ipynb"), kernel_name=KERNEL_NAME, progress_bar=False)
    # once when the stage starts, once (papermill's final write) when it ends; papermill's
    # default: before and after every cell
    assert ours == 2 and len(saves) - ours >= 24
    assert _outputs(tmp_path / "ours.ipynb") == [f"{i}\n" for i in range(12)]


def test_a_failing_cell_keeps_the_outputs_before_it(tmp_path, kernel_ready):
    src = _notebook(tmp_path / "in.ipynb", ["print('before')", "raise ValueError('boom')", "print('after')"])
    with pytest.raises(PapermillExecutionError, match="boom"):
        pm.execute_notebook(str(src), str(tmp_path / "out.ipynb"), engine_name=ENGINE_NAME, kernel_name=KERNEL_NAME,
                            progress_bar=False)
    assert _outputs(tmp_path / "out.ipynb") == ["before\n"]


def test_a_dying_kernel_keeps_the_outputs_before_it(tmp_path, kernel_ready):
    src = _notebook(tmp_path / "in.ipynb", ["print('before')", "import os; os._exit(1)", "print('after')"])
    with pytest.raises(DeadKernelError):
        pm.execute_notebook(str(src), str(tmp_path / "out.ipynb"), engine_name=ENGINE_NAME, kernel_name=KERNEL_NAME,
                            progress_bar=False)
    assert _outputs(tmp_path / "out.ipynb") == ["before\n"]


def test_each_new_client_is_ready_and_gets_every_output(tmp_path):
    with theme_kernel(tmp_path, warm=[10]) as kernel:
        km = kernel()
        for i in range(8):
            kc = km.client()
            assert type(kc).__name__ == "ReadyKernelClient"
            kc.start_channels()
            try:
                kc.wait_for_ready(timeout=300)
                out: list[str] = []
                reply = kc.execute_interactive(
                    f"for j in range(3): print({i}, j, flush=True)", timeout=60,
                    output_hook=lambda m: out.append(m["content"]["text"]) if m["msg_type"] == "stream" else None)
                assert reply["content"]["status"] == "ok"
                assert "".join(out) == "".join(f"{i} {j}\n" for j in range(3))
            finally:
                kc.stop_channels()
        km.shutdown_kernel(now=True)
        kc = km.client()
        kc.start_channels()
        try:
            with pytest.raises(RuntimeError, match="died|respond"):
                kc.wait_for_ready(timeout=3)
        finally:
            kc.stop_channels()
