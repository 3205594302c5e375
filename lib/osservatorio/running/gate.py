"""The kernel side of a kernel started before its run is planned (``runner.early_kernel``).

``osservatorio run`` starts its kernel as the command starts, before it has read the
theme, hashed the sources and decided which stages run: booting the kernel (Python,
ipykernel, pandas, matplotlib: about 2.5 s) then overlaps the command's own start instead
of following it. Such a kernel imports the modules every stage uses, then waits at this
gate, a pipe from the command, for what only the plan knows: the run folder (its working
folder, as for a kernel started with the run) and the modules of the stages to run.
A gate closed with nothing written (the theme was up to date or bad, the command was
stopped or died) ends the kernel.

Only the standard library here: this runs inside the booting kernel.
"""

from __future__ import annotations

import importlib
import json
import os

GATE_ENV = "OSSERVATORIO_KERNEL_GATE"


def wait_for_run() -> None:
    """Wait for the command's order (blocking); go to the run folder and import the
    stages' modules. A kernel started without a gate returns at once."""
    fd = os.environ.pop(GATE_ENV, None)
    if fd is None:
        return
    with os.fdopen(int(fd), "rb") as pipe:
        order = pipe.read()
    if not order:
        os._exit(0)  # no run for this kernel
    order = json.loads(order)
    os.chdir(order["cwd"])
    for name in order["modules"]:
        importlib.import_module(name)
