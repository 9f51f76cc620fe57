"""The trusted side: the judge. Hidden graders (graders/), the client that talks to a
submission's runner (judge.py), the learner messages, the model tier and its evaluator.

Nothing in this package imports a submission; see autograder/sandbox/ for the code that does.
"""

from autograder.grading.structural import grade, grade_stage, grade_submission, read_records, stage_result

__all__ = ["grade", "grade_stage", "grade_submission", "read_records", "stage_result"]
