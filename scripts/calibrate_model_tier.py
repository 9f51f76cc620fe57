"""Run the reference notebooks over several seeds and print the trusted evaluator's figures.

The manifest's thresholds are compared with the lower bound of a 95% interval; this script is
how they were calibrated (its output is recorded in course.toml's comments). It also times
each notebook, the model tier's speed target. Usage:

    python scripts/calibrate_model_tier.py --seeds 1 2 3 [--notebook sentiment_model] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from autograder import REPO_ROOT  # noqa: E402
from autograder.course.manifest import load_course  # noqa: E402
from autograder.course.models import resolve_model  # noqa: E402
from autograder.grading.model_tier import grade_notebook  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--notebook", action="append", help="notebook id (default: all)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    course = load_course()
    model = resolve_model()
    print(model.describe())
    notebooks = [course.notebook(n) for n in args.notebook] if args.notebook else list(course.notebooks)
    with tempfile.TemporaryDirectory() as tmp:
        for nb in notebooks:
            for seed in args.seeds:
                result = grade_notebook(nb, REPO_ROOT / "solutions", Path(tmp) / f"{nb.id}-{seed}", model,
                                        seed=seed, threads=args.threads)
                ev = result.details.get("evaluation", {})
                figures = "  ".join(f"{m} {ev.get(m, float('nan')):.3f} [{ev.get(m + '_ci', (0, 0))[0]:.3f}, "
                                    f"{ev.get(m + '_ci', (0, 0))[1]:.3f}]" for m in ("accuracy", "macro_f1"))
                print(f"{nb.id} seed {seed}: {result.score:g}/{result.max_score:g}  {figures}  "
                      f"({result.duration_s:.0f} s) {result.error}", flush=True)


if __name__ == "__main__":
    main()
