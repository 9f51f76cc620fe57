"""Grade a submission folder: each stage's hidden graders run in their own pytest process.

One process per stage isolates a submission that hangs, crashes or calls ``sys.exit``: it
costs that stage only, and the checks it recorded before stopping are kept.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from autograder.course.manifest import Stage, load_course
from autograder.procs import kill_tree, trusted_env
from autograder.reports.results import CheckResult, GradeResult, StageResult
from autograder.sandbox.jail import SandboxStatus, detect
from autograder.sandbox.limits import judge_preexec, new_cgroups


def write_job_file(path: Path, submission: Path, results: Path, threads: int | None, stage: Stage,
                   sandbox: SandboxStatus) -> Path:
    """The judge's settings, as a file named on its command line: where the submission is, where
    verdicts go, the time limits and how to jail the runner. Never environment variables: a
    judge's environment is an allow-list (``procs.trusted_env``) and nothing of the grader's may
    ride along into a jail."""
    path.write_text(json.dumps({"submission": str(submission.resolve()), "results": str(results),
                                "timeout": stage.timeout, "budget": stage.budget, "threads": threads or 0,
                                "sandbox": dataclasses.asdict(sandbox)}))
    return path


def _run_pytest(stage: Stage, submission: Path, results: Path, threads: int | None, sandbox: SandboxStatus) -> str:
    """Run the stage's grader file (the judge); returns an error text if it did not finish normally.

    Each call into the runner has the stage's timeout and every call together the stage's budget;
    pytest-timeout is a backstop for a judge that waits too long, and the process limit covers
    start-up and tear-down too. The judge runs in a memory cgroup of its own where there is one.
    """
    job = write_job_file(results.parent / "job.json", submission, results, threads, stage, sandbox)
    cmd = [
        sys.executable, "-m", "pytest", str(stage.grader_file), "-p", "autograder.grading.plugin",
        f"--autograder-job={job}", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-o", "addopts=",
        f"--timeout={int(stage.timeout) + 30}", "-W", "ignore",
    ]
    cgroups = new_cgroups(memory_mb=load_course().limits.judge_memory_mb, tag="judge")
    try:
        proc = subprocess.Popen(cmd, env=trusted_env(threads), cwd=results.parent, preexec_fn=judge_preexec(cgroups),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, text=True)
        limit = stage.budget + 60
        try:
            out, _ = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            kill_tree(proc)
            return f"stopped after {limit:.0f} s (the stage's time limit): something in it never finishes"
    finally:
        oom = cgroups.oom_killed()
        cgroups.release()
    if oom:
        return ("the grader ran out of memory reading what the submission sent back "
                f"(its limit is {load_course().limits.judge_memory_mb} MiB): return smaller values")
    if proc.returncode in (0, 1):
        return ""
    tail = "\n".join(out.strip().splitlines()[-3:])
    return f"the grader process stopped early (exit code {proc.returncode}): {tail}"


def read_records(text: str) -> tuple[list[dict], list[str]]:
    """The judge's JSONL records; a line that is not a well-formed record is reported, never fatal."""
    records, problems = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            problems.append(f"line {number} of the results is not JSON")
            continue
        if not (isinstance(rec, dict) and isinstance(rec.get("name"), str)
                and rec.get("outcome") in ("passed", "failed") and isinstance(rec.get("message", ""), str)):
            problems.append(f"line {number} of the results is not a check record")
            continue
        records.append(rec)
    return records, problems


def stage_result(stage: Stage, recorded: list[dict], error: str, duration: float) -> StageResult:
    """Score recorded checks with the manifest's points; checks that never ran get 0 and say why.

    A verdict needs exactly one record per check: a check recorded twice is not trusted.
    """
    by_name: dict[str, list[dict]] = {}
    for rec in recorded:
        by_name.setdefault(rec["name"], []).append(rec)
    checks = []
    for name, points in stage.checks.items():
        recs = by_name.get(name)
        if not recs:
            checks.append(CheckResult(name, False, 0.0, points, f"not graded: {error or 'the check did not run'}"))
            continue
        if len(recs) > 1:
            checks.append(CheckResult(name, False, 0.0, points, "not graded: the check was recorded more than once"))
            continue
        failed = recs[0]["outcome"] != "passed"
        checks.append(CheckResult(name, not failed, 0.0 if failed else points, points,
                                  recs[0]["message"][:600] if failed else ""))
    unknown = sorted(set(by_name) - set(stage.checks))
    if unknown:
        error = (error + "; " if error else "") + f"checks missing from course.toml: {unknown}"
    score = sum(c.score for c in checks)
    first_fail = next((c.name for c in checks if not c.passed), None)
    hint = stage.hint_for(first_fail) if first_fail else ""
    return StageResult(id=stage.id, title=stage.title, score=score, max_score=stage.points, checks=checks,
                       hint=hint, error=error, duration_s=round(duration, 2))


def grade_stage(stage: Stage, submission: Path, *, threads: int | None = None,
                sandbox: SandboxStatus | None = None) -> StageResult:
    start = time.monotonic()
    sandbox = sandbox or detect()
    with tempfile.TemporaryDirectory(prefix=f"grade-{stage.id}-") as tmp:
        results = Path(tmp) / "results.jsonl"
        results.touch()
        error = _run_pytest(stage, submission, results, threads, sandbox)
        recorded, problems = read_records(results.read_text(errors="replace"))
    if problems:
        error = "; ".join([*([error] if error else []), *problems[:3]])
    return stage_result(stage, recorded, error, time.monotonic() - start)


def grade(submission: str | Path, *, stages: Iterable[str] | None = None, threads: int | None = None,
          jobs: int | None = None, progress=None, sandbox: SandboxStatus | None = None) -> GradeResult:
    """Grade ``submission`` (a folder with the stage modules) on the structural tier.

    Stages run ``jobs`` at a time (default: one per CPU core, at most 2), each process with
    ``cores // jobs`` torch threads: most of a stage's time is single-threaded imports.
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

    def run(stage: Stage) -> StageResult:
        if progress:
            progress(stage)
        return grade_stage(stage, submission, threads=threads, sandbox=sandbox)

    if jobs == 1:
        stage_results = [run(stage) for stage in chosen]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            stage_results = list(pool.map(run, chosen))
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
