"""`autograder status`: a grade preview for students, in about the time plain `pytest checks` takes.

Why one pytest run: every stage's checks import torch and transformers, so one process per stage
paid that import six times (35-55 s against ~6 s). Here a single pytest child runs every check
file, with this module loaded as a small plugin (``-p autograder.preview``) that writes each
check's outcome to a JSON file; the parent sorts the outcomes by stage.

What it shows comes from course.toml alone: the hidden checks' names and points
(``[stages.checks]``), the notebooks' checks, points and thresholds (``[[notebooks]]``). Never the
graders' code, which a student copy does not hold. It also says what is left, the notebooks too
(has ``outputs/<notebook>/model`` been saved? what did it score on the validation split?).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from autograder import REPO_ROOT
from autograder.course.manifest import Course, Notebook, Stage, load_course

RESULTS_ENV = "AUTOGRADER_PREVIEW_RESULTS"  # where the plugin (in the pytest child) writes outcomes
GRADERS = REPO_ROOT / "autograder" / "grading" / "graders"


# ----------------------------------------------------------------------------- the plugin (pytest child)
_outcomes: dict[str, str] = {}


def pytest_collectreport(report) -> None:
    """A check file that cannot even be imported (a syntax error in a stage module) fails its stage."""
    if report.failed:
        _outcomes[report.nodeid] = "error"


def pytest_runtest_logreport(report) -> None:
    """One outcome per check: its call's, unless its set-up or tear-down failed (or it was skipped)."""
    if report.when == "call":
        _outcomes[report.nodeid] = report.outcome
    elif report.failed:
        _outcomes[report.nodeid] = "error"
    elif report.skipped:
        _outcomes[report.nodeid] = "skipped"


def pytest_sessionfinish(session, exitstatus) -> None:
    target = os.environ.get(RESULTS_ENV)
    if target:
        Path(target).write_text(json.dumps(_outcomes))


# ----------------------------------------------------------------------------- the parent
@dataclass
class StageProgress:
    """A stage's public checks: how many ran, how many passed, and whether its file could be run."""

    stage: Stage
    passed: int = 0
    total: int = 0
    problem: str = ""  # why the checks could not tell (no check file, import error, ...)

    @property
    def done(self) -> bool:
        return not self.problem and self.total > 0 and self.passed == self.total


@dataclass
class NotebookProgress:
    """A notebook's own run on the student's machine: its saved model and validation scores."""

    notebook: Notebook
    output_dir: Path
    model_saved: bool = False
    validation: dict[str, float] = field(default_factory=dict)
    verdict: list[str] = field(default_factory=list)  # autograder.verdict's lines for the last saved run


def run_public_checks(path: Path, course: Course) -> list[StageProgress]:
    """Run every stage's public checks in ONE pytest child; the outcome of each stage."""
    progress = {s.module: StageProgress(s) for s in course.stages}
    files = []
    for stage in course.stages:
        check_file = path / stage.public_check_file
        if check_file.exists():
            files.append(str(check_file.resolve()))
        else:
            progress[stage.module].problem = f"no public checks at {check_file}"
    if not files:
        return list(progress.values())
    with tempfile.TemporaryDirectory(prefix="ag-status-") as tmp:
        results = Path(tmp) / "outcomes.json"
        library = str(Path(__file__).resolve().parent.parent)  # so the child finds this plugin
        env = {**os.environ, RESULTS_ENV: str(results), "COLUMNS": "200",
               "PYTHONPATH": os.pathsep.join(p for p in (library, os.environ.get("PYTHONPATH", "")) if p)}
        cmd = [sys.executable, "-m", "pytest", *files, "-q", "--no-header", "--tb=no", "-p", "no:cacheprovider",
               "-o", "addopts=", "-W", "ignore", "--continue-on-collection-errors", "-p", "autograder.preview"]
        timeout = sum(s.timeout for s in course.stages)
        try:
            proc = subprocess.run(cmd, cwd=path, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            for p in progress.values():
                p.problem = p.problem or f"the public checks did not finish within {timeout:.0f} s"
            return list(progress.values())
        outcomes = json.loads(results.read_text()) if results.exists() else {}
    if not outcomes:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"]
        for p in progress.values():
            p.problem = p.problem or f"pytest could not run the checks: {tail[0][:200]}"
    for nodeid, outcome in outcomes.items():
        module = Path(nodeid.split("::", 1)[0]).stem.removeprefix("test_")
        p = progress.get(module)
        if p is None:
            continue
        if "::" not in nodeid:  # the check file itself could not be imported
            p.problem = "the checks could not be imported (run `autograder check " + p.stage.id + "` to see why)"
            continue
        p.total += outcome != "skipped"
        p.passed += outcome == "passed"
    return list(progress.values())


def _validation_scores(predictions: Path) -> dict[str, float]:
    """Accuracy and macro-F1 of a notebook's ``validation_predictions.jsonl`` (practice, not a grade)."""
    try:
        rows = [json.loads(line) for line in predictions.read_text().splitlines() if line.strip()]
        pairs = [(r["label"], r["prediction"]) for r in rows]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    if not pairs:
        return {}
    f1s = []
    for label in sorted({y for y, _ in pairs}, key=str):
        tp = sum(y == label and p == label for y, p in pairs)
        wrong = sum((y == label) != (p == label) for y, p in pairs)
        f1s.append(2 * tp / (2 * tp + wrong) if tp else 0.0)
    return {"accuracy": sum(y == p for y, p in pairs) / len(pairs), "macro_f1": sum(f1s) / len(f1s)}


def _verdict(out: Path, nb: Notebook) -> list[str]:
    """The notebook's own verdict for its last saved run (a broken predictions file: none)."""
    from autograder.verdict import saved_run_verdict

    try:
        return saved_run_verdict(out, nb.notebook)
    except (KeyError, ValueError, TypeError, ZeroDivisionError):
        return []


def notebook_progress(path: Path, course: Course) -> list[NotebookProgress]:
    """What each notebook left in ``outputs/<notebook>/`` when the student ran it."""
    found = []
    for nb in course.notebooks:
        out = path / "outputs" / Path(nb.notebook).stem
        model = out / "model"
        found.append(NotebookProgress(nb, out, model_saved=(model / "config.json").is_file(),
                                      validation=_validation_scores(out / "validation_predictions.jsonl"),
                                      verdict=_verdict(out, nb)))
    return found


GRADING_ELSEWHERE = (
    "autograder grade: grading happens on your course's side, not in your copy of the course.\n"
    "Your copy has no hidden checks to grade with; after the deadline your instructor grades the last\n"
    "commit you pushed. To see where you stand, run:\n"
    "  autograder status          your progress, the hidden checks with their points, and the notebooks'\n"
    "                             thresholds\n"
    "  autograder check STAGE     the public checks of one stage, with a hint when one fails (e.g. tokenize)")


def student_copy_message() -> str | None:
    """What `autograder grade` says in a student's copy (it has no graders); None in the course's repository."""
    return None if GRADERS.is_dir() else GRADING_ELSEWHERE


def show_status(*, path: Path) -> int:
    """Print the grade preview for the work folder ``path``; always 0 (it informs, it does not judge)."""
    from rich.console import Console

    console = Console()
    course = load_course()
    with console.status("running the public checks of every stage (one pytest run) ..."):
        stages = run_public_checks(path, course)
    render(console, course, stages, notebook_progress(path, course))
    from autograder.course.models import resolve_model

    console.print(f"The notebooks train {resolve_model().describe()}", markup=False, highlight=False)
    return 0


# ----------------------------------------------------------------------------- printing
def _thresholds(nb: Notebook) -> str:
    if not nb.thresholds:
        return "not published in your course.toml"
    return "\n".join(f"{name} >= {value:.2f}" for name, value in nb.thresholds.items())


def render(console, course: Course, stages: list[StageProgress], notebooks: list[NotebookProgress]) -> None:
    """The preview: progress per stage, the hidden checks with their points, the notebooks, what is left."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Your progress (public checks: yours to run)")
    for col in ("#", "stage", "public checks", "points (hidden checks)"):
        table.add_column(col)
    for i, p in enumerate(stages, 1):
        state = (Text(p.problem, style="yellow") if p.problem else
                 Text(f"pass ({p.passed}/{p.total})", style="green") if p.done else
                 Text(f"not yet ({p.passed}/{p.total} pass)", style="red"))
        table.add_row(str(i), p.stage.id, state, f"{p.stage.points:g}")
    console.print(table)

    hidden = Table(title="What the hidden checks test (run on tiny models after the deadline)")
    for col in ("stage", "hidden check", "points"):
        hidden.add_column(col)
    for stage in course.stages:
        last = len(stage.checks) - 1
        for j, (name, points) in enumerate(stage.checks.items()):
            hidden.add_row(stage.id if j == 0 else "", Text(name), f"{points:g}", end_section=j == last)
    console.print(hidden)

    nbs = Table(title="The notebooks (run again by the grader; the saved model is scored on a hidden test split)")
    for col in ("notebook", "graded checks: points", "thresholds", "saved model"):
        nbs.add_column(col)
    for n in notebooks:
        checks = Text("\n".join(f"{name}: {points:g}" for name, points in n.notebook.checks.items()))
        saved = Text("yes", style="green") if n.model_saved else Text("not yet", style="red")
        nbs.add_row(n.notebook.notebook, checks, _thresholds(n.notebook), saved)
    console.print(nbs)
    console.print(Text("A threshold is compared with the LOWER end of a 95% confidence interval of your model's "
                       "score on the hidden test split: aim a few points above it on the validation split."))
    for n in notebooks:
        if n.verdict:
            console.print(Text("\n".join(n.verdict)))
        elif n.validation:
            scores = ", ".join(f"{k} {v:.3f}" for k, v in n.validation.items())
            console.print(Text(f"{n.notebook.notebook}, your last run on the validation split: {scores} "
                               "(practice, not your grade)"))

    _render_next_steps(console, course, stages, notebooks)


def _render_next_steps(console, course: Course, stages: list[StageProgress],
                       notebooks: list[NotebookProgress]) -> None:
    """The grade's make-up and what is left to do, first thing first."""
    from rich.text import Text

    done = sum(p.done for p in stages)
    console.print(Text(f"{done}/{len(stages)} stages pass their public checks. The grade: "
                       f"{sum(s.points for s in course.stages):g} points from the hidden stage checks + "
                       f"{sum(n.points for n in course.notebooks):g} from the notebooks = {course.max_score:g}."))
    todo = [p.stage for p in stages if not p.done]
    left = []
    if todo:
        first = todo[0]
        left.append(f"next: {first.id} - edit {first.module}.py, then `autograder check {first.id}` "
                    f"(stuck? `autograder hint {first.id}`)")
        if todo[1:]:
            left.append("then the stages " + ", ".join(s.id for s in todo[1:]))
    left += [f"run {n.notebook.notebook} from top to bottom: it saves {n.output_dir}/model"
             for n in notebooks if not n.model_saved]
    if left:
        console.print(Text("What is left:", style="bold"))
        for item in left:
            console.print(Text(f"  - {item}"))
    else:
        console.print(Text("Nothing left that you can check yourself: commit and push your work. The grader runs "
                           "the hidden checks and your notebooks again on its side.", style="green"))
