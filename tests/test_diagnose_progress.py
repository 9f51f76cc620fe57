"""The model tier names how long a run trained before it guesses at class weights or the learning rate.

The curves below are the log histories the capstone notebook saved (numbers as the Trainer logged them, the
learning rates left out): a run with the course's parameters (3 epochs, 240 steps, the reference) and the same
notebook cut to 1 epoch. They go through the model tier's own reader (artifacts.learning_curve), as in a grade.
"""

from __future__ import annotations

import json

import pytest

from autograder.grading import diagnose
from autograder.grading.artifacts import learning_curve

pytestmark = pytest.mark.unit

EMOTIONS = ["sadness", "joy", "love", "anger", "fear", "surprise"]
SUPPORT = [140, 165, 40, 65, 60, 20]
EMOTION_TRAIN_ROWS = 1275  # the capstone's train split when these curves were recorded (before issue 22 grew it)
COURSE = {"epochs": 3, "learning_rate": 2e-4, "batch_size": 16, "max_length": 64}
ONE_EPOCH = [1.7891, 1.7791, 1.7177, 1.6629, 1.5776, 1.5695, 1.4572, 1.476]  # steps 10..80
REFERENCE = [1.7865, 1.7659, 1.7003, 1.61, 1.5504, 1.5159, 1.456, 1.4048, 1.1823, 1.0824, 1.1809, 0.882, 0.8332,
             0.8985, 0.7379, 0.9013, 0.6179, 0.4714, 0.4864, 0.4606, 0.4617, 0.4509, 0.3798, 0.4047]  # steps 10..240


def _history(losses: list[float], steps_per_epoch: int = 80, every: int = 10, last_step: int | None = None) -> list:
    """A Trainer log history: a loss every ``every`` steps, an evaluation per epoch, the final summary."""
    history = []
    for i, loss in enumerate(losses, start=1):
        step = i * every
        history.append({"loss": loss, "grad_norm": 3.1, "learning_rate": 1e-4, "epoch": step / steps_per_epoch,
                        "step": step})
        if step % steps_per_epoch == 0:
            history.append({"eval_loss": loss - 0.2, "eval_accuracy": 0.5, "epoch": step / steps_per_epoch,
                            "step": step})
    end = last_step or len(losses) * every
    return history + [{"train_runtime": 60.0, "train_loss": sum(losses) / len(losses), "epoch": end / steps_per_epoch,
                       "step": end}]


def _curve(tmp_path, history: list) -> list[dict]:
    (tmp_path / "log_history.json").write_text(json.dumps(history))
    return learning_curve(tmp_path)


def _collapsed() -> dict:
    """An evaluation where surprise and sadness are rarely found (what the 1-epoch run's grade showed)."""
    from autograder.grading.evaluator import score

    y = [label for label, n in enumerate(SUPPORT) for _ in range(n)]
    pred = [1 if (label == 5 and i % 30) or (label == 0 and i % 12) else label for i, label in enumerate(y)]
    return score(y, pred, EMOTIONS).to_dict()


def _plan() -> diagnose.CoursePlan:
    return diagnose.course_plan(COURSE, EMOTION_TRAIN_ROWS)


def test_the_course_plan_counts_the_trainers_steps():
    assert (_plan().steps_per_epoch, _plan().steps) == (80, 240)
    assert diagnose.course_plan({"epochs": 3, "batch_size": 16}, 1000).steps == 189  # the sentiment run logged 189
    assert diagnose.course_plan({"epochs": 1.5, "batch_size": 32}, 1275).steps == 60
    for bad in ({}, {"epochs": 3}, {"epochs": "3", "batch_size": 16}, {"epochs": 3, "batch_size": True},
                {"epochs": 0, "batch_size": 16}):
        assert diagnose.course_plan(bad, 1275) is None, bad
    assert diagnose.course_plan(COURSE, 0) is None


def test_a_one_epoch_run_is_told_its_steps_against_the_courses_before_class_weights(tmp_path):
    curve = _curve(tmp_path, _history(ONE_EPOCH))
    msg = diagnose.failure_reason(_collapsed(), dataset="emotion", learning_rate=2e-4, curve=curve, plan=_plan())
    assert msg.startswith("training ran 80 optimisation steps (1.0 epoch); the course's parameters give 240 "
                          "(3 epochs of 80 steps: 1,275 training texts in batches of 16): did the notebook override "
                          "num_train_epochs or max_steps?")
    assert "still falling steeply" in msg and "from 1.58 to 1.48" in msg and "82% of its first value (1.79)" in msg
    assert "At that point the model rarely finds surprise" in msg
    assert "class weights" not in msg and "Does your training use" not in msg


def test_the_reference_run_keeps_the_other_causes(tmp_path):
    curve = _curve(tmp_path, _history(REFERENCE))
    record = diagnose.run_record(curve)
    assert (record.steps, record.epoch, len(record.losses)) == (240, 3.0, 24)
    assert diagnose.training_length(record, _plan()) == ""  # still falling, but at 22% of its first loss
    evaluation = _collapsed()
    assert diagnose.failure_reason(evaluation, dataset="emotion", curve=curve, plan=_plan()) == \
        diagnose.failure_reason(evaluation, dataset="emotion") == diagnose.recall_collapse(evaluation, True)


def test_without_a_record_the_diagnosis_is_as_before(tmp_path):
    evaluation = _collapsed()
    before = diagnose.failure_reason(evaluation, dataset="emotion")
    assert "Does your training use the class weights" in before
    assert learning_curve(tmp_path) == []  # the notebook saved no log history
    for curve in ([], None, [{"eval_loss": 1.2, "eval_accuracy": 0.5}]):
        assert diagnose.failure_reason(evaluation, dataset="emotion", curve=curve, plan=_plan()) == before
    unplanned = diagnose.failure_reason(evaluation, dataset="emotion", curve=_curve(tmp_path, _history(ONE_EPOCH)))
    assert "optimisation steps" not in unplanned  # no plan: the steps are not compared, the loss still is
    assert "still falling steeply" in unplanned and "(the grader sets them)? At that point" in unplanned


def test_every_epoch_in_fewer_steps_asks_about_the_batch_size(tmp_path):
    curve = _curve(tmp_path, _history(REFERENCE[::2], steps_per_epoch=40))  # batch 32: 40 steps per epoch
    msg = diagnose.training_length(diagnose.run_record(curve), _plan())
    assert msg.startswith("training ran 120 optimisation steps (3.0 epochs); the course's parameters give 240")
    assert "batch size" in msg and "gradient_accumulation_steps" in msg and "max_steps" not in msg


def test_max_steps_and_a_dropped_last_batch(tmp_path):
    cut = diagnose.run_record(_curve(tmp_path, _history(ONE_EPOCH[:4])))  # max_steps=40: half an epoch
    assert "training ran 40 optimisation steps (0.5 epochs)" in diagnose.short_training(cut, _plan())
    one = diagnose.run_record([{"loss": 1.79, "epoch": 0.0125, "step": 1}])  # calibration's untrained_head
    assert "training ran 1 optimisation step (0.01 epochs)" in diagnose.short_training(one, _plan())
    full = diagnose.run_record([{"loss": 0.5, "epoch": 3.0, "step": 237}])  # 79 steps per epoch (drop_last)
    assert diagnose.short_training(full, _plan()) == ""


def test_a_full_length_run_still_falling_steeply_is_named(tmp_path):
    slow = [1.79 - 0.025 * i for i in range(24)]  # 240 steps, the loss falling 0.2 per epoch, ending at 1.22
    msg = diagnose.training_length(diagnose.run_record(_curve(tmp_path, _history(slow))), _plan())
    assert msg.startswith("the training loss was still falling steeply when training stopped (by 0.20 per epoch")
    assert "learning_rate" in msg and "optimisation steps" not in msg
    flat = [1.79, 1.6, 1.5, 1.45] + [1.4 + 0.02 * (-1) ** i for i in range(20)]  # high, but levelled off
    record = diagnose.run_record(_curve(tmp_path, _history(flat)))
    assert diagnose.still_falling(record) == ""
    assert diagnose.still_falling(diagnose.run_record([{"loss": 1.8, "epoch": 0.1, "step": 10},
                                                       {"loss": 1.2, "epoch": 0.2, "step": 20}])) == ""  # too few


def test_the_record_takes_numbers_only(tmp_path):
    history = _history(ONE_EPOCH) + [{"loss": "1e9", "epoch": True, "step": "9999"}, ["not", "a", "point"]]
    (tmp_path / "log_history.json").write_text(json.dumps(history).replace('"grad_norm": 3.1', '"grad_norm": NaN'))
    record = diagnose.run_record(learning_curve(tmp_path))
    assert (record.steps, record.epoch, len(record.losses)) == (80, 1.0, 8)
    assert diagnose.run_record([{"eval_loss": 1.0}]) is None
