"""Many submissions: one child process per submission from a fresh copy (local.py, worker.py),
and collecting students' repositories (classroom.py)."""

from autograder.batch.local import grade_batch, normalise_id, write_class_reports

__all__ = ["grade_batch", "normalise_id", "write_class_reports"]
