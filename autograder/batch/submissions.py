"""A class's submissions: normalised student ids, folders and zips turned into fresh copies.

Ids are NFKC-normalised to a safe character set and collisions are graded under distinct ids
with a warning. Zips are refused for that submission only when an entry is absolute, climbs
with ``..``, is a link or a device, or the archive is over ``course.caps`` (checked from the
headers and again while writing).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import struct
import tempfile
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from autograder.course.manifest import SubmissionCaps

ID_MAX = 64
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9._-]")


# ----------------------------------------------------------------------------- student ids
def normalise_id(raw: str) -> str:
    """A student id that is safe as a file name and a CSV cell: NFKC, then ``[A-Za-z0-9._-]`` only
    (others become ``_``), no leading dots or dashes, at most 64 characters."""
    text = _UNSAFE_ID.sub("_", unicodedata.normalize("NFKC", raw)).lstrip(".-")[:ID_MAX]
    return text or "student"


@dataclass
class Submission:
    """One entry of the submissions folder, under its (normalised, unique) student id."""

    id: str
    source: Path
    kind: str  # "folder", "zip" or "link" (a symbolic link: refused)
    warnings: list[str] = field(default_factory=list)


def _free_id(base: str, taken: set[str]) -> str:
    n = 2
    while True:
        candidate = f"{base[:ID_MAX - 4]}-{n}"
        if candidate.casefold() not in taken:
            taken.add(candidate.casefold())
            return candidate
        n += 1


def discover(submissions: Path) -> list[Submission]:
    """The submissions in ``submissions`` (folders and ``*.zip``), by student id.

    Ids that collide after normalisation (compared without case: ``Carol.json`` and ``carol.json``
    are one file on some systems) are all graded, under distinct ids (``carol``, ``carol-2``, in
    the order of the entries' names), and every one of them carries a warning naming the others.
    """
    raw: list[tuple[str, Path, str]] = []
    for entry in sorted(Path(submissions).iterdir(), key=lambda p: p.name):
        name = entry.name
        if name.startswith("."):
            continue
        is_zip = name.lower().endswith(".zip")
        if entry.is_symlink():
            kind = "link"
        elif entry.is_dir():
            kind = "folder"
        elif is_zip and entry.is_file():
            kind = "zip"
        else:
            continue
        stem = name[:-4] if is_zip and kind != "folder" else name
        raw.append((normalise_id(stem), entry, kind))
    groups: dict[str, list[tuple[str, Path, str]]] = {}
    for item in raw:
        groups.setdefault(item[0].casefold(), []).append(item)
    taken = set(groups)
    found = []
    for members in groups.values():
        if len(members) == 1:
            sid, entry, kind = members[0]
            found.append(Submission(sid, entry, kind))
            continue
        ids = [members[0][0]] + [_free_id(sid, taken) for sid, _, _ in members[1:]]
        shown = ", ".join(f"{e.name}{'/' if k == 'folder' else ''}" for _, e, k in members)
        note = (f"{len(members)} submissions map to the student id {members[0][0]!r} ({shown}); they were graded "
                f"separately as {', '.join(ids)}: tell your instructor which one counts")
        found += [Submission(sid, entry, kind, [note]) for sid, (_, entry, kind) in zip(ids, members)]
    return sorted(found, key=lambda s: s.id)


# ----------------------------------------------------------------------------- zips
class Refused(Exception):
    """A submission that is not graded; the message says why (learner and instructor alike)."""


def _show(name: str) -> str:
    return repr(name if len(name) <= 80 else name[:77] + "...")


def _directory_size(archive: Path) -> tuple[int, int]:
    """(entries, bytes) of a zip's central directory, read from its end records the way
    ``zipfile`` finds them, before ``zipfile`` reads the whole directory into memory."""
    sig = b"PK\x05\x06"
    size = archive.stat().st_size
    with archive.open("rb") as f:
        start = max(0, size - (22 + 65535))
        f.seek(start)
        tail = f.read()
        if len(tail) >= 22 and tail[-22:-18] == sig and tail[-2:] == b"\0\0":
            pos = len(tail) - 22
        else:
            pos = tail.rfind(sig)
            if pos < 0 or len(tail) - pos < 22:
                raise Refused(f"The zip {_show(archive.name)} is not a zip file (no end of central directory)")
        entries, cd_size = struct.unpack("<HL", tail[pos + 10:pos + 16])
        locator = start + pos - 20
        if locator >= 56:  # zip64: the locator sits just before the end record, its record before that
            f.seek(locator - 56)
            record = f.read(76)
            if record[56:60] == b"PK\x06\x07" and record[:4] == b"PK\x06\x06":
                entries, cd_size = struct.unpack("<QQ", record[32:48])
    return entries, cd_size


def _check_entries(name: str, infos: list[zipfile.ZipInfo], caps: SubmissionCaps):
    """What to extract, as (info, path parts, is a folder); refuses the zip on any unsafe entry."""
    problems, plan = [], []
    files = total = 0
    for info in infos:
        path = info.filename.replace("\\", "/")
        kind = stat.S_IFMT(info.external_attr >> 16)
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if path.startswith("/") or re.match(r"[A-Za-z]:", path):
            problems.append(f"{_show(info.filename)} is an absolute path")
        elif ".." in parts:
            problems.append(f"{_show(info.filename)} points outside its folder (..)")
        elif kind == stat.S_IFLNK:
            problems.append(f"{_show(info.filename)} is a symbolic link")
        elif kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            problems.append(f"{_show(info.filename)} is not a regular file")
        elif any("\0" in p for p in parts):
            problems.append(f"{_show(info.filename)} has a NUL in its name")
        elif parts and not info.is_dir():
            files += 1
            total += info.file_size
            if info.file_size > caps.max_file_mb << 20:
                problems.append(f"{_show(info.filename)} is {info.file_size >> 20} MiB uncompressed, over the "
                                f"{caps.max_file_mb} MiB limit per file")
            if parts[0] != "__MACOSX":
                plan.append((info, parts, False))
        elif parts and parts[0] != "__MACOSX":
            plan.append((info, parts, True))
        if len(problems) >= 5:
            break
    if files > caps.max_files:
        problems.append(f"it holds {files} files, over the limit of {caps.max_files}")
    if total > caps.max_total_mb << 20:
        problems.append(f"it expands to {total >> 20} MiB, over the {caps.max_total_mb} MiB limit of a submission")
    if problems:
        raise Refused(f"The zip {_show(name)} was refused: " + "; ".join(problems))
    return plan


def extract_zip(archive: Path, target: Path, caps: SubmissionCaps) -> None:
    """Extract ``archive`` into the new folder ``target``, or raise :class:`Refused` (nothing is
    ever written outside ``target``; what was written there is left for the caller to delete).

    Checked from the headers first (entry names and types, sizes and counts against ``caps``),
    then enforced while writing, since headers can lie: a file stops at its declared size and at
    the caps, whichever comes first, and every file is created new (never through a link).
    """
    name = archive.name
    per_file, total_cap = caps.max_file_mb << 20, caps.max_total_mb << 20
    size = archive.stat().st_size
    if size > 2 * total_cap + (1 << 20):
        raise Refused(f"The zip {_show(name)} is {size >> 20} MiB, over the {caps.max_total_mb} MiB limit "
                      "of a submission")
    max_entries = 2 * caps.max_files + 64
    entries, cd_size = _directory_size(archive)
    if entries > max_entries or cd_size > max_entries * 1100:
        raise Refused(f"The zip {_show(name)} was refused: it holds {entries} entries, over the limit of "
                      f"{caps.max_files} files")
    target.mkdir(parents=True)
    root = target.resolve()
    try:
        with zipfile.ZipFile(archive) as zf:
            plan = _check_entries(name, zf.infolist(), caps)
            total = 0
            for info, parts, is_dir in plan:
                dest = root.joinpath(*parts)
                if not dest.resolve().is_relative_to(root):
                    raise Refused(f"The zip {_show(name)} was refused: {_show(info.filename)} points outside "
                                  "its folder")
                if is_dir:
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
                written, allowed = 0, min(info.file_size, per_file)
                with zf.open(info) as src, os.fdopen(fd, "wb") as out:
                    while chunk := src.read(1 << 16):
                        written += len(chunk)
                        total += len(chunk)
                        if written > allowed or total > total_cap:
                            raise Refused(f"The zip {_show(name)} was refused: {_show(info.filename)} expands "
                                          "beyond its declared size or the limits of a submission "
                                          f"({caps.max_file_mb} MiB a file, {caps.max_total_mb} MiB in all)")
                        out.write(chunk)
    except Refused:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError, NotImplementedError, OSError, EOFError,
            ValueError, zlib.error) as exc:
        raise Refused(f"The zip {_show(name)} could not be extracted ({type(exc).__name__}: "
                      f"{str(exc)[:200]})") from None


def _submission_root(folder: Path) -> Path:
    """A zip that holds one folder (``alice/...``) is graded from that folder."""
    inner = [p for p in folder.iterdir() if not p.name.startswith(("__MACOSX", "."))]
    return inner[0] if len(inner) == 1 and inner[0].is_dir() and not inner[0].is_symlink() else folder


def prepare(sub: Submission, tmp: Path, caps: SubmissionCaps) -> tuple[Path, list[str]]:
    """A fresh copy of ``sub`` under ``tmp``: (the folder to grade, warnings); raises :class:`Refused`."""
    from autograder.sandbox.jail import copy_plain_files

    if sub.kind == "link":
        raise Refused(f"{_show(sub.source.name)} is a symbolic link, not a folder or a zip: it was not graded")
    if sub.kind == "zip":
        extract_zip(sub.source, tmp / "extracted", caps)
        return _submission_root(tmp / "extracted"), []
    copy = tmp / "submission"
    copy.mkdir()
    return copy, copy_plain_files(sub.source, copy, caps)


def zip_copy(sub: Submission, caps: SubmissionCaps) -> tuple[bytes, list[str]]:
    """The bytes a task carries: a zip of :func:`prepare`'s safe copy of ``sub`` (its files at the top
    level), and the copy's warnings; raises :class:`Refused`."""
    tmp = Path(tempfile.mkdtemp(prefix="ag-batch-"))
    try:
        root, warnings = prepare(sub, tmp, caps)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for path in sorted(root.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    zf.write(path, path.relative_to(root).as_posix())
        return buf.getvalue(), warnings
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
