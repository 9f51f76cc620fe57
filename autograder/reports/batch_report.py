"""What an instructor reads after a batch: every student's reports, the class gradebooks and the
class report, written from the batch's results alone.

Why here and not in :mod:`autograder.batch.store`: the store keeps the batch's results (atomic
writes, resuming); this renders them, like every other report, and needs nothing of the batch.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from autograder.reports import write_reports
from autograder.reports.class_report import write_class_report
from autograder.reports.exports import gradebook_csv, nbgrader_gradebook
from autograder.reports.results import GradeResult


def write_class_reports(results: list[GradeResult], out: Path, *, assignment: str | None = None,
                        submissions: Path | None = None, deadline: datetime | None = None) -> None:
    """Per-student reports (``OUT/reports/<id>/``), the class gradebooks and the class report."""
    for result in results:
        write_reports(result, out / "reports" / result.submission)
    gradebook_csv(results, out / "gradebook.csv")
    nbgrader_gradebook(results, out / "nbgrader_grades.csv", assignment=assignment)
    write_class_report(results, out / "class_report.html", submissions=submissions, deadline=deadline)
