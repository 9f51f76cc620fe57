"""One submission graded in a fresh child process (``python -m autograder.batch.worker``).

Why a child per submission: a hostile submission can kill, hang or flood the process that grades it;
that process is this child, never a Dask worker nor the batch. The child runs in its own session,
its cwd in a temporary folder, with the judge's environment minus anything naming the batch's output
folder; it gets its request (the submission's fresh copy, tier, stages, threads, the course model)
as one JSON line on stdin and answers with one JSON reply on a private stdout. A child that dies,
hangs past the time limit (killed with its whole tree: :mod:`autograder.batch.kill`) or prints
something that is not a well-formed result fails that submission only.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import psutil

from autograder.batch.kill import end_worker, record_descendants
from autograder.batch.request import GradeRequest
from autograder.batch.validate import (
    OUTPUT_CAP,
    STDERR_TAIL,
    Expected,
    MalformedResult,
    failed_result,
    validate_result,
)
from autograder.course.models import ResolvedModel
from autograder.procs import exit_reason, trusted_env
from autograder.reports.results import GradeResult
from autograder.sandbox.jail import sweep_orphans

if TYPE_CHECKING:
    from autograder.batch.live import Batch

WORKER = [sys.executable, "-P", "-m", "autograder.batch.worker"]  # -P: the cwd is not put on sys.path
GRACE_S = 5  # seconds a child's pipes may stay open after it exited (something it started holds them)


class Stop(Protocol):
    """Anything that says when to stop grading (``threading.Event``, a batch, a released task)."""

    def is_set(self) -> bool: ...


class WorkerFailed(Exception):
    """The child did not give a usable reply: what the learner is told, and what the instructor is."""

    def __init__(self, learner: str, instructor: str):
        super().__init__(learner)
        self.learner, self.instructor = learner, instructor


def worker_env(threads: int | None, cwd: Path, hide: Iterable[str] = ()) -> dict[str, str]:
    """The worker's environment: the judge's (offline, thread split), minus anything naming a path in
    ``hide`` (the batch's output folder: a grading process is never told where results go)."""
    marks = set(hide)
    env = {k: v for k, v in trusted_env(threads).items() if not any(len(m) > 1 and m in v for m in marks)}
    env.pop("OLDPWD", None)
    env["PWD"] = str(cwd)
    return env


# ----------------------------------------------------------------------------- one child, supervised
def run_worker(request: GradeRequest, cwd: Path, env: dict[str, str], limit_s: float, stop: Stop | None = None,
               batch: Batch | None = None) -> dict:
    """Start one worker, send ``request``, return its JSON reply; :class:`WorkerFailed` otherwise.
    ``batch`` (a local batch) counts the worker among its live ones while it runs."""
    proc = subprocess.Popen(WORKER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=cwd, env=env, start_new_session=True)
    if batch is not None:
        batch.adopt(proc)
    try:
        _send(proc, request)
        out, err, reason = _supervise(proc, limit_s, stop)
    finally:
        if batch is not None:
            batch.release(proc)
    return _reply(proc, out, err, reason, limit_s)


def _send(proc: subprocess.Popen, request: GradeRequest) -> None:
    try:
        proc.stdin.write(request.to_json().encode() + b"\n")
        proc.stdin.flush()  # stdin stays open: the worker stops when it closes (this process died)
    except OSError:
        pass  # it died at once: said by its reply


def _supervise(proc: subprocess.Popen, limit_s: float, stop: Stop | None) -> tuple[bytes, bytes, str]:
    """Read the child's stdout and stderr until it is done or must be stopped, then end its tree.
    Returns (stdout, the end of stderr, why it was stopped: "time", "stopped", "output" or "")."""
    out, err, reason = bytearray(), b"", ""
    seen: dict[int, psutil.Process] = {}
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "out")
    sel.register(proc.stderr, selectors.EVENT_READ, "err")
    deadline, exited, tracked = time.monotonic() + limit_s, None, 0.0
    try:
        while sel.get_map():
            now = time.monotonic()
            if exited is None and proc.poll() is not None:
                exited = now
                end_worker(proc, seen)  # what it left behind
            if exited is not None and now - exited > GRACE_S:
                break  # something it started still holds its pipes
            reason = _must_stop(now, deadline, stop, len(out))
            if reason:
                break
            if exited is None and now - tracked > 1:
                tracked = now
                record_descendants(proc, seen)
            err = _read_ready(sel, out, err)
    finally:
        sel.close()
        end_worker(proc, seen)
        sweep_orphans()  # the jobs a killed worker could not clean up (its scratch tmpfs stays mounted)
        _close_pipes(proc)
    return bytes(out), err, reason


def _must_stop(now: float, deadline: float, stop: Stop | None, out_bytes: int) -> str:
    if now > deadline:
        return "time"
    if stop is not None and stop.is_set():
        return "stopped"
    return "output" if out_bytes > OUTPUT_CAP else ""


def _read_ready(sel: selectors.BaseSelector, out: bytearray, err: bytes) -> bytes:
    """Append what is ready on stdout to ``out``; return stderr's tail with what is ready on it."""
    for key, _ in sel.select(timeout=0.5):
        data = os.read(key.fd, 1 << 16)
        if not data:
            sel.unregister(key.fileobj)
        elif key.data == "out":
            out += data
        else:
            err = (err + data)[-STDERR_TAIL:]
    return err


def _close_pipes(proc: subprocess.Popen) -> None:
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        try:
            stream.close()
        except OSError:
            pass


def _reply(proc: subprocess.Popen, out: bytes, err: bytes, reason: str, limit_s: float) -> dict:
    """The child's reply, or :class:`WorkerFailed` saying why there is none."""
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
                           f"{instructor}; stdout (start): {out[:300]!r}") from None
    return reply


# ----------------------------------------------------------------------------- one submission
class _AnyStop:
    """Set when any of its events is (the local batch's stop, the task's release on a worker)."""

    def __init__(self, *events: Stop | None) -> None:
        self.events = [e for e in events if e is not None]

    def is_set(self) -> bool:
        return any(e.is_set() for e in self.events)


def grade_folder_in_child(sid: str, root: Path, tmp: Path, *, expected: dict[str, Expected], tier: str,
                          stages: list[str] | None, threads: int, limit_s: float, require_sandbox: bool,
                          hide: Iterable[str] = (), model: dict[str, str] | None = None, batch: Batch | None = None,
                          stop: Stop | None = None, sandbox_off: str | None = None) -> GradeResult:
    """Grade the folder ``root`` (a fresh copy) in a child process, validate its reply; never raises.

    The child's working folder and scratch live in ``tmp``; ``model`` (the worker's resolved course
    model: the fields of a :class:`~autograder.course.models.ResolvedModel`) travels in the request as
    a value, so the child does not resolve it again.
    ``batch`` is the local batch this grading belongs to (its stop, its live workers), if any.
    """
    stop = _AnyStop(batch, stop)
    if stop.is_set():
        return failed_result(sid, "grading was interrupted (the batch was stopped)", "", expected)
    try:
        (tmp / "cwd").mkdir(exist_ok=True)
        request = GradeRequest(str(root), str(tmp / "runs"), tier=tier, stages=tuple(stages) if stages else None,
                               threads=threads, require_sandbox=require_sandbox,
                               model=ResolvedModel(**model) if model else None, sandbox_off=sandbox_off)
        try:
            reply = run_worker(request, tmp / "cwd", worker_env(threads, tmp / "cwd", hide), limit_s, stop, batch)
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
