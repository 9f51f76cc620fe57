"""The model tier's failure messages name the cause: a model at the majority baseline, classes whose
recall collapsed, parameters the grader replaced, and how far a stopped training got."""

from __future__ import annotations

import json

from autograder.grading import diagnose

EMOTIONS = ["sadness", "joy", "love", "anger", "fear", "surprise"]
SUPPORT = [140, 165, 40, 65, 60, 20]  # joy is common, surprise rare, as in the course's corpus


def score(*args, **kwargs):
    """The evaluator's score; the evaluator (torch, scikit-learn) is imported when a test runs, not at collection."""
    from autograder.grading.evaluator import score

    return score(*args, **kwargs)


def _truth() -> list[int]:
    return [label for label, n in enumerate(SUPPORT) for _ in range(n)]


def test_a_model_that_guesses_one_class_is_called_untrained():
    y = _truth()
    evaluation = score(y, [1] * len(y), EMOTIONS).to_dict()
    msg = diagnose.failure_reason(evaluation, dataset="emotion", learning_rate=1e-5)
    assert "predicts 'joy' for 100% of the texts" in msg
    assert "most common class (34%)" in msg
    assert "from_config" in msg and "learning_rate=1e-05" in msg


def test_rare_classes_with_collapsed_recall_are_named_with_class_weights():
    y = _truth()
    pred = list(y)
    for i, label in enumerate(y):  # surprise found once in 20, love 8 times in 40: both go to joy
        if (label == 5 and i % 20) or (label == 2 and i % 5):
            pred[i] = 1
    evaluation = score(y, pred, EMOTIONS).to_dict()
    assert not diagnose.near_baseline(evaluation)
    msg = diagnose.failure_reason(evaluation, dataset="emotion")
    assert msg.startswith("the model rarely finds surprise (recall 0.05), love (recall 0.20)")
    assert "class weights" in msg and "WeightedTrainer" in msg


def test_a_model_that_learned_gets_the_general_advice():
    y = _truth()
    pred = [label if i % 4 else (label + 1) % 6 for i, label in enumerate(y)]
    evaluation = score(y, pred, EMOTIONS).to_dict()
    assert diagnose.failure_reason(evaluation, dataset="emotion") == "train longer or check the training set-up"
    binary = score([0, 1] * 50, [0, 1] * 40 + [0, 0] * 10, ["negative", "positive"]).to_dict()
    assert not diagnose.recall_collapse(binary, uses_class_weights=False)


def _notebook(tmp_path, source: str):
    path = tmp_path / "emotion.ipynb"
    cells = [{"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": source, "outputs": [],
              "execution_count": None}]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_parameters_the_grader_replaced_are_named(tmp_path):
    nb = _notebook(tmp_path, "learning_rate = 1e-5\nepochs = 5\nbatch_size = 16\nmodel_name = 'mine'\n"
                             "data_dir = open('/etc/passwd').read()  # never run\n")
    used = {"learning_rate": 2e-4, "epochs": 3, "batch_size": 16, "model_name": "/models/x", "seed": 42}
    msg = diagnose.overridden_parameters(nb, used)
    assert "learning_rate=0.0002 (your cell: 1e-05)" in msg and "epochs=3 (your cell: 5)" in msg
    assert "batch_size" not in msg and "model_name" not in msg
    assert "course.toml" in msg
    assert diagnose.overridden_parameters(_notebook(tmp_path, "epochs = 3\n"), used) == ""
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    assert diagnose.overridden_parameters(broken, used) == ""


def test_a_timeout_says_how_far_training_got(tmp_path):
    assert diagnose.training_progress(tmp_path, 3) == "training had not finished its first epoch"
    for epoch in (1.0, 2.0):
        folder = tmp_path / "checkpoints" / f"checkpoint-{int(epoch * 10)}"
        folder.mkdir(parents=True)
        (folder / "trainer_state.json").write_text(json.dumps({"epoch": epoch, "log_history": []}))
    (tmp_path / "checkpoints" / "bad").mkdir()
    (tmp_path / "checkpoints" / "bad" / "trainer_state.json").write_text('{"epoch": "99"}')
    assert diagnose.training_progress(tmp_path, 3) == "training had reached epoch 2.00 of 3"
