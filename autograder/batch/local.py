"""The batch over a class (``grade_batch``): the client side, and the only writer of ``OUT``.

The batch process is the class's judge (docs/security.md, "The shape"):

- It discovers the submissions and gives each a normalised student id (:func:`normalise_id`;
  two submissions that map to one id are graded under distinct ids, each with a warning).
- It makes a fresh, safe copy of each one (:func:`prepare`: plain files within ``course.caps``;
  zips through :func:`extract_zip`), refusing a submission with a message, and zips the copy: a
  Dask task carries those bytes and the course version (:mod:`autograder.batch.task`), never a
  path, so the same task runs on this machine, a lab machine or a Slurm node.
- On the worker, one child process per submission (:mod:`autograder.batch.child`) grades the
  copy and sends its result back as JSON on a private stdout; the result is validated
  (:func:`validate_result`) on the worker and again here. A child that dies, hangs or lies fails
  that submission only. A Dask worker that dies is retried elsewhere (a bounded number of
  times, :mod:`autograder.batch.engine`); after that the submission fails with a message.
- Only this process writes ``OUT`` (:mod:`autograder.batch.store`): each result as soon as it
  arrives, atomically, so an interrupted batch resumes where it stopped; result files that changed
  while the batch ran are restored, files it did not write are removed.
- The run is a :class:`~autograder.batch.live.Batch` (its stop, its live children): an interrupted
  batch (Ctrl-C, a lost cluster) stops its tasks and kills its children before it re-raises.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from autograder import procs
from autograder.batch import engine
from autograder.batch import task as batch_task
from autograder.batch.store import kept_results, place_run_files, restore, result_path, snapshot, write_atomic
from autograder.batch.submissions import Refused, Submission, discover, zip_copy
from autograder.batch.validate import Expected, expected_stages, failed_result, time_limit
from autograder.course.manifest import SubmissionCaps, load_course
from autograder.reports.results import GradeResult
from autograder.sandbox.plain_files import last_change


def grade_batch(submissions: Path, out: Path, *, workers: int = 1, stages: list[str] | None = None,
                tier: str = "structural", regrade: bool = False, progress: bool = True,
                caps: SubmissionCaps | None = None, limit_s: float | None = None, require_sandbox: bool = False,
                cluster: str = "local", scheduler: str | None = None, retries: int | None = None,
                stats: dict | None = None, log: Callable[[str], None] | None = None,
                sandbox_off: str | None = None) -> list[GradeResult]:
    """Grade every student in ``submissions`` into ``out``; returns all results (old and new), by id.

    ``cluster`` is ``local`` (a LocalCluster of ``workers`` workers on this machine) or ``slurm``;
    ``scheduler`` (``tcp://HOST:PORT``) uses a running Dask cluster instead. ``caps`` defaults to the
    manifest's ``[sandbox.submission]``, ``limit_s`` (seconds per submission) to :func:`time_limit`.
    A student whose result file is a well-formed result of the course is not graded again unless
    ``regrade``. ``stats`` (a dict) receives the per-task timings. ``sandbox_off`` (a reason) grades
    without the jail on every worker (the CLI's AUTOGRADER_SANDBOX=off); else each worker detects it.
    """
    say = log or (lambda m: print(f"grade-batch: {m}", file=sys.stderr))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    expected = expected_stages(tier, stages)
    caps = caps or load_course().caps
    students = _discover(Path(submissions), say)
    written = snapshot(out)
    results = {} if regrade else kept_results(out, [s.id for s in students], written, say)
    todo = [s for s in students if s.id not in results]
    workers = max(1, workers)
    local_threads = max(1, procs.cores() // workers) if scheduler is None and cluster == "local" else None
    base = {"course_version": batch_task.course_version(), "tier": tier, "stages": stages,
            "limit_s": limit_s or time_limit(tier, stages), "require_sandbox": require_sandbox,
            "sandbox_off": sandbox_off,
            "caps": caps.__dict__, "threads": local_threads, "expected": {k: v.__dict__ for k, v in expected.items()},
            "hide": [str(out.resolve()), str(out.absolute())]}  # no grading process is told where OUT is
    recorder = _Recorder(out, tier, todo, written, results)
    timings: list[dict] = []
    try:
        if todo:
            tasks = _tasks(todo, base, caps, expected, recorder)
            timings = _grade(tasks, len(todo), recorder, tier=tier, expected=expected, cluster=cluster,
                             scheduler=scheduler, workers=workers, retries=retries, progress=progress, log=say)
    finally:
        restore(out, written, say)
    if timings:
        engine.report_overhead(timings, say)
    if stats is not None:
        stats["tasks"] = timings
    return [results[s.id] for s in students]


def _discover(submissions: Path, say: Callable[[str], None]) -> list[Submission]:
    """The class's submissions, each under its student id; the first warning of each is said."""
    students = discover(submissions)
    for sub in students:
        for note in sub.warnings[:1]:
            say(f"{sub.source.name} -> {sub.id}: {note}")
    return students


class _Recorder:
    """Writes each result into ``OUT`` as it arrives (atomically), and keeps what it wrote: the
    batch restores exactly that at its end."""

    def __init__(self, out: Path, tier: str, todo: list[Submission], written: dict[str, str],
                 results: dict[str, GradeResult]) -> None:
        self.out, self.tier, self.written, self.results = out, tier, written, results
        self.warnings = {s.id: s.warnings for s in todo}
        self.sources = {s.id: s.source for s in todo}

    def record(self, sid: str, result: GradeResult, runs: dict[str, bytes], warnings: list[str]) -> None:
        if runs or self.tier in ("model", "all"):
            place_run_files(runs, self.out / "runs" / sid, result)
        result.submission = sid
        result.warnings = [*self.warnings[sid], *warnings, *result.warnings]
        if sid in self.sources:  # the original, not the worker's unpacked copy
            result.submitted = last_change(self.sources[sid])
        text = json.dumps(result.to_dict(), indent=1)
        write_atomic(result_path(self.out, sid), text)
        self.written[sid] = text
        self.results[sid] = result


def _tasks(todo: list[Submission], base: dict, caps: SubmissionCaps, expected: dict[str, Expected],
           recorder: _Recorder) -> Iterator[tuple[str, dict | None, list[str]]]:
    """(id, task, warnings) per student, the task built from a safe zip of the submission; a student
    whose submission is refused is recorded as failed here, and yields no task."""
    for sub in todo:
        try:
            data, warnings = zip_copy(sub, caps)
        except Exception as exc:  # noqa: BLE001 - Refused, or an unreadable folder: this student only
            learner = str(exc) if isinstance(exc, Refused) else f"could not be graded: {type(exc).__name__}"
            recorder.record(sub.id, failed_result(sub.id, learner, str(exc), expected), {}, [])
            yield sub.id, None, []
            continue
        yield sub.id, {**base, "id": sub.id, "zip": data}, warnings


def _grade(tasks: Iterator, total: int, recorder: _Recorder, *, tier: str, expected: dict[str, Expected],
           cluster: str, scheduler: str | None, workers: int, retries: int | None, progress: bool,
           log: Callable[[str], None]) -> list[dict]:
    """Run the tasks on the cluster, recording each result as it arrives; returns the per-task timings.
    Whatever interrupts it stops the batch (:meth:`Batch.stop`) before it goes on up."""
    from autograder.batch.live import Batch

    batch, timings = Batch(), []
    try:
        with engine.open_client(cluster=cluster, scheduler=scheduler, workers=workers, batch=batch, log=log) as client:
            for sid, reply, warnings in engine.stream(client, tasks, tier=tier, expected=expected, total=total,
                                                      retries=retries, progress=progress, log=log):
                timings.append({"id": sid, **reply.get("timing", {}), "worker": reply.get("worker", "")})
                recorder.record(sid, reply["result"], reply.get("runs") or {}, warnings)
    except BaseException:
        batch.stop()
        raise
    return timings
