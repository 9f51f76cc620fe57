"""Speed and memory figures of the grader, printed (targets live here, not in timed unit tests).

Targets (2 CPU cores): model resolution offline < 5 s; structural tier of one submission,
all six stages, < 60 s; model tier of the reference solution (both notebooks) < 4 min.

    python scripts/benchmark.py [--model-tier]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from autograder import REPO_ROOT  # noqa: E402


def _peak_children_mib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-tier", action="store_true", help="also run both notebooks (about 4 minutes)")
    parser.add_argument("--jobs", type=int, default=None)
    args = parser.parse_args()

    from autograder.models import resolve_model

    t = time.monotonic()
    resolved = resolve_model()
    print(f"model resolution: {time.monotonic() - t:.3f} s (target < 5 s) -> {resolved.source}")

    from autograder.grading import grade

    for folder in ("solutions", "exercises"):
        result = grade(REPO_ROOT / folder, jobs=args.jobs)
        per_stage = ", ".join(f"{s.id} {s.duration_s:.1f}s" for s in result.stages)
        print(f"structural tier, {folder}: {result.duration_s:.1f} s wall (target < 60 s), "
              f"score {result.score:g}/{result.max_score:g}; {per_stage}")
    print(f"peak memory of a grader process: {_peak_children_mib():.0f} MiB")

    if args.model_tier:
        from autograder.model_tier import grade_notebooks

        with tempfile.TemporaryDirectory() as tmp:
            t = time.monotonic()
            stages = grade_notebooks(REPO_ROOT / "solutions", Path(tmp))
            total = time.monotonic() - t
        for s in stages:
            print(f"model tier, {s.id}: {s.duration_s:.0f} s, {s.score:g}/{s.max_score:g}, "
                  f"{s.details.get('accuracy', '')}")
        print(f"model tier total: {total:.0f} s (target < 240 s); peak memory {_peak_children_mib():.0f} MiB")


if __name__ == "__main__":
    main()
