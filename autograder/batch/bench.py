"""``scripts/benchmark.py --batch N``: what Dask costs and gains on a class of N structural submissions.

Why measured here and not asserted in a test: timings depend on the machine and its load. Printed, in
one run: N copies of solutions/ graded one after another (``grade_submission``, as ``autograder
grade`` does), then through ``grade_batch`` on a local Dask cluster of 1 and of 2 workers; the
speed-up of 2 workers over 1 (target on 2 cores: at least 1.6x) and the per-task overhead over
grading the same submission alone.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from autograder import REPO_ROOT, procs


def make_class(root: Path, n: int) -> Path:
    """N small submissions: the stage modules of solutions/ (no notebooks: the structural tier)."""
    subs = root / "submissions"
    for i in range(n):
        folder = subs / f"student{i:03d}"
        folder.mkdir(parents=True)
        for module in sorted((REPO_ROOT / "solutions").glob("stage*.py")):
            shutil.copy2(module, folder / module.name)
    return subs


def batch_benchmark(n: int, stages: list[str] | None = None, *, log: Callable[[str], None] = print) -> dict:
    """Grade N submissions sequentially, then on 1 and 2 Dask workers; print and return the figures."""
    from autograder.batch import grade_batch
    from autograder.grading import grade_submission

    cores = procs.cores()
    shown = ", ".join(stages) if stages else "all stages"
    figures: dict = {"n": n, "stages": shown}
    with tempfile.TemporaryDirectory(prefix="ag-bench-") as tmp:
        subs = make_class(Path(tmp), n)
        alone, scores = [], set()
        start = time.monotonic()
        for folder in sorted(subs.iterdir()):
            t = time.monotonic()
            result = grade_submission(folder, stages=stages, threads=cores, jobs=1,
                                      work_dir=Path(tmp) / "runs" / folder.name)
            alone.append(time.monotonic() - t)
            scores.add(result.score)
        figures["sequential_s"] = time.monotonic() - start
        log(f"batch of {n} ({shown}): sequentially {figures['sequential_s']:.1f} s "
            f"({statistics.median(alone):.1f} s a submission alone, median)")
        for workers in (1, 2):
            stats: dict = {}
            t = time.monotonic()
            results = grade_batch(subs, Path(tmp) / f"out{workers}", workers=workers, stages=stages, progress=False,
                                  stats=stats, log=lambda m: None)
            elapsed = time.monotonic() - t
            scores.update(r.score for r in results)
            on_worker = [x["task_s"] - x["grading_s"] for x in stats.get("tasks", [])]
            figures[f"workers_{workers}_s"] = elapsed
            figures[f"workers_{workers}_task_overhead_s"] = statistics.median(on_worker) if on_worker else float("nan")
            log(f"batch of {n} on {workers} Dask worker(s): {elapsed:.1f} s, {n / elapsed * 60:.1f} submissions a "
                f"minute; per-task overhead on the worker (zip, child start, validation) "
                f"{figures[f'workers_{workers}_task_overhead_s']:.2f} s (median)")
    figures["speedup"] = figures["workers_1_s"] / figures["workers_2_s"]
    figures["overhead_per_task_s"] = (figures["workers_1_s"] - figures["sequential_s"]) / n
    log(f"speed-up of 2 workers over 1: {figures['speedup']:.2f}x (target >= 1.6x on 2 cores); "
        f"per-task overhead of the batch over grading the same submission alone: "
        f"{figures['overhead_per_task_s']:+.2f} s (1 worker vs sequential, cluster start-up included)")
    if len(scores) != 1:
        log(f"WARNING: the copies did not all get the same score: {sorted(scores)}")
    return figures
