"""How papermill drives a stage's kernel: the cost of its default saving removed.

- **Saving.** papermill writes the whole executed notebook (figures included) when each
  cell starts and again when it completes: about 70 serialisations per theme run, 0.6 s
  of a 12 s run. ``StageEngine`` (registered as papermill engine ``osservatorio``)
  writes it when the stage starts and every ``autosave_cell_every`` seconds while it
  runs. At the end papermill writes it itself (``execute_notebook``'s final write, with
  the error marker when a cell failed), so the engine's own end-of-stage write
  (``notebook_complete``) is kept only for an engine that raises (a dying kernel, an
  interrupt), where papermill writes nothing: a failed stage keeps its evidence, and a
  stage that ends normally is written once, not twice (0.1 s a stage).

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

    _saving = True

    def save(self, **kwargs):
        if self._saving:  # off in papermill's cell_start and cell_complete, which end with a save
            super().save(**kwargs)

    @contextmanager
    def _without_saving(self):
        self._saving = False
        try:
            yield
        finally:
            self._saving = True

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
        except BaseException:  # the kernel died, an interrupt: papermill writes nothing after this
            nb_man.cleanup_pbar()
            nb_man.notebook_complete()  # end time and status, saved
            raise
        nb_man.cleanup_pbar()
        with nb_man._without_saving():  # papermill writes the notebook next (a failed cell included)
            nb_man.notebook_complete()
        return nb_man.nb


papermill_engines.register(ENGINE_NAME, StageEngine)
