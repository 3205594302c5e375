"""The kernel client of a run: ready as soon as the kernel is.

jupyter_client's ``wait_for_ready`` gets the kernel's ``kernel_info`` reply, then waits
for IOPub to stay quiet for 0.2 s: 0.2 s per stage on a kernel that is idle between
stages. ``ReadyKernelClient`` is ready as soon as the IOPub status of its own
``kernel_info`` request arrives, which proves the subscription is live (nbclient reads
only the outputs of its own requests, so nothing earlier can be mistaken for them).

A module of its own, importing only jupyter_client: the kernel manager imports its
client class when it is created, before it starts the kernel, so whatever this module
imports delays every kernel (papermill, with nbformat, took 0.5 s there).
"""

from __future__ import annotations

import time
from queue import Empty

from jupyter_client.blocking.client import BlockingKernelClient

# IOPub status of a kernel_info request: how long to wait for it before asking again
# (a subscription made a moment before the request may miss it).
IOPUB_PROBE_S = 0.5


class ReadyKernelClient(BlockingKernelClient):
    """A kernel client ready when the kernel answers on the shell channel and its IOPub
    status for that same request has arrived."""

    def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            msg_id = self.kernel_info()
            reply = self._reply_to(msg_id, min(1.0, max(0.0, deadline - time.monotonic())))
            if reply is not None and self._idle_after(msg_id):
                self._handle_kernel_info_reply(reply)
                return
            if not self.is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")

    def _reply_to(self, msg_id: str, timeout: float):
        return _first(self.get_shell_msg, timeout, lambda msg: msg["parent_header"].get("msg_id") == msg_id)

    def _idle_after(self, msg_id: str) -> bool:
        return _first(self.get_iopub_msg, IOPUB_PROBE_S,
                      lambda msg: (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status"
                                   and msg["content"].get("execution_state") == "idle")) is not None


def _first(get, timeout: float, wanted):
    """The first message ``get`` returns within ``timeout`` seconds for which ``wanted``
    is true (others are dropped), or None."""
    end = time.monotonic() + timeout
    while True:
        try:
            msg = get(timeout=max(0.0, end - time.monotonic()))
        except Empty:
            return None
        if wanted(msg):
            return msg
