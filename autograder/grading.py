"""Grade a submission folder: each stage's hidden graders run in their own pytest process.

One process per stage isolates a submission that hangs, crashes or calls ``sys.exit``: it
costs that stage only, and the checks it recorded before stopping are kept.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from autograder.manifest import Stage, load_course
from autograder.results import CheckResult, GradeResult, StageResult


def grader_env(submission: Path, results: Path, threads: int | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "AUTOGRADER_SUBMISSION": str(submission.resolve()),
        "AUTOGRADER_RESULTS": str(results),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return env


def _run_pytest(stage: Stage, submission: Path, results: Path, threads: int | None) -> str:
    """Run the stage's grader file; returns an error text if the process did not finish normally."""
    cmd = [
        sys.executable, "-m", "pytest", str(stage.grader_file), "-p", "autograder.plugin",
        "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-o", "addopts=",
        f"--timeout={int(stage.timeout)}", "-W", "ignore",
    ]
    proc = subprocess.Popen(cmd, env=grader_env(submission, results, threads), cwd=results.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, text=True)
    try:
        out, _ = proc.communicate(timeout=stage.timeout + 30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return f"stopped after {stage.timeout + 30:.0f} s (the stage's time limit): something in it never finishes"
    if proc.returncode in (0, 1):
        return ""
    tail = "\n".join(out.strip().splitlines()[-3:])
    return f"the grader process stopped early (exit code {proc.returncode}): {tail}"


def stage_result(stage: Stage, recorded: list[dict], error: str, duration: float) -> StageResult:
    """Score recorded checks with the manifest's points; checks that never ran get 0 and say why."""
    by_name: dict[str, list[dict]] = {}
    for rec in recorded:
        by_name.setdefault(rec["name"], []).append(rec)
    checks = []
    for name, points in stage.checks.items():
        recs = by_name.get(name)
        if not recs:
            checks.append(CheckResult(name, False, 0.0, points, f"not graded: {error or 'the check did not run'}"))
            continue
        failed = [r for r in recs if r["outcome"] != "passed"]
        message = failed[0]["message"] if failed else ""
        checks.append(CheckResult(name, not failed, 0.0 if failed else points, points, message))
    unknown = sorted(set(by_name) - set(stage.checks))
    if unknown:
        error = (error + "; " if error else "") + f"checks missing from course.toml: {unknown}"
    score = sum(c.score for c in checks)
    first_fail = next((c.name for c in checks if not c.passed), None)
    hint = stage.hint_for(first_fail) if first_fail else ""
    return StageResult(id=stage.id, title=stage.title, score=score, max_score=stage.points, checks=checks,
                       hint=hint, error=error, duration_s=round(duration, 2))


def grade_stage(stage: Stage, submission: Path, *, threads: int | None = None) -> StageResult:
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"grade-{stage.id}-") as tmp:
        results = Path(tmp) / "results.jsonl"
        results.touch()
        error = _run_pytest(stage, submission, results, threads)
        recorded = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    return stage_result(stage, recorded, error, time.monotonic() - start)


def grade(submission: str | Path, *, stages: Iterable[str] | None = None, threads: int | None = None,
          jobs: int | None = None, progress=None) -> GradeResult:
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

    def run(stage: Stage) -> StageResult:
        if progress:
            progress(stage)
        return grade_stage(stage, submission, threads=threads)

    if jobs == 1:
        stage_results = [run(stage) for stage in chosen]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            stage_results = list(pool.map(run, chosen))
    return GradeResult(submission=str(submission), stages=stage_results,
                       duration_s=round(time.monotonic() - start, 2))
