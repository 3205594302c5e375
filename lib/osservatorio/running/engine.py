"""How papermill drives a stage's kernel: the cost of its default saving removed.

- **Saving.** papermill writes the whole executed notebook (figures included) when each
  cell starts and again when it completes: about 70 serialisations per theme run, 0.6 s
  of a 12 s run. ``StageEngine`` (registered as papermill engine ``osservatorio``)
  writes it when the stage starts, every ``autosave_cell_every`` seconds while it runs,
  and when it ends, also when a cell fails or the kernel dies (papermill's own
  ``notebook_complete``, which runs in a ``finally``): a failed stage keeps its evidence.

The client that waits for the kernel is ``osservatorio.running.client.ReadyKernelClient``,
in a module of its own: the kernel manager imports its client class before it starts the
kernel, and papermill's import (0.5 s) must not come first.
"""

from __future__ import annotations

from contextlib import contextmanager

from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

ENGINE_NAME = "osservatorio"


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
