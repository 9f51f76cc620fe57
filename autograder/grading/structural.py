"""Grade a submission folder: the structural tier, and the entry point of every tier.

The stages are shared out among ``jobs`` judge processes (``judge_process``), side by side on
the cores; each judge grades its stages one after the other, each stage with its own runner
forked from one warm zygote (``warm``). A submission that hangs, crashes or calls
``sys.exit`` still costs only the stage it was in, and checks already recorded are kept.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from autograder.course.manifest import Stage, load_course
from autograder.grading.judge_process import read_records, run_judge, stage_result
from autograder.reports.results import GradeResult, StageResult
from autograder.sandbox.jail import SandboxStatus, detect

__all__ = ["grade", "grade_stage", "grade_submission", "read_records", "stage_result"]


def grade_stages(stages: list[Stage], submission: Path, *, threads: int | None = None,
                 sandbox: SandboxStatus | None = None, warm: bool = True) -> list[StageResult]:
    """Grade ``stages`` in one judge process (one after the other, runners forked warm)."""
    start = time.monotonic()
    sandbox = sandbox or detect()
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        results = Path(tmp) / "results.jsonl"
        results.touch()
        error = run_judge(stages, submission, results, threads, sandbox, warm=warm)
        recorded, problems = read_records(results.read_text(errors="replace"))
    if problems:
        error = "; ".join([*([error] if error else []), *problems[:3]])
    alone = len(stages) == 1
    results = []
    for stage in stages:
        mine = [r for r in recorded if _in(stage, r)]
        complete = set(stage.checks) <= {r["name"] for r in mine}
        results.append(stage_result(stage, mine, "" if complete and not alone else error,
                                    time.monotonic() - start if alone else _duration(stage, mine)))
    return results


def _in(stage: Stage, record: dict) -> bool:
    return str(record.get("nodeid", "")).split("::")[0].endswith(stage.grader_file.name)


def _duration(stage: Stage, recorded: list[dict]) -> float:
    """The stage's share of its judge's time: its checks' set-up and calls (its runner's fork included)."""
    return sum(float(r.get("duration", 0) or 0) for r in recorded if isinstance(r.get("duration", 0), (int, float)))


def grade_stage(stage: Stage, submission: Path, *, threads: int | None = None,
                sandbox: SandboxStatus | None = None, warm: bool = True) -> StageResult:
    return grade_stages([stage], submission, threads=threads, sandbox=sandbox, warm=warm)[0]


def grade(submission: str | Path, *, stages: Iterable[str] | None = None, threads: int | None = None,
          jobs: int | None = None, progress=None, sandbox: SandboxStatus | None = None,
          warm: bool = True) -> GradeResult:
    """Grade ``submission`` (a folder with the stage modules) on the structural tier.

    The stages are dealt out round-robin to ``jobs`` judge processes (default: one per CPU
    core, at most 2) running side by side, each with ``cores // jobs`` torch threads.
    """
    submission = Path(submission)
    course = load_course()
    chosen = list(course.stages) if stages is None else [course.stage(s) for s in stages]
    if not submission.is_dir():
        raise FileNotFoundError(f"{submission} is not a folder: point `autograder grade` at a submission folder")
    cores = os.cpu_count() or 1
    jobs = max(1, min(jobs or min(cores, 2), len(chosen) or 1))
    threads = threads or max(1, cores // jobs)
    start = time.monotonic()
    sandbox = sandbox or detect()

    def run(group: list[Stage]) -> list[StageResult]:
        for stage in group:
            if progress:
                progress(stage)
        return grade_stages(group, submission, threads=threads, sandbox=sandbox, warm=warm)

    groups = [chosen[i::jobs] for i in range(jobs)]
    if jobs == 1:
        graded = [run(group) for group in groups]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            graded = list(pool.map(run, groups))
    by_id = {r.id: r for results in graded for r in results}
    stage_results = [by_id[stage.id] for stage in chosen]
    return GradeResult(submission=str(submission), stages=stage_results,
                       duration_s=round(time.monotonic() - start, 2), sandbox=sandbox.describe())


def grade_submission(submission: str | Path, *, tier: str = "structural", stages: Iterable[str] | None = None,
                     model=None, sandbox: SandboxStatus | None = None, require_sandbox: bool = False,
                     work_dir: Path | None = None, threads: int | None = None, jobs: int | None = None,
                     progress=None) -> GradeResult:
    """THE entry point: grade one submission on a tier (structural, model or all).

    Used by the CLI, batch grading and the release check. ``model`` is the resolved course
    model (default: :func:`autograder.course.models.resolve_model`); the sandbox status is detected
    once and stated in the result; ``require_sandbox`` refuses to grade without it.
    """
    from autograder.course.models import resolve_model
    from autograder.sandbox.jail import copy_plain_files, require

    submission = Path(submission)
    sandbox = sandbox or detect()
    require(sandbox, require_sandbox)
    model = model or resolve_model()
    start = time.monotonic()
    result = grade(submission, stages=[] if tier == "model" else stages, threads=threads, jobs=jobs,
                   progress=progress, sandbox=sandbox)
    if tier in ("model", "all"):
        from autograder.grading.model_tier import grade_notebooks

        work = Path(work_dir or Path("grading_runs") / submission.resolve().name)
        result.stages.extend(grade_notebooks(submission, work, threads=threads, progress=progress,
                                             sandbox=sandbox, model=model))
    result.warnings = copy_plain_files(submission, None, load_course().caps)
    result.sandbox = sandbox.describe()
    course = load_course()
    result.course = course.title
    result.course_stages = [s.id for s in course.stages] + [n.id for n in course.notebooks]
    result.model = model.path
    result.duration_s = round(time.monotonic() - start, 1)
    return result
