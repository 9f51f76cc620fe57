"""Mutants of the reference solution for stages 1-4: each plausible wrong idea must cost points
on the stage it breaks (issue: padding in tokenize, re-initialised encoder, eval on test, argmin).
"""

from __future__ import annotations

import shutil

import pytest

from autograder import REPO_ROOT
from autograder.grading import grade_stage
from autograder.manifest import load_course

# id: (stage, text in the solution, its replacement, a check that must fail)
MUTANTS = {
    "tokenize-pads-to-max-length": (
        "tokenize",
        "return tokenizer(batch[\"text\"], truncation=True, max_length=max_length)",
        "return tokenizer(batch[\"text\"], truncation=True, max_length=max_length, padding=\"max_length\")",
        "test_tokenize_batch_does_not_pad",
    ),
    "model-reinitialises-the-encoder": (
        "model",
        "    return AutoModelForSequenceClassification.from_pretrained(\n"
        "        model_name_or_path, num_labels=len(labels), id2label=id2label, label2id=label2id\n    )",
        "    from transformers import AutoConfig\n"
        "    config = AutoConfig.from_pretrained(model_name_or_path, num_labels=len(labels), id2label=id2label,\n"
        "                                        label2id=label2id)\n"
        "    return AutoModelForSequenceClassification.from_config(config)",
        "test_encoder_weights_come_from_the_checkpoint",
    ),
    "train-evaluates-on-test": (
        "train",
        "eval_dataset=tokenized[\"validation\"],",
        "eval_dataset=tokenized[\"test\"],",
        "test_trainer_evaluates_on_validation",
    ),
    "evaluate-uses-argmin": (
        "evaluate",
        "preds = np.asarray(logits).argmax(axis=-1)",
        "preds = np.asarray(logits).argmin(axis=-1)",
        "test_compute_metrics_on_hand_made_logits",
    ),
}


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_mutant_loses_points_on_its_stage(mutant, tmp_path):
    stage_id, old, new, must_fail = MUTANTS[mutant]
    stage = load_course().stage(stage_id)
    source = (REPO_ROOT / "solutions" / f"{stage.module}.py").read_text()
    assert old in source, f"mutant {mutant}: the solution no longer contains the text to mutate"
    sub = tmp_path / "submission"
    sub.mkdir()
    (sub / f"{stage.module}.py").write_text(source.replace(old, new))
    result = grade_stage(stage, sub)
    failed = {c.name for c in result.checks if not c.passed}
    assert must_fail in failed, f"{mutant} was not caught: {[(c.name, c.passed) for c in result.checks]}"
    assert result.score < result.max_score
