"""The `autograder` command: a thin layer that parses arguments and calls the library."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from autograder.student_cli import add_student_commands, run


def _process_defaults() -> None:
    """This process's own library settings (not the kit's): offline Hugging Face unless told otherwise,
    and OpenMP threads that spin only briefly, so the judge computing beside the runner it judges
    does not slow both many times over (procs.thread_env). Set when the command runs, not on import."""
    from autograder.procs import OFFLINE, SPINCOUNT

    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(name, OFFLINE[name])
    os.environ.setdefault("GOMP_SPINCOUNT", SPINCOUNT)


def sandbox_setting() -> str | None:
    """AUTOGRADER_SANDBOX=off, mapped here to the reason the jail is off (passed down as a value)."""
    from autograder.procs import setting_is_off
    from autograder.sandbox.jail import OFF_BY_SETTING

    return OFF_BY_SETTING if setting_is_off("AUTOGRADER_SANDBOX") else None


def cmd_grade(args: argparse.Namespace) -> int:
    from rich.console import Console

    from autograder.preview import student_copy_message

    if (elsewhere := student_copy_message()) is not None:  # a student's copy: no graders to grade with
        print(elsewhere, file=sys.stderr)
        return 2
    from autograder.course.manifest import load_course
    from autograder.course.models import resolve_model
    from autograder.grading import grade_submission
    from autograder.reports.terminal import print_table, to_json
    from autograder.sandbox.jail import SandboxRequired, detect

    console = Console(stderr=True)
    course = load_course()  # once, here: everything below is given it
    resolved = resolve_model(args.model or course.model)
    sandbox = detect(turned_off=sandbox_setting())
    console.print(resolved.describe(), markup=False, highlight=False)
    console.print(sandbox.describe(), markup=False, highlight=False, style=None if sandbox.on else "yellow")
    progress = None if args.json else (lambda st: console.print(f"grading {st.id} ...", style="dim"))
    try:
        result = grade_submission(args.path, tier=args.tier, stages=args.stage or None, model=resolved,
                                  sandbox=sandbox, require_sandbox=args.require_sandbox,
                                  work_dir=Path(args.work_dir) if args.work_dir else None,
                                  threads=args.threads, jobs=args.jobs, progress=progress, course=course)
    except SandboxRequired as exc:
        console.print(f"autograder grade: {exc}\n  Or leave out --require-sandbox to grade without it (never for "
                      "untrusted submissions).", markup=False, highlight=False)
        return 2
    if args.out:
        from autograder.reports import write_reports

        write_reports(result, Path(args.out), visibility=args.visibility)
    if args.gradescope:
        from autograder.reports.exports import write_gradescope

        write_gradescope(result, args.gradescope, visibility=args.visibility)
    if args.json:
        print(to_json(result))
    else:
        print_table(result)
    if args.fail_under is not None and result.score < args.fail_under:
        console.print(f"score {result.score:g} is below the required {args.fail_under:g}")
        return 1
    return 0


def cmd_grade_batch(args: argparse.Namespace) -> int:
    from autograder.preview import student_copy_message

    if (elsewhere := student_copy_message()) is not None:
        print(elsewhere.replace("autograder grade:", "autograder grade-batch:", 1), file=sys.stderr)
        return 2
    from autograder.batch import grade_batch, write_class_reports
    from autograder.sandbox import jail

    sandbox = jail.detect(turned_off=sandbox_setting())
    try:
        jail.require(sandbox, required=not args.no_require_sandbox)
    except jail.SandboxRequired as exc:
        print(f"autograder grade-batch: {exc}\n  Or pass --no-require-sandbox to grade without it (never for "
              "untrusted submissions).", file=sys.stderr)
        return 2
    print(sandbox.describe(), file=sys.stderr)
    out = Path(args.out)
    from autograder.batch.engine import ClusterUnavailable

    deadline = None
    if args.deadline:
        from autograder.batch.classroom import parse_deadline

        try:
            deadline = parse_deadline(args.deadline)
        except ValueError as exc:
            print(f"autograder grade-batch: {exc}", file=sys.stderr)
            return 2

    try:
        results = grade_batch(Path(args.submissions), out, workers=args.workers, stages=args.stage or None,
                              tier=args.tier, regrade=args.regrade, require_sandbox=not args.no_require_sandbox,
                              cluster=args.cluster, scheduler=args.scheduler, sandbox_off=sandbox_setting())
    except ClusterUnavailable as exc:
        print(f"autograder grade-batch: {exc}", file=sys.stderr)
        return 2
    write_class_reports(results, out, assignment=args.assignment, submissions=Path(args.submissions),
                        deadline=deadline)
    for r in results:
        print(f"{r.submission:<24} {r.score:g}/{r.max_score:g}")
    print(f"gradebook: {out / 'gradebook.csv'}; class report: {out / 'class_report.html'}; "
          f"per-student reports: {out / 'reports'}")
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    from autograder.release import build_release

    files = build_release(Path(args.out), check=not args.no_check, git=not args.no_git)
    print(f"released {len(files)} files to {args.out}" + ("" if args.no_git else " (a git repository, one commit)"))
    return 0


def cmd_stubs(args: argparse.Namespace) -> int:
    from autograder.course import stubs

    if args.check:
        stale = stubs.stale_files()
        for rel in stale:
            print(f"exercises/{rel} differs from stripping solutions/{rel}")
        print("exercises/ is up to date" if not stale else "run `autograder stubs` to regenerate exercises/")
        return 1 if stale else 0
    for rel in stubs.generate():
        print(f"wrote exercises/{rel}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from autograder.course import sources

    for name in args.names or ["sentiment", "emotion"]:
        if args.action == "build":
            entry = sources.write_splits(name)
            print(name, {s: v["rows"] for s, v in entry["splits"].items()})
        else:
            sources.verify_rebuild(name)
            print(f"{name}: rebuilding from the source gives the committed splits")
    return 0


def cmd_model(args: argparse.Namespace) -> int:
    from autograder.course.models import resolve_model

    print(resolve_model(args.name).describe())
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from autograder.batch import classroom

    try:
        before = classroom.parse_deadline(args.before) if args.before else None
        entries = classroom.read_roster(Path(args.roster), url_template=args.url_template, id_column=args.id_column)
    except ValueError as exc:  # RosterError, a bad deadline
        print(f"autograder collect: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    log = Path(args.log) if args.log else out / classroom.LOG_NAME
    outcomes = classroom.collect(
        entries, out, branch=args.branch, before=before, refresh=args.refresh, timeout=args.timeout, log=log,
        progress=lambda o: print(f"{o.student or '?':<24} {o.status:<8} {o.commit[:12]:<12} {o.message}"))
    bad = [o for o in outcomes if o.status in ("error", "refused")]
    ok = sum(o.status == "ok" for o in outcomes)
    skipped = sum(o.status == "skipped" for o in outcomes)
    print(f"{len(outcomes)} in the roster: {ok} cloned, {skipped} skipped, {len(bad)} failed; "
          f"folders in {out}, log in {log}")
    if any(o.commit for o in outcomes):
        print(f"next: autograder grade-batch {out}")
    return 1 if bad else 0


def build_parser() -> argparse.ArgumentParser:
    from autograder.procs import SETTINGS

    env = "\n".join(f"  {name:<20} {what}" for name, what in SETTINGS.items())
    p = argparse.ArgumentParser(prog="autograder", description="Grade and practise the fine-tuning course.",
                                epilog=f"environment variables (read here, passed down as options):\n{env}",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    _add_grade(sub)
    _add_grade_batch(sub)
    _add_instructor_tools(sub)
    add_student_commands(sub)  # status, check, hint: the student command's own
    _add_collect(sub)
    return p


def _add_grade(sub) -> None:
    g = sub.add_parser("grade", help="grade a submission folder (instructors, CI)")
    g.add_argument("path", help="a submission folder holding the stage modules, e.g. solutions/")
    g.add_argument("--stage", action="append", help="grade only this stage (repeatable)")
    g.add_argument("--json", action="store_true", help="print the result object as JSON")
    g.add_argument("--model", default=os.environ.get("COURSE_MODEL") or None,
                   help="course model name or folder (default: $COURSE_MODEL, else course.toml's)")
    g.add_argument("--threads", type=int, default=None, help="torch threads per grader process")
    g.add_argument("--jobs", type=int, default=None, help="stages graded at once (default: cores, at most 2)")
    g.add_argument("--tier", choices=["structural", "model", "all"], default="structural",
                   help="structural: hidden graders on tiny models (seconds); model: run the notebooks and "
                        "score the saved models on the hidden split (minutes); all: both")
    g.add_argument("--work-dir", help="where executed notebooks and saved models go (default grading_runs/NAME)")
    g.add_argument("--out", help="write result.json, results.json (Gradescope), junit.xml, feedback.md/.html here")
    g.add_argument("--gradescope", help="also write Gradescope's results.json to this path")
    g.add_argument("--visibility", default="visible", help="Gradescope visibility (visible, after_published, ...)")
    g.add_argument("--fail-under", type=float, help="exit with status 1 when the score is below this")
    g.add_argument("--require-sandbox", action="store_true",
                   help="refuse to grade unless the bubblewrap sandbox can run (use it for untrusted submissions)")
    g.set_defaults(func=cmd_grade)


def _add_grade_batch(sub) -> None:
    b = sub.add_parser("grade-batch", help="grade a folder of student folders or zips (resumable)")
    b.add_argument("submissions")
    b.add_argument("--out", default="grading_batch", help="results, reports and gradebooks go here")
    b.add_argument("--workers", type=int, default=1, help="Dask workers of a local cluster (they split the CPU "
                                                          "cores), or Slurm jobs of --cluster slurm")
    b.add_argument("--cluster", choices=["local", "slurm"], default="local",
                   help="local: a Dask LocalCluster on this machine; slurm: dask-jobqueue's SLURMCluster with "
                        "course.toml [cluster.slurm] (pip install 'llm-course-kit[cluster]')")
    b.add_argument("--scheduler", help="grade on a running Dask cluster instead, e.g. tcp://HOST:8786")
    b.add_argument("--stage", action="append", help="grade only this stage (repeatable)")
    b.add_argument("--tier", choices=["structural", "model", "all"], default="structural")
    b.add_argument("--regrade", action="store_true", help="grade students again even if they have a result")
    b.add_argument("--assignment", help="assignment name in the nbgrader export (default: the course title)")
    b.add_argument("--deadline", help="ISO 8601 date-time (e.g. 2025-03-01T23:59:00+01:00): the class report lists "
                   "work changed after it as late")
    b.add_argument("--no-require-sandbox", action="store_true",
                   help="grade even where the bubblewrap sandbox cannot run (not for untrusted submissions)")
    b.set_defaults(func=cmd_grade_batch)


def _add_instructor_tools(sub) -> None:
    r = sub.add_parser("release", help="build the student repository (nothing hidden inside)")
    r.add_argument("out")
    r.add_argument("--no-check", action="store_true", help="skip checking that solutions pass and stubs fail")
    r.add_argument("--no-git", action="store_true", help="do not make the release a git repository")
    r.set_defaults(func=cmd_release)

    s = sub.add_parser("stubs", help="regenerate exercises/ from solutions/ (or --check it)")
    s.add_argument("--check", action="store_true")
    s.set_defaults(func=cmd_stubs)

    d = sub.add_parser("data", help="build or verify the fixed splits in datasets_cache/")
    d.add_argument("action", choices=["build", "verify"])
    d.add_argument("names", nargs="*")
    d.set_defaults(func=cmd_data)

    m = sub.add_parser("model", help="show which model a course model name resolves to")
    m.add_argument("name", nargs="?", default=os.environ.get("COURSE_MODEL") or None,
                   help="a Hub id or a folder (default: $COURSE_MODEL, else course.toml's)")
    m.set_defaults(func=cmd_model)


def _add_collect(sub) -> None:
    co = sub.add_parser("collect", help="clone the student repositories of a roster, for grade-batch (instructors)")
    co.add_argument("roster", help="clone URLs (one a line, or 'STUDENT_ID URL'), or a GitHub Classroom CSV export")
    co.add_argument("--out", default="submissions", help="SUBMISSIONS folder: one folder per student goes here")
    co.add_argument("--branch", help="clone this branch (default: each repository's default branch)")
    co.add_argument("--before", help="deadline (ISO 8601, e.g. 2025-03-01T23:59:00+01:00): check out the last "
                                     "commit whose committer date is not after it")
    co.add_argument("--url-template", help="build URLs from a roster CSV's columns, e.g. "
                                           "'https://github.com/ORG/hw1-{github_username}'")
    co.add_argument("--id-column", help="the CSV column that names each student's folder "
                                        "(default: student_id, roster_identifier, ..., github_username)")
    co.add_argument("--refresh", action="store_true", help="clone again students that already have a folder")
    co.add_argument("--timeout", type=float, default=300, help="seconds each git command may take")
    co.add_argument("--log", help="where the log goes (default SUBMISSIONS/collect.csv)")
    co.set_defaults(func=cmd_collect)


def main(argv: list[str] | None = None) -> int:
    _process_defaults()
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
