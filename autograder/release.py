"""Build the student repository: what students receive, and nothing hidden.

Ships exercises/ (stubs, notebooks, public checks) at the release's root, the autograder
library without its graders, the train and validation splits with a data card that names only
them, the manifest (thresholds kept, so `autograder status` can show them; the instructor's
calibration notes dropped), a student README, a pyproject whose plain `pytest` runs checks/, and
the practice workflow (public checks and the notebooks on the validation split: no token, no
graders; the graded run is the instructor's, see templates/instructor-grade.yml and
``autograder collect``). Never: autograder/grading/graders/, solutions/, test splits, the emotion
corpus (it holds the test texts), the project's tests, the instructor's grading workflow and
collection code.
Like otter's assign step, it first checks that solutions pass and stubs fail every grader. The
result is a git repository with one commit, ready to push as the course's template repository.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

from autograder import REPO_ROOT

HIDDEN_PARTS = ("graders",)
INSTRUCTOR_ONLY = ("stubs.py", "release.py",  # need solutions/ to work; nothing for students
                   "sources.py", "corpus.py",  # cut the splits (the hidden one too) from their sources
                   "classroom.py", "instructor-grade.yml")  # the graded run: the instructor's side only
STUDENT_WORKFLOW = "practice.yml"  # templates/practice.yml -> .github/workflows/practice.yml
RELEASED_SPLITS = ("train", "validation")
TEMPLATES = Path(__file__).resolve().parent / "templates"
GITIGNORE = """\
# what the notebooks write (the grader runs them again on its side)
outputs/
# caches and environments
__pycache__/
.pytest_cache/
.ipynb_checkpoints/
.venv/
*.egg-info/
.course_hints.json
"""
GIT_IDENTITY = {"user.name": "Course release", "user.email": "course-release@localhost"}


GRADING_SECTIONS = ("sandbox", "cluster")  # "# ---- NAME" blocks of course.toml that only the grader reads
# [datasets.*] keys a student copy keeps: the rest (sizes, extra rows, the source's hash) is how the hidden
# test split is cut from its source, which only autograder.course.sources reads
STUDENT_DATASET_KEYS = ("labels",)
STUDENT_DATA_NOTE = ("# Your train and validation splits: datasets_cache/<name>/train.jsonl and validation.jsonl,\n"
                     "# checked against datasets_cache/manifest.json. The test split is the grader's: it is not here.")
STUDENT_HEADER = ("# The course manifest: stages, hints, the hidden checks' points and the notebooks' thresholds.\n"
                  "# A stage's id is its name everywhere: <module>.py and checks/test_<module>.py.")


def student_manifest(manifest_text: str) -> str:
    """course.toml for students: thresholds kept (a student should know the bar before the grade);
    dropped: the instructor's calibration notes (seeds, broken variants), the grading sandbox's and
    the cluster's sections, and comments naming files a student copy does not hold (solutions/, graders)."""
    blocks = re.split(r"(?m)^(?=# -{20,} )", manifest_text)
    kept = [_student_data(b) if _block_name(b) == "data" else b for b in blocks
            if _block_name(b) not in GRADING_SECTIONS]
    lines = [ln for ln in "".join(kept).splitlines()
             if not ln.lstrip().startswith("# calibr") and not (ln.startswith("#") and _names_grading_files(ln))]
    return STUDENT_HEADER + "\n" + "\n".join(lines).lstrip("\n") + "\n"


def _block_name(block: str) -> str:
    return block.split("\n", 1)[0].rsplit(" ", 1)[-1]


def _student_data(block: str) -> str:
    """The data block with its tables' labels and Hub ids only, under a note on the released splits."""
    head, *lines = block.splitlines()
    keep = [ln for ln in lines if ln.startswith("[datasets.") or re.match(rf"({'|'.join(STUDENT_DATASET_KEYS)})\s*=", ln)]
    body = "\n".join(("\n" + ln) if ln.startswith("[datasets.") and i else ln for i, ln in enumerate(keep))
    return f"{head}\n{STUDENT_DATA_NOTE}\n{body}\n\n"


def _names_grading_files(line: str) -> bool:
    return any(part in line for part in ("solutions/", "grading/graders", "graders,", "(graders"))


def student_pyproject(text: str) -> str:
    """The project's pyproject.toml with plain `pytest` pointed at the public checks (the project's
    tests/ is not released, and a testpaths entry that does not exist makes pytest warn)."""
    new, count = re.subn(r"(?m)^testpaths\s*=.*$", 'testpaths = ["checks"]', text)
    if count != 1:
        raise RuntimeError("pyproject.toml: expected one `testpaths = [...]` line under [tool.pytest.ini_options]")
    return new


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
        public[name] = {**entry, "splits": {s: v for s, v in entry["splits"].items() if s in RELEASED_SPLITS},
                        "hidden_test_rows": entry["splits"]["test"]["rows"]}  # its size only: for the verdict
    (dst / "manifest.json").write_text(json.dumps(public, indent=2, sort_keys=True) + "\n")
    if "emotion" in public:
        (dst / "emotion" / "DATA_CARD.md").write_text(data_card(dst / "emotion", public["emotion"]["labels"]))


def data_card(folder: Path, labels: list[str]) -> str:
    """The students' data card: the course's card names the corpus, the test split and the
    instructor's scripts, none of which ship; this one describes the released splits only, with
    their per-label counts taken from the files themselves (so the figures cannot drift)."""
    counts = {}
    for split in RELEASED_SPLITS:
        rows = [json.loads(line) for line in (folder / f"{split}.jsonl").read_text().splitlines() if line.strip()]
        counts[split] = Counter(labels[r["label"]] if isinstance(r["label"], int) else r["label"] for r in rows)
    head = "| label | " + " | ".join(RELEASED_SPLITS) + " |"
    lines = [head, "|---|" + "---:|" * len(RELEASED_SPLITS)]
    for label in labels:
        lines.append(f"| {label} | " + " | ".join(f"{counts[s][label]:,}" for s in RELEASED_SPLITS) + " |")
    lines.append("| **all** | " + " | ".join(f"{sum(counts[s].values()):,}" for s in RELEASED_SPLITS) + " |")
    return (TEMPLATES / "STUDENT_DATA_CARD.md").read_text().replace("{split_table}", "\n".join(lines))


def init_git(out: Path) -> None:
    """Make the release a git repository with one commit (the course's template repository).

    The instructor's own git identity is used when set; otherwise a neutral one, so that the
    release never fails on a machine where git was never configured.
    """
    if shutil.which("git") is None:
        raise RuntimeError("git was not found: install git, or run `autograder release OUT --no-git`")
    env = dict(os.environ)
    for key, fallback in GIT_IDENTITY.items():
        if subprocess.run(["git", "config", "--get", key], cwd=out, capture_output=True).returncode != 0:
            field = key.split(".")[1].upper()  # NAME or EMAIL
            env[f"GIT_AUTHOR_{field}"] = env[f"GIT_COMMITTER_{field}"] = fallback
    for cmd in (["git", "-c", "init.defaultBranch=main", "init", "-q"], ["git", "add", "--all"],
                ["git", "-c", "commit.gpgsign=false", "commit", "-q", "-m", "The course, as released to students"]):
        subprocess.run(cmd, cwd=out, env=env, check=True, capture_output=True, text=True)


def build_release(out: Path, *, check: bool = True, git: bool = True) -> list[str]:
    """Write the student repository to ``out`` (which must not exist or be empty); returns its files
    (without git's own). With ``git``, ``out`` becomes a git repository with one commit."""
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
    (out / "course.toml").write_text(student_manifest((REPO_ROOT / "course.toml").read_text()))
    (out / "pyproject.toml").write_text(student_pyproject((REPO_ROOT / "pyproject.toml").read_text()))
    shutil.copy2(TEMPLATES / "STUDENT_README.md", out / "README.md")
    workflow = out / ".github" / "workflows"
    workflow.mkdir(parents=True)
    shutil.copy2(TEMPLATES / STUDENT_WORKFLOW, workflow / STUDENT_WORKFLOW)
    (out / ".gitignore").write_text(GITIGNORE)
    if git:
        init_git(out)
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and ".git" not in p.parts)
