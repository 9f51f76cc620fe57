"""Speed and memory figures of the grader, printed (targets live here, not in timed unit tests).

Targets (2 CPU cores): model resolution offline < 5 s; structural tier of one submission,
all six stages, < 60 s; model tier of the reference solution (both notebooks) < 4 min. The
bubblewrap sandbox may cost at most 10% on the structural tier and 5% on the model tier: each
tier is timed with the sandbox on and off (``--repeat`` runs, alternating, the median kept).

    python scripts/benchmark.py [--model-tier] [--repeat 3]
    python scripts/benchmark.py --batch 6 [--batch-stage tokenize]   # grade-batch on 1 and 2 Dask workers
    python scripts/benchmark.py --status [--repeat 3]   # autograder status vs pytest checks, fresh release
    python scripts/benchmark.py --structural-profile [--repeat 3]   # judges per stage / per core, warm runners
    python scripts/benchmark.py --test-tiers [TIER ... | all] [--repeat 3]   # test tiers' wall times (dev default)
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
os.environ.setdefault("GOMP_SPINCOUNT", "10000")  # the evaluator scores beside a training job: see procs.thread_env

from autograder import REPO_ROOT  # noqa: E402


def _peak_children_mib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-tier", action="store_true", help="also run both notebooks (about 4 minutes)")
    parser.add_argument("--model-tier-only", action="store_true", help="only: the model tier on the reference "
                        "solutions, sandbox on, --repeat times (median kept; issue 10's target: <= 240 s on 2 cores)")
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=1, help="structural runs per sandbox mode (median kept)")
    parser.add_argument("--batch", type=int, metavar="N", help="only: N structural submissions sequentially, on 1 "
                        "and on 2 Dask workers (speed-up, per-task overhead)")
    parser.add_argument("--batch-stage", action="append", help="with --batch: grade only this stage (repeatable)")
    parser.add_argument("--training", action="store_true", help="only: seconds per epoch of each training lever")
    parser.add_argument("--busy", action="store_true", help="only: two trainings on the same cores, by how long "
                        "OpenMP threads spin")
    parser.add_argument("--structural-profile", action="store_true", help="only: the structural tier graded "
                        "three ways (a judge per stage, a judge per core, warm runners), --repeat times each")
    parser.add_argument("--status", action="store_true", help="only: `autograder status` vs plain `pytest checks` "
                        "in a fresh student release (target <= 1.5x)")
    parser.add_argument("--test-tiers", nargs="*", metavar="TIER", help="only: wall time of the test suite's tiers "
                        "(scripts/bench_tiers.py): dev (the default), subprocess, jail, dask, notebook, slow, or all "
                        "(every tier once: the whole suite)")
    args = parser.parse_args()
    if args.test_tiers is not None:
        from bench_tiers import TIERS, tier_benchmark

        wanted = list(TIERS) if "all" in args.test_tiers else args.test_tiers or ["dev"]
        if unknown := set(wanted) - set(TIERS):
            parser.error(f"--test-tiers: no tier {', '.join(sorted(unknown))} (tiers: {', '.join(TIERS)}, all)")
        tier_benchmark(wanted, args.repeat)
        return
    if args.busy:
        from bench_training import busy_machine_benchmark

        busy_machine_benchmark()
        return
    if args.training:
        from bench_training import training_benchmark

        training_benchmark()
        return
    if args.structural_profile:
        from bench_structural import structural_profile

        structural_profile(args.repeat)
        return
    if args.status:
        from bench_status import status_benchmark

        status_benchmark(args.repeat)
        return
    if args.model_tier_only:
        _model_tier_median(args.repeat)
        return
    if args.batch:
        from autograder.batch.bench import batch_benchmark

        batch_benchmark(args.batch, args.batch_stage)
        return

    from autograder.course.models import resolve_model

    t = time.monotonic()
    resolved = resolve_model()
    print(f"model resolution: {time.monotonic() - t:.3f} s (target < 5 s) -> {resolved.source}")
    _metric_load_times()

    from autograder.grading import grade
    from autograder.sandbox.jail import SandboxStatus, detect

    on = detect()
    modes = {"on": on, "off": SandboxStatus(False, "benchmark")} if on.on else {"off": on}
    print(on.describe())
    timings: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(args.repeat):
        for mode, status in modes.items():
            for folder in ("solutions", "exercises"):
                result = grade(REPO_ROOT / folder, jobs=args.jobs, sandbox=status)
                per_stage = ", ".join(f"{s.id} {s.duration_s:.1f}s" for s in result.stages)
                print(f"structural tier, {folder}, sandbox {mode}: {result.duration_s:.1f} s wall (target < 60 s), "
                      f"score {result.score:g}/{result.max_score:g}; {per_stage}")
                if folder == "solutions":
                    timings[mode].append(result.duration_s)
    _overhead("structural tier (solutions)", timings, 10)
    print(f"peak memory of a grader process: {_peak_children_mib():.0f} MiB")

    if args.model_tier:
        model_timings = {mode: [_time_model_tier(status, f"sandbox {mode}")] for mode, status in modes.items()}
        _overhead("model tier", model_timings, 5)


def _time_model_tier(status, label: str) -> float:
    """One `autograder grade solutions/ --tier model` as a grader runs it (both notebooks, at the
    cores' thread count): seconds of wall time, each notebook's score printed."""
    from autograder.grading.model_tier import grade_notebooks

    with tempfile.TemporaryDirectory() as tmp:
        t = time.monotonic()
        stages = grade_notebooks(REPO_ROOT / "solutions", Path(tmp), sandbox=status)
        total = time.monotonic() - t
    shown = "; ".join(f"{s.id} {s.duration_s:.0f} s {s.score:g}/{s.max_score:g} {s.details.get('accuracy', '')}"
                      for s in stages)
    print(f"model tier, {label}: {total:.0f} s, target < 240 s ({shown}); "
          f"peak memory {_peak_children_mib():.0f} MiB", flush=True)
    return total


def _model_tier_median(repeat: int) -> None:
    """The model tier in the jail, ``repeat`` times: the median against the 4-minute target."""
    import statistics

    from autograder.sandbox.jail import detect

    status = detect()
    print(status.describe())
    totals = [_time_model_tier(status, f"run {i + 1}/{repeat}") for i in range(repeat)]
    print(f"model tier: median {statistics.median(totals):.0f} s of {repeat} (target <= 240 s on 2 cores); "
          f"runs {', '.join(f'{t:.0f}' for t in totals)} s")


def _metric_load_times() -> None:
    """First and cached load of the course's `evaluate` metric modules, in a fresh process.

    The first load imports `evaluate` and `datasets` (seconds): every grader runner and every
    notebook kernel pays it once; later loads come from the per-process cache.
    """
    import json
    import subprocess
    import sys

    code = ("import json, time; t = time.perf_counter()\n"
            "from autograder.course.metrics import METRICS, load_metric\n"
            "first = {n: (load_metric(n, quiet=True), time.perf_counter())[1] for n in METRICS}\n"
            "t2 = time.perf_counter(); [load_metric(n, quiet=True) for n in METRICS]\n"
            "print(json.dumps({'first': first[METRICS[-1]] - t, 'cached': time.perf_counter() - t2, "
            "'by_name': [first[n] - t for n in METRICS]}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COURSE_ONLINE": "0"})
    if proc.returncode != 0:
        print(f"metric modules: could not load ({proc.stderr.strip().splitlines()[-1:]})")
        return
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"metric modules (accuracy, f1, precision, recall): first load {got['first']:.2f} s in a fresh process "
          f"(cumulative {', '.join(f'{x:.2f}' for x in got['by_name'])} s), cached {1000 * got['cached']:.3f} ms")


def _overhead(what: str, timings: dict[str, list[float]], target_pct: float) -> None:
    import statistics

    if not timings.get("on") or not timings.get("off"):
        print(f"{what}: sandbox overhead not measured (bubblewrap cannot run here)")
        return
    on, off = statistics.median(timings["on"]), statistics.median(timings["off"])
    print(f"{what}: sandbox on {on:.1f} s, off {off:.1f} s (medians of {len(timings['on'])}): "
          f"overhead {100 * (on - off) / off:+.1f}% (target <= {target_pct:g}%)")


if __name__ == "__main__":
    main()
