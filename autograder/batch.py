"""Batch grading of a class: a folder of student folders (or zips), resumable, in parallel.

Each student's result is written to ``OUT/results/<student>.json`` as soon as it is graded
(atomically), so an interrupted batch resumes where it stopped: a student with a result is not
graded again unless ``regrade=True``. One bad submission never stops the batch. Workers split
the CPU cores between them (torch threads per worker = cores // workers): two workers that
each use every core run several times slower than one.
"""

from __future__ import annotations

import json
import os
import shutil
import traceback
import zipfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from autograder.results import GradeResult, StageResult


def discover(submissions: Path, work: Path) -> dict[str, Path]:
    """Student name -> submission folder; zips are extracted (safely) under ``work/extracted``."""
    found: dict[str, Path] = {}
    for entry in sorted(submissions.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            found[entry.name] = entry
        elif entry.suffix == ".zip":
            target = work / "extracted" / entry.stem
            if not target.exists():
                _extract(entry, target)
            inner = [p for p in target.iterdir() if not p.name.startswith(("__MACOSX", "."))]
            found[entry.stem] = inner[0] if len(inner) == 1 and inner[0].is_dir() else target
    return found


def _extract(archive: Path, target: Path) -> None:
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    with zipfile.ZipFile(archive) as zf:
        for member in zf.namelist():
            dest = (tmp / member).resolve()
            if not str(dest).startswith(str(tmp.resolve())):
                raise ValueError(f"{archive.name}: unsafe path {member!r} in the zip")
        zf.extractall(tmp)
    tmp.rename(target)


def result_path(out: Path, student: str) -> Path:
    return out / "results" / f"{student}.json"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(path)


def grade_one(student: str, folder: str, out: str, stages: list[str] | None, tier: str, threads: int) -> dict:
    """Grade one student (runs in a worker process); never raises."""
    from autograder.grading import grade

    out_path = Path(out)
    try:
        result = grade(folder, stages=[] if tier == "model" else stages, threads=threads, jobs=1)
        if tier in ("model", "all"):
            from autograder.model_tier import grade_notebooks

            result.stages.extend(grade_notebooks(Path(folder), out_path / "runs" / student, threads=threads))
    except Exception as exc:  # noqa: BLE001 - one bad submission never stops the batch
        result = GradeResult(submission=folder, stages=[StageResult(
            id="submission", title="Submission", score=0.0, max_score=0.0,
            error=f"could not be graded: {type(exc).__name__}: {exc}",
            details={"traceback": traceback.format_exc()[-2000:]})])
    result.submission = student
    _write_atomic(result_path(out_path, student), json.dumps(result.to_dict(), indent=1))
    return result.to_dict()


def grade_batch(submissions: Path, out: Path, *, workers: int = 1, stages: list[str] | None = None,
                tier: str = "structural", regrade: bool = False, progress: bool = True) -> list[GradeResult]:
    """Grade every student in ``submissions`` into ``out``; returns all results (old and new), by name."""
    out.mkdir(parents=True, exist_ok=True)
    students = discover(submissions, out)
    todo = {s: p for s, p in students.items() if regrade or not result_path(out, s).exists()}
    threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    if todo:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("grading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TextColumn("{task.description}"), disable=not progress) as bar:
            task = bar.add_task("", total=len(todo))
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = {pool.submit(grade_one, s, str(p), str(out), stages, tier, threads): s
                           for s, p in todo.items()}
                for fut in as_completed(futures):
                    data = fut.result()
                    bar.update(task, advance=1, description=f"{futures[fut]}: {data['score']:g}/{data['max_score']:g}")
    return [GradeResult.from_dict(json.loads(result_path(out, s).read_text())) for s in students]
