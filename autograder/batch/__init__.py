"""Many submissions: one Dask task per submission, each graded in a fresh child process, results
written by the client only; collecting students' repositories (roster.py, classroom.py).

The grading modules form a line, each importing only those after it (no circle):
``local`` (the batch, :func:`grade_batch`) -> ``engine`` (the Dask cluster, submitting and streaming)
-> ``task`` (one submission on a Dask worker) -> ``child`` (one child process, running ``worker``)
-> ``kill`` (ending what a worker started). Beside the line: ``live`` (a running batch's stop and
live children), ``store`` (the output folder), ``submissions`` and ``validate``.
"""

from autograder.batch.local import grade_batch
from autograder.batch.submissions import normalise_id
from autograder.reports.batch_report import write_class_reports  # re-exported: what a batch is followed by

__all__ = ["grade_batch", "normalise_id", "write_class_reports"]
