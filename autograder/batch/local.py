"""Grading one submission in a fresh child process, and the batch over a class (``grade_batch``).

The batch process is the class's judge (DESIGN.md, "The trust boundary"):

- It discovers the submissions and gives each a normalised student id (:func:`normalise_id`;
  two submissions that map to one id are graded under distinct ids, each with a warning).
- It makes a fresh, safe copy of each one (:func:`prepare`: plain files within ``course.caps``;
  zips through :func:`extract_zip`), refusing a submission with a message, and zips the copy: a
  Dask task carries those bytes and the course version (:mod:`autograder.batch.task`), never a
  path, so the same task runs on this machine, a lab machine or a Slurm node.
- On the worker, one child process per submission (``python -m autograder.batch.worker``, in its
  own session, cwd in a temporary folder, the batch's ``OUT`` in neither its arguments nor its
  environment) grades the copy and sends its result back as JSON on a private stdout; the result is
  validated (:func:`validate_result`) on the worker and again here. A child that dies, hangs past
  the time limit (killed with its whole tree) or prints something that is not a well-formed result
  fails that submission only. A Dask worker that dies is retried elsewhere (a bounded number of
  times, :mod:`autograder.batch.engine`); after that the submission fails with a message.
- Only this process writes ``OUT`` (:mod:`autograder.batch.store`): each result as soon as it
  arrives, atomically, so an interrupted batch resumes where it stopped; result files that changed
  while the batch ran are restored, files it did not write are removed.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from autograder import procs
from autograder.course.manifest import SubmissionCaps, load_course
from autograder.procs import exit_reason, kill_tree, trusted_env
from autograder.reports.results import GradeResult

WORKER = [sys.executable, "-P", "-m", "autograder.batch.worker"]  # -P: the cwd is not put on sys.path

from autograder.batch.store import (  # noqa: E402
    kept_results,
    place_run_files,
    restore,
    result_path,
    snapshot,
    write_atomic,
)
from autograder.batch.submissions import Refused, discover, zip_copy  # noqa: E402
from autograder.batch.validate import (  # noqa: E402
    OUTPUT_CAP,
    STDERR_TAIL,
    Expected,
    MalformedResult,
    expected_stages,
    failed_result,
    time_limit,
    validate_result,
)

_STOPS: dict[str, threading.Event] = {}  # batch id -> its stop event (tasks of a local cluster see it)


# ----------------------------------------------------------------------------- the child process
class WorkerFailed(Exception):
    def __init__(self, learner: str, instructor: str):
        super().__init__(learner)
        self.learner, self.instructor = learner, instructor


_LIVE: set[subprocess.Popen] = set()
_LIVE_LOCK = threading.Lock()


def worker_env(threads: int | None, cwd: Path, hide: Iterable[str] = (), **extra: str) -> dict[str, str]:
    """The worker's environment: the judge's (offline, thread split), minus anything naming a path in
    ``hide`` (the batch's output folder: a grading process is never told where results go)."""
    marks = set(hide)
    env = {k: v for k, v in trusted_env(threads, **extra).items() if not any(len(m) > 1 and m in v for m in marks)}
    env.pop("OLDPWD", None)
    env["PWD"] = str(cwd)
    return env


def _kill_everything(proc: subprocess.Popen, seen: dict) -> None:
    """The worker's tree (its session, its descendants now) and every descendant ever seen."""
    kill_tree(proc)
    for p in seen.values():
        try:
            p.kill()  # psutil: refuses a pid that was reused
        except Exception:  # noqa: BLE001 - already gone
            pass


def run_worker(request: dict, cwd: Path, env: dict[str, str], limit_s: float,
               stop: threading.Event | None = None) -> dict:
    """Start one worker, send ``request``, return its JSON reply; :class:`WorkerFailed` otherwise."""
    import psutil

    proc = subprocess.Popen(WORKER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=cwd, env=env, start_new_session=True)
    with _LIVE_LOCK:
        _LIVE.add(proc)
    out, err = bytearray(), b""
    seen: dict[int, psutil.Process] = {}
    reason = ""
    sel = selectors.DefaultSelector()
    try:
        try:
            proc.stdin.write(json.dumps(request).encode() + b"\n")
            proc.stdin.flush()  # stdin stays open: the worker stops when it closes (this process died)
        except OSError:
            pass  # it died at once: said below
        sel.register(proc.stdout, selectors.EVENT_READ, "out")
        sel.register(proc.stderr, selectors.EVENT_READ, "err")
        deadline, exited, tracked = time.monotonic() + limit_s, None, 0.0
        while sel.get_map():
            now = time.monotonic()
            if exited is None and proc.poll() is not None:
                exited = now
                _kill_everything(proc, seen)  # what it left behind
            if exited is not None and now - exited > 5:
                break  # something it started still holds its pipes
            if now > deadline or (stop is not None and stop.is_set()):
                reason = "time" if now > deadline else "stopped"
                break
            if len(out) > OUTPUT_CAP:
                reason = "output"
                break
            if exited is None and now - tracked > 1:
                tracked = now
                try:
                    seen.update((p.pid, p) for p in psutil.Process(proc.pid).children(recursive=True))
                except psutil.Error:
                    pass
            for key, _ in sel.select(timeout=0.5):
                data = os.read(key.fd, 1 << 16)
                if not data:
                    sel.unregister(key.fileobj)
                elif key.data == "out":
                    out += data
                else:
                    err = (err + data)[-STDERR_TAIL:]
    finally:
        sel.close()
        _kill_everything(proc, seen)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                stream.close()
            except OSError:
                pass
        with _LIVE_LOCK:
            _LIVE.discard(proc)
    tail = err.decode("utf-8", "replace").strip()
    instructor = f"worker exit: {exit_reason(proc.returncode)}; stderr (end): {tail[-STDERR_TAIL:]}"
    if reason == "time":
        raise WorkerFailed(f"grading did not finish within {limit_s:.0f} s (the submission's time limit) and was "
                           "stopped", instructor)
    if reason == "stopped":
        raise WorkerFailed("grading was interrupted (the batch was stopped)", instructor)
    if reason == "output":
        raise WorkerFailed("grading was stopped: its output was larger than a result can be", instructor)
    if proc.returncode != 0:
        raise WorkerFailed(f"grading stopped before it finished: {exit_reason(proc.returncode)}", instructor)
    try:
        reply = json.loads(out.decode("utf-8"))
        if not isinstance(reply, dict) or not (isinstance(reply.get("result"), dict)
                                               or isinstance(reply.get("error"), str)):
            raise ValueError("not a worker reply")
    except ValueError:
        raise WorkerFailed("grading failed: the grading process's reply could not be read",
                           f"{instructor}; stdout (start): {bytes(out[:300])!r}") from None
    return reply


class _AnyStop:
    """Set when any of its events is (the local batch's stop, the task's release on a worker)."""

    def __init__(self, *events) -> None:
        self.events = [e for e in events if e is not None]

    def is_set(self) -> bool:
        return any(e.is_set() for e in self.events)


def grade_folder_in_child(sid: str, root: Path, tmp: Path, *, expected: dict[str, Expected], tier: str,
                          stages: list[str] | None, threads: int, limit_s: float, require_sandbox: bool,
                          hide: Iterable[str] = (), model: str | None = None, batch: str | None = None,
                          stop=None) -> GradeResult:
    """Grade the folder ``root`` (a fresh copy) in a child process, validate its reply; never raises.

    The child's working folder and scratch live in ``tmp``; ``model`` (the worker's resolved course
    model) is handed over through ``COURSE_MODEL`` so the child does not resolve it again.
    """
    stop = _AnyStop(_STOPS.get(batch or ""), stop)
    if stop.is_set():
        return failed_result(sid, "grading was interrupted (the batch was stopped)", "", expected)
    try:
        (tmp / "cwd").mkdir(exist_ok=True)
        request = {"submission": str(root), "tier": tier, "stages": stages, "threads": threads,
                   "work_dir": str(tmp / "runs"), "require_sandbox": require_sandbox}
        env = worker_env(threads, tmp / "cwd", hide, **({"COURSE_MODEL": model} if model else {}))
        try:
            reply = run_worker(request, tmp / "cwd", env, limit_s, stop)
            if "error" in reply:
                raise WorkerFailed(f"could not be graded: {str(reply['error'])[:300]}",
                                   str(reply.get("traceback", ""))[-STDERR_TAIL:])
            result = validate_result(reply["result"], expected)
        except WorkerFailed as exc:
            return failed_result(sid, exc.learner, exc.instructor, expected)
        except MalformedResult as exc:
            return failed_result(sid, "grading failed: the grading process's result was not well-formed",
                                 str(exc), expected)
        result.submission = sid
        return result
    except Exception as exc:  # noqa: BLE001 - one submission never stops the batch
        return failed_result(sid, f"could not be graded: {type(exc).__name__}", repr(exc), expected)


# ----------------------------------------------------------------------------- the batch
def grade_batch(submissions: Path, out: Path, *, workers: int = 1, stages: list[str] | None = None,
                tier: str = "structural", regrade: bool = False, progress: bool = True,
                caps: SubmissionCaps | None = None, limit_s: float | None = None, require_sandbox: bool = False,
                cluster: str = "local", scheduler: str | None = None, retries: int | None = None,
                stats: dict | None = None, log: Callable[[str], None] | None = None) -> list[GradeResult]:
    """Grade every student in ``submissions`` into ``out``; returns all results (old and new), by id.

    ``cluster`` is ``local`` (a LocalCluster of ``workers`` workers on this machine) or ``slurm``;
    ``scheduler`` (``tcp://HOST:PORT``) uses a running Dask cluster instead. ``caps`` defaults to the
    manifest's ``[sandbox.submission]``, ``limit_s`` (seconds per submission) to :func:`time_limit`.
    A student whose result file is a well-formed result of the course is not graded again unless
    ``regrade``. ``stats`` (a dict) receives the per-task timings.
    """
    from autograder.batch import engine
    from autograder.batch.task import course_version

    def say(msg: str) -> None:
        (log or (lambda m: print(f"grade-batch: {m}", file=sys.stderr)))(msg)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    expected = expected_stages(tier, stages)
    caps = caps or load_course().caps
    limit_s = limit_s or time_limit(tier, stages)
    students = discover(Path(submissions))
    for sub in students:
        for note in sub.warnings[:1]:
            say(f"{sub.source.name} -> {sub.id}: {note}")
    written = snapshot(out)
    results = {} if regrade else kept_results(out, [s.id for s in students], written, say)
    todo = [s for s in students if s.id not in results]
    batch_id, workers = uuid.uuid4().hex, max(1, workers)
    _STOPS[batch_id] = threading.Event()
    local_threads = max(1, procs.cores() // workers) if scheduler is None and cluster == "local" else None
    base = {"course_version": course_version(), "tier": tier, "stages": stages, "limit_s": limit_s,
            "require_sandbox": require_sandbox, "caps": caps.__dict__, "threads": local_threads, "batch": batch_id,
            "expected": {k: v.__dict__ for k, v in expected.items()}, "hide": [str(out.resolve()), str(out.absolute())]}
    by_id = {s.id: s for s in todo}
    timings: list[dict] = []

    def record(sid: str, result: GradeResult, runs: dict[str, bytes], warnings: list[str]) -> None:
        if runs or tier in ("model", "all"):
            place_run_files(runs, out / "runs" / sid, result)
        result.submission = sid
        result.warnings = [*by_id[sid].warnings, *warnings, *result.warnings]
        text = json.dumps(result.to_dict(), indent=1)
        write_atomic(result_path(out, sid), text)
        written[sid] = text
        results[sid] = result

    def tasks():
        for sub in todo:
            try:
                data, warnings = zip_copy(sub, caps)
            except Exception as exc:  # noqa: BLE001 - Refused, or an unreadable folder: this student only
                learner = str(exc) if isinstance(exc, Refused) else f"could not be graded: {type(exc).__name__}"
                record(sub.id, failed_result(sub.id, learner, str(exc), expected), {}, [])
                yield sub.id, None, []
                continue
            yield sub.id, {**base, "id": sub.id, "zip": data}, warnings

    try:
        if todo:
            with engine.open_client(cluster=cluster, scheduler=scheduler, workers=workers, log=say) as client:
                for sid, reply, warnings in engine.stream(client, tasks(), tier=tier, expected=expected,
                                                          total=len(todo), retries=retries, progress=progress, log=say):
                    if reply is not None:
                        timings.append({"id": sid, **reply.get("timing", {}), "worker": reply.get("worker", "")})
                        record(sid, reply["result"], reply.get("runs") or {}, warnings)
    except BaseException:
        _STOPS[batch_id].set()
        with _LIVE_LOCK:
            live = list(_LIVE)
        for proc in live:
            kill_tree(proc)
        raise
    finally:
        _STOPS.pop(batch_id, None)
        restore(out, written, say)
    if timings:
        engine.report_overhead(timings, say)
    if stats is not None:
        stats["tasks"] = timings
    return [results[s.id] for s in students]
