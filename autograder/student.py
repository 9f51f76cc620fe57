"""What students run: public checks for a stage, with a hint when they fail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from autograder.course.manifest import load_course

console = Console()


def _run_checks(check_file: Path, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(check_file.resolve()), "-q", "--no-header", "-p",
         "no:cacheprovider", "-o", "addopts=", "--tb=no", "-rfE", "-W", "ignore"],
        cwd=path, capture_output=True, text=True, env={**os.environ, "COLUMNS": "300"},
    )


def run_public_checks(*, stage_id: str | None, path: Path) -> int:
    """Run ``path/checks/test_<module>.py`` for one stage (or every stage); 0 when all pass."""
    course = load_course()
    stages = [course.stage(stage_id)] if stage_id else list(course.stages)
    worst = 0
    for stage in stages:
        check_file = path / stage.public_check_file
        if not check_file.exists():
            console.print(f"[yellow]{stage.id}[/]: no public checks at {check_file}")
            continue
        console.print(f"[b]{stage.id}[/] - {stage.title}")
        with console.status(f"running the public checks of {stage.id} ..."):
            proc = _run_checks(check_file, path)
        if proc.returncode == 0:
            console.print("  [green]all public checks pass[/] (the hidden grader checks more)")
            continue
        worst = 1
        lines = [ln.split("::", 1)[-1] for ln in proc.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))]
        for line in lines[:8] or proc.stdout.strip().splitlines()[-5:]:
            console.print("  x " + line, markup=False, highlight=False)
        failed = [check_name(line) for line in lines]
        number = stage.hint_number(failed[0]) if failed else 1
        if stage.hints:
            console.print(f"  [cyan]hint {number}/{len(stage.hints)}:[/] ", end="")
            console.print(stage.hints[number - 1], markup=False, highlight=False, end="")
            console.print(f"  (all hints: autograder hint {stage.id} --all)", markup=False, highlight=False)
    return worst


def check_name(summary_line: str) -> str:
    """The check's name in a pytest summary line: 'test_x[param] - AssertionError: ...' -> 'test_x'."""
    return summary_line.split(" ", 1)[0].split("[", 1)[0].split("::")[-1]


def show_hint(*, stage_id: str, number: int | None = None, show_all: bool = False,
              state_file: Path = Path(".course_hints.json")) -> int:
    """Show the next hint of a stage (rustlings-style), hint N, or all of them.

    Which hints were already shown is kept in ``state_file`` in the work folder, so each call
    reveals one more, and the last one repeats.
    """
    import json

    stage = load_course().stage(stage_id)
    if not stage.hints:
        console.print(f"{stage.id} has no hints")
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
        console.print(f"[cyan]{stage.id} hint {i}/{len(stage.hints)}:[/] ", end="")
        console.print(stage.hints[i - 1], markup=False, highlight=False)
    return 0
