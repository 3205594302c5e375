"""How papermill drives a stage's kernel: two costs of its defaults removed.

- **Saving.** papermill writes the whole executed notebook (figures included) when each
  cell starts and again when it completes: about 70 serialisations per theme run, 0.6 s
  of a 12 s run. ``StageEngine`` (registered as papermill engine ``osservatorio``)
  writes it when the stage starts, every ``autosave_cell_every`` seconds while it runs,
  and when it ends, also when a cell fails or the kernel dies (papermill's own
  ``notebook_complete``, which runs in a ``finally``): a failed stage keeps its evidence.
- **Waiting for the kernel.** jupyter_client's ``wait_for_ready`` gets the kernel's
  ``kernel_info`` reply, then waits for IOPub to stay quiet for 0.2 s: 0.2 s per stage
  on a kernel that is idle between stages. ``ReadyKernelClient`` is ready as soon as the
  IOPub status of its own ``kernel_info`` request arrives, which proves the subscription
  is live (nbclient reads only the outputs of its own requests, so nothing earlier can
  be mistaken for them).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from queue import Empty

from jupyter_client.blocking.client import BlockingKernelClient
from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

ENGINE_NAME = "osservatorio"
# IOPub status of a kernel_info request: how long to wait for it before asking again
# (a subscription made a moment before the request may miss it).
IOPUB_PROBE_S = 0.5


class StageExecutionManager(NotebookExecutionManager):
    """papermill's manager, saving on a timer instead of twice per cell."""

    _in_cell_hook = False

    def save(self, **kwargs):
        if not self._in_cell_hook:  # papermill's cell_start and cell_complete end with a save
            super().save(**kwargs)

    @contextmanager
    def _without_saving(self):
        self._in_cell_hook = True
        try:
            yield
        finally:
            self._in_cell_hook = False

    def cell_start(self, cell, cell_index=None, **kwargs):
        with self._without_saving():
            super().cell_start(cell, cell_index, **kwargs)

    def cell_complete(self, cell, cell_index=None, **kwargs):
        with self._without_saving():
            super().cell_complete(cell, cell_index, **kwargs)
        self.autosave_cell()


class StageEngine(NBClientEngine):
    """papermill's nbclient engine with ``StageExecutionManager``."""

    @classmethod
    def execute_notebook(cls, nb, kernel_name, output_path=None, progress_bar=True, log_output=False,
                         autosave_cell_every=30, **kwargs):
        nb_man = StageExecutionManager(nb, output_path=output_path, progress_bar=progress_bar,
                                       log_output=log_output, autosave_cell_every=autosave_cell_every)
        nb_man.notebook_start()
        try:
            cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
        finally:
            nb_man.cleanup_pbar()
            nb_man.notebook_complete()  # saves, also when a cell failed or the kernel died
        return nb_man.nb


papermill_engines.register(ENGINE_NAME, StageEngine)


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
