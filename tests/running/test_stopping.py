"""Stop signals and process lifetimes, with real processes: a kernel started by a run dies
with the process that started it; a signal during ``deferred()`` waits for the block; a
signal handled in an asyncio task leaves the event loop at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")


def _python(code: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("with_death_signal", [True, False])
def test_kernel_started_with_launch_options_dies_with_its_parent(with_death_signal):
    """The parent starts a long sleep (a stand-in for the kernel) in a session of its own,
    as jupyter_client does, and is killed with SIGKILL: with the options of
    ``kernel_launch_options`` the child dies at once; without, it survives (the test can fail)."""
    parent = _python(f"""
        import subprocess, sys, time
        from osservatorio.running.stopping import kernel_launch_options
        options = kernel_launch_options() if {with_death_signal} else {{}}
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True,
                                 **options)
        print(child.pid, flush=True)
        time.sleep(60)
    """)
    child = int(parent.stdout.readline())
    try:
        parent.kill()
        parent.wait()
        assert _gone(child, within=5) is with_death_signal
    finally:
        if psutil.pid_exists(child):
            os.kill(child, signal.SIGKILL)


def test_signal_inside_deferred_block_is_raised_after_it():
    proc = _python("""
        import os, signal
        from osservatorio.running.stopping import Interrupted, deferred, install_handlers
        install_handlers()
        steps = []
        try:
            with deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                steps.append("block finished")
        except Interrupted as exc:
            steps.append(f"interrupted by {exc} with exit code {exc.exit_code}")
        print("; ".join(steps))
    """)
    out, err = proc.communicate(timeout=60)
    assert out.strip() == "block finished; interrupted by SIGTERM with exit code 143", err


def test_signal_handled_in_a_background_task_stops_the_event_loop_at_once():
    """The notebook client polls in asyncio tasks while the awaited one blocks in a ZeroMQ
    poll until the cell's reply. A stop signal handled while a background task runs must
    leave the loop at once, not wait (here 20 s) for the blocked poll."""
    proc = _python("""
        import asyncio, os, signal, time, zmq
        from osservatorio.running.stopping import Interrupted, install_handlers
        install_handlers()
        socket = zmq.Context.instance().socket(zmq.PULL)
        socket.bind("tcp://127.0.0.1:*")

        async def background():
            os.kill(os.getpid(), signal.SIGINT)  # handled right here, in this task
            await asyncio.sleep(60)

        async def awaited():
            task = asyncio.create_task(background())
            await asyncio.sleep(0.1)
            socket.poll(20_000)  # blocking, as jupyter_client's get_msg
            await task

        start = time.monotonic()
        try:
            asyncio.new_event_loop().run_until_complete(awaited())
        except Interrupted:
            print(f"interrupted after {time.monotonic() - start:.0f} s", flush=True)
    """)
    out, err = proc.communicate(timeout=60)
    assert out.strip() == "interrupted after 0 s", err


def test_a_stop_raised_where_it_cannot_propagate_is_raised_again_not_printed():
    """In a worker, SIGTERM raised inside a weakref callback (as the import machinery's)
    is 'Exception ignored' for Python; the worker's hook sends the signal again, so the
    stop reaches the worker's code and nothing is printed."""
    import subprocess
    import sys

    code = (
        "import gc, time, weakref, signal, os\n"
        "from osservatorio.running import stopping\n"
        "stopping.init_worker()\n"
        "class A: pass\n"
        "a = A()\n"
        "r = weakref.ref(a, lambda ref: os.kill(os.getpid(), signal.SIGTERM) or time.sleep(0.2))\n"
        "try:\n"
        "    del a\n"
        "    for _ in range(50):\n"
        "        time.sleep(0.01)\n"
        "    print('not stopped')\n"
        "except stopping.Interrupted:\n"
        "    print('stopped')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "stopped", res.stdout + res.stderr
    assert "Exception ignored" not in res.stderr and "Traceback" not in res.stderr, res.stderr
