"""Wall time of the test suite's tiers (tests/conftest.py), each run as a developer runs it.

Each tier is one ``pytest --tier NAME`` in a fresh process (collection included); the tiers split the
suite without overlap, so running them all is one run of the whole suite (the README's ``pytest``)
in pieces. Collection alone is timed too. The load average is printed beside every figure: on a
shared machine the figures are only comparable at the same load.

    python scripts/bench_tiers.py                       # the developer tier (dev = unit) and collection
    python scripts/bench_tiers.py --tier jail --repeat 3
    python scripts/bench_tiers.py --repeat 3 --workers 2    # the developer tier on two pytest-xdist workers
    python scripts/bench_tiers.py --all                 # every tier once: the whole suite (~25 min on 2 cores)
    python scripts/benchmark.py --test-tiers [--all]    # the same, from the benchmark script
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TIERS = ("dev", "subprocess", "jail", "dask", "notebook", "slow")  # dev = unit; cheapest first
DEV_TARGET_S = 120  # issue 19: the developer tier in at most 2 minutes on 2 cores
SUMMARY = re.compile(r"(\d+) (passed|failed|skipped|deselected|errors?|xfailed|xpassed)")


def _load() -> str:
    return "load " + " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() \
        else "load ?"


def _pytest(args: list[str], timeout: float, log: Path | None = None) -> tuple[float, int, str]:
    """(wall seconds, exit code, pytest's last line) of one pytest run from the repository root; its whole
    output written to ``log`` when given."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    start = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", *args], cwd=REPO_ROOT,
                              env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return time.monotonic() - start, -1, f"stopped after {timeout:.0f} s"
    if log is not None:
        log.write_text(done.stdout + done.stderr)
    lines = [ln.strip("= ") for ln in done.stdout.splitlines() if ln.strip()]
    return time.monotonic() - start, done.returncode, lines[-1] if lines else done.stderr.strip()[-200:]


def _counts(line: str) -> str:
    return ", ".join(f"{n} {what}" for n, what in SUMMARY.findall(line)) or line


def collection(repeat: int) -> float:
    """``pytest --collect-only -q`` of the whole suite, ``repeat`` times: the median."""
    walls = []
    for _ in range(repeat):
        wall, rc, last = _pytest(["--collect-only"], timeout=600)
        walls.append(wall)
        print(f"collection: {wall:6.1f} s  ({_counts(last)}; {_load()})", flush=True)
    return statistics.median(walls)


def tier(name: str, repeat: int, timeout: float, logs: Path | None = None, workers: int = 0) -> tuple[float, str]:
    """One tier, ``repeat`` times: (median wall seconds, the last run's outcome)."""
    walls, outcome = [], ""
    for i in range(repeat):
        before = _load()
        log = logs / f"{name}-{i + 1}.log" if logs else None
        wall, rc, last = _pytest(["--tier", name, *(["-n", str(workers)] if workers else [])], timeout, log)
        walls.append(wall)
        outcome = ("ok" if rc in (0, 5) else f"exit {rc}") + f": {_counts(last)}"
        print(f"tier {name:10s} run {i + 1}/{repeat}: {wall:6.1f} s  ({outcome}; {before} -> {_load()})",
              flush=True)
    return statistics.median(walls), outcome


def tier_benchmark(tiers: list[str], repeat: int = 1, timeout: float = 3600,
                   logs: Path | None = None, workers: int = 0) -> dict[str, float]:
    print(f"{os.cpu_count()} CPUs; {_load()}; PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')}")
    results = {"collection": collection(repeat)}
    outcomes = {}
    for name in tiers:
        results[name], outcomes[name] = tier(name, repeat, timeout, logs, workers)
    print(f"\n| tier | what it runs | wall (median of {repeat}) | outcome |\n|---|---|---|---|")
    print(f"| collection | `pytest --collect-only -q` | {results['collection']:.1f} s | |")
    for name in tiers:
        note = f" (target <= {DEV_TARGET_S} s)" if name == "dev" else ""
        command = f"pytest --tier {name}" + (f" -n {workers}" if workers else "")
        print(f"| {name} | `{command}` | {results[name]:.0f} s{note} | {outcomes[name]} |")
    if set(TIERS) <= set(tiers):
        print(f"| all | the tiers together: the README's `pytest` | {sum(results[t] for t in TIERS):.0f} s | |")
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", action="append", choices=TIERS, help="a tier to time (repeatable; default: dev)")
    parser.add_argument("--all", action="store_true", help="every tier once, cheapest first: the whole suite")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each tier (median kept)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds a tier may run")
    parser.add_argument("--logs", type=Path, help="a folder for each run's whole pytest output (slowest tests, "
                        "failures)")
    parser.add_argument("--workers", type=int, default=0, metavar="N", help="run each tier on N pytest-xdist "
                        "workers (-n N; default: none, as plain pytest)")
    args = parser.parse_args(argv)
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
    tier_benchmark(list(TIERS) if args.all else args.tier or ["dev"], args.repeat, args.timeout, args.logs,
                   args.workers)


if __name__ == "__main__":
    main()
