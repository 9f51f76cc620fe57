"""One submission as a Dask task: what runs on a worker (local, a lab machine or a Slurm node).

A task is plain data: the submission's bytes (a zip the client built from its safe copy), the
course version, the tier, stages and limits. No shared filesystem is assumed, so nothing in a task
names a path of the client's machine. The worker:

1. refuses the task when its own course version differs (:class:`CourseVersionMismatch`): a worker
   installed from another commit must never grade against other graders or splits;
2. extracts the zip with the batch's safe extractor (caps checked again) into a fresh folder;
3. grades it in a fresh child process (:func:`autograder.batch.child.grade_folder_in_child`),
   exactly as ``autograder grade`` would: a hostile submission can kill that child, never the Dask
   worker;
4. validates the child's reply and returns it as data, with the model tier's run files.

Warm-up (:func:`warm`) runs once per worker process: the course version, the resolved model and
the verified splits are computed once, not once per submission. A task on a worker of the batch's
own local cluster also finds its batch (its stop, its live children) through that worker
(:func:`autograder.batch.live.batch_of`); elsewhere there is none.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import tempfile
import threading
import time
from functools import lru_cache
from pathlib import Path

from autograder import REPO_ROOT, procs
from autograder.batch.child import grade_folder_in_child
from autograder.batch.store import pack_run_files
from autograder.batch.submissions import Refused, extract_zip
from autograder.batch.validate import Expected, failed_result
from autograder.course.manifest import SubmissionCaps


class WorkerNotReady(RuntimeError):
    """This worker cannot grade (its splits fail their hashes, the model cannot be resolved...): the
    cluster's fault, so the task is tried elsewhere and graded again when the batch is run again."""


class CourseVersionMismatch(WorkerNotReady):
    """The worker's course (manifest, graders, splits) is not the client's: it refuses to grade."""


def _course_files() -> list[Path]:
    from autograder.course.manifest import manifest_path

    graders = REPO_ROOT / "autograder" / "grading" / "graders"
    data = REPO_ROOT / "datasets_cache"
    files = [manifest_path(), REPO_ROOT / "autograder" / "course" / "split_hashes.py"]
    files += sorted(graders.rglob("*.py"))
    files += sorted(p for p in data.rglob("*") if p.is_file() and p.suffix in (".jsonl", ".json"))
    return files


@lru_cache(maxsize=1)
def course_version() -> str:
    """A hash of course.toml, the graders and the data splits (names and bytes): two machines with
    the same version grade a submission the same way. Computed once per process."""
    digest = hashlib.sha256()
    for path in _course_files():
        name = path.relative_to(REPO_ROOT).as_posix() if path.is_relative_to(REPO_ROOT) else path.name
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


_WARM_LOCK = threading.Lock()


def warm() -> dict:
    """Once per worker process (the tasks of one worker wait for the first to finish warming)."""
    with _WARM_LOCK:
        return _warm()


@lru_cache(maxsize=1)
def _warm() -> dict:
    """What a worker resolves once: course version, the course model (its fields travel in every
    child's request, so each result names it as ``autograder grade`` would), the splits checked
    against their hashes, the tiny models built."""
    start = time.monotonic()
    from autograder.course.models import resolve_model, tiny_model_dir
    from autograder.course.split_hashes import verified_bytes

    version = course_version()
    model = resolve_model()
    for name in ("sentiment", "emotion"):
        for split in ("train", "validation", "test"):
            verified_bytes(name, split)
    for kind in ("distilbert-base", "bert-base", "distilbert-classifier", "nli"):
        tiny_model_dir(kind)
    return {"version": version, "model": dataclasses.asdict(model), "warm_s": round(time.monotonic() - start, 2)}


def _this_worker():
    """The Dask worker running this task, or None (called outside a task)."""
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):
        return None


def _threads(task: dict) -> int:
    """Torch threads of this task's child: the client's split when it set one, else this host's
    cores divided by the grading slots the client saw on this host."""
    if task.get("threads"):
        return int(task["threads"])
    slots = 1
    worker = _this_worker()
    if worker is not None:
        host = worker.address.rsplit(":", 1)[0].split("://")[-1]
        slots = int((task.get("slots") or {}).get(host) or worker.state.nthreads or 1)
    cores = procs.cores()
    return max(1, cores // max(1, slots))  # the cores this worker may use (a Slurm allocation), not the node's


class TaskReleased:
    """``stop`` for a task's child: set once the scheduler no longer wants the task (its client died
    or cancelled the batch), so a killed client does not leave the cluster grading for nobody."""

    def __init__(self, worker) -> None:
        self.worker = worker
        self.key = worker.get_current_task() if worker is not None else None

    def is_set(self) -> bool:
        if self.worker is None:
            return False
        ts = self.worker.state.tasks.get(self.key)
        return ts is None or ts.state in ("cancelled", "released", "forgotten")


def _ready_for(task: dict) -> dict:
    """This worker's warm-up, once it is known to grade ``task`` as the client would."""
    try:
        info = warm()
    except Exception as exc:  # noqa: BLE001 - named for the instructor, retried elsewhere by Dask
        raise WorkerNotReady(f"this worker cannot grade: {type(exc).__name__}: {str(exc)[:500]}") from None
    if task["course_version"] != info["version"]:
        raise CourseVersionMismatch(
            f"this worker's course version is {info['version']}, the batch's is {task['course_version']}: the "
            "worker was installed from a different course.toml, graders or data splits; install the same "
            "commit of the course on every worker (pip install -e . in the same checkout) and restart it")
    return info


def grade_task(task: dict) -> dict:
    """Grade one submission on this worker; returns ``{"result", "runs", "timing", "worker"}``.

    Raises :class:`CourseVersionMismatch` (Dask retries the task elsewhere, then the client fails
    that submission with this message); every other failure is a failed result, never an exception.
    """
    from autograder.batch.live import batch_of

    start = time.monotonic()
    info = _ready_for(task)
    expected = {k: Expected(**v) for k, v in task["expected"].items()}
    caps = SubmissionCaps(**task["caps"])
    sid, runs = task["id"], {}
    tmp = Path(tempfile.mkdtemp(prefix="ag-task-"))
    try:
        archive = tmp / "submission.zip"
        archive.write_bytes(task["zip"])
        try:
            extract_zip(archive, tmp / "submission", caps)
        except Refused as exc:
            result = failed_result(sid, str(exc), str(exc), expected)
        else:
            archive.unlink()
            worker = _this_worker()
            result = grade_folder_in_child(
                sid, tmp / "submission", tmp, expected=expected, tier=task["tier"], stages=task["stages"],
                threads=_threads(task), limit_s=float(task["limit_s"]), require_sandbox=bool(task["require_sandbox"]),
                hide=task.get("hide", ()), model=info["model"], batch=batch_of(worker), stop=TaskReleased(worker),
                sandbox_off=task.get("sandbox_off"))
            if task["tier"] in ("model", "all"):
                runs = pack_run_files(tmp / "runs", result, caps)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    total = time.monotonic() - start
    return {"result": result.to_dict(), "runs": runs, "worker": _worker_address(),
            "timing": {"task_s": round(total, 3), "grading_s": result.duration_s, "warm_s": info["warm_s"]}}


def _worker_address() -> str:
    worker = _this_worker()
    return worker.address if worker is not None else "local"
