"""`autograder status` against plain `pytest checks` in a fresh student release (target: <= 1.5x).

Both run in the same release, alternating, ``repeat`` times each; the medians are compared, so a
burst of load from another process on these shared cores hits both sides alike.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 1.5


def _timed(cmd: list[str], cwd: Path) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(cwd)}
    start = time.monotonic()
    subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    return time.monotonic() - start


def status_benchmark(repeat: int = 3) -> float:
    """Print both medians and their ratio; returns the ratio (status / pytest)."""
    from autograder.release import build_release

    with tempfile.TemporaryDirectory(prefix="bench-status-") as tmp:
        out = Path(tmp) / "student-repo"
        build_release(out, check=False)
        times: dict[str, list[float]] = {"status": [], "pytest": []}
        for _ in range(repeat):
            times["pytest"].append(_timed([sys.executable, "-m", "pytest", "checks", "-q", "-p", "no:cacheprovider"],
                                          out))
            times["status"].append(_timed([sys.executable, "-m", "autograder.student_cli", "status"], out))
    status, plain = statistics.median(times["status"]), statistics.median(times["pytest"])
    ratio = status / plain
    print(f"autograder status in a fresh release: {status:.1f} s, plain `pytest checks`: {plain:.1f} s "
          f"(medians of {repeat}; runs {', '.join(f'{t:.1f}' for t in times['status'])} vs "
          f"{', '.join(f'{t:.1f}' for t in times['pytest'])}): {ratio:.2f}x (target <= {TARGET_RATIO:g}x)")
    return ratio


if __name__ == "__main__":
    status_benchmark(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
