"""Build the student repository: what students receive, and nothing hidden.

Ships exercises/ (stubs, notebooks, public checks) at the release's root, the autograder
library without its graders, the train and validation splits, the manifest without its
thresholds, a student README and the practice workflow (public checks and the notebooks on the
validation split: no token, no graders; the graded run is the instructor's, see
templates/instructor-grade.yml and ``autograder collect``). Never: autograder/grading/graders/,
solutions/, test splits, the emotion corpus (it holds the test texts), the project's tests, the
instructor's grading workflow and collection code.
Like otter's assign step, it first checks that solutions pass and stubs fail every grader.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from autograder import REPO_ROOT

HIDDEN_PARTS = ("graders",)
INSTRUCTOR_ONLY = ("stubs.py", "release.py",  # need solutions/ to work; nothing for students
                   "classroom.py", "instructor-grade.yml")  # the graded run: the instructor's side only
STUDENT_WORKFLOW = "practice.yml"  # templates/practice.yml -> .github/workflows/practice.yml
RELEASED_SPLITS = ("train", "validation")


def strip_thresholds(manifest_text: str) -> str:
    """course.toml without the model tier's thresholds (and their calibration comments)."""
    lines = manifest_text.splitlines()
    kept = [ln for ln in lines if not re.match(r"\s*thresholds\s*=", ln) and not ln.lstrip().startswith("# calibr")]
    return "\n".join(kept) + "\n"


def verify_solutions_and_stubs() -> list[str]:
    """Problems that block a release: a solution that fails a grader, a stub that passes one, stale stubs."""
    from autograder.course import stubs
    from autograder.grading import grade

    problems = [f"exercises/{rel} is stale (run `autograder stubs`)" for rel in stubs.stale_files()]
    for result, expect_pass in ((grade(REPO_ROOT / "solutions"), True), (grade(REPO_ROOT / "exercises"), False)):
        for stage in result.stages:
            for check in stage.checks:
                if check.passed != expect_pass:
                    who = "solution fails" if expect_pass else "stub passes"
                    problems.append(f"{who} {stage.id}/{check.name}: {check.message}")
    return problems


def _copy_library(target: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", *HIDDEN_PARTS, *INSTRUCTOR_ONLY)
    shutil.copytree(REPO_ROOT / "autograder", target / "autograder", ignore=ignore)


def _copy_data(target: Path) -> None:
    from autograder.course.data import manifest

    src, dst = REPO_ROOT / "datasets_cache", target / "datasets_cache"
    public = {}
    for name, entry in manifest().items():
        (dst / name).mkdir(parents=True, exist_ok=True)
        for split in RELEASED_SPLITS:
            shutil.copy2(src / name / f"{split}.jsonl", dst / name / f"{split}.jsonl")
        public[name] = {**entry, "splits": {s: v for s, v in entry["splits"].items() if s in RELEASED_SPLITS}}
    (dst / "manifest.json").write_text(json.dumps(public, indent=2, sort_keys=True) + "\n")
    card = src / "emotion" / "DATA_CARD.md"
    if card.exists():
        shutil.copy2(card, dst / "emotion" / "DATA_CARD.md")


def build_release(out: Path, *, check: bool = True) -> list[str]:
    """Write the student repository to ``out`` (which must not exist or be empty); returns its files."""
    if check:
        problems = verify_solutions_and_stubs()
        if problems:
            raise RuntimeError("release blocked:\n  " + "\n  ".join(problems))
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO_ROOT / "exercises", out, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    _copy_library(out)
    _copy_data(out)
    (out / "course.toml").write_text(strip_thresholds((REPO_ROOT / "course.toml").read_text()))
    shutil.copy2(REPO_ROOT / "pyproject.toml", out / "pyproject.toml")
    templates = Path(__file__).parent.parent / "templates"
    shutil.copy2(templates / "STUDENT_README.md", out / "README.md")
    workflow = out / ".github" / "workflows"
    workflow.mkdir(parents=True)
    shutil.copy2(templates / STUDENT_WORKFLOW, workflow / STUDENT_WORKFLOW)
    (out / ".gitignore").write_text("__pycache__/\noutputs/\n.venv/\n*.egg-info/\n")
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
