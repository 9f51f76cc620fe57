"""Many submissions: one Dask task per submission (engine.py, task.py), each graded in a fresh child
process (local.py, worker.py), results written by the client only (store.py); collecting students'
repositories (roster.py, classroom.py)."""

from autograder.batch.local import grade_batch
from autograder.batch.submissions import normalise_id
from autograder.reports.batch_report import write_class_reports  # re-exported: what a batch is followed by

__all__ = ["grade_batch", "normalise_id", "write_class_reports"]
