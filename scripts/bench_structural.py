"""The structural tier's profile: where its seconds go, and what each lever saves.

Ways to grade the same six stages of ``solutions/`` (sandbox on), ``repeat`` times each,
alternating, medians printed:

- ``cold runners``: one judge server, but every stage's runner a fresh jailed process that imports
  torch and transformers itself (how runners started before the zygote);
- ``warm, 1 slot``: one zygote, the stages one after the other (each with both cores' threads);
- ``warm, 2 slots`` (the default on 2 cores): two zygotes, two stages at a time;
- ``one stage``: ``tokenize`` alone (what a student's single-stage grade or a mutant test costs);
- ``watch re-check``: ``autograder check --watch``'s work after a save, in its warm process (the
  public checks of one stage run again, the edited file imported afresh), plus the polling delay.

Figures from before this judge (a judge per stage: 33.7 s; a judge per core: 23.3 s; warm runners,
a judge per core: 16.6 s) are in docs/performance.md.

    python scripts/benchmark.py --structural-profile [--repeat 3]
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

from autograder import REPO_ROOT


def _grade(status, *, warm: bool = True, jobs: int | None = None, stages: list[str] | None = None) -> float:
    from autograder.grading import grade

    start = time.monotonic()
    result = grade(REPO_ROOT / "solutions", sandbox=status, warm=warm, jobs=jobs, stages=stages)
    assert result.score == result.max_score, "the reference lost points"
    return time.monotonic() - start


def watch_recheck(repeat: int) -> list[float]:
    """Seconds from a save to the printed result: half a polling interval, the settling wait, and
    the checks run again in the warm process (the first run, which imports the libraries, excluded)."""
    import gc

    from autograder.checkrun import run_here
    from autograder.course.manifest import load_course
    from autograder.watch import INTERVAL, SETTLE

    stage = load_course().stage("tokenize")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        shutil.copytree(REPO_ROOT / "exercises", work, ignore=shutil.ignore_patterns("*.ipynb"))
        shutil.copy(REPO_ROOT / "solutions" / f"{stage.module}.py", work)
        run_here([stage], work)
        gc.freeze()
        times = []
        for _ in range(repeat):
            start = time.monotonic()
            (run,) = run_here([stage], work)
            assert run.passed, run.problem or run.failed
            times.append(time.monotonic() - start + INTERVAL / 2 + SETTLE)
    return times


def structural_profile(repeat: int) -> None:
    from autograder.sandbox.jail import detect

    status = detect()
    print(status.describe())
    ways = {"cold runners, 2 slots": lambda: _grade(status, warm=False),
            "warm, 1 slot": lambda: _grade(status, jobs=1),
            "warm, 2 slots (default)": lambda: _grade(status),
            "one stage (tokenize), warm": lambda: _grade(status, stages=["tokenize"])}
    times: dict[str, list[float]] = {name: [] for name in ways}
    for i in range(repeat):
        for name, way in ways.items():
            times[name].append(way())
            print(f"run {i + 1}/{repeat}, {name}: {times[name][-1]:.1f} s", flush=True)
    for name, values in times.items():
        print(f"structural tier, solutions, sandbox on, {name}: median {statistics.median(values):.1f} s of "
              f"{repeat} (target <= 10 s for all six stages on 2 cores); runs {', '.join(f'{v:.1f}' for v in values)}")
    checks = watch_recheck(max(3, repeat))
    print(f"check --watch re-check of tokenize after a save: median {statistics.median(checks):.2f} s "
          f"(target <= 1 s); runs {', '.join(f'{v:.2f}' for v in checks)}")
