"""A class roster: who to collect and from where, and which clone URLs may reach git at all.

A roster is either a text file (one clone URL a line, or ``student_id URL``; ``#`` starts a
comment) or a GitHub Classroom CSV export (detected from its header). :func:`check_url` is the
first wall of ``autograder collect``: a URL that could run a command (``ext::``), pass an option
to git or ssh, or carry a password is refused before git sees it.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

#: Column names accepted in a CSV roster, in order of preference (matched case-insensitively).
URL_COLUMNS = ("student_repository_url", "repository_url", "repo_url", "clone_url", "url", "repository", "repo")
ID_COLUMNS = ("student_id", "roster_identifier", "identifier", "github_username", "login", "username", "student")

_SCP_LIKE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*@[A-Za-z0-9][A-Za-z0-9.-]*:(?!//)[^\s:]\S*$")


class RosterError(ValueError):
    """The roster cannot be read (a missing column, an empty file, a bad line)."""


@dataclass
class Entry:
    student: str
    url: str
    line: int = 0  # where it came from, for messages


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
