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
import re
import shutil
import subprocess
import unicodedata
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path

#: Column names accepted in a CSV roster, in order of preference (matched case-insensitively).
URL_COLUMNS = ("student_repository_url", "repository_url", "repo_url", "clone_url", "url", "repository", "repo")
ID_COLUMNS = ("student_id", "roster_identifier", "identifier", "github_username", "login", "username", "student")
ALLOWED_PROTOCOLS = "https:ssh:file"
LOG_NAME = "collect.csv"

_SCP_LIKE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*@[A-Za-z0-9][A-Za-z0-9.-]*:(?!//)[^\s:]\S*$")


class RosterError(ValueError):
    """The roster cannot be read (a missing column, an empty file, a bad line)."""


@dataclass
class Entry:
    student: str
    url: str
    line: int = 0  # where it came from, for messages


@dataclass
class Outcome:
    student: str
    url: str
    commit: str = ""
    committed_at: str = ""
    status: str = "error"  # ok | error | refused | skipped
    message: str = ""


# ----------------------------------------------------------------------------------------- URLs
def redact(url: str) -> str:
    """The URL with any credentials in it replaced by ``***`` (for logs)."""
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@", r"\1***@", url)


def check_url(url: str) -> str:
    """Why this URL is refused, or '' when it may be cloned.

    Allowed: ``https://host/...``, ``ssh://host/...``, ``user@host:path`` (scp-like ssh, e.g.
    ``git@github.com:org/repo.git``), ``file:///path`` and local paths.
    """
    if "::" in url:
        return "uses a git remote helper ('<transport>::'), e.g. ext:: runs commands"
    if url.startswith("-"):
        return "starts with '-' (it would be read as a git option)"
    if not url or url != url.strip() or any(c.isspace() or ord(c) < 32 for c in url):
        return "empty or holds whitespace or control characters"
    scheme = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://", url)
    if scheme:
        name = scheme.group(1).lower()
        if name not in ("https", "ssh", "file"):
            return f"scheme {name}:// is not allowed (only https://, ssh://, git@host:path, file:// or a local path)"
        rest = url[scheme.end():]
        if name == "file":
            return "" if rest.startswith("/") else "file:// URLs must hold an absolute path (file:///path)"
        authority = rest.split("/", 1)[0]
        if not authority or not authority.rsplit("@", 1)[-1]:
            return "has no host"
        if authority.rsplit("@", 1)[-1].startswith("-"):
            return "its host starts with '-' (ssh would read it as an option)"
        if "@" in authority and ":" in authority.rsplit("@", 1)[0]:
            return "holds a password: keep credentials in a git credential helper, not in the roster"
        return ""
    if _SCP_LIKE.match(url):
        return ""
    if ":" in url:  # git would read host:path as ssh, and a drive-less colon is never a local path here
        return "is neither https://, ssh://, git@host:path, file:// nor a local path"
    return ""  # a local path (a bare repository or a working copy), for tests and local runs


def student_from_url(url: str) -> str:
    name = re.split(r"[/:]", url.rstrip("/"))[-1]
    return name[:-4] if name.endswith(".git") else name


def safe_student_id(raw: str) -> str:
    """The folder name of a student: the id grade-batch will use for it (``batch.normalise_id``'s rule:
    NFKC, ``[A-Za-z0-9._-]`` kept and anything else ``_``, no leading dots or dashes, 64 characters at
    most); '' when nothing is left."""
    text = re.sub(r"[^A-Za-z0-9._-]", "_", unicodedata.normalize("NFKC", raw.strip()))
    return text.lstrip(".-")[:64]


# --------------------------------------------------------------------------------------- roster
def _column_key(name: str | None) -> str:
    """``Student Repository URL`` and ``student-repository-url`` both become ``student_repository_url``."""
    return re.sub(r"[\s-]+", "_", (name or "").strip().lower())


def _pick(columns: dict[str, str], wanted: tuple[str, ...]) -> list[str]:
    return [columns[w] for w in wanted if w in columns]


def read_roster(path: Path, *, url_template: str | None = None, id_column: str | None = None) -> list[Entry]:
    """Entries of a roster file: a CSV export (detected from its header) or lines of ``[student] url``.

    ``url_template`` (e.g. ``https://github.com/org/hw1-{github_username}``) builds each URL from
    the row's columns, for a roster export that holds no repository URL.
    """
    text = Path(path).read_text(encoding="utf-8-sig")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise RosterError(f"{path} is empty")
    header = [_column_key(h) for h in next(csv.reader([lines[0]]))]
    known = set(URL_COLUMNS) | set(ID_COLUMNS)
    if Path(path).suffix.lower() == ".csv" or (len(header) > 1 and known & set(header)):
        return _read_csv(path, text, url_template=url_template, id_column=id_column)
    if url_template:
        raise RosterError("url_template only applies to a CSV roster")
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) == 1:
            entries.append(Entry(student_from_url(parts[0]), parts[0], number))
        else:  # the rest of the line is the URL: one with spaces in it is refused (and logged), not split
            entries.append(Entry(parts[0], parts[1].strip(), number))
    if not entries:
        raise RosterError(f"{path} names no repository")
    return entries


def _read_csv(path: Path, text: str, *, url_template: str | None, id_column: str | None) -> list[Entry]:
    reader = csv.DictReader(text.splitlines())
    columns = {_column_key(c): c for c in reader.fieldnames or [] if c}
    found = ", ".join(c for c in reader.fieldnames or [] if c) or "none"
    url_cols = _pick(columns, URL_COLUMNS)
    if not url_cols and not url_template:
        raise RosterError(
            f"{path} has no repository URL column: expected one of {', '.join(URL_COLUMNS)} "
            f"(found: {found}). A roster export holds no repository URLs: pass a URL template, e.g. "
            "--url-template 'https://github.com/ORG/ASSIGNMENT-{github_username}'")
    if id_column:
        if _column_key(id_column) not in columns:
            raise RosterError(f"{path} has no column {id_column!r} (found: {found})")
        id_cols = [columns[_column_key(id_column)]]
    else:
        id_cols = _pick(columns, ID_COLUMNS)
    if not id_cols and not url_cols:
        raise RosterError(f"{path} has no student column: expected one of {', '.join(ID_COLUMNS)} (found: {found})")
    entries = []
    for number, row in enumerate(reader, 2):
        row = {k: (v or "").strip() for k, v in row.items() if k}
        if url_cols:
            url = next((row[c] for c in url_cols if row.get(c)), "")
        else:
            try:
                url = url_template.format(**{_column_key(k): v for k, v in row.items()}) if url_template else ""
            except KeyError as exc:
                raise RosterError(f"--url-template names the column {exc} that {path} does not have "
                                  f"(found: {found})") from None
        student = next((row[c] for c in id_cols if row.get(c)), "") or (student_from_url(url) if url else "")
        entries.append(Entry(student, url, number))
    return entries


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
