"""`autograder check --watch [STAGE]`: re-run a stage's public checks each time its file is saved.

Why a warm process: a fresh `autograder check` imports torch and transformers every time (3-5 s
before the first check runs). Here they are imported once, by the first run; after that, a save
is seen within ``interval`` (the files' modification times are polled: no dependency, and it works
on every file system an editor saves to) and the stage's checks run again in this process
(:func:`autograder.checkrun.run_here`, which imports the edited file afresh), about a second on a
laptop. Each result is printed with the hint of the first failed check, like `autograder check`.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from autograder.checkrun import StageRun, report_lines, run_here
from autograder.course.manifest import Stage, load_course

INTERVAL = 0.1  # seconds between two looks at the files (two stat calls: nothing to measure)
SETTLE = 0.05  # an editor may write a file in several steps: wait this long after a change


def _stamp(stage: Stage, path: Path) -> tuple:
    """What changes when the stage's file (or its public checks) is saved."""
    stamps = []
    for file in (path / f"{stage.module}.py", path / stage.public_check_file):
        try:
            info = file.stat()
            stamps.append((info.st_mtime_ns, info.st_size))
        except OSError:
            stamps.append(None)
    return tuple(stamps)


def _show(console: Console, runs: list[StageRun], why: str) -> None:
    console.print(f"[{time.strftime('%H:%M:%S')}] {why}", style="dim", markup=False, highlight=False)
    for run in runs:
        for style, text in report_lines(run):
            console.print(text, style=style or None, markup=False, highlight=False)


def watch(*, stage_id: str | None, path: Path, console: Console | None = None, interval: float = INTERVAL,
          keep_going: Callable[[], bool] = lambda: True) -> int:
    """Check the stage (or every stage) once, then again whenever its file changes; Ctrl-C stops. Returns 0."""
    console = console or Console()
    course = load_course()
    stages = [course.stage(stage_id)] if stage_id else list(course.stages)
    files = ", ".join(f"{s.module}.py" for s in stages)
    console.print(f"watching {files} in {path.resolve()}: save a file to check it again (Ctrl-C to stop)",
                  markup=False, highlight=False)
    stamps = {s.id: _stamp(s, path) for s in stages}
    _show(console, run_here(stages, path), "first run (torch and transformers are imported once, now)")
    gc.freeze()  # the libraries' objects, imported once, stay out of every later collection
    try:
        while keep_going():
            time.sleep(interval)
            changed = [s for s in stages if _stamp(s, path) != stamps[s.id]]
            if not changed:
                continue
            time.sleep(SETTLE)
            for stage in changed:
                stamps[stage.id] = _stamp(stage, path)
            _show(console, run_here(changed, path), ", ".join(f"{s.module}.py changed" for s in changed))
    except KeyboardInterrupt:
        console.print("stopped watching", markup=False)
    return 0
