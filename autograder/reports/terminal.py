"""Render a GradeResult for the terminal (rich) and as JSON.

What a submission can shape (its folder's name, messages, errors, warnings) is printed as literal
text: inside Rich markup it is escaped, elsewhere printed with markup, highlighting and emoji codes
off, so ``evil[reverse]x`` keeps its brackets and ``:warning:`` stays text. Control characters are
already gone from the result (reports/results.py); hints and titles are the instructor's markup.
"""

from __future__ import annotations

import json

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from autograder.reports.results import GradeResult


def to_json(result: GradeResult) -> str:
    return json.dumps(result.to_dict(), indent=2)


def _fmt(x: float) -> str:
    return f"{x:g}"


def print_table(result: GradeResult, console: Console | None = None, *, verbose: bool = True) -> None:
    console = console or Console()
    plain = {"markup": False, "highlight": False, "emoji": False}
    table = Table(title=Text(f"Grade for {result.submission}", style="table.title"), show_lines=False)
    table.add_column("stage")
    table.add_column("tier")
    table.add_column("score", justify="right")
    table.add_column("checks", justify="right")
    table.add_column("time", justify="right")
    for s in result.stages:
        passed = sum(c.passed for c in s.checks)
        style = "green" if s.score == s.max_score else ("yellow" if s.score > 0 else "red")
        table.add_row(Text(s.id), Text(s.tier), f"[{style}]{_fmt(s.score)}/{_fmt(s.max_score)}[/]",
                      f"{passed}/{len(s.checks)}", f"{s.duration_s:.1f}s")
    table.add_row("[b]total[/]", "", f"[b]{_fmt(result.score)}/{_fmt(result.max_score)}[/]", "",
                  f"{result.duration_s:.1f}s")
    console.print(table)
    if result.sandbox:
        console.print(result.sandbox, **plain,
                      style=None if result.sandbox.startswith("sandbox: on") else "yellow")
    for warning in result.warnings:
        console.print(f"! {warning}", **plain)
    for line in result.needs_review():
        console.print(f"? {line}", **plain, style="yellow")
    if not verbose:
        return
    for s in result.stages:
        if s.tier == "model":  # the measured figures, passed or not
            for key in ("accuracy", "macro_f1"):
                if key in s.details:
                    console.print(f"{s.id}: {s.details[key]}", **plain)
            zs = s.details.get("zero_shot")
            if zs:
                console.print(f"{s.id}: {zs['method']}: accuracy {zs['zero_shot_accuracy']:.3f} vs fine-tuned "
                              f"{zs['fine_tuned_accuracy']:.3f}, agreement {zs['agreement']:.3f}, "
                              f"McNemar p = {zs['mcnemar_p']:.2g}", **plain)
    for s in result.stages:
        failed = [c for c in s.checks if not c.passed]
        if not failed and not s.error:
            continue
        console.print(f"\n[b]{escape(s.id)}[/] - {s.title}")
        if s.error:
            console.print(f"  ! {s.error}", **plain)
        for c in failed:
            console.print(f"  [red]x[/] {escape(c.name)}: ", end="")
            console.print(c.message, **plain)
        if s.hint:
            console.print("  hint: ", end="")
            console.print(s.hint, markup=False, highlight=False)
