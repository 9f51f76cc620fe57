"""A running batch: its stop switch and its live worker processes, owned by the batch itself.

:func:`autograder.batch.local.grade_batch` makes one per run and drops it when the run ends, so
nothing of a batch outlives it in a module, and two batches in one process never share one.

Tasks of a local cluster run as threads of the batch process (``processes=False`` in
:func:`autograder.batch.engine.open_client`) and find their batch through the Dask worker they run
on: the :class:`Batch` is that cluster's worker plugin, which Dask hands to each in-process worker
as the object itself, never pickled (:func:`batch_of`). A task on another machine finds none: its
stop is the scheduler releasing it (:class:`autograder.batch.task.TaskReleased`), and a child whose
Dask worker died ends what it started when its stdin closes (:mod:`autograder.batch.worker`).
"""

from __future__ import annotations

import subprocess
import threading

from distributed import WorkerPlugin

from autograder.procs import LiveProcesses, kill_tree


class Batch(WorkerPlugin):
    """The stop event of one batch and the worker processes its tasks have running now."""

    name = "autograder-batch"  # the key of this plugin on each worker of the batch's local cluster

    def __init__(self) -> None:
        self._stopped = threading.Event()
        self._live = LiveProcesses()

    def is_set(self) -> bool:
        """Was the batch stopped? (The shape of ``threading.Event``: a child's supervisor polls it.)"""
        return self._stopped.is_set()

    def adopt(self, proc: subprocess.Popen) -> None:
        """Count ``proc`` among the live workers; one started after the batch stopped is killed now.
        (Counted first, the flag read after: a ``stop`` in between kills it through the count.)"""
        self._live.adopt(proc)
        if self._stopped.is_set():
            kill_tree(proc)

    def release(self, proc: subprocess.Popen) -> None:
        """``proc`` has been ended and reaped by its supervisor."""
        self._live.release(proc)

    def stop(self) -> None:
        """Stop the batch: no task starts a worker any more, and every live worker is killed with its tree."""
        self._stopped.set()
        self._live.kill_all()


def batch_of(worker) -> Batch | None:
    """The batch a Dask worker serves in this process (None: a worker of another machine, or none)."""
    plugin = getattr(worker, "plugins", {}).get(Batch.name) if worker is not None else None
    return plugin if isinstance(plugin, Batch) else None
