"""Starting the judge of one grade (``judge_server``), its job file, and reading its records.

The judge runs pytest on the *hidden grader files* only; the submission's folder is a path in
its job file, handed to the jailed runner (``grading/judge.py``), and never imported, executed
or put on ``sys.path`` here or in the judge. The judge's settings travel in that job file,
named on its command line (never in environment variables: its environment is an allow-list,
and nothing of the grader's may ride along into a jail). Each stage's judge appends one JSON
record per check to its own results file as the check ends, so a judge that hangs or crashes
half-way keeps what it recorded; records are validated and scored here.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

from autograder.course.manifest import Course, Stage
from autograder.grading.job_config import JudgeJob, StageSpec
from autograder.messages import stopped_after
from autograder.procs import kill_tree, trusted_env
from autograder.reports.results import CheckResult, StageResult
from autograder.sandbox.jail import SandboxStatus, cleanup_leftovers


@dataclasses.dataclass(frozen=True)
class JudgeRun:
    """What the judge server reported for one stage: its records, an error text, its seconds."""

    records: list[dict]
    error: str
    seconds: float


def write_job_file(work: Path, submission: Path, course: Course, stages: list[Stage], *, threads: int | None,
                   sandbox: SandboxStatus, slots: int, warm: bool = True) -> Path:
    """The judge server's settings, as a file named on its command line: where the submission is,
    the stages with their time limits, how to jail the runners. Never environment variables: a
    judge's environment is an allow-list (``procs.trusted_env``) and nothing of the grader's may
    ride along into a jail."""
    stages_ = tuple(StageSpec(s.grader_file.name, str(s.grader_file), s.timeout, s.budget) for s in stages)
    job = JudgeJob(str(submission.resolve()), str(work), stages_, course.limits, course.caps, sandbox,
                   threads=threads or 0, slots=slots, warm=warm)
    return job.write(work / "judge.json")


def run_judge(stages: list[Stage], submission: Path, work: Path, course: Course, *, threads: int | None,
              sandbox: SandboxStatus, slots: int = 1, warm: bool = True) -> dict[str, JudgeRun]:
    """Grade ``stages`` in one judge server (``slots`` of them side by side); one :class:`JudgeRun`
    per grader file name.

    Each call into a runner has its stage's timeout, every call of a stage together the stage's
    budget, and each stage's judge child that budget plus a margin (the server kills it); this
    limit, all the budgets together, is the backstop for a server that hangs.
    """
    job = write_job_file(work, submission, course, stages, threads=threads, sandbox=sandbox, slots=slots, warm=warm)
    # -P: the working folder (which holds the jobs' copies of the submission, one level down) never
    # joins sys.path; the judge imports the package and the libraries from where they are installed
    cmd = [sys.executable, "-P", "-m", "autograder.grading.judge_server", str(job)]
    limit = sum(s.budget + 30 for s in stages) + 60
    problem = ""
    with open(work / "judge.log", "w") as log:
        proc = subprocess.Popen(cmd, env=trusted_env(threads), cwd=work, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            kill_tree(proc)
            problem = stopped_after(limit)
        except BaseException:  # Ctrl-C: the server is in a session of its own and would go on
            kill_tree(proc)
            raise
        finally:
            cleanup_leftovers(work)  # the jails' folders and tmpfs, if the server could not remove them
    if not problem and proc.returncode != 0:
        tail = "\n".join((work / "judge.log").read_text(errors="replace").strip().splitlines()[-3:])
        problem = f"the grader process stopped early (exit code {proc.returncode}): {tail}"
    reported = {}
    for line in _lines(work / "stages.jsonl"):
        if isinstance(line.get("name"), str):
            reported[line["name"]] = line
    runs = {}
    for stage in stages:
        name = stage.grader_file.name
        records, problems = read_records(_text(work / f"{name}.jsonl"))
        told = reported.get(name, {})
        error = str(told.get("error", "")) if told else (problem or "the grader never ran this stage")
        error = "; ".join([*([error] if error else []), *problems[:3]])
        runs[name] = JudgeRun(records, error, float(told.get("seconds", 0) or 0))
    return runs


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _lines(path: Path) -> list[dict]:
    rows = []
    for line in _text(path).splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


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
