"""The structural tier's profile: where its seconds go, and what each lever saves.

Three ways to grade the same six stages of ``solutions/`` (sandbox on), ``repeat`` times each,
alternating, medians printed:

- ``cold, a judge per stage``: what the grader did before the warm runner (issue 19): six
  pytest judges and six jailed runners, each importing torch and transformers (two at a time);
- ``cold, a judge per core``: the stages dealt out to one judge process per core, each stage
  still with a runner of its own that imports everything;
- ``warm, a judge per core`` (the default): each judge starts one zygote in the jail that
  imports the libraries once and forks a runner per stage.

    python scripts/benchmark.py --structural-profile [--repeat 3]
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from autograder import REPO_ROOT


def _per_stage_judges(status) -> float:
    from autograder.course.manifest import load_course
    from autograder.grading.structural import grade_stage

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda s: grade_stage(s, REPO_ROOT / "solutions", threads=1, sandbox=status,
                                                       warm=False), load_course().stages))
    assert sum(r.score for r in results) == sum(r.max_score for r in results), "the reference lost points"
    return time.monotonic() - start


def _grouped(status, warm: bool) -> float:
    from autograder.grading import grade

    start = time.monotonic()
    result = grade(REPO_ROOT / "solutions", sandbox=status, warm=warm)
    assert result.score == result.max_score, "the reference lost points"
    return time.monotonic() - start


def structural_profile(repeat: int) -> None:
    from autograder.sandbox.jail import detect

    status = detect()
    print(status.describe())
    ways = {"cold, a judge per stage": lambda: _per_stage_judges(status),
            "cold, a judge per core": lambda: _grouped(status, warm=False),
            "warm, a judge per core (default)": lambda: _grouped(status, warm=True)}
    times: dict[str, list[float]] = {name: [] for name in ways}
    for i in range(repeat):
        for name, way in ways.items():
            times[name].append(way())
            print(f"run {i + 1}/{repeat}, {name}: {times[name][-1]:.1f} s", flush=True)
    for name, values in times.items():
        print(f"structural tier, solutions, sandbox on, {name}: median {statistics.median(values):.1f} s of "
              f"{repeat} (target <= 10 s on 2 cores); runs {', '.join(f'{v:.1f}' for v in values)}")
