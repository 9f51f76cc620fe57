"""What students run: public checks for a stage, with a hint when they fail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from autograder.manifest import load_course

console = Console()


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
            proc = subprocess.run(
                [sys.executable, "-m", "pytest", str(check_file.resolve()), "-q", "--no-header", "-p",
                 "no:cacheprovider", "-o", "addopts=", "--tb=no", "-rfE", "-W", "ignore"],
                cwd=path, capture_output=True, text=True, env={**os.environ, "COLUMNS": "300"},
            )
        if proc.returncode == 0:
            console.print("  [green]all public checks pass[/] (the hidden grader checks more)")
            continue
        worst = 1
        lines = [ln.split("::", 1)[-1] for ln in proc.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))]
        for line in lines[:8] or proc.stdout.strip().splitlines()[-5:]:
            console.print("  x " + line, markup=False, highlight=False)
        if stage.hints:
            console.print(f"  [cyan]hint 1/{len(stage.hints)}:[/] {stage.hints[0]}  (more: autograder hint {stage.id})")
    return worst


def show_hint(*, stage_id: str, number: int | None = None) -> int:
    stage = load_course().stage(stage_id)
    hints = list(enumerate(stage.hints, 1))
    if number is not None:
        hints = [h for h in hints if h[0] == number]
    for i, text in hints:
        console.print(f"[cyan]{stage.id} hint {i}/{len(stage.hints)}:[/] {text}")
    return 0
