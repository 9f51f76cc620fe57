"""The Dask side of a batch: which cluster, how tasks are submitted, and results streaming back.

Why Dask: instructors who outgrow one machine already have a way to start Dask workers (a laptop's
LocalCluster, ``dask scheduler`` + ``dask worker`` on lab machines, ``dask-jobqueue`` on Slurm), so
the batch needs no engine of its own. Dask gives retries of a task whose worker died (bounded by
``distributed.scheduler.allowed-failures``), task retries on an exception (``retries=``), resources
(``GPU``) and a dashboard; the batch adds the trust rules (:mod:`autograder.batch.local`).

The default local cluster runs its workers as threads of the batch process (``processes=False``):
every submission is graded in a fresh child process anyway (that is the isolation), so a worker
process per slot would only add start-up time and memory, and a hostile submission can reach
neither kind of worker.
"""

from __future__ import annotations

import asyncio
import importlib.util
import statistics
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError
from contextlib import contextmanager

from autograder.batch.validate import Expected, MalformedResult, failed_result, validate_result

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
                log: Callable[[str], None] = print) -> Iterator:
    """A Dask client on the cluster asked for; the cluster (when we started it) closes with it."""
    import dask
    from distributed import Client, LocalCluster

    dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                     "distributed.admin.tick.limit": "60s"})
    started = None
    dashboard = importlib.util.find_spec("bokeh") is not None
    try:
        if scheduler:
            client = Client(scheduler, timeout="30s", set_as_default=False)
        elif cluster == "local":
            started = LocalCluster(n_workers=workers, threads_per_worker=1, processes=False, memory_limit=0,
                                   dashboard_address=":8787" if dashboard else ":0")
            client = Client(started, set_as_default=False)
        elif cluster == "slurm":
            try:
                from dask_jobqueue import SLURMCluster
            except ImportError:
                raise ClusterUnavailable("--cluster slurm needs dask-jobqueue: pip install 'llm-course-kit[cluster]'") \
                    from None
            started = SLURMCluster(**slurm_options())
            started.scale(jobs=workers)
            client = Client(started, set_as_default=False)
        else:
            raise ClusterUnavailable(f"unknown cluster {cluster!r}: local or slurm (or --scheduler tcp://HOST:PORT)")
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

    from autograder.batch.task import CourseVersionMismatch, WorkerNotReady

    if isinstance(exc, KilledWorker):
        return (f"grading stopped: the machine grading this submission was lost {ALLOWED_FAILURES + 1} times "
                "(the batch went on without it; it is graded again when the batch is run again)",
                repr(exc)[-2000:], True)
    if isinstance(exc, CourseVersionMismatch):
        return "could not be graded: the grading machines run a different version of the course", str(exc), True
    if isinstance(exc, WorkerNotReady):
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
    from distributed import as_completed
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from autograder.batch.task import grade_task

    source = iter(tasks)
    gpu, slots = cluster_shape(client)
    resources = {"GPU": 1} if gpu and tier in ("model", "all") else None
    window = max(4, 2 * sum(slots.values()))
    futures: dict = {}
    pending = as_completed(loop=client.loop)

    def submit_next(bar, bar_task) -> bool:
        for sid, task, warnings in source:
            if task is None:
                bar.update(bar_task, advance=1, description=f"{sid}: refused")
                continue
            task = {**task, "slots": slots}
            fut = client.submit(grade_task, task, key=f"grade-{sid}-{uuid.uuid4().hex[:8]}", pure=False,
                                retries=RETRIES if retries is None else retries, resources=resources)
            futures[fut] = (sid, warnings, time.monotonic())
            pending.add(fut)
            return True
        return False

    columns = (TextColumn("grading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn(), TextColumn("{task.description}"))
    with Progress(*columns, disable=not progress) as bar:
        bar_task = bar.add_task("", total=total)
        for _ in range(window):
            if not submit_next(bar, bar_task):
                break
        for fut in pending:
            sid, warnings, _ = futures.pop(fut)
            try:
                reply = fut.result()
                reply["result"] = validate_result(reply["result"], expected)
            except MalformedResult as exc:
                reply = {"result": failed_result(sid, "grading failed: the grading process's result was not "
                                                 "well-formed", str(exc), expected)}
            except BaseException as exc:  # noqa: BLE001 - a lost worker, a refusing worker: this submission only
                if client.status != "running" or isinstance(exc, CancelledError | asyncio.CancelledError):
                    raise ClusterUnavailable(f"lost the Dask cluster ({type(exc).__name__}: {exc}); run the same "
                                             "command again to grade the rest") from None
                if not isinstance(exc, Exception):
                    raise
                learner, instructor, retry = _failure(exc)
                log(f"{sid}: {learner} ({instructor[:300]})")
                reply = {"result": failed_result(sid, learner, instructor, expected)}
                reply["result"].stages[0].details["retry"] = retry
            fut.release()
            result = reply["result"]
            bar.update(bar_task, advance=1, description=f"{sid}: {result.score:g}/{result.max_score:g}")
            yield sid, reply, warnings
            submit_next(bar, bar_task)


def report_overhead(timings: list[dict], log: Callable[[str], None]) -> None:
    """Per-task overhead: a task's time on its worker minus the grading it ran (unpacking the zip,
    starting the child, validating), median over the batch."""
    over = [t["task_s"] - t["grading_s"] for t in timings if "task_s" in t and "grading_s" in t]
    if over:
        log(f"{len(over)} task(s) graded; per-task overhead on the workers: median {statistics.median(over):.2f} s "
            f"(max {max(over):.2f} s) over the grading itself")
