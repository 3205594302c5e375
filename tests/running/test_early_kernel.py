"""The kernel ``osservatorio run`` starts before it plans the run (runner.early_kernel):
the run takes it, in its folder and with its stages' modules; unused, it ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from osservatorio.running import runner
from osservatorio.running.gate import GATE_ENV

WAIT = ("import os, sys\nfrom osservatorio.running.gate import wait_for_run\nwait_for_run()\n"
        "print(os.getcwd(), 'osservatorio.synthesis.steps' in sys.modules)\n")


def _gated_python(order: bytes | None) -> subprocess.CompletedProcess:
    read, write = os.pipe()
    try:
        proc = subprocess.Popen([sys.executable, "-c", WAIT], env={**os.environ, GATE_ENV: str(read)},
                                pass_fds=(read,), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(read)
    if order:
        os.write(write, order)
    os.close(write)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_the_gate_sends_the_kernel_to_the_run_folder_with_the_stages_modules(tmp_path):
    res = _gated_python(json.dumps({"cwd": str(tmp_path), "modules": ["osservatorio.synthesis.steps"]}).encode())
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [str(tmp_path), "True"]


def test_a_gate_closed_without_an_order_ends_the_kernel_at_once():
    res = _gated_python(None)
    assert res.returncode == 0 and res.stdout == "", res.stderr


def _run_in_kernel(km, code: str) -> str:
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=300)
        out: list[str] = []
        kc.execute_interactive(code, timeout=300, output_hook=lambda msg: out.append(msg["content"].get("text", "")))
        return "".join(out)
    finally:
        kc.stop_channels()


def test_the_run_takes_the_early_kernel_in_its_own_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with runner.early_kernel():
        early = runner._EARLY["km"]
        with runner.theme_kernel(run_dir, warm=[40]) as get:
            km = get()
            assert km is early and not runner._EARLY  # taken, not a second kernel
            text = _run_in_kernel(km, "import os, sys; print(os.getcwd(), 'osservatorio.synthesis.steps' in "
                                      "sys.modules, 'osservatorio.indicators.steps' in sys.modules)")
            assert text.split() == [str(run_dir), "True", "False"]
        assert not km.is_alive()
    assert not list((tmp_path / "runtime").glob("kernel-*"))


def test_an_early_kernel_no_run_takes_is_shut_down_with_its_files(tmp_path, monkeypatch):
    """A run found up to date, a bad theme, an interrupt: the command leaves no kernel."""
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    try:
        with runner.early_kernel():
            process = runner._EARLY["km"].provisioner.process
            assert list((tmp_path / "runtime").glob("kernel-*.json"))
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert process.poll() is not None and not runner._EARLY
    assert not list((tmp_path / "runtime").glob("kernel-*"))
