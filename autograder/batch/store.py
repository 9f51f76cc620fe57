"""The batch's output folder, written by the client only: result files and model-tier run files.

Why a module of its own: whichever engine graded a submission (a local Dask cluster, lab machines,
Slurm), its result reaches the client as data and is written here, atomically, so an interrupted
batch resumes where it stopped and nothing a grading process did can replace a written result.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

from autograder.batch.validate import OUTPUT_CAP, MalformedResult, expected_stages, validate_result
from autograder.course.manifest import SubmissionCaps
from autograder.reports.results import GradeResult

RUN_FILE_CAP = 64 << 20  # bytes of run files (notebooks, log histories) one submission sends back


# ----------------------------------------------------------------------------- result files
def result_path(out: Path, student: str) -> Path:
    return out / "results" / f"{student}.json"


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write through a temporary name then rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    tmp.replace(path)


def read_plain(path: Path) -> str | None:
    """A regular file's text (never through a link), or None."""
    try:
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return None
            return f.read(OUTPUT_CAP + 1).decode("utf-8", "replace")
    except OSError:
        return None


def snapshot(out: Path) -> dict[str, str]:
    """Student id -> text of every result file now in ``out/results``."""
    folder = out / "results"
    if not folder.is_dir():
        return {}
    texts = {p.stem: read_plain(p) for p in folder.glob("*.json")}
    return {k: v for k, v in texts.items() if v is not None}


def restore(out: Path, written: dict[str, str], log: Callable[[str], None]) -> None:
    """Result files are what this batch read or wrote: changed ones are restored, others removed."""
    folder = out / "results"
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        if path.stem not in written:
            path.unlink(missing_ok=True)
            log(f"removed {path}: the batch did not write it (something else did, while it ran)")
    for student, text in written.items():
        if read_plain(result_path(out, student)) != text:
            write_atomic(result_path(out, student), text)
            log(f"restored {result_path(out, student)}: it was changed while the batch ran, not by the batch")


def load_result(text: str | None, student: str) -> GradeResult | None:
    """A result file of an earlier run, if it is a well-formed result of stages of the course."""
    try:
        result = validate_result(json.loads(text), expected_stages("all"), fill_missing=False) if text else None
    except (ValueError, MalformedResult):
        return None
    if result is not None:
        result.submission = student
    return result


# ----------------------------------------------------------------------------- model-tier run files
def collect_run_files(runs: Path, caps: SubmissionCaps) -> dict[str, bytes]:
    """The executed notebooks and log histories under ``runs`` (plain files within the caps), by
    relative path: they travel back to the client with the result (no shared filesystem)."""
    found: dict[str, bytes] = {}
    total = 0
    if not runs.is_dir():
        return found
    for dirpath, _, filenames in os.walk(runs, followlinks=False):
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not (name.startswith("executed_") and name.endswith(".ipynb")) and name != "log_history.json":
                continue
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode) or st.st_size > caps.max_file_mb << 20 or total + st.st_size > RUN_FILE_CAP:
                continue
            with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb") as f:
                found[path.relative_to(runs).as_posix()] = f.read()
            total += st.st_size
    return found


def pack_run_files(runs: Path, result: GradeResult, caps: SubmissionCaps) -> dict[str, bytes]:
    """Worker side, in one step: the run files to send back (:func:`collect_run_files`), and the
    result's run paths made relative to ``runs`` for :func:`place_run_files` on the client."""
    files = collect_run_files(runs, caps)
    relative_run_paths(runs, result)
    return files


def relative_run_paths(runs: Path, result: GradeResult) -> None:
    """Point the result's run paths at their place relative to ``runs`` (paths elsewhere are dropped)."""
    base = str(runs.resolve())
    for stage in result.stages:
        for key in ("output_dir", "executed_notebook"):
            value = stage.details.get(key)
            if isinstance(value, str) and (value == base or value.startswith(base + os.sep)):
                stage.details[key] = Path(value).relative_to(base).as_posix()
            elif key in stage.details:
                del stage.details[key]


def place_run_files(files: dict[str, bytes], dest: Path, result: GradeResult) -> None:
    """Client side: write ``files`` under ``dest`` (``OUT/runs/<id>``) and make the result's run paths
    absolute there. Names are checked again: the client trusts no path it did not build."""
    root = dest.resolve()
    for rel, data in files.items():
        target = (dest / rel).resolve()
        if ".." in Path(rel).parts or Path(rel).is_absolute() or not target.is_relative_to(root):
            continue
        write_atomic(target, data)
    for stage in result.stages:
        for key in ("output_dir", "executed_notebook"):
            value = stage.details.get(key)
            if isinstance(value, str) and not Path(value).is_absolute() and ".." not in Path(value).parts:
                stage.details[key] = str(dest / value) if value != "." else str(dest)
            elif key in stage.details:
                del stage.details[key]


def kept_results(out: Path, students: list[str], written: dict[str, str],
                 log: Callable[[str], None]) -> dict[str, GradeResult]:
    """The results of an earlier run that a resumed batch keeps: well-formed ones, except failures
    that were the cluster's (those students are graded again)."""
    kept = {}
    for sid in students:
        old = load_result(written.get(sid), sid)
        if old is not None and cluster_failure(old):
            log(f"{sid} failed for the cluster's reasons last time (a lost worker, another course version): "
                "grading it again")
        elif old is not None:
            kept[sid] = old
        elif sid in written:
            log(f"{result_path(out, sid)} is not a well-formed result: grading {sid} again")
    return kept


def cluster_failure(result: GradeResult) -> bool:
    """A result the batch recorded for a failure of the cluster, not of the submission."""
    note = next((s for s in result.stages if s.id == "submission"), None)
    return note is not None and note.details.get("retry") is True
