"""Batch grading of a class: a folder of student folders (or zips), resumable, in parallel.

The batch process is the class's judge (DESIGN.md, "The trust boundary"):

- It discovers the submissions and gives each a normalised student id (:func:`normalise_id`;
  two submissions that map to one id are graded under distinct ids, each with a warning).
- Each submission is graded from a fresh copy in a temporary folder outside ``OUT``: a folder is
  copied (plain files only, within ``course.caps``), a zip is extracted by :func:`extract_zip`,
  which refuses absolute paths, ``..``, links, device entries and anything over the caps (checked
  from the headers and again while writing). A refused submission gets a result saying why.
- One child process per submission (``python -m autograder.batch.worker``, in its own session,
  cwd in the temporary folder, ``OUT`` in neither its arguments nor its environment) grades the
  copy and sends its result back as JSON on a private stdout. The batch validates it
  (:func:`validate_result`) and is the only writer of ``OUT``. A child that dies, hangs past the
  submission's time limit (from the manifest's timeouts; killed with its whole tree) or prints
  something that is not a well-formed result fails that submission only, with a message; the
  failure is recorded like any result, so a resumed batch does not retry it (``regrade`` does).

Each result goes to ``OUT/results/<id>.json`` as soon as it is graded (atomically), so an
interrupted batch resumes where it stopped. At the end, result files that changed while the
batch ran (not written by it) are restored, and files it did not write are removed. Workers split
the CPU cores between them (torch threads per worker = cores // workers).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import selectors
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
import zipfile
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from autograder.course.manifest import SubmissionCaps, load_course
from autograder.procs import exit_reason, kill_tree, trusted_env
from autograder.reports.results import CheckResult, GradeResult, StageResult

WORKER = [sys.executable, "-P", "-m", "autograder.batch.worker"]  # -P: the cwd is not put on sys.path
OUTPUT_CAP = 16 << 20  # bytes of a worker's result (JSON); more fails the submission
STDERR_TAIL = 4000  # characters of a worker's stderr kept for the instructor
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


# ----------------------------------------------------------------------------- what a result must be
@dataclass(frozen=True)
class Expected:
    """A stage (or notebook) the batch grades: its id, points and checks from the manifest."""

    id: str
    title: str
    points: float
    checks: dict[str, float]
    tier: str


def expected_stages(tier: str = "structural", stages: list[str] | None = None) -> dict[str, Expected]:
    course = load_course()
    out: dict[str, Expected] = {}
    if tier != "model":
        for st in (list(course.stages) if stages is None else [course.stage(s) for s in stages]):
            out[st.id] = Expected(st.id, st.title, st.points, dict(st.checks), "structural")
    if tier in ("model", "all"):
        for nb in course.notebooks:
            out[nb.id] = Expected(nb.id, nb.title, nb.points, dict(nb.checks), "model")
    return out


def time_limit(tier: str = "structural", stages: list[str] | None = None) -> float:
    """Wall-clock seconds one submission may take: each stage's limit in ``grading`` (timeout per
    check + 60 s), each notebook's timeout + 10 minutes to score its model, + 2 minutes to start."""
    course = load_course()
    limit = 120.0
    if tier != "model":
        chosen = list(course.stages) if stages is None else [course.stage(s) for s in stages]
        limit += sum(st.timeout * max(1, len(st.checks)) + 60 for st in chosen)
    if tier in ("model", "all"):
        limit += sum(nb.timeout + 600 for nb in course.notebooks)
    return limit


class MalformedResult(ValueError):
    """A worker's result that is not a well-formed GradeResult of the expected stages."""


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MalformedResult(f"{what} is not a finite number")
    return float(value)


def _text(value, what: str, cap: int = 20_000) -> str:
    if not isinstance(value, str):
        raise MalformedResult(f"{what} is not text")
    return value[:cap]


def _flag(value, what: str) -> bool:
    if not isinstance(value, bool):
        raise MalformedResult(f"{what} is not true or false")
    return value


def _plain(value, what: str, depth: int = 0):
    """JSON data (what ``json.loads`` gives), at most 30 levels deep; NaN and infinities become None."""
    if depth > 30:
        raise MalformedResult(f"{what} is nested too deeply")
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_plain(v, what, depth + 1) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _plain(v, what, depth + 1) for k, v in value.items()}
    raise MalformedResult(f"{what} is not plain data")


def _texts(value, what: str) -> list[str]:
    if not isinstance(value, list) or len(value) > 200:
        raise MalformedResult(f"{what} is not a list of at most 200 texts")
    return [_text(v, what, 2000) for v in value]


def _record(data, cls, what: str, known: dict[str, Callable], required: tuple[str, ...]) -> dict:
    """``data``'s fields for ``cls``: known ones checked by type, other fields of ``cls`` only as plain
    data, anything else (or a missing required field) refused."""
    if not isinstance(data, dict):
        raise MalformedResult(f"{what} is not an object")
    fields = {f.name for f in dataclasses.fields(cls)}
    out = {}
    for key, value in data.items():
        if key in known and key in fields:
            out[key] = known[key](value, f"{what}.{key}")
        elif key in fields:
            out[key] = _plain(value, f"{what}.{key}")
        elif cls is GradeResult and key in ("score", "max_score"):
            _number(value, f"{what}.{key}")  # recomputed from the stages
        else:
            raise MalformedResult(f"{what} has an unknown field {key!r}")
    missing = [k for k in required if k not in out]
    if missing:
        raise MalformedResult(f"{what} lacks {missing}")
    return out


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


def validate_result(data, expected: dict[str, Expected], *, fill_missing: bool = True) -> GradeResult:
    """The GradeResult in ``data`` (a worker's JSON), or :class:`MalformedResult`.

    Every field has its type; scores lie in [0, max]; a stage's score is the sum of its checks;
    stages are the expected ones (or the ``submission`` note, worth 0), each at most once, with the
    manifest's points for the stage and for each check. Stages that are missing are added, zeroed
    (unless ``fill_missing`` is false).
    """
    if len(json.dumps(data)) > OUTPUT_CAP:
        raise MalformedResult("the result is too large")
    top = _record(data, GradeResult, "result", {
        "submission": _text, "model": _text, "duration_s": _number, "sandbox": _text, "warnings": _texts,
        "stages": lambda v, w: v if isinstance(v, list) and len(v) <= len(expected) + 1 else _bad(w, "a list")},
        ("submission", "stages"))
    stages, seen = [], set()
    for i, raw in enumerate(top.pop("stages")):
        what = f"stages[{i}]"
        st = _record(raw, StageResult, what, {
            "id": _text, "title": _text, "score": _number, "max_score": _number, "hint": _text, "error": _text,
            "duration_s": _number, "tier": _text, "details": _plain,
            "checks": lambda v, w: v if isinstance(v, list) and len(v) <= 200 else _bad(w, "a list")},
            ("id", "title", "score", "max_score"))
        sid = st["id"]
        exp = expected.get(sid)
        if st.get("tier", "structural") != (exp.tier if exp else "structural"):
            raise MalformedResult(f"{what}: tier {st.get('tier')!r} is not the stage's")  # hidden messages stay hidden
        if sid in seen or (exp is None and sid != "submission"):
            raise MalformedResult(f"{what}: stage {sid!r} is {'repeated' if sid in seen else 'not expected'}")
        seen.add(sid)
        if "details" in st and not isinstance(st["details"], dict):
            raise MalformedResult(f"{what}.details is not an object")
        checks, names = [], set()
        for j, rc in enumerate(st.pop("checks", [])):
            c = _record(rc, CheckResult, f"{what}.checks[{j}]", {
                "name": _text, "passed": _flag, "score": _number, "max_score": _number, "message": _text,
                "hidden": _flag}, ("name", "passed", "score", "max_score"))
            if c["name"] in names:
                raise MalformedResult(f"{what}: check {c['name']!r} is repeated")
            names.add(c["name"])
            if exp is None or c["name"] not in exp.checks or not _close(c["max_score"], exp.checks[c["name"]]):
                raise MalformedResult(f"{what}: check {c['name']!r} is not in the manifest with these points")
            if not 0 <= c["score"] <= c["max_score"] + 1e-9:
                raise MalformedResult(f"{what}: check {c['name']!r} scores outside [0, max]")
            checks.append(CheckResult(**c))
        if not _close(st["max_score"], exp.points if exp else 0.0):
            raise MalformedResult(f"{what}: max_score {st['max_score']:g} is not the manifest's")
        if not 0 <= st["score"] <= st["max_score"] + 1e-9 or (checks and not _close(
                st["score"], sum(c.score for c in checks))):
            raise MalformedResult(f"{what}: score {st['score']:g} is outside [0, max] or not its checks' sum")
        stages.append(StageResult(**st, checks=checks))
    result = GradeResult(**top, stages=stages)
    for exp in expected.values() if fill_missing else ():
        if exp.id not in seen:
            result.stages.append(_not_graded(exp, "the grader returned no result for this stage"))
    return result


def _bad(what: str, kind: str):
    raise MalformedResult(f"{what} is not {kind}")


def _not_graded(exp: Expected, why: str) -> StageResult:
    return StageResult(exp.id, exp.title, 0.0, exp.points, [
        CheckResult(name, False, 0.0, points, f"not graded: {why}", hidden=exp.tier != "model")
        for name, points in exp.checks.items()], tier=exp.tier)


def failed_result(student: str, learner: str, instructor: str, expected: dict[str, Expected]) -> GradeResult:
    """The result of a submission that could not be graded: a ``submission`` note (0 points) with the
    learner's message (and the instructor's details), then every expected stage at 0 of its points."""
    note = StageResult("submission", "Submission", 0.0, 0.0, error=learner,
                       details={"instructor": instructor[-STDERR_TAIL:]})
    why = "the submission could not be graded (see Submission)"
    return GradeResult(submission=student, stages=[note, *(_not_graded(e, why) for e in expected.values())])


# ----------------------------------------------------------------------------- the child process
class WorkerFailed(Exception):
    def __init__(self, learner: str, instructor: str):
        super().__init__(learner)
        self.learner, self.instructor = learner, instructor


_LIVE: set[subprocess.Popen] = set()
_LIVE_LOCK = threading.Lock()


def worker_env(threads: int | None, cwd: Path, out: Path) -> dict[str, str]:
    """The worker's environment: the judge's (offline, thread split), minus anything naming ``out``."""
    marks = {str(out.resolve()), str(out.absolute())}
    env = {k: v for k, v in trusted_env(threads).items() if not any(len(m) > 1 and m in v for m in marks)}
    env.pop("OLDPWD", None)
    env["PWD"] = str(cwd)
    return env


def _kill_everything(proc: subprocess.Popen, seen: dict) -> None:
    """The worker's tree (its session, its descendants now) and every descendant ever seen."""
    kill_tree(proc)
    for p in seen.values():
        try:
            p.kill()  # psutil: refuses a pid that was reused
        except Exception:  # noqa: BLE001 - already gone
            pass


def run_worker(request: dict, cwd: Path, env: dict[str, str], limit_s: float,
               stop: threading.Event | None = None) -> dict:
    """Start one worker, send ``request``, return its JSON reply; :class:`WorkerFailed` otherwise."""
    import psutil

    proc = subprocess.Popen(WORKER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=cwd, env=env, start_new_session=True)
    with _LIVE_LOCK:
        _LIVE.add(proc)
    out, err = bytearray(), b""
    seen: dict[int, psutil.Process] = {}
    reason = ""
    sel = selectors.DefaultSelector()
    try:
        try:
            proc.stdin.write(json.dumps(request).encode() + b"\n")
            proc.stdin.flush()  # stdin stays open: the worker stops when it closes (this process died)
        except OSError:
            pass  # it died at once: said below
        sel.register(proc.stdout, selectors.EVENT_READ, "out")
        sel.register(proc.stderr, selectors.EVENT_READ, "err")
        deadline, exited, tracked = time.monotonic() + limit_s, None, 0.0
        while sel.get_map():
            now = time.monotonic()
            if exited is None and proc.poll() is not None:
                exited = now
                _kill_everything(proc, seen)  # what it left behind
            if exited is not None and now - exited > 5:
                break  # something it started still holds its pipes
            if now > deadline or (stop is not None and stop.is_set()):
                reason = "time" if now > deadline else "stopped"
                break
            if len(out) > OUTPUT_CAP:
                reason = "output"
                break
            if exited is None and now - tracked > 1:
                tracked = now
                try:
                    seen.update((p.pid, p) for p in psutil.Process(proc.pid).children(recursive=True))
                except psutil.Error:
                    pass
            for key, _ in sel.select(timeout=0.5):
                data = os.read(key.fd, 1 << 16)
                if not data:
                    sel.unregister(key.fileobj)
                elif key.data == "out":
                    out += data
                else:
                    err = (err + data)[-STDERR_TAIL:]
    finally:
        sel.close()
        _kill_everything(proc, seen)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                stream.close()
            except OSError:
                pass
        with _LIVE_LOCK:
            _LIVE.discard(proc)
    tail = err.decode("utf-8", "replace").strip()
    instructor = f"worker exit: {exit_reason(proc.returncode)}; stderr (end): {tail[-STDERR_TAIL:]}"
    if reason == "time":
        raise WorkerFailed(f"grading did not finish within {limit_s:.0f} s (the submission's time limit) and was "
                           "stopped", instructor)
    if reason == "stopped":
        raise WorkerFailed("grading was interrupted (the batch was stopped)", instructor)
    if reason == "output":
        raise WorkerFailed("grading was stopped: its output was larger than a result can be", instructor)
    if proc.returncode != 0:
        raise WorkerFailed(f"grading stopped before it finished: {exit_reason(proc.returncode)}", instructor)
    try:
        reply = json.loads(out.decode("utf-8"))
        if not isinstance(reply, dict) or not (isinstance(reply.get("result"), dict)
                                               or isinstance(reply.get("error"), str)):
            raise ValueError("not a worker reply")
    except ValueError:
        raise WorkerFailed("grading failed: the grading process's reply could not be read",
                           f"{instructor}; stdout (start): {bytes(out[:300])!r}") from None
    return reply


def _keep_run_files(runs: Path, dest: Path, result: GradeResult, caps: SubmissionCaps) -> None:
    """Model tier: keep the executed notebooks and log histories (plain files, within the caps) in
    ``OUT/runs/<id>`` and point the result's paths there; paths elsewhere are dropped."""
    if runs.is_dir():
        for dirpath, _, filenames in os.walk(runs, followlinks=False):
            for name in filenames:
                path = Path(dirpath) / name
                if not (name.startswith("executed_") and name.endswith(".ipynb")) and name != "log_history.json":
                    continue
                st = os.lstat(path)
                if not stat.S_ISREG(st.st_mode) or st.st_size > caps.max_file_mb << 20:
                    continue
                target = dest / path.relative_to(runs)
                target.parent.mkdir(parents=True, exist_ok=True)
                with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb") as src, open(target, "wb") as f:
                    shutil.copyfileobj(src, f)
    base = str(runs.resolve())
    for stage in result.stages:
        for key in ("output_dir", "executed_notebook"):
            value = stage.details.get(key)
            if isinstance(value, str) and (value == base or value.startswith(base + os.sep)):
                stage.details[key] = str(dest / Path(value).relative_to(base))
            elif key in stage.details:
                del stage.details[key]


def grade_submission_in_child(sub: Submission, out: Path, *, expected: dict[str, Expected], tier: str,
                              stages: list[str] | None, threads: int, caps: SubmissionCaps, limit_s: float,
                              require_sandbox: bool, stop: threading.Event | None = None) -> GradeResult:
    """Copy (or extract) ``sub``, grade the copy in a worker, validate the reply; never raises."""
    if stop is not None and stop.is_set():
        return failed_result(sub.id, "grading was interrupted (the batch was stopped)", "", expected)
    tmp = Path(tempfile.mkdtemp(prefix="ag-batch-"))
    try:
        try:
            root, warnings = prepare(sub, tmp, caps)
        except Refused as exc:
            return failed_result(sub.id, str(exc), str(exc), expected)
        (tmp / "cwd").mkdir()
        request = {"submission": str(root), "tier": tier, "stages": stages, "threads": threads,
                   "work_dir": str(tmp / "runs"), "require_sandbox": require_sandbox}
        try:
            reply = run_worker(request, tmp / "cwd", worker_env(threads, tmp / "cwd", out), limit_s, stop)
            if "error" in reply:
                raise WorkerFailed(f"could not be graded: {str(reply['error'])[:300]}",
                                   str(reply.get("traceback", ""))[-STDERR_TAIL:])
            result = validate_result(reply["result"], expected)
        except WorkerFailed as exc:
            return failed_result(sub.id, exc.learner, exc.instructor, expected)
        except MalformedResult as exc:
            return failed_result(sub.id, "grading failed: the grading process's result was not well-formed",
                                 str(exc), expected)
        if tier in ("model", "all"):
            _keep_run_files(tmp / "runs", out / "runs" / sub.id, result, caps)
        result.submission = sub.id
        result.warnings = [*sub.warnings, *warnings, *result.warnings]
        return result
    except Exception as exc:  # noqa: BLE001 - one submission never stops the batch
        return failed_result(sub.id, f"could not be graded: {type(exc).__name__}", repr(exc), expected)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------- results folder
def result_path(out: Path, student: str) -> Path:
    return out / "results" / f"{student}.json"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _read_plain(path: Path) -> str | None:
    """A regular file's text (never through a link), or None."""
    try:
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return None
            return f.read(OUTPUT_CAP + 1).decode("utf-8", "replace")
    except OSError:
        return None


def _snapshot(out: Path) -> dict[str, str]:
    folder = out / "results"
    if not folder.is_dir():
        return {}
    texts = {p.stem: _read_plain(p) for p in folder.glob("*.json")}
    return {k: v for k, v in texts.items() if v is not None}


def _restore(out: Path, written: dict[str, str], log: Callable[[str], None]) -> None:
    """Result files are what this batch read or wrote: changed ones are restored, others removed."""
    folder = out / "results"
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        if path.stem not in written:
            path.unlink(missing_ok=True)
            log(f"removed {path}: the batch did not write it (something else did, while it ran)")
    for student, text in written.items():
        if _read_plain(result_path(out, student)) != text:
            _write_atomic(result_path(out, student), text)
            log(f"restored {result_path(out, student)}: it was changed while the batch ran, not by the batch")


def _load(text: str | None, student: str) -> GradeResult | None:
    """A result file of an earlier run, if it is a well-formed result of stages of the course."""
    try:
        result = validate_result(json.loads(text), expected_stages("all"), fill_missing=False) if text else None
    except (ValueError, MalformedResult):
        return None
    if result is not None:
        result.submission = student
    return result


# ----------------------------------------------------------------------------- the batch
def grade_batch(submissions: Path, out: Path, *, workers: int = 1, stages: list[str] | None = None,
                tier: str = "structural", regrade: bool = False, progress: bool = True,
                caps: SubmissionCaps | None = None, limit_s: float | None = None, require_sandbox: bool = False,
                log: Callable[[str], None] | None = None) -> list[GradeResult]:
    """Grade every student in ``submissions`` into ``out``; returns all results (old and new), by id.

    ``caps`` defaults to the manifest's ``[sandbox.submission]``, ``limit_s`` (seconds per
    submission) to :func:`time_limit`. A student whose result file is a well-formed result of the
    same stages is not graded again unless ``regrade``.
    """
    def say(msg: str) -> None:
        (log or (lambda m: print(f"grade-batch: {m}", file=sys.stderr)))(msg)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    expected = expected_stages(tier, stages)
    caps = caps or load_course().caps
    limit_s = limit_s or time_limit(tier, stages)
    students = discover(Path(submissions))
    for sub in students:
        for note in sub.warnings[:1]:
            say(f"{sub.source.name} -> {sub.id}: {note}")
    written = _snapshot(out)
    results: dict[str, GradeResult] = {}
    for sub in students:
        old = None if regrade else _load(written.get(sub.id), sub.id)
        if old is not None:
            results[sub.id] = old
        elif sub.id in written and not regrade:
            say(f"{result_path(out, sub.id)} is not a well-formed result: grading {sub.id} again")
    todo = [s for s in students if s.id not in results]
    workers, stop = max(1, workers), threading.Event()
    threads = max(1, (os.cpu_count() or 1) // workers)
    try:
        if todo:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            with Progress(TextColumn("grading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          TextColumn("{task.description}"), disable=not progress) as bar, \
                    ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grade") as pool:
                task = bar.add_task("", total=len(todo))
                futures = {pool.submit(grade_submission_in_child, sub, out, expected=expected, tier=tier,
                                       stages=stages, threads=threads, caps=caps, limit_s=limit_s,
                                       require_sandbox=require_sandbox, stop=stop): sub for sub in todo}
                try:
                    for fut in as_completed(futures):
                        sub, result = futures[fut], fut.result()
                        text = json.dumps(result.to_dict(), indent=1)
                        _write_atomic(result_path(out, sub.id), text)
                        written[sub.id] = text
                        results[sub.id] = result
                        bar.update(task, advance=1, description=f"{sub.id}: {result.score:g}/{result.max_score:g}")
                except BaseException:
                    stop.set()
                    for fut in futures:
                        fut.cancel()
                    with _LIVE_LOCK:
                        live = list(_LIVE)
                    for proc in live:
                        kill_tree(proc)
                    raise
    finally:
        _restore(out, written, say)
    return [results[s.id] for s in students]


def write_class_reports(results: list[GradeResult], out: Path, *, assignment: str | None = None) -> None:
    """Per-student reports (``OUT/reports/<id>/``) and the class gradebooks, written by the batch."""
    from autograder.cli import write_reports
    from autograder.reports.exports import gradebook_csv, nbgrader_gradebook

    for result in results:
        write_reports(result, out / "reports" / result.submission)
    gradebook_csv(results, out / "gradebook.csv")
    nbgrader_gradebook(results, out / "nbgrader_grades.csv", assignment=assignment)
