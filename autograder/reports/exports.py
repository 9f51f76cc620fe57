"""Export grading results to other systems: Gradescope, JUnit XML, a class gradebook, nbgrader.

Every function reads :class:`~autograder.reports.results.GradeResult` objects only. Messages of hidden
checks go through :func:`learner_text`, which drops anything that looks like grader code.
"""

from __future__ import annotations

import csv
import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from autograder.messages import HIDDEN_FALLBACK, learner_text  # noqa: F401 - re-exported
from autograder.reports.results import CheckResult, GradeResult, StageResult

VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
SCHEMA_PATH = Path(__file__).parent / "schemas" / "gradescope_results.schema.json"
NBGRADER_COLUMNS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
                    "raw_score", "late_submission_penalty", "score", "max_score"]

def check_text(stage: StageResult, check: CheckResult) -> str:
    """A check's message as shown to the learner (hidden structural checks sanitised)."""
    return learner_text(check.message, hidden=check.hidden and stage.tier != "model")


def stage_error_text(stage: StageResult) -> str:
    return learner_text(stage.error, hidden=stage.tier != "model")


def student_id(result: GradeResult) -> str:
    """The student's id: the submission folder's name (``subs/alice/`` -> ``alice``)."""
    return Path(str(result.submission).rstrip("/\\")).name or str(result.submission)


def _num(x: float) -> float | int:
    x = round(float(x), 4)
    return int(x) if x.is_integer() else x


# ----------------------------------------------------------------------------- Gradescope
def _summary(result: GradeResult) -> str:
    lines = [f"Score {result.score:g}/{result.max_score:g} for {student_id(result)}"
             + (f" (model: {result.model})" if result.model else "")]
    if result.sandbox:
        lines.append(result.sandbox)
    for s in result.stages:
        passed = sum(c.passed for c in s.checks)
        lines.append(f"- {s.id} [{s.tier}]: {s.score:g}/{s.max_score:g}, "
                     f"{passed}/{len(s.checks)} checks passed")
        if s.error:
            lines.append(f"  ! {stage_error_text(s)}")
    lines += [f"! {w}" for w in getattr(result, "warnings", [])]
    return "\n".join(lines)


def gradescope_json(result: GradeResult, *, visibility: str = "visible",
                    stdout_visibility: str | None = None) -> dict:
    """Gradescope's ``results.json``: one test per check, named ``stage/check``.

    Format: Gradescope's "Autograder Specifications" (gradescope-autograders.readthedocs.io,
    specs); ``schemas/gradescope_results.schema.json`` describes it. ``visibility`` applies to the
    submission and to every test (``after_published`` keeps everything hidden until grades are
    published); ``stdout_visibility`` defaults to the same value.
    """
    stdout_visibility = stdout_visibility or visibility
    for v in (visibility, stdout_visibility):
        if v not in VISIBILITIES:
            raise ValueError(f"visibility must be one of {VISIBILITIES}, not {v!r}")
    tests = []
    for i, stage in enumerate(result.stages, 1):
        for j, check in enumerate(stage.checks, 1):
            text = check_text(stage, check)
            if not check.passed and stage.hint:
                text = f"{text}\nHint: {stage.hint}" if text else f"Hint: {stage.hint}"
            tests.append({
                "name": f"{stage.id}/{check.name}",
                "name_format": "text",
                "number": f"{i}.{j}",
                "score": _num(check.score),
                "max_score": _num(check.max_score),
                "status": "passed" if check.passed else "failed",
                "output": text,
                "output_format": "text",
                "tags": [stage.id, stage.tier],
                "visibility": visibility,
            })
    return {
        "score": _num(result.score),
        "execution_time": int(round(result.duration_s or sum(s.duration_s for s in result.stages))),
        "output": _summary(result),
        "output_format": "text",
        "visibility": visibility,
        "stdout_visibility": stdout_visibility,
        "extra_data": {"submission": student_id(result), "max_score": _num(result.max_score),
                       "model": result.model},
        "tests": tests,
    }


def write_gradescope(result: GradeResult, path: str | Path = "/autograder/results/results.json",
                     **kwargs) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(gradescope_json(result, **kwargs), indent=2), encoding="utf-8")
    return path


def gradescope_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- JUnit XML
def junit_xml(result: GradeResult) -> str:
    """JUnit XML: one <testsuite> per stage, one <testcase> per check, <failure> for failed checks."""
    sid = student_id(result)
    root = ET.Element("testsuites", name=f"autograder {sid}",
                      tests=str(sum(len(s.checks) for s in result.stages)),
                      failures=str(sum(not c.passed for s in result.stages for c in s.checks)),
                      errors=str(sum(bool(s.error) for s in result.stages)),
                      time=f"{result.duration_s or sum(s.duration_s for s in result.stages):.2f}")
    for stage in result.stages:
        suite = ET.SubElement(root, "testsuite", name=stage.id, tests=str(len(stage.checks)),
                              failures=str(sum(not c.passed for c in stage.checks)),
                              errors="1" if stage.error else "0", skipped="0", time=f"{stage.duration_s:.2f}")
        props = ET.SubElement(suite, "properties")
        for key, value in (("title", stage.title), ("tier", stage.tier), ("score", f"{stage.score:g}"),
                           ("max_score", f"{stage.max_score:g}"), ("submission", sid),
                           ("sandbox", result.sandbox or "unknown")):
            ET.SubElement(props, "property", name=key, value=value)
        for check in stage.checks:
            case = ET.SubElement(suite, "testcase", classname=f"{sid}.{stage.id}", name=check.name, time="0")
            if not check.passed:
                text = check_text(stage, check)
                failure = ET.SubElement(case, "failure", message=text.splitlines()[0] if text else "failed",
                                        type="CheckFailed")
                failure.text = text + (f"\nHint: {stage.hint}" if stage.hint else "")
        if stage.error:
            ET.SubElement(suite, "system-err").text = stage_error_text(stage)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(result: GradeResult, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit_xml(result), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- gradebooks
def _read_rows(path: Path) -> tuple[list[str], list[dict]]:
    if not path.exists() or not path.read_text(encoding="utf-8").strip():
        return [], []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def csv_safe(value) -> str:
    """A CSV cell that a spreadsheet will not run: text starting with ``= + - @``, a tab or a CR gets a
    leading ``'`` (OWASP's advice against CSV injection); plain numbers such as ``-1.5`` are kept."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def _write_rows(path: Path, columns: list[str], rows: list[dict]) -> Path:
    """Every cell (header included) goes through :func:`csv_safe`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([csv_safe(c) for c in columns])
        writer.writerows([csv_safe(row.get(c, "")) for c in columns] for row in rows)
    tmp.replace(path)
    return path


def gradebook_row(result: GradeResult) -> dict:
    row = {"student": student_id(result)}
    row.update({s.id: f"{s.score:g}" for s in result.stages})
    row["total"], row["max"] = f"{result.score:g}", f"{result.max_score:g}"
    row["sandbox"] = result.sandbox.split(" (")[0].removeprefix("sandbox: ") if result.sandbox else ""
    return row


def gradebook_csv(results: list[GradeResult] | GradeResult, path: str | Path) -> Path:
    """Write (or merge into) a class gradebook: one row per student, one column per stage.

    Students already in the file are replaced by the new results (batch regrade); other rows
    are kept. A stage that was not graded for a student is an empty cell.
    """
    results = [results] if isinstance(results, GradeResult) else list(results)
    path = Path(path)
    old_columns, rows = _read_rows(path)
    new = {csv_safe(r["student"]): r for r in map(gradebook_row, results)}
    rows = [r for r in rows if csv_safe(r.get("student")) not in new] + list(new.values())
    ids: list[str] = []  # columns from the results alone: the course's stages, the gradebook's, then others
    for col in [c for r in results for c in r.course_stages] + [
            c for c in old_columns if c not in ("student", "total", "max", "sandbox")] + [
            s.id for r in results for s in r.stages]:
        if col not in ids:
            ids.append(col)
    rows.sort(key=lambda r: r.get("student", ""))
    return _write_rows(path, ["student", *ids, "total", "max", "sandbox"], rows)


def nbgrader_rows(results: list[GradeResult], *, assignment: str | None = None, duedate: str = "",
                  timestamp: str | None = None) -> list[dict]:
    if assignment is None:
        assignment = next((r.course for r in results if r.course), "assignment")
    timestamp = timestamp or datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return [{
        "assignment": assignment, "duedate": duedate, "timestamp": timestamp, "student_id": student_id(r),
        "last_name": "", "first_name": "", "email": "", "raw_score": f"{r.score:g}",
        "late_submission_penalty": "0.0", "score": f"{max(0.0, r.score):g}", "max_score": f"{r.max_score:g}",
    } for r in results]


def nbgrader_gradebook(results: list[GradeResult] | GradeResult, path: str | Path, *,
                       assignment: str | None = None, duedate: str = "",
                       timestamp: str | None = None) -> Path:
    """Write (or merge into) a CSV in the format of ``nbgrader export`` (its CsvExportPlugin).

    Columns: assignment, duedate, timestamp, student_id, last_name, first_name, email, raw_score,
    late_submission_penalty, score, max_score. ``assignment`` defaults to the course title. A row
    with the same (assignment, student_id) is replaced; every other row is kept.
    """
    results = [results] if isinstance(results, GradeResult) else list(results)
    path = Path(path)
    new = nbgrader_rows(results, assignment=assignment, duedate=duedate, timestamp=timestamp)
    keys = {(csv_safe(r["assignment"]), csv_safe(r["student_id"])) for r in new}
    _, rows = _read_rows(path)
    rows = [r for r in rows if (csv_safe(r.get("assignment")), csv_safe(r.get("student_id"))) not in keys] + new
    rows.sort(key=lambda r: (r.get("assignment", ""), r.get("student_id", "")))
    return _write_rows(path, NBGRADER_COLUMNS, rows)
