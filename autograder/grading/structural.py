"""Grade a submission folder: the structural tier, and the entry point of every tier.

The stages are shared out among ``jobs`` judge processes (``judge_process``), side by side on
the cores; each judge grades its stages one after the other, each stage with its own runner
forked from one warm zygote (``warm``). A submission that hangs, crashes or calls
``sys.exit`` still costs only the stage it was in, and checks already recorded are kept.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from autograder import procs
from autograder.course.manifest import Course, Stage, load_course
from autograder.grading.judge_process import read_records, run_judge, stage_result
from autograder.reports.results import GradeResult, StageResult
from autograder.sandbox.jail import SandboxStatus, detect

__all__ = ["grade", "grade_stage", "grade_submission", "read_records", "stage_result"]


def grade_stages(stages: list[Stage], submission: Path, *, threads: int | None = None,
                 sandbox: SandboxStatus | None = None, warm: bool = True, slots: int = 1,
                 course: Course | None = None) -> list[StageResult]:
    """Grade ``stages`` in one judge server: ``slots`` stages at a time, each in a judge child of
    its own, its runners forked warm (``judge_server``)."""
    course = course or load_course()
    sandbox = sandbox or detect()
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        runs = run_judge(stages, Path(submission), Path(tmp), course, threads=threads, sandbox=sandbox,
                         slots=slots, warm=warm)
    results = []
    for stage in stages:
        run = runs[stage.grader_file.name]
        complete = set(stage.checks) <= {r["name"] for r in run.records}
        results.append(stage_result(stage, run.records, "" if complete else run.error, run.seconds))
    return results


def grade_stage(stage: Stage, submission: Path, *, threads: int | None = None,
                sandbox: SandboxStatus | None = None, warm: bool = True) -> StageResult:
    return grade_stages([stage], submission, threads=threads, sandbox=sandbox, warm=warm)[0]


def grade(submission: str | Path, *, stages: Iterable[str] | None = None, threads: int | None = None,
          jobs: int | None = None, progress=None, sandbox: SandboxStatus | None = None,
          warm: bool = True, course: Course | None = None) -> GradeResult:
    """Grade ``submission`` (a folder with the stage modules) on the structural tier.

    One judge server runs the stages ``jobs`` at a time (default: one per core this process may
    use, at most 2), each with ``cores // jobs`` torch threads.
    """
    submission = Path(submission)
    course = course or load_course()
    chosen = list(course.stages) if stages is None else [course.stage(s) for s in stages]
    if not submission.is_dir():
        raise FileNotFoundError(f"{submission} is not a folder: point `autograder grade` at a submission folder")
    cores = procs.cores()
    jobs = max(1, min(jobs or min(cores, 2), len(chosen) or 1))
    threads = threads or max(1, cores // jobs)
    start = time.monotonic()
    sandbox = sandbox or detect()
    if progress:
        for stage in chosen:
            progress(stage)
    graded = grade_stages(chosen, submission, threads=threads, sandbox=sandbox, warm=warm, slots=jobs,
                          course=course) if chosen else []
    return GradeResult(submission=str(submission), stages=graded,
                       duration_s=round(time.monotonic() - start, 2), sandbox=sandbox.describe())


def grade_submission(submission: str | Path, *, tier: str = "structural", stages: Iterable[str] | None = None,
                     model=None, sandbox: SandboxStatus | None = None, require_sandbox: bool = False,
                     work_dir: Path | None = None, threads: int | None = None, jobs: int | None = None,
                     progress=None, course: Course | None = None) -> GradeResult:
    """THE entry point: grade one submission on a tier (structural, model or all).

    Used by the CLI, batch grading and the release check. ``model`` is the resolved course
    model (default: :func:`autograder.course.models.resolve_model`); the sandbox status is detected
    once and stated in the result; ``require_sandbox`` refuses to grade without it. The course is
    loaded once here (or given) and passed down.
    """
    from autograder.course.models import resolve_model
    from autograder.grading.leak_scan import review_lines
    from autograder.sandbox.jail import copy_plain_files, require
    from autograder.sandbox.plain_files import last_change

    submission = Path(submission)
    course = course or load_course()
    sandbox = sandbox or detect()
    require(sandbox, require_sandbox)
    model = model or resolve_model()
    start = time.monotonic()
    result = grade(submission, stages=[] if tier == "model" else stages, threads=threads, jobs=jobs,
                   progress=progress, sandbox=sandbox, course=course)
    if tier in ("model", "all"):
        from autograder.grading.model_tier import grade_notebooks

        work = Path(work_dir or Path("grading_runs") / submission.resolve().name)
        result.stages.extend(grade_notebooks(submission, work, threads=threads, progress=progress,
                                             sandbox=sandbox, model=model, course=course))
    result.warnings = copy_plain_files(submission, None, course.caps)
    result.review = review_lines(submission, course)  # hidden test texts in the submission's files
    result.submitted = last_change(submission)
    result.sandbox = sandbox.describe()
    result.course = course.title
    result.course_stages = [s.id for s in course.stages] + [n.id for n in course.notebooks]
    result.model = model.record()  # a name, revision and weights hash: never a local path
    result.duration_s = round(time.monotonic() - start, 1)
    return result
