"""One judge process: pytest over some stages' hidden grader files, its job file, its records.

The judge runs pytest on the *hidden grader files* only; the submission's folder is a path in
its job file, handed to the jailed runner (``grading/judge.py``), and never imported, executed
or put on ``sys.path`` here or in the judge. The judge's settings travel in that job file,
named on its command line (never in environment variables: its environment is an allow-list,
and nothing of the grader's may ride along into a jail). It appends one JSON record per check
to the results file as the check ends, so a judge that hangs or crashes half-way keeps what it
recorded; records are validated and scored here.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

from autograder.course.manifest import Stage, load_course
from autograder.procs import kill_tree, trusted_env
from autograder.reports.results import CheckResult, StageResult
from autograder.sandbox.jail import SandboxStatus
from autograder.sandbox.limits import judge_preexec, new_cgroups


def write_job_file(path: Path, submission: Path, results: Path, threads: int | None, stages: list[Stage],
                   sandbox: SandboxStatus, *, warm: bool = True) -> Path:
    """The judge's settings, as a file named on its command line: where the submission is, where
    verdicts go, the time limits and how to jail the runner. Never environment variables: a
    judge's environment is an allow-list (``procs.trusted_env``) and nothing of the grader's may
    ride along into a jail."""
    per_stage = {s.grader_file.name: {"timeout": s.timeout, "budget": s.budget} for s in stages}
    path.write_text(json.dumps({"submission": str(submission.resolve()), "results": str(results),
                                "stages": per_stage, "warm": warm, "threads": threads or 0,
                                "sandbox": dataclasses.asdict(sandbox)}))
    return path


def run_judge(stages: list[Stage], submission: Path, results: Path, threads: int | None,
              sandbox: SandboxStatus, *, warm: bool = True) -> str:
    """Run the stages' grader files in one judge process; returns an error text if it did not
    finish normally.

    Each call into a runner has its stage's timeout and every call of a stage together the
    stage's budget; pytest-timeout is a backstop for a judge that waits too long, and the process
    limit (the stages' budgets together) covers start-up and tear-down too. The judge runs in a
    memory cgroup of its own where there is one.
    """
    job = write_job_file(results.parent / "job.json", submission, results, threads, stages, sandbox, warm=warm)
    cmd = [
        sys.executable, "-m", "pytest", *[str(s.grader_file) for s in stages], "-p", "autograder.grading.plugin",
        f"--autograder-job={job}", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-o", "addopts=",
        f"--timeout={int(max(s.timeout for s in stages)) + 30}", "-W", "ignore",
    ]
    cgroups = new_cgroups(memory_mb=load_course().limits.judge_memory_mb, tag="judge")
    try:
        proc = subprocess.Popen(cmd, env=trusted_env(threads), cwd=results.parent, preexec_fn=judge_preexec(cgroups),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, text=True)
        limit = sum(s.budget for s in stages) + 60
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
