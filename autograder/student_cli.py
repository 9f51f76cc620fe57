"""The student's `autograder` command: status, check, hint. The student release's entry point.

The course's repository runs the instructor's command, which offers these three beside grading,
releasing, stubs, data and collecting. The student release ships this module instead, so
`autograder --help` in a student's copy lists only what a student can run; `autograder grade` there
says where grading happens. Like cli.py, a thin layer: it parses arguments and calls the library.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DESCRIPTION = "Practise the fine-tuning course: your progress, the public checks, hints."
GRADING_COMMANDS = ("grade", "grade-batch")  # the instructor's: a student copy says where grading happens


def _default_work_dir() -> Path:
    return Path("exercises") if Path("exercises").is_dir() else Path(".")


def cmd_status(args: argparse.Namespace) -> int:
    from autograder.preview import show_status

    return show_status(path=Path(args.path) if args.path else _default_work_dir())


def cmd_check(args: argparse.Namespace) -> int:
    path = Path(args.path) if args.path else _default_work_dir()
    if args.watch:
        from autograder.watch import watch

        return watch(stage_id=args.stage, path=path)
    from autograder.student import run_public_checks

    return run_public_checks(stage_id=args.stage, path=path)


def cmd_hint(args: argparse.Namespace) -> int:
    from autograder.student import show_hint

    return show_hint(stage_id=args.stage, number=args.number, show_all=args.all)


def add_student_commands(sub: argparse._SubParsersAction) -> None:
    """status, check and hint: in this command and in the instructor's (autograder/cli.py)."""
    st = sub.add_parser("status", help="your progress, the hidden checks' points, the notebooks' thresholds")
    st.add_argument("--path", help="your work folder (default: ./exercises if present, else .)")
    st.set_defaults(func=cmd_status)

    c = sub.add_parser("check", help="run the public checks of one stage (or all) and show a hint")
    c.add_argument("stage", nargs="?", help="stage id, e.g. tokenize")
    c.add_argument("--path", help="your work folder (default: ./exercises if present, else .)")
    c.add_argument("--watch", action="store_true",
                   help="keep running: check the stage again each time you save its file (Ctrl-C stops)")
    c.set_defaults(func=cmd_check)

    h = sub.add_parser("hint", help="show the next hint of a stage (or hint N, or --all)")
    h.add_argument("stage")
    h.add_argument("number", nargs="?", type=int, help="show hint N (1-based)")
    h.add_argument("--all", action="store_true", help="show every hint of the stage")
    h.set_defaults(func=cmd_hint)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="autograder", description=DESCRIPTION)
    add_student_commands(p.add_subparsers(dest="command", required=True))
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # offline unless told otherwise; set when the command runs
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] and argv[0] in GRADING_COMMANDS:
        from autograder.preview import GRADING_ELSEWHERE

        print(GRADING_ELSEWHERE.replace("autograder grade:", f"autograder {argv[0]}:", 1), file=sys.stderr)
        return 2
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Run a parsed command (this one's or the instructor's): a missing file or stage is one line, not a trace."""
    try:
        return args.func(args)
    except (FileNotFoundError, KeyError) as exc:
        print(f"autograder: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a notebook's kernel, a judge, a runner: each was stopped on the way out
        print(f"autograder {args.command}: stopped (Ctrl-C)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
