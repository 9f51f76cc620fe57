"""What students run: public checks for a stage, with a hint when they fail, in a terminal
(`autograder check`, `autograder hint`) or in a notebook (``from autograder.student import check, hint``).
Both show the same lines (:func:`autograder.checkrun.report_lines`)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from autograder.checkrun import StageRun, report_lines, run_here, run_in_child
from autograder.course.manifest import Stage, load_course

console = Console(soft_wrap=True)  # a message is never broken into lines inside its fix words


def _stages(stage_ids: tuple[str, ...] | list[str]) -> list[Stage]:
    course = load_course()
    return [course.stage(s) for s in stage_ids] if stage_ids else list(course.stages)


def print_runs(runs: list[StageRun], out: Console | None = None) -> None:
    """Print each stage's result, failed checks with their whole message, and the mapped hint."""
    out = out or console
    for run in runs:
        for style, text in report_lines(run):
            out.print(text, style=style or None, markup=False, highlight=False)


def run_public_checks(*, stage_id: str | None, path: Path) -> int:
    """Run ``path/checks/test_<module>.py`` for one stage (or every stage), in one pytest child; 0 when all pass."""
    stages = _stages([stage_id] if stage_id else [])
    with console.status("running the public checks ..."):
        runs = run_in_child(stages, path, timeout=sum(s.timeout for s in stages))
    print_runs(runs)
    return 0 if all(r.passed for r in runs) else 1


def check_name(summary_line: str) -> str:
    """The check's name in a pytest summary line: 'test_x[param] - AssertionError: ...' -> 'test_x'."""
    return summary_line.split(" ", 1)[0].split("[", 1)[0].split("::")[-1]


class ChecksFailed(Exception):
    """Raised by :func:`check` in a notebook when a stage's public checks fail: one line, not a traceback
    (IPython prints what ``_render_traceback_`` returns), after the messages and the hint were shown."""

    def _render_traceback_(self) -> list[str]:
        return [f"✏️  {self}"]


def _work_dir() -> Path:
    return Path("exercises") if Path("exercises").is_dir() and not Path("checks").is_dir() else Path(".")


def check(*stage_ids: str, path: str | Path | None = None, stop: bool = True) -> None:
    """In a notebook: ``check("tokenize")`` (or ``check()`` for every stage) runs the same public checks
    as `autograder check`, here in the kernel, importing the stage files as they are now, and shows the
    same messages and hint. With ``stop`` a failing stage raises :class:`ChecksFailed`, so Run All stops
    here instead of minutes later inside training. Returns nothing, so a notebook cell shows only the lines.

    When the grader runs the notebook (its copy of course.toml has no thresholds, see
    :func:`autograder.verdict.graded_run`) nothing is run: the grader has its own hidden checks, and a
    public check must never cost a notebook its run.
    """
    from autograder.verdict import graded_run

    if graded_run():
        print("public checks: skipped (the grader runs its own hidden checks)")
        return
    work = Path(path) if path else _work_dir()
    runs = run_here(_stages(stage_ids), work)
    for run in runs:  # plain text: a notebook's output is no terminal
        print("\n".join(text for _, text in report_lines(run)))
    # a folder without checks/ (copied without them) says so above but is not stopped
    failing = [r.stage.id for r in runs if not r.passed and (work / r.stage.public_check_file).exists()]
    if failing and stop:
        raise ChecksFailed(f"fix {', '.join(failing)} first: its public checks fail (messages and hint above); "
                           "then run this cell again")


def hint(stage_id: str, number: int | None = None) -> None:
    """In a notebook: the next hint of a stage (``hint("tokenize")``), or hint ``number``; as `autograder hint`."""
    show_hint(stage_id=stage_id, number=number, out=Console(no_color=True, force_jupyter=False, soft_wrap=True))


def show_hint(*, stage_id: str, number: int | None = None, show_all: bool = False,
              state_file: Path = Path(".course_hints.json"), out: Console | None = None) -> int:
    """Show the next hint of a stage (rustlings-style), hint N, or all of them.

    Which hints were already shown is kept in ``state_file`` in the work folder, so each call
    reveals one more, and the last one repeats.
    """
    import json

    out = out or console
    stage = load_course().stage(stage_id)
    if not stage.hints:
        out.print(f"{stage.id} has no hints")
        return 0
    seen = json.loads(state_file.read_text()) if state_file.exists() else {}
    if show_all:
        numbers = range(1, len(stage.hints) + 1)
    elif number is not None:
        numbers = [min(max(number, 1), len(stage.hints))]
    else:
        numbers = [min(seen.get(stage.id, 0) + 1, len(stage.hints))]
        seen[stage.id] = numbers[0]
        try:
            state_file.write_text(json.dumps(seen))
        except OSError:
            pass
    for i in numbers:  # a hint is plain text: "[contradiction, entailment]" is not markup
        out.print(f"[cyan]{stage.id} hint {i}/{len(stage.hints)}:[/] ", end="")
        out.print(stage.hints[i - 1], markup=False, highlight=False)
    return 0
