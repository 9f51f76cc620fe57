"""Run a stage's public checks and keep each failure's WHOLE message, for `autograder check`,
`check()` in a notebook and `autograder check --watch`.

Why not pytest's summary lines: ``-rfE`` cuts a message at the terminal's width and keeps its first
line only, so the course's fix words (written after what went wrong) were cut off. A small plugin
(:class:`Collector`) keeps the exception of every failed check instead, and :func:`failure_text`
words it for a learner.

Two ways to run, one result: in a child process (the CLI: a stage that crashes or calls ``exit``
cannot take the command down) or in this process (a notebook's kernel and the watcher: torch and
transformers are imported once, so a re-check takes about a second). In this process, the stage
modules and their check files are imported afresh each run, so an edited file is what gets checked.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from autograder.course.manifest import Stage
from autograder.messages import clean_text

SHOWN_LIMIT = 700  # characters of one check's message in the terminal (the fix words come first)
PYTEST_ARGS = ["-p", "no:cacheprovider", "-o", "addopts=", "-W", "ignore"]
# in a warm process (a kernel, the watcher): no terminal, and no unraisable-exception plugin, whose
# two full garbage collections at the end of every run cost 0.45 s with torch's objects loaded
WARM_ARGS = ["-p", "no:terminal", "-p", "no:unraisableexception"]
CHILD_ARGS = [*PYTEST_ARGS, "-q", "--no-header", "--tb=no"]  # in this process the terminal plugin is off


@dataclass
class CheckResult:
    """One public check: its name, whether it passed, and (when not) the learner's message."""

    name: str
    passed: bool
    message: str = ""


@dataclass
class StageRun:
    """A stage's public checks after one run; ``problem`` when they could not run at all."""

    stage: Stage
    results: list[CheckResult] = field(default_factory=list)
    problem: str = ""

    @property
    def passed(self) -> bool:
        return not self.problem and bool(self.results) and all(r.passed for r in self.results)

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]


def failure_text(exc: BaseException) -> str:
    """A learner's words for the exception that failed a check: an assertion's own message (the
    check wrote it), a stub that says which function to write, else where the stage raised what."""
    if isinstance(exc, AssertionError):
        return (str(exc).split("\nassert")[0] or "a check failed").strip()
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if Path(f.filename).name.startswith("stage") and not f.name.startswith("<")]  # not <dictcomp>
    where = f"{Path(frames[-1].filename).stem}.{frames[-1].name}" if frames else ""
    if isinstance(exc, NotImplementedError) and where:
        return f"{where} is not written yet (it raises NotImplementedError): see its docstring"
    said = clean_text(f"{type(exc).__name__}: {exc}", 300)
    return f"{where} raised {said}" if where else said


class Collector:
    """A pytest plugin: {check file::check: (passed, message)} for every check and check file."""

    def __init__(self) -> None:
        self.outcomes: dict[str, tuple[bool, str]] = {}

    def pytest_collectreport(self, report) -> None:
        if report.failed:  # the check file could not be imported: a syntax error in the stage, say
            lines = [ln[1:].strip() for ln in str(report.longrepr).splitlines() if ln.startswith("E ")]
            self.outcomes[report.nodeid] = (False, clean_text(" ".join(lines[-2:]) or "import failed", 400))

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        if report.when == "call" or report.failed:
            message = failure_text(call.excinfo.value) if call.excinfo and report.failed else ""
            if report.when == "call" or item.nodeid not in self.outcomes:
                self.outcomes[item.nodeid] = (report.passed or report.skipped, message)


def _stage_results(stage: Stage, outcomes: dict[str, tuple[bool, str]]) -> StageRun:
    run = StageRun(stage)
    for nodeid, (passed, message) in outcomes.items():
        if Path(nodeid.split("::", 1)[0]).stem.removeprefix("test_") != stage.module:
            continue
        if "::" not in nodeid:
            run.problem = f"the checks could not import {stage.module}.py: {message}"
            continue
        run.results.append(CheckResult(nodeid.split("::", 1)[1], passed, message))
    if not run.results and not run.problem:
        run.problem = "no check ran"
    return run


def _check_files(stages: list[Stage], path: Path) -> tuple[list[str], dict[str, StageRun]]:
    files, missing = [], {}
    for stage in stages:
        check_file = path / stage.public_check_file
        if check_file.exists():
            files.append(str(check_file.resolve()))
        else:
            missing[stage.id] = StageRun(stage, problem=f"no public checks at {check_file}")
    return files, missing


def _forget_modules(stages: list[Stage], path: Path) -> None:
    """Drop the stage modules, their check files and the checks' conftest from ``sys.modules``, so
    the next import reads the files as they are now (the student just edited one)."""
    names = {s.module for s in stages} | {f"test_{s.module}" for s in stages} | {"conftest"}
    for name in list(sys.modules):
        if name in names or name.split(".")[-1] in names:
            sys.modules.pop(name, None)
    importlib_cache = getattr(sys, "path_importer_cache", {})
    importlib_cache.pop(str(path.resolve()), None)


@contextlib.contextmanager
def _without_plugin_autoload():
    """pytest without its scan of every installed package's plugins (0.4 s a run, measured with
    torch loaded); the public checks use none of them. The variable is put back afterwards: this
    may be a student's notebook kernel."""
    old = os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
        else:
            os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = old


def run_here(stages: list[Stage], path: Path) -> list[StageRun]:
    """Run the public checks of ``stages`` in this process (a kernel, the watcher); one StageRun each."""
    import importlib

    files, missing = _check_files(stages, path)
    collector = Collector()
    if files:
        _forget_modules(stages, path)
        importlib.invalidate_caches()
        before = os.getcwd()
        os.chdir(path)
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
                    _without_plugin_autoload():
                pytest.main([*files, *PYTEST_ARGS, *WARM_ARGS, "--capture=sys"], plugins=[collector])
        finally:
            os.chdir(before)
    return [missing.get(s.id) or _stage_results(s, collector.outcomes) for s in stages]


def run_in_child(stages: list[Stage], path: Path, timeout: float | None = None) -> list[StageRun]:
    """Run the public checks of ``stages`` in one pytest child (the CLI); one StageRun each."""
    import tempfile

    files, missing = _check_files(stages, path)
    outcomes: dict = {}
    tail = ""
    if files:
        with tempfile.TemporaryDirectory(prefix="ag-check-") as tmp:
            target = Path(tmp) / "outcomes.json"
            library = str(Path(__file__).resolve().parent.parent)
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (library, os.environ.get("PYTHONPATH"))
                                                               if p)}
            try:
                proc = subprocess.run([sys.executable, "-m", "autograder.checkrun", str(target), *files], cwd=path,
                                      env=env, capture_output=True, text=True, timeout=timeout)
                tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:]
            except subprocess.TimeoutExpired:
                tail = [f"the public checks did not finish within {timeout:.0f} s"]
            if target.exists():
                outcomes = {k: tuple(v) for k, v in json.loads(target.read_text()).items()}
    runs = [missing.get(s.id) or _stage_results(s, outcomes) for s in stages]
    for run in runs:
        if run.problem == "no check ran" and tail:
            run.problem = f"pytest could not run the checks: {clean_text(tail[0], 200)}"
    return runs


def report_lines(run: StageRun) -> list[tuple[str, str]]:
    """What a learner reads for one stage, as (style, text) lines: the same in a terminal and a notebook."""
    stage = run.stage
    lines = [("bold", f"{stage.id} - {stage.title}")]
    if run.problem:
        return [*lines, ("yellow", f"  {run.problem}")]
    if run.passed:
        return [*lines, ("green", f"  all {len(run.results)} public checks pass (the hidden grader checks more)")]
    for result in run.failed:
        lines.append(("", f"  x {result.name}: {clean_text(result.message, SHOWN_LIMIT)}"))
    if stage.hints:
        number = stage.hint_number(run.failed[0].name)
        lines.append(("cyan", f"  hint {number}/{len(stage.hints)}: {stage.hints[number - 1]}  "
                              f"(all hints: autograder hint {stage.id} --all)"))
    return lines


def main(argv: list[str]) -> int:
    """The child: ``python -m autograder.checkrun OUTCOMES.json CHECK_FILE...``."""
    collector = Collector()
    code = pytest.main([*argv[1:], *CHILD_ARGS], plugins=[collector])
    Path(argv[0]).write_text(json.dumps(collector.outcomes))
    return int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
