"""The Dask side of a batch: which cluster, how tasks are submitted, and results streaming back.

Why Dask: instructors who outgrow one machine already have a way to start Dask workers (a laptop's
LocalCluster, ``dask scheduler`` + ``dask worker`` on lab machines, ``dask-jobqueue`` on Slurm), so
the batch needs no engine of its own. Dask gives retries of a task whose worker died (bounded by
``distributed.scheduler.allowed-failures``), task retries on an exception (``retries=``), resources
(``GPU``) and a dashboard; the batch adds the trust rules (:mod:`autograder.batch.local`,
:mod:`autograder.batch.child`).

The default local cluster runs its workers as threads of the batch process (``processes=False``):
every submission is graded in a fresh child process anyway (that is the isolation), so a worker
process per slot would only add start-up time and memory, and a hostile submission can reach
neither kind of worker. Those in-process workers also carry the batch itself (its stop, its live
children: :mod:`autograder.batch.live`), which no task could carry: a task is pickled.

The batch's modules form a line, each importing only those after it: ``local`` (the batch) ->
``engine`` (Dask) -> ``task`` (one task on a worker) -> ``child`` (one child process, running
:mod:`autograder.batch.worker`) -> ``kill``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import statistics
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError
from contextlib import contextmanager
from typing import TYPE_CHECKING

from autograder.batch import task as batch_task
from autograder.batch.validate import Expected, MalformedResult, failed_result, validate_result

if TYPE_CHECKING:
    from autograder.batch.live import Batch

RETRIES = 2  # a task that raised (e.g. a worker of another course version) is tried again elsewhere
ALLOWED_FAILURES = 2  # a task whose worker died is rescheduled this many times, then fails


class ClusterUnavailable(RuntimeError):
    """The cluster asked for cannot be started or reached (a message for the instructor)."""


def slurm_options() -> dict:
    """``[cluster.slurm]`` of course.toml: keyword arguments of ``dask_jobqueue.SLURMCluster``."""
    from autograder.course.manifest import load_course

    return dict(load_course().raw.get("cluster", {}).get("slurm", {}))


@contextmanager
def open_client(*, cluster: str = "local", scheduler: str | None = None, workers: int = 1,
                batch: Batch | None = None, log: Callable[[str], None] = print) -> Iterator:
    """A Dask client on the cluster asked for; the cluster (when we started it) closes with it.
    ``batch`` goes to the workers of a local cluster (they run in this process) as their plugin."""
    import dask

    dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                     "distributed.admin.tick.limit": "60s"})
    dashboard = importlib.util.find_spec("bokeh") is not None
    try:
        client, started = _connect(cluster, scheduler, workers, batch, dashboard)
    except OSError as exc:
        raise ClusterUnavailable(f"cannot reach the Dask scheduler {scheduler or cluster}: {exc}") from None
    try:
        info = client.scheduler_info(n_workers=-1)
        where = scheduler or f"{cluster} cluster"
        log(f"Dask: {where}, {len(info.get('workers', {}))} worker(s) now; dashboard: "
            + (client.dashboard_link if dashboard or scheduler else "off (pip install bokeh to see it)"))
        yield client
    finally:
        client.close()
        if started is not None:
            started.close()


def _connect(cluster: str, scheduler: str | None, workers: int, batch: Batch | None, dashboard: bool) -> tuple:
    """(client, the cluster we started or None): a running scheduler, a LocalCluster or a SLURMCluster."""
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler, timeout="30s", set_as_default=False), None
    if cluster == "local":
        started = LocalCluster(n_workers=workers, threads_per_worker=1, processes=False, memory_limit=0,
                               dashboard_address=":8787" if dashboard else ":0",
                               plugins=(batch,) if batch is not None else ())
    elif cluster == "slurm":
        try:
            from dask_jobqueue import SLURMCluster
        except ImportError:
            raise ClusterUnavailable("--cluster slurm needs dask-jobqueue: pip install 'llm-course-kit[cluster]'") \
                from None
        started = SLURMCluster(**slurm_options())
        started.scale(jobs=workers)
    else:
        raise ClusterUnavailable(f"unknown cluster {cluster!r}: local or slurm (or --scheduler tcp://HOST:PORT)")
    return Client(started, set_as_default=False), started


def cluster_shape(client) -> tuple[bool, dict[str, int]]:
    """(any worker offers a GPU, grading slots per host): GPU tasks ask for ``resources={"GPU": 1}``
    only where one exists (else they would wait forever); slots divide each host's cores."""
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    gpu = any((w.get("resources") or {}).get("GPU", 0) > 0 for w in workers.values())
    slots: dict[str, int] = {}
    for w in workers.values():
        host = str(w.get("host", ""))
        slots[host] = slots.get(host, 0) + int(w.get("nthreads", 1))
    return gpu, slots


def _failure(exc: BaseException) -> tuple[str, str, bool]:
    """(learner, instructor, the cluster's fault) for a task that Dask could not complete. A failure
    that is the cluster's (a lost worker, a worker of another course version) is graded again when
    the batch is run again; one that the submission caused is not."""
    from distributed import KilledWorker

    if isinstance(exc, KilledWorker):
        return (f"grading stopped: the machine grading this submission was lost {ALLOWED_FAILURES + 1} times "
                "(the batch went on without it; it is graded again when the batch is run again)",
                repr(exc)[-2000:], True)
    if isinstance(exc, batch_task.CourseVersionMismatch):
        return "could not be graded: the grading machines run a different version of the course", str(exc), True
    if isinstance(exc, batch_task.WorkerNotReady):
        return "could not be graded: no grading machine was ready (see the instructor's details)", str(exc), True
    return f"could not be graded: {type(exc).__name__}", repr(exc)[-2000:], False


def stream(client, tasks: Iterable[tuple[str, dict | None, list[str]]], *, tier: str,
           expected: dict[str, Expected], total: int | None = None, retries: int | None = None,
           progress: bool = True, log: Callable[[str], None] = print) -> Iterator[tuple[str, dict, list[str]]]:
    """Submit ``tasks`` (id, task or None when it needs no grading, warnings) a window at a time and
    yield ``(id, reply, warnings)`` as each finishes; ``reply["result"]`` is a validated GradeResult.

    A task that fails after its retries (or whose worker died too often) yields a failed result:
    the batch goes on. The window keeps a few tasks per worker in flight, so the submissions' bytes
    are not all held in memory at once.
    """
    gpu, slots = cluster_shape(client)
    resources = {"GPU": 1} if gpu and tier in ("model", "all") else None
    with _progress_bar(progress) as bar:
        bar_task = bar.add_task("", total=total)

        def advance(description: str) -> None:
            bar.update(bar_task, advance=1, description=description)

        window = _Window(client, tasks, slots=slots, resources=resources,
                         retries=RETRIES if retries is None else retries, refused=advance)
        window.fill(max(4, 2 * sum(slots.values())))
        for fut, sid, warnings in window.finished():
            reply = _reply_of(client, fut, sid, expected, log)
            fut.release()
            result = reply["result"]
            advance(f"{sid}: {result.score:g}/{result.max_score:g}")
            yield sid, reply, warnings
            window.submit_next()


def _progress_bar(shown: bool):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("grading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn(), TextColumn("{task.description}"))
    return Progress(*columns, disable=not shown)


class _Window:
    """The tasks in flight: one more is submitted as one finishes, so the source is read lazily."""

    def __init__(self, client, tasks: Iterable[tuple[str, dict | None, list[str]]], *, slots: dict[str, int],
                 resources: dict | None, retries: int, refused: Callable[[str], None]) -> None:
        from distributed import as_completed

        self.client, self.source = client, iter(tasks)
        self.slots, self.resources, self.retries, self.refused = slots, resources, retries, refused
        self.futures: dict = {}  # future -> (id, warnings)
        self.pending = as_completed(loop=client.loop)

    def fill(self, size: int) -> None:
        for _ in range(size):
            if not self.submit_next():
                break

    def submit_next(self) -> bool:
        """Submit the next task that needs grading (passing refused ones); False when there is none."""
        for sid, task, warnings in self.source:
            if task is None:
                self.refused(f"{sid}: refused")
                continue
            fut = self.client.submit(batch_task.grade_task, {**task, "slots": self.slots},
                                     key=f"grade-{sid}-{uuid.uuid4().hex[:8]}", pure=False, retries=self.retries,
                                     resources=self.resources)
            self.futures[fut] = (sid, warnings)
            self.pending.add(fut)
            return True
        return False

    def finished(self) -> Iterator[tuple]:
        """(future, id, warnings) of each task as it finishes."""
        for fut in self.pending:
            sid, warnings = self.futures.pop(fut)
            yield fut, sid, warnings


def _reply_of(client, fut, sid: str, expected: dict[str, Expected], log: Callable[[str], None]) -> dict:
    """A finished task's reply with its result validated, or a failed result saying why there is none.
    Raises :class:`ClusterUnavailable` when the cluster itself is gone."""
    try:
        reply = fut.result()
        reply["result"] = validate_result(reply["result"], expected)
        return reply
    except MalformedResult as exc:
        return {"result": failed_result(sid, "grading failed: the grading process's result was not well-formed",
                                        str(exc), expected)}
    except BaseException as exc:  # noqa: BLE001 - a lost worker, a refusing worker: this submission only
        if client.status != "running" or isinstance(exc, CancelledError | asyncio.CancelledError):
            raise ClusterUnavailable(f"lost the Dask cluster ({type(exc).__name__}: {exc}); run the same "
                                     "command again to grade the rest") from None
        if not isinstance(exc, Exception):
            raise
        learner, instructor, retry = _failure(exc)
        log(f"{sid}: {learner} ({instructor[:300]})")
        result = failed_result(sid, learner, instructor, expected)
        result.stages[0].details["retry"] = retry
        return {"result": result}


def report_overhead(timings: list[dict], log: Callable[[str], None]) -> None:
    """Per-task overhead: a task's time on its worker minus the grading it ran (unpacking the zip,
    starting the child, validating), median over the batch."""
    over = [t["task_s"] - t["grading_s"] for t in timings if "task_s" in t and "grading_s" in t]
    if over:
        log(f"{len(over)} task(s) graded; per-task overhead on the workers: median {statistics.median(over):.2f} s "
            f"(max {max(over):.2f} s) over the grading itself")
