"""Hidden grader, stage 5 (emotion capstone). Points per check: course.toml [stages.checks].

The submission runs in its own process: datasets, models and training arguments are built
there from recipes; tensors and plain values cross as data, and the judge computes every
reference (losses, reports) itself. Label columns, counts, logits, texts and confusion cells are
drawn with the hidden seed (``emotion_draws``): a table of known answers cannot pass.
"""

from __future__ import annotations

import numbers

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import precision_recall_fscore_support

from autograder.grading.gradelib import (
    GraderFailure,
    R,
    attempt,
    call,
    describe,
    expect,
    expect_raises,
    expect_type,
    function,
    hidden_rng,
    method,
)
from autograder.grading.graders.emotion_draws import (
    as_tuples,
    balanced,
    confusion,
    decreasing_counts,
    label_column,
    report_lists,
    rounded,
    short,
    type_name,
    with_a_zero,
)
from autograder.grading.hidden_inputs import label_names, sentences
from autograder.grading.judge import RemoteError, RunnerFailure
from autograder.sandbox.wire import qualname

MODULE = "stage5_emotion"


@pytest.fixture(scope="module")
def sub(stage_module):
    return stage_module(MODULE)


def _labelled(labels: list[int], names: list[str]):
    """A Dataset with a text column and a ClassLabel ``label`` column, built in the runner."""
    texts = [f"text {i}" for i in range(len(labels))]
    return R.dataset({"text": texts, "label": list(labels)}, list(names))


def _weights_tensor(sub, counts, desc: str) -> torch.Tensor:
    out = call(sub, "class_weights", counts, call_desc=desc)
    expect_type(out, torch.Tensor, desc)
    expect(tuple(out.shape) == (len(counts),),
           f"{desc} returned a tensor of shape {tuple(out.shape)}, expected ({len(counts)},): "
           "one weight per class")
    expect(out.dtype == torch.float32, f"{desc} returned dtype {out.dtype}, expected torch.float32")
    return out


def test_label_counts_per_name_in_label_order(sub):
    names, labels, small, small_labels = label_column("test_label_counts_per_name_in_label_order")
    desc = f"label_counts(Dataset with label={labels}, ClassLabel names={names})"
    out = call(sub, "label_counts", _labelled(labels, names), call_desc=desc)
    expect_type(out, dict, desc)
    want = {name: labels.count(i) for i, name in enumerate(names)}
    expect(list(out) == names,
           f"{desc} returned the keys {describe(list(out))}, expected every label name in the ClassLabel's order "
           f"{names} (labels that never occur included, with count 0)")
    expect(out == want, f"{desc} returned {describe(out)}, expected {want}")
    expect(all(type(v) is int for v in out.values()),
           f"the counts should be plain python ints, got {sorted({type(v).__name__ for v in out.values()})}")
    desc = f"label_counts(Dataset with label={small_labels}, ClassLabel names={small})"
    out = call(sub, "label_counts", _labelled(small_labels, small), call_desc=desc)
    want = {name: small_labels.count(i) for i, name in enumerate(small)}
    expect(out == want and list(out) == small,
           f"{desc} returned {describe(out)}, expected {want}: read the names from "
           "dataset.features['label'].names, never hard-code them")


def test_class_weights_are_balanced_inverse_frequency(sub):
    rng = hidden_rng("test_class_weights_are_balanced_inverse_frequency")
    counts = decreasing_counts(rng, rng.randint(4, 7))
    n, k = sum(counts), len(counts)
    desc = f"class_weights({counts})"
    out = _weights_tensor(sub, counts, desc)
    want = torch.tensor(balanced(counts), dtype=torch.float32)
    expect(bool(torch.all(out[1:] > out[:-1])),
           f"{desc} returned {rounded(out)}: rarer classes (smaller counts) should get larger weights; "
           "weight by the inverse of the frequency")
    expect(torch.allclose(out, want, rtol=1e-5, atol=0),
           f"{desc} returned {rounded(out)}, expected {rounded(want)}: w_c = N / (K * n_c) with N={n}, K={k}")
    named = dict(zip(label_names(rng, k), counts, strict=True))
    desc = f"class_weights({named})"
    out = _weights_tensor(sub, named, desc)
    expect(torch.allclose(out, want, rtol=1e-5, atol=0),
           f"{desc} (the dict label_counts returns) gave {rounded(out)}, expected {rounded(want)}, "
           "in the dict's order")
    same = [rng.randint(2, 20)] * rng.randint(2, 5)
    out = _weights_tensor(sub, same, f"class_weights({same})")
    expect(torch.allclose(out, torch.ones(len(same)), rtol=1e-6, atol=0),
           f"class_weights({same}) returned {rounded(out)}, expected {[1.0] * len(same)}: balanced classes weigh 1")
    zero = with_a_zero(rng)
    exc = expect_raises(function(sub, "class_weights"), ValueError, f"class_weights({zero})", zero,
                        why="a class with 0 examples has no inverse-frequency weight")
    expect(exc.message.strip() != "",
           f"class_weights({zero}) raised ValueError without a message: say which class has no examples")


def test_weighted_cross_entropy_matches_torch(sub):
    rng = hidden_rng("test_weighted_cross_entropy_matches_torch")
    gen = torch.Generator().manual_seed(rng.getrandbits(62))
    k, n = rng.randint(4, 7), rng.randint(8, 14)
    weights = torch.tensor(balanced(decreasing_counts(rng, k)), dtype=torch.float32)
    while True:  # weighted and unweighted losses clearly apart, so forgetting the weights shows
        logits, labels = torch.randn(n, k, generator=gen), torch.randint(0, k, (n,), generator=gen)
        want, plain = F.cross_entropy(logits, labels, weight=weights), F.cross_entropy(logits, labels)
        if abs(float(want) - float(plain)) > 1e-3:
            break
    desc = f"weighted_cross_entropy(logits ({n}, {k}), labels ({n},), weights ({k},))"
    out = call(sub, "weighted_cross_entropy", logits.clone(), labels.clone(), weights.clone(), call_desc=desc)
    expect_type(out, torch.Tensor, desc)
    expect(out.dim() == 0,
           f"{desc} returned {describe(out)}, expected one number (a 0-d tensor): the batch's loss")
    expect(abs(float(out) - float(plain)) > 1e-4,
           f"{desc} returned {float(out):.6f}, the unweighted cross-entropy; expected {float(want):.6f}: "
           "pass weight=weights to torch.nn.functional.cross_entropy")
    expect(abs(float(out) - float(want)) < 1e-6,
           f"{desc} returned {float(out):.6f}, expected F.cross_entropy(logits, labels, weight=weights) = "
           f"{float(want):.6f}")
    desc = f"weighted_cross_entropy(float64 logits ({n}, {k}), labels, float32 weights)"
    out = call(sub, "weighted_cross_entropy", logits.double(), labels.clone(), weights.clone(),
               call_desc=desc)
    want = F.cross_entropy(logits.double(), labels, weight=weights.double())
    expect(isinstance(out, torch.Tensor) and out.dim() == 0 and abs(float(out) - float(want)) < 1e-6,
           f"{desc} returned {describe(out)}, expected {float(want):.6f}: move the weights to the logits' "
           "device and dtype first")


@pytest.fixture(scope="module")
def six_label_model(inputs, tiny_paths):
    """A tiny 6-label classifier with a spread-out head, prepared by the judge in ``inputs``.

    Returns (folder, the judge's own copy in eval mode); the runner loads the same folder.
    """
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging

    logging.set_verbosity_error()
    folder = inputs / "emotion_six_labels"
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_paths.path("distilbert-base"), num_labels=6)
    with torch.no_grad():  # a spread-out head, so that weighted and unweighted losses differ clearly
        model.classifier.weight.normal_(0.0, 2.0, generator=torch.Generator().manual_seed(3))
    if not (folder / "config.json").exists():
        model.save_pretrained(str(folder), safe_serialization=True)
    model.eval()
    return folder, model


def _is_trainer_class(sub) -> tuple[bool, str]:
    """Whether ``WeightedTrainer`` is a class deriving from Trainer, by the classes the runner reported."""
    from transformers import Trainer

    try:
        info = sub.describe("WeightedTrainer")
    except (RemoteError, RunnerFailure) as exc:
        raise GraderFailure(f"{MODULE}.py: WeightedTrainer could not be inspected ({exc})") from None
    if not info.get("exists"):
        return False, "None"
    mro = [str(m) for m in info.get("mro", [])]
    if not info.get("is_class"):
        return False, f"a {describe(info.get('type', 'object'))}"
    shown = f"<class '{mro[0][:80]}'>" if mro else "a class"
    return qualname(Trainer) in mro, shown


def test_weighted_trainer_loss_uses_the_class_weights(sub, runner, six_label_model, tiny_tokenizer):
    from transformers import Trainer

    ok, shown = _is_trainer_class(sub)
    expect(ok, f"{MODULE}.py should define `class WeightedTrainer(Trainer)`, found {shown}")
    folder, model = six_label_model
    try:  # one model in the runner: the trainer's, and the one compute_loss is given
        remote_model = runner.build(R.model(str(folder), mode="eval"))
    except (RemoteError, RunnerFailure) as exc:
        raise GraderFailure(f"the 6-label model could not be loaded in the submission's process: {exc}") from None
    args = R.training_args(output_dir="weighted_trainer", report_to="none", use_cpu=True)
    rng = hidden_rng("test_weighted_trainer_loss_uses_the_class_weights")
    weights = torch.tensor(balanced(decreasing_counts(rng, 6)), dtype=torch.float32)
    trainer = call(sub, "WeightedTrainer", model=remote_model, args=args, class_weights=weights.clone(),
                   call_desc="WeightedTrainer(model=tiny 6-label classifier, args=TrainingArguments(...), "
                             "class_weights=6 weights)")
    expect_type(trainer, Trainer, "WeightedTrainer(...)")
    texts = sentences(rng, rng.randint(5, 8), 2, 10)
    smoothing = rng.choice([0.05, 0.1, 0.15, 0.2])
    batch = dict(tiny_tokenizer(texts, padding=True, return_tensors="pt"))
    with torch.no_grad():
        logits = model(**batch).logits
    while True:  # labels for which the weighted, the plain and the smoothed loss are clearly apart
        labels = torch.tensor([rng.randrange(6) for _ in texts])
        want, plain = F.cross_entropy(logits, labels, weight=weights), F.cross_entropy(logits, labels)
        smoothed = F.cross_entropy(logits, labels, weight=weights, label_smoothing=smoothing)
        if abs(float(want) - float(plain)) > 1e-3 and abs(float(smoothed) - float(want)) > 1e-3:
            break
    compute_loss = method(trainer, "compute_loss", no_grad=True)
    desc = f"trainer.compute_loss(model, batch of {len(texts)} with labels, num_items_in_batch={len(texts)})"
    loss = attempt(compute_loss, desc, remote_model, {**batch, "labels": labels.clone()},
                   num_items_in_batch=torch.tensor(len(texts)))
    expect(isinstance(loss, torch.Tensor) and loss.numel() == 1,
           f"{desc} returned {short(loss)}, expected the batch's loss (a tensor holding one number)")
    expect(abs(float(loss) - float(plain)) > 1e-5,
           f"{desc} returned {float(loss):.6f}, the unweighted cross-entropy; expected {float(want):.6f}: "
           "compute the loss with weighted_cross_entropy(outputs.logits, labels, self.class_weights)")
    expect(abs(float(loss) - float(want)) < 1e-5,
           f"{desc} returned {float(loss):.6f}, expected the weighted cross-entropy {float(want):.6f}: pop "
           "the labels, run model(**inputs), then weighted_cross_entropy(outputs.logits, labels, "
           "self.class_weights)")
    desc = f"trainer.compute_loss(model, batch of {len(texts)} with labels, return_outputs=True)"
    out = attempt(compute_loss, desc, remote_model, {**batch, "labels": labels.clone()}, return_outputs=True)
    expect(isinstance(out, tuple) and len(out) == 2,
           f"{desc} returned {short(out)}, expected a pair (loss, outputs)")
    loss, outputs = out
    got_logits = outputs.get("logits") if isinstance(outputs, dict) else None
    expect(isinstance(loss, torch.Tensor) and loss.numel() == 1 and abs(float(loss) - float(want)) < 1e-5
           and isinstance(got_logits, torch.Tensor) and got_logits.shape == logits.shape
           and torch.allclose(got_logits.float(), logits, atol=1e-5),
           f"{desc} returned ({short(loss)}, {type_name(outputs)}); expected (the weighted loss "
           f"{float(want):.6f}, the model's outputs with their .logits)")
    _expect_label_smoothing(sub, remote_model, weights, smoothing, {**batch, "labels": labels}, (want, smoothed))


def _expect_label_smoothing(sub, remote_model, weights: torch.Tensor, smoothing: float, batch: dict,
                            losses: tuple[torch.Tensor, torch.Tensor]) -> None:
    """A WeightedTrainer built with ``label_smoothing_factor`` computes the smoothed weighted loss.

    Its compute_loss replaces the Trainer's, so a factor it does not pass on is silently ignored: the
    notebook's ``TrainingArguments(label_smoothing_factor=...)`` would then change nothing. ``losses`` is
    (the weighted loss without smoothing, with it), computed by the judge.
    """
    unsmoothed, want = losses
    args = R.training_args(output_dir="weighted_trainer_smoothed", report_to="none", use_cpu=True,
                           label_smoothing_factor=smoothing)
    trainer = call(sub, "WeightedTrainer", model=remote_model, args=args, class_weights=weights.clone(),
                   call_desc=f"WeightedTrainer(model=..., args=TrainingArguments(label_smoothing_factor={smoothing}), "
                             "class_weights=6 weights)")
    n = len(batch["labels"])
    desc = (f"trainer.compute_loss(model, batch of {n} with labels, num_items_in_batch={n}) with "
            f"TrainingArguments(label_smoothing_factor={smoothing})")
    loss = attempt(method(trainer, "compute_loss", no_grad=True), desc, remote_model,
                   {**batch, "labels": batch["labels"].clone()}, num_items_in_batch=torch.tensor(n))
    expect(isinstance(loss, torch.Tensor) and loss.numel() == 1,
           f"{desc} returned {short(loss)}, expected the batch's loss (a tensor holding one number)")
    expect(abs(float(loss) - float(unsmoothed)) > 1e-5,
           f"{desc} returned {float(loss):.6f}, the loss without label smoothing; expected {float(want):.6f}: pass "
           "the training arguments' smoothing on, weighted_cross_entropy(outputs.logits, labels, self.class_weights, "
           "label_smoothing=self.args.label_smoothing_factor), and give it to cross_entropy(label_smoothing=...)")
    expect(abs(float(loss) - float(want)) < 1e-5,
           f"{desc} returned {float(loss):.6f}, expected F.cross_entropy(logits, labels, weight=weights, "
           f"label_smoothing={smoothing}) = {float(want):.6f}")


def test_per_class_report_matches_sklearn(sub):
    names, y_true, y_pred, never = report_lists("test_per_class_report_matches_sklearn")
    desc = f"per_class_report(y_true={y_true}, y_pred={y_pred}, label_names={names})"
    fix = "pass labels=list(range(K)) so that a class missing from both lists still gets a row"
    out = call(sub, "per_class_report", list(y_true), list(y_pred), list(names), call_desc=desc,
               fixes={IndexError: f"{fix} (scikit-learn returned fewer rows than there are labels)"})
    expect_type(out, dict, desc)
    expect(list(out) == names,
           f"{desc} returned the keys {describe(list(out))}, expected every label name in order {names}: {fix}")
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=list(range(len(names))), zero_division=0)
    for i, name in enumerate(names):
        row = out[name]
        expect(isinstance(row, dict) and {"precision", "recall", "f1", "support"} <= set(row),
               f"out[{name!r}] is {describe(row)}, expected a dict with precision, recall, f1 and support")
        want = {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        got = {key: row[key] for key in want}
        close = all(isinstance(got[key], numbers.Real) and abs(float(got[key]) - want[key]) < 1e-9
                    for key in want)
        why = f" ({never!r} is never predicted: zero_division=0 makes its precision 0)" if name == never else ""
        expect(close, f"out[{name!r}] is {describe(got)}, expected {want}{why}")
        expect(type(row["support"]) is int, f"out[{name!r}]['support'] should be a plain int, got "
                                             f"{type(row['support']).__name__}")


def test_most_confused_ranks_off_diagonal_cells(sub):
    names, y_true, y_pred, ranked = confusion("test_most_confused_ranks_off_diagonal_cells")
    desc = f"most_confused(y_true, y_pred, {names}) ({len(y_true)} examples, default k=3)"
    out = call(sub, "most_confused", list(y_true), list(y_pred), list(names), call_desc=desc)
    expect_type(out, list, desc)
    got = as_tuples(out)
    expect(all(isinstance(x, tuple) and len(x) == 3 for x in got),
           f"{desc} returned {describe(out)}, expected a list of (true_name, predicted_name, count)")
    expect(all(x[0] != x[1] for x in got),
           f"{desc} returned {describe(got)}: it contains correct predictions (true == predicted); keep only the "
           "off-diagonal cells of the confusion matrix")
    expect(all(isinstance(x[2], numbers.Integral) for x in got),
           f"{desc} returned {describe(got)}: the counts should be ints")
    expect(got == ranked[:3],
           f"{desc} returned {describe(got)}, expected {ranked[:3]}: rows of the confusion matrix are the true "
           "labels, columns the predictions; sort by count (largest first), then by true index, then predicted index")
    desc = (f"most_confused(np.array(y_true), np.array(y_pred), {names}, k=10) (only {len(ranked)} cells are "
            "mistakes)")
    out = call(sub, "most_confused", np.array(y_true), np.array(y_pred), list(names), k=10, call_desc=desc)
    got = as_tuples(out) if isinstance(out, list) else out
    expect(isinstance(got, list) and got == ranked,
           f"{desc} returned {describe(got)}, expected the {len(ranked)} mistakes {ranked}: "
           "keep only counts > 0")
