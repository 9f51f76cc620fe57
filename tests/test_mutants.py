"""Mutants of the reference solutions: each plausible wrong idea must cost points on the stage it
breaks, and the check meant to catch it must fail with a message.

A mutant is a solution module with one text replacement, graded like a submission.
"""

from __future__ import annotations

import pytest

from autograder import REPO_ROOT
from autograder.course.manifest import load_course
from autograder.grading import grade_stage

# id: (stage, text in the solution, its replacement, the check that must fail)
MUTANTS = {
    "tokenize-pads-to-max-length": (
        "tokenize",
        'return tokenizer(batch["text"], truncation=True, max_length=max_length)',
        'return tokenizer(batch["text"], truncation=True, max_length=max_length, padding="max_length")',
        "test_tokenize_batch_does_not_pad",
    ),
    "model-reinitialises-the-encoder": (
        "model",
        "    return AutoModelForSequenceClassification.from_pretrained(\n"
        "        model_name_or_path, num_labels=len(labels), id2label=id2label, "
        "label2id=label2id\n"
        "    )",
        "    from transformers import AutoConfig\n"
        "    config = AutoConfig.from_pretrained(model_name_or_path, "
        "num_labels=len(labels), id2label=id2label,\n"
        "                                        label2id=label2id)\n"
        "    return AutoModelForSequenceClassification.from_config(config)",
        "test_encoder_weights_come_from_the_checkpoint",
    ),
    "train-evaluates-on-test": (
        "train",
        'eval_dataset=tokenized["validation"],',
        'eval_dataset=tokenized["test"],',
        "test_trainer_evaluates_on_validation",
    ),
    "train-constant-schedule": (
        "train",
        "        seed=seed,\n",
        '        seed=seed,\n        lr_scheduler_type="constant",\n',
        "test_training_arguments",
    ),
    "evaluate-uses-argmin": (
        "evaluate",
        "preds = logits.argmax(axis=-1)",
        "preds = logits.argmin(axis=-1)",
        "test_compute_metrics_on_hand_made_logits",
    ),
    "evaluate-binary-f1": (
        "evaluate",
        'macro.compute(predictions=preds, references=labels, labels=classes, average="macro")',
        "macro.compute(predictions=preds, references=labels)",
        "test_compute_metrics_on_hand_made_logits",
    ),
    "evaluate-predict-without-eval": (
        "evaluate",
        "    model.eval()\n",
        "",
        "test_predict_eval_mode_without_gradients",
    ),
    "emotion-weights-not-inverted": (
        "emotion",
        "return (n_c.sum() / (len(values) * n_c)).to(torch.float32)",
        "return (n_c / n_c.sum()).to(torch.float32)",
        "test_class_weights_are_balanced_inverse_frequency",
    ),
    "emotion-weights-without-K": (
        "emotion",
        "return (n_c.sum() / (len(values) * n_c)).to(torch.float32)",
        "return (n_c.sum() / n_c).to(torch.float32)",
        "test_class_weights_are_balanced_inverse_frequency",
    ),
    "emotion-zero-count-accepted": (
        "emotion",
        "        if n <= 0:\n",
        "        if n < 0:\n",
        "test_class_weights_are_balanced_inverse_frequency",
    ),
    "emotion-trainer-ignores-weights": (
        "emotion",
        "loss = weighted_cross_entropy(outputs.logits, labels, self.class_weights, label_smoothing=smoothing)",
        "loss = F.cross_entropy(outputs.logits, labels)",
        "test_weighted_trainer_loss_uses_the_class_weights",
    ),
    "emotion-trainer-ignores-label-smoothing": (
        "emotion",
        "loss = weighted_cross_entropy(outputs.logits, labels, self.class_weights, label_smoothing=smoothing)",
        "loss = weighted_cross_entropy(outputs.logits, labels, self.class_weights)",
        "test_weighted_trainer_loss_uses_the_class_weights",
    ),
    "emotion-loss-ignores-weights": (
        "emotion",
        "return F.cross_entropy(logits, labels.to(logits.device), weight=weights, label_smoothing=label_smoothing)",
        "return F.cross_entropy(logits, labels.to(logits.device), label_smoothing=label_smoothing)",
        "test_weighted_cross_entropy_matches_torch",
    ),
    "emotion-label-counts-skip-missing-labels": (
        "emotion",
        "return {name: int(counts.get(i, 0)) for i, name in enumerate(names)}",
        "return {names[i]: int(n) for i, n in counts.items()}",
        "test_label_counts_per_name_in_label_order",
    ),
    "emotion-report-without-labels": (
        "emotion",
        "y_true, y_pred, labels=list(range(len(label_names))), zero_division=0",
        "y_true, y_pred, zero_division=0",
        "test_per_class_report_matches_sklearn",
    ),
    "emotion-most-confused-includes-diagonal": (
        "emotion",
        "if t != p and cm[t, p] > 0]",
        "if cm[t, p] > 0]",
        "test_most_confused_ranks_off_diagonal_cells",
    ),
    "emotion-most-confused-ties-by-predicted": (
        "emotion",
        "key=lambda cell: (-cell[0], cell[1], cell[2])",
        "key=lambda cell: (-cell[0], cell[2], cell[1])",
        "test_most_confused_ranks_off_diagonal_cells",
    ),
    "zero_shot-single-label-softmax-over-nli-classes": (
        "zero_shot",
        "scores = logits[:, ent].softmax(dim=0)",
        "scores = logits.softmax(dim=-1)[:, ent]",
        "test_nli_single_label_matches_pipeline",
    ),
    "zero_shot-multi-label-softmax-over-labels": (
        "zero_shot",
        "scores = logits[:, [con, ent]].softmax(dim=-1)[:, 1]",
        "scores = logits[:, [con, ent]].softmax(dim=0)[:, 1]",
        "test_nli_multi_label_matches_pipeline",
    ),
    "zero_shot-entailment-index-hard-coded-in-nli": (
        "zero_shot",
        "    ent = entailment_index(model)\n",
        "    ent = 2\n",
        "test_nli_label_indices_found_by_name",
    ),
    "zero_shot-entailment-index-returns-2": (
        "zero_shot",
        "    for name, index in model.config.label2id.items():\n"
        '        if name.lower().startswith("entail"):\n'
        "            return int(index)\n",
        "    return 2\n",
        "test_nli_label_indices_found_by_name",
    ),
    "zero_shot-contradiction-index-hard-coded-0": (
        "zero_shot",
        "con = contradiction_index(model) if multi_label else None",
        "con = 0",
        "test_nli_multi_label_matches_pipeline",
    ),
    "zero_shot-mean-pool-includes-padding": (
        "zero_shot",
        "    mask = "
        "attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)\n"
        "    summed = (last_hidden_state * mask).sum(dim=1)\n"
        "    counts = mask.sum(dim=1).clamp(min=1e-9)\n"
        "    return summed / counts\n",
        "    return last_hidden_state.mean(dim=1)\n",
        "test_mean_pool_ignores_padding",
    ),
    "zero_shot-embed-not-normalised": (
        "zero_shot",
        "chunks.append(torch.nn.functional.normalize(pooled, p=2, dim=-1).cpu())",
        "chunks.append(pooled.cpu())",
        "test_embed_matches_sentence_transformers",
    ),
    "zero_shot-mcnemar-one-sided": (
        "zero_shot",
        "b01 + b10, 0.5).pvalue)",
        "b01 + b10, 0.5, alternative='less').pvalue)",
        "test_compare_predictions_counts_and_mcnemar",
    ),
    "zero_shot-agreement-counts-correctness": (
        "zero_shot",
        '"agreement": float(np.mean(a == b))',
        '"agreement": float(np.mean(right_a == right_b))',
        "test_compare_predictions_counts_and_mcnemar",
    ),
}


@pytest.mark.parametrize("mutant", list(MUTANTS))
def test_mutant_loses_points_on_its_stage(mutant, tmp_path):
    stage_id, old, new, must_fail = MUTANTS[mutant]
    stage = load_course().stage(stage_id)
    source = (REPO_ROOT / "solutions" / f"{stage.module}.py").read_text()
    assert source.count(old) == 1, f"mutant {mutant}: its target text is not (exactly once) in the solution"
    sub = tmp_path / "submission"
    sub.mkdir()
    (sub / f"{stage.module}.py").write_text(source.replace(old, new))
    result = grade_stage(stage, sub)
    by_name = {c.name: c for c in result.checks}
    assert not result.error, result.error
    assert result.score < result.max_score, f"mutant {mutant} gets full marks"
    assert not by_name[must_fail].passed, f"mutant {mutant} passes {must_fail}"
    assert by_name[must_fail].message, f"{must_fail} fails without a message"
