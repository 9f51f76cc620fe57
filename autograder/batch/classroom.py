"""Collect student repositories for grading, where no student can change how they are graded.

``autograder collect ROSTER --out SUBMISSIONS`` clones every repository named in ROSTER into
``SUBMISSIONS/<student>/`` (then ``autograder grade-batch SUBMISSIONS`` grades them). ROSTER is
either a text file (one clone URL a line, or ``student_id URL``; ``#`` starts a comment) or a
GitHub Classroom CSV export (assignment grades: ``github_username``, ``roster_identifier``,
``student_repository_url``; a roster export with ``url_template``).

Each clone is shallow (``--depth 1``), never fetches a submodule, never prompts for a password
(``GIT_TERMINAL_PROMPT=0``) and may only use https, ssh or local paths (``GIT_ALLOW_PROTOCOL``):
``ext::`` transports, ``git://``, ``http://`` and URLs with a password in them are refused before
git sees them. With ``before`` (a deadline), the latest commit whose committer date is not after
it is checked out. A clone goes to ``SUBMISSIONS/.<student>.partial`` first and is renamed only
when it worked, so a failed clone leaves no half folder, and one failure never stops the rest.
Every row ends up in ``SUBMISSIONS/collect.csv`` (student, url, commit, committed_at, status,
message).
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path

from autograder.batch.roster import (  # noqa: F401 - re-exported: the roster is part of collecting
    Entry,
    RosterError,
    check_url,
    read_roster,
    redact,
    safe_student_id,
)

ALLOWED_PROTOCOLS = "https:ssh:file"
LOG_NAME = "collect.csv"


@dataclass
class Outcome:
    student: str
    url: str
    commit: str = ""
    committed_at: str = ""
    status: str = "error"  # ok | error | refused | skipped
    message: str = ""


# ------------------------------------------------------------------------------------------ git
def git_env() -> dict[str, str]:
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_ALLOW_PROTOCOL=ALLOWED_PROTOCOLS, GIT_LFS_SKIP_SMUDGE="1")
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    return env


_GIT_SAFE = ("-c", "submodule.recurse=false", "-c", "core.hooksPath=/dev/null")


def _git(args: list[str], *, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *_GIT_SAFE, *args], cwd=cwd, env=git_env(), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _last_line(proc: subprocess.CompletedProcess) -> str:
    lines = [ln.strip() for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(("warning:", "Cloning into", "hint:"))]
    return redact((useful or lines or ["git failed"])[-1])


def parse_deadline(value: str) -> datetime:
    """An ISO 8601 date or date-time (``2025-03-01T23:59:00+01:00``); no time zone means local time."""
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"deadline {value!r} is not an ISO 8601 date, e.g. 2025-03-01T23:59:00+01:00") from None


def clone_one(entry: Entry, out: Path, *, branch: str | None = None, before: datetime | None = None,
              refresh: bool = False, timeout: float = 300) -> Outcome:
    """Clone one repository into ``out/<student>``; never raises for a git or URL problem."""
    result = Outcome(student=entry.student, url=redact(entry.url))
    if not entry.url:
        result.status, result.message = "skipped", "no repository URL (the student has not accepted the assignment?)"
        return result
    why = check_url(entry.url)
    if why:
        result.status, result.message = "refused", f"URL refused: {why}"
        return result
    if not entry.student:
        result.status, result.message = "refused", "no student id"
        return result
    target = out / entry.student
    if target.exists() and not refresh:
        # only a clone of its own: in a plain folder git would report the enclosing repository
        own = (target / ".git").is_dir()
        info = _git(["log", "-1", "--format=%H %cI"], cwd=target, timeout=timeout) if own else None
        if info and info.returncode == 0:
            result.commit, _, result.committed_at = info.stdout.strip().partition(" ")
        result.status, result.message = "skipped", f"{target} already exists (pass --refresh to clone again)"
        return result
    partial = out / f".{entry.student}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        cmd = ["clone", "--depth", "1", "--no-tags", "--single-branch"]
        if branch:
            cmd += ["--branch", branch]
        proc = _git([*cmd, "--", entry.url, str(partial)], timeout=timeout)
        if proc.returncode != 0:
            result.message = f"git clone failed: {_last_line(proc)}"
            return result
        if before is not None:
            message = _checkout_before(partial, before, timeout)
            if message:
                result.message = message
                return result
        info = _git(["log", "-1", "--format=%H %cI"], cwd=partial, timeout=timeout)
        result.commit, _, result.committed_at = info.stdout.strip().partition(" ")
        if target.exists():
            shutil.rmtree(target)
        partial.rename(target)
        result.status = "ok"
        result.message = "cloned" + (f" at the last commit before {before.isoformat()}" if before else "")
        return result
    except subprocess.TimeoutExpired:
        result.message = f"git did not finish within {timeout:.0f} s"
        return result
    except OSError as exc:
        result.message = f"{type(exc).__name__}: {exc}"
        return result
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _checkout_before(repo: Path, before: datetime, timeout: float) -> str:
    """Check out the last commit not after ``before``; '' on success, else why not."""
    stamp = f"--before=@{int(before.timestamp())}"
    found = _git(["rev-list", "-1", stamp, "HEAD"], cwd=repo, timeout=timeout).stdout.strip()
    head = _git(["rev-parse", "HEAD"], cwd=repo, timeout=timeout).stdout.strip()
    if found != head:  # HEAD is after the deadline: fetch the rest of this branch's history
        if _git(["rev-parse", "--is-shallow-repository"], cwd=repo, timeout=timeout).stdout.strip() == "true":
            proc = _git(["fetch", "--unshallow", "--no-tags", "origin"], cwd=repo, timeout=timeout)
            if proc.returncode != 0:
                return f"git fetch --unshallow failed: {_last_line(proc)}"
        found = _git(["rev-list", "-1", stamp, "HEAD"], cwd=repo, timeout=timeout).stdout.strip()
        if not found:
            return f"no commit before the deadline {before.isoformat()}"
        proc = _git(["checkout", "-q", "--detach", found], cwd=repo, timeout=timeout)
        if proc.returncode != 0:
            return f"git checkout failed: {_last_line(proc)}"
    return ""


def collect(entries: list[Entry], out: Path, *, branch: str | None = None, before: datetime | None = None,
            refresh: bool = False, timeout: float = 300, log: Path | None = None,
            progress=None) -> list[Outcome]:
    """Clone every entry into ``out``, log each one to ``log`` (default ``out/collect.csv``)."""
    out.mkdir(parents=True, exist_ok=True)
    outcomes: list[Outcome] = []
    seen: set[str] = set()
    for entry in entries:
        raw = entry.student
        entry = Entry(safe_student_id(raw), entry.url, entry.line)
        if entry.student and entry.student in seen:
            outcome = Outcome(entry.student, redact(entry.url), status="refused",
                              message=f"student id {raw!r} appears again on line {entry.line} of the roster")
        elif entry.student == LOG_NAME:
            outcome = Outcome(entry.student, redact(entry.url), status="refused", message="reserved for the log")
        elif not entry.student and entry.url:
            outcome = Outcome("", redact(entry.url), status="refused", message=f"no usable student id in {raw!r}")
        else:
            seen.add(entry.student)
            outcome = clone_one(entry, out, branch=branch, before=before, refresh=refresh, timeout=timeout)
        outcomes.append(outcome)
        if progress:
            progress(outcome)
    write_log(outcomes, log or out / LOG_NAME)
    return outcomes


def write_log(outcomes: list[Outcome], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[fl.name for fl in fields(Outcome)])
        writer.writeheader()
        for outcome in outcomes:
            writer.writerow(asdict(outcome))
