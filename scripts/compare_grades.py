"""Scores and messages of the reference solutions, the stubs and every mutant, as one JSON file.

Why: a change to how grading runs (the judge, the runners, how settings reach them) must not
change a single verdict. Run it before and after the change and compare the two files:

    python scripts/compare_grades.py --out before.json     # on the old checkout
    python scripts/compare_grades.py --out after.json      # on the new one
    python scripts/compare_grades.py --diff before.json after.json

The hidden inputs are drawn from a seed over the graders' source (``grading/hidden_inputs.py``), so a
change to any grader file draws new inputs and changes every message that quotes one. To compare
such a change, pin the old seed for the new run: compute ``course_seed()`` on the old checkout and
put a ``sitecustomize.py`` on ``PYTHONPATH`` (the judge inherits it) that replaces
``autograder.grading.hidden_inputs.course_seed`` with a function returning those bytes.

The old checkout is best graded from a git worktree with ``PYTHONPATH`` set to it (and the current
directory outside the main tree), except the stages whose runner imports ``autograder.course.metrics``
(stage 4): the jail mounts the worktree's copy, but the runner finds the package through the
editable install, which points at the main tree (not mounted), so the import fails; grade those
stages of the old checkout with its files copied into the main tree.

Times and the sandbox's description are left out (they differ from run to run); everything a
student or an instructor reads (score, each check's verdict, points and message, the hint, the
error) is kept.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _mutants() -> dict:
    spec = importlib.util.spec_from_file_location("mutants", REPO_ROOT / "tests" / "test_mutants.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MUTANTS


def _shown(stages) -> list[dict]:
    return [{"stage": s.id, "score": s.score, "max": s.max_score, "hint": s.hint, "error": s.error,
             "checks": [[c.name, c.passed, c.score, c.message] for c in s.checks]} for s in stages]


def collect(only: list[str] | None = None) -> dict:
    """Every grade this comparison covers, keyed by what was graded."""
    from autograder.course.manifest import load_course
    from autograder.grading.structural import grade

    course = load_course()
    out = {}
    for name in ("solutions", "exercises"):
        if not only or name in only:
            out[name] = _shown(grade(REPO_ROOT / name).stages)
    for mutant, (stage_id, old, new, _) in _mutants().items():
        if only and mutant not in only:
            continue
        stage = course.stage(stage_id)
        with tempfile.TemporaryDirectory() as tmp:
            sub = Path(tmp) / "submission"
            sub.mkdir()
            source = (REPO_ROOT / "solutions" / f"{stage.module}.py").read_text()
            (sub / f"{stage.module}.py").write_text(source.replace(old, new))
            out[f"mutant:{mutant}"] = _shown(grade(sub, stages=[stage_id]).stages)
            shutil.rmtree(sub, ignore_errors=True)
        print(f"graded {mutant}", file=sys.stderr)
    return out


def diff(before: dict, after: dict) -> list[str]:
    problems = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            problems.append(f"{key}:\n  before {json.dumps(before.get(key))[:1500]}\n  after  "
                            f"{json.dumps(after.get(key))[:1500]}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the grades here (JSON)")
    parser.add_argument("--only", nargs="*", help="solutions, exercises or mutant ids")
    parser.add_argument("--diff", nargs=2, metavar=("BEFORE", "AFTER"), help="compare two files")
    args = parser.parse_args()
    if args.diff:
        before, after = (json.loads(Path(p).read_text()) for p in args.diff)
        problems = diff(before, after)
        print("\n".join(problems) if problems else f"identical: {len(before)} grades")
        return 1 if problems else 0
    grades = collect(args.only)
    Path(args.out or "grades.json").write_text(json.dumps(grades, indent=1))
    print(f"{len(grades)} grades written to {args.out or 'grades.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
