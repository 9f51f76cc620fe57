"""Copy a submission as plain files only: what the jail mounts and what a report lists as refused.

Symlinks, devices, oversized files and anything past the caps are refused with a message that
never shows a link's target; every file is opened with ``O_NOFOLLOW``.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from autograder.course.manifest import SubmissionCaps

SKIP_DIRS = {".git", "__pycache__", ".ipynb_checkpoints", ".venv", "venv", "outputs", "grading_runs",
             "grading_batch", ".pytest_cache", "node_modules"}


def copy_plain_files(source: Path, target: Path | None, caps: SubmissionCaps) -> list[str]:
    """Copy regular files only; symlinks, devices, oversized files and overflow are refused.

    With ``target=None`` nothing is copied: the refusals are only listed (for the report).
    """
    refused: list[str] = []
    total, count = 0, 0
    source = Path(source)
    for dirpath, dirnames, filenames in os.walk(source, followlinks=False):
        here = Path(dirpath)
        for d in list(dirnames):
            if d in SKIP_DIRS or (here / d).is_symlink():
                if (here / d).is_symlink():
                    refused.append(f"{(here / d).relative_to(source)}/ is a symbolic link: submit plain files")
                dirnames.remove(d)
        for name in sorted(filenames):
            path = here / name
            rel = path.relative_to(source)
            st = os.lstat(path)
            if not _is_regular(st.st_mode):
                kind = "a symbolic link" if path.is_symlink() else "not a regular file"
                refused.append(f"{rel} is {kind}: submit plain files")
                continue
            if st.st_size > caps.max_file_mb << 20:
                refused.append(f"{rel} is {st.st_size >> 20} MiB, over the {caps.max_file_mb} MiB limit per file")
                continue
            if count + 1 > caps.max_files or total + st.st_size > caps.max_total_mb << 20:
                refused.append(f"the submission is over its limit ({caps.max_files} files, {caps.max_total_mb} MiB): "
                               f"{rel} and later files were left out")
                return refused
            total += st.st_size
            count += 1
            if target is None:
                continue
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
    return refused


def _is_regular(mode: int) -> bool:
    return stat.S_ISREG(mode)


def last_change(source: Path) -> str:
    """When the submission last changed (ISO 8601, UTC): the newest modification time of its plain
    files (the folders the grader skips left out), or of the file itself (a zip); "" if unreadable.
    A result records it, so a class report can say who was late without the submissions at hand."""
    from datetime import UTC, datetime

    source = Path(source)
    try:
        if source.is_file():
            newest = source.stat().st_mtime
        else:
            newest = max((p.lstat().st_mtime for p in source.rglob("*") if p.is_file() and not p.is_symlink()
                          and not SKIP_DIRS.intersection(p.relative_to(source).parts)), default=source.stat().st_mtime)
    except OSError:
        return ""
    return datetime.fromtimestamp(newest, UTC).isoformat(timespec="seconds")
