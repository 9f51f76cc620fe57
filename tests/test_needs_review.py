"""A model-tier score far above what correct work reaches is flagged for a person to look at.

The sentiment texts' source is public, so a student can train on the hidden test texts at home. The model
tier cannot see that, but it can see its result: a score above the best correct run of the calibration
plus an interval's width (course.toml ``review_above``) says "needs review: possibly trained on held-out
data" in the stage result, in the terminal and in the class report. The score itself stands.
"""

from __future__ import annotations

import random
import shutil

import pytest

from autograder.course.manifest import load_course
from autograder.course.models import resolve_model, tiny_model_dir
from autograder.grading.calibration import REVIEW_NOTE
from autograder.reports.class_report import class_report_html
from autograder.reports.results import CheckResult, GradeResult, StageResult

NB = load_course().notebook("sentiment_model")
pytestmark = pytest.mark.unit  # in this process: no judge, no jail, no training


def _graded_with_accuracy(tmp_path, monkeypatch, accuracy: float) -> StageResult:
    """grade_notebook on a notebook that 'saved' the tiny classifier, whose predictions on the hidden split
    are planted: the hidden labels with a share ``1 - accuracy`` of them flipped (what a model that
    memorised the test texts gives at 0.98)."""
    import nbformat  # nbformat, the evaluator and the model tier: imported when a test runs, not at collection

    from autograder.grading import evaluator, model_tier

    sub = tmp_path / "submission"
    sub.mkdir()
    nbformat.write(nbformat.v4.new_notebook(), sub / NB.notebook)

    def run(nb, job, *args):
        shutil.copytree(tiny_model_dir("distilbert-classifier"), job.scratch / "output" / "model")
        return ""

    def planted(folder, test, tokenizer, *, seed, **kwargs):
        wrong = set(random.Random(0).sample(range(len(test.labels)), round(len(test.labels) * (1 - accuracy))))
        predictions = [1 - y if i in wrong else y for i, y in enumerate(test.labels)]
        return evaluator.score(test.labels, predictions, test.label_names, seed=seed)

    monkeypatch.setattr(model_tier, "_execute", run)
    monkeypatch.setattr(model_tier, "score_saved_model", planted)
    return model_tier.grade_notebook(NB, sub, tmp_path / "work", resolve_model(str(tiny_model_dir("distilbert-base"))),
                                     seed=0, threads=1)


def test_a_model_that_knows_the_hidden_labels_is_flagged_and_keeps_its_score(tmp_path, monkeypatch):
    stage = _graded_with_accuracy(tmp_path, monkeypatch, 0.98)
    assert stage.score == stage.max_score, "the flag changes no points"
    (flag,) = stage.details["needs_review"]
    assert flag.startswith(REVIEW_NOTE) and "accuracy 0.980" in flag
    assert f"above {NB.review_above['accuracy']:.2f}" in flag
    result = GradeResult(submission="alice", stages=[stage])
    assert result.needs_review() == [f"{NB.id}: {flag}"]
    assert GradeResult.from_dict(result.to_dict()).needs_review() == result.needs_review()


def test_the_best_score_of_correct_work_is_not_flagged(tmp_path, monkeypatch):
    runs_best = 0.814  # docs/calibration.md: the best correct sentiment run
    assert runs_best < NB.review_above["accuracy"]
    stage = _graded_with_accuracy(tmp_path, monkeypatch, runs_best)
    assert "needs_review" not in stage.details and stage.score == stage.max_score


def _result(name: str, *, stage_flags: list[str] = (), review: list[str] = ()) -> GradeResult:
    check = CheckResult("accuracy", True, 6.0, 6.0, "", hidden=False)
    stage = StageResult(NB.id, NB.title, 6.0, 6.0, [check], tier="model",
                        details={"needs_review": list(stage_flags)} if stage_flags else {})
    return GradeResult(submission=name, stages=[stage], review=list(review), sandbox="sandbox: on (test)")


@pytest.mark.parametrize("where", ["stage", "result"])
def test_the_class_report_lists_who_needs_review(where):
    line = f"{REVIEW_NOTE}: accuracy 0.990 on 2000 hidden test texts is above 0.86"
    flagged = _result("bob", **({"stage_flags": [line]} if where == "stage" else {"review": [line]}))
    page = class_report_html([_result("alice"), flagged])
    card = page[page.index("<h2>Needs review</h2>"):]
    card = card[:card.index("</div>")]
    assert "bob" in card and "accuracy 0.990" in card and "alice" not in card
    assert "Nothing to review" in class_report_html([_result("alice")])
