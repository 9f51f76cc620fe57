"""Hidden grader, stage 5 (emotion capstone). Points per check: course.toml [stages.checks].

The submission runs in its own process: datasets, models and training arguments are built
there from recipes; tensors and plain values cross as data, and the judge computes every
reference (losses, reports) itself.
"""

from __future__ import annotations

import numbers
import random

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
    method,
)
from autograder.grading.judge import Handle, RemoteError, RunnerFailure
from autograder.sandbox.wire import Record, qualname

MODULE = "stage5_emotion"
EMOTIONS = ["sadness", "joy", "love", "anger", "fear", "surprise"]
COUNTS = [50, 30, 10, 5, 3, 2]  # N = 100, K = 6: w_c = 100 / (6 * n_c)
BALANCED = [100 / (6 * n) for n in COUNTS]

# Confusion cells (true, predicted): count. Off-diagonal, ranked: (4,0) 3; then three ties of 2 broken by
# the true index (1,3) < (2,0) < (3,1) (the predicted index: (2,0), (3,1), (1,3)); then (0,5), (5,4).
# No text is ever predicted 'love' (2).
CELLS = {(0, 0): 5, (1, 1): 4, (3, 3): 1, (4, 4): 2,
         (4, 0): 3, (1, 3): 2, (2, 0): 2, (3, 1): 2, (0, 5): 1, (5, 4): 1}
RANKED = [("fear", "sadness", 3), ("joy", "anger", 2), ("love", "sadness", 2), ("anger", "joy", 2),
          ("sadness", "surprise", 1), ("surprise", "fear", 1)]


def _pairs(cells: dict) -> tuple[list[int], list[int]]:
    pairs = [pair for pair, n in cells.items() for _ in range(n)]
    random.Random(5).shuffle(pairs)
    return [t for t, _ in pairs], [p for _, p in pairs]


Y_TRUE, Y_PRED = _pairs(CELLS)
# For the report: 'love' (2) is never predicted and 'surprise' (5) occurs in neither list.
R_TRUE = [0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 4, 0, 1]
R_PRED = [0, 1, 0, 1, 1, 0, 4, 0, 1, 3, 1, 4, 3, 4, 0, 1]


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


def _type_name(value) -> str:
    """The class name of a value as the submission made it (a handle's or a record's remote type)."""
    if isinstance(value, Handle):
        return value.type
    if isinstance(value, Record) and value.remote_type:
        return value.remote_type.rsplit(".", 1)[-1]
    return type(value).__name__


def _short(value) -> str:
    """A one-line description: a model or other big object by its type only."""
    if isinstance(value, torch.Tensor):
        return f"{float(value):.6f}" if value.numel() == 1 else describe(value)
    if isinstance(value, (int, float, str, type(None))):
        return repr(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(_short(v) for v in value) + ")"
    return f"a {_type_name(value)}"


def _as_tuples(items: list) -> list:
    """Rows as tuples (a named tuple crosses the boundary as a record of its fields)."""
    return [tuple(x) if isinstance(x, (tuple, list)) or (isinstance(x, Record) and x.is_record) else x
            for x in items]


def _rounded(t: torch.Tensor) -> list[float]:
    return [round(float(x), 4) for x in t]


def test_label_counts_per_name_in_label_order(sub):
    labels = [1, 0, 1, 3, 1, 4, 0, 1]  # joy comes first; no 'love' (2), no 'surprise' (5)
    desc = f"label_counts(Dataset with label={labels}, ClassLabel names={EMOTIONS})"
    out = call(sub, "label_counts", _labelled(labels, EMOTIONS), call_desc=desc)
    expect_type(out, dict, desc)
    want = {"sadness": 2, "joy": 4, "love": 0, "anger": 1, "fear": 1, "surprise": 0}
    expect(list(out) == EMOTIONS,
           f"{desc} returned the keys {list(out)}, expected every label name in the ClassLabel's order "
           f"{EMOTIONS} (labels that never occur included, with count 0)")
    expect(out == want, f"{desc} returned {out}, expected {want}")
    expect(all(type(v) is int for v in out.values()),
           f"the counts should be plain python ints, got {sorted({type(v).__name__ for v in out.values()})}")
    names = ["neg", "neu", "pos"]
    desc = f"label_counts(Dataset with label=[2, 2, 0], ClassLabel names={names})"
    out = call(sub, "label_counts", _labelled([2, 2, 0], names), call_desc=desc)
    want = {"neg": 1, "neu": 0, "pos": 2}
    expect(out == want and list(out) == names,
           f"{desc} returned {describe(out)}, expected {want}: read the names from "
           "dataset.features['label'].names, never hard-code them")


def test_class_weights_are_balanced_inverse_frequency(sub):
    desc = f"class_weights({COUNTS})"
    out = _weights_tensor(sub, COUNTS, desc)
    want = torch.tensor(BALANCED, dtype=torch.float32)
    expect(bool(torch.all(out[1:] > out[:-1])),
           f"{desc} returned {_rounded(out)}: rarer classes (smaller counts) should get larger weights; "
           "weight by the inverse of the frequency")
    expect(torch.allclose(out, want, rtol=1e-5, atol=0),
           f"{desc} returned {_rounded(out)}, expected {_rounded(want)}: w_c = N / (K * n_c) with N=100, K=6")
    counts = dict(zip(EMOTIONS, COUNTS, strict=True))
    desc = f"class_weights({counts})"
    out = _weights_tensor(sub, counts, desc)
    expect(torch.allclose(out, want, rtol=1e-5, atol=0),
           f"{desc} (the dict label_counts returns) gave {_rounded(out)}, expected {_rounded(want)}, "
           "in the dict's order")
    out = _weights_tensor(sub, [7, 7, 7], "class_weights([7, 7, 7])")
    expect(torch.allclose(out, torch.ones(3), rtol=1e-6, atol=0),
           f"class_weights([7, 7, 7]) returned {_rounded(out)}, expected [1.0, 1.0, 1.0]: "
           "balanced classes weigh 1")
    exc = expect_raises(function(sub, "class_weights"), ValueError, "class_weights([3, 0, 2])", [3, 0, 2],
                        why="a class with 0 examples has no inverse-frequency weight")
    expect(exc.message.strip() != "",
           "class_weights([3, 0, 2]) raised ValueError without a message: say which class has no examples")


def test_weighted_cross_entropy_matches_torch(sub):
    gen = torch.Generator().manual_seed(7)
    logits = torch.randn(10, 6, generator=gen)
    labels = torch.tensor([0, 0, 1, 5, 2, 0, 3, 4, 5, 1])
    weights = torch.tensor(BALANCED, dtype=torch.float32)
    desc = "weighted_cross_entropy(logits (10, 6), labels (10,), weights (6,))"
    out = call(sub, "weighted_cross_entropy", logits.clone(), labels.clone(), weights.clone(), call_desc=desc)
    expect_type(out, torch.Tensor, desc)
    expect(out.dim() == 0,
           f"{desc} returned {describe(out)}, expected one number (a 0-d tensor): the batch's loss")
    want = F.cross_entropy(logits, labels, weight=weights)
    plain = F.cross_entropy(logits, labels)
    expect(abs(float(out) - float(plain)) > 1e-4 or abs(float(want) - float(plain)) < 1e-4,
           f"{desc} returned {float(out):.6f}, the unweighted cross-entropy; expected {float(want):.6f}: "
           "pass weight=weights to torch.nn.functional.cross_entropy")
    expect(abs(float(out) - float(want)) < 1e-6,
           f"{desc} returned {float(out):.6f}, expected F.cross_entropy(logits, labels, weight=weights) = "
           f"{float(want):.6f}")
    desc = "weighted_cross_entropy(float64 logits (10, 6), labels, float32 weights)"
    out = call(sub, "weighted_cross_entropy", logits.double(), labels.clone(), weights.clone(),
               call_desc=desc)
    want = F.cross_entropy(logits.double(), labels, weight=weights.double())
    expect(isinstance(out, torch.Tensor) and out.dim() == 0 and abs(float(out) - float(want)) < 1e-6,
           f"{desc} returned {describe(out)}, expected {float(want):.6f}: move the weights to the logits' "
           "device and dtype first")


TRAINER_TEXTS = ["i feel so alone tonight", "what a wonderful surprise", "i am furious", "this is lovely",
                 "i am scared of the dark", "oh wow i did not expect that"]
TRAINER_LABELS = [0, 5, 3, 2, 4, 5]


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
        return False, f"a {info.get('type', 'object')}"
    shown = f"<class '{mro[0]}'>" if mro else "a class"
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
    weights = torch.tensor(BALANCED, dtype=torch.float32)
    trainer = call(sub, "WeightedTrainer", model=remote_model, args=args, class_weights=weights.clone(),
                   call_desc="WeightedTrainer(model=tiny 6-label classifier, args=TrainingArguments(...), "
                             "class_weights=6 weights)")
    expect_type(trainer, Trainer, "WeightedTrainer(...)")
    batch = dict(tiny_tokenizer(TRAINER_TEXTS, padding=True, return_tensors="pt"))
    labels = torch.tensor(TRAINER_LABELS)
    with torch.no_grad():
        logits = model(**batch).logits
    want = F.cross_entropy(logits, labels, weight=weights)
    plain = F.cross_entropy(logits, labels)
    compute_loss = method(trainer, "compute_loss", no_grad=True)
    desc = "trainer.compute_loss(model, batch of 6 with labels, num_items_in_batch=6)"
    loss = attempt(compute_loss, desc, remote_model, {**batch, "labels": labels.clone()},
                   num_items_in_batch=torch.tensor(6))
    expect(isinstance(loss, torch.Tensor) and loss.numel() == 1,
           f"{desc} returned {_short(loss)}, expected the batch's loss (a tensor holding one number)")
    expect(abs(float(loss) - float(plain)) > 1e-5,
           f"{desc} returned {float(loss):.6f}, the unweighted cross-entropy; expected {float(want):.6f}: "
           "compute the loss with weighted_cross_entropy(outputs.logits, labels, self.class_weights)")
    expect(abs(float(loss) - float(want)) < 1e-5,
           f"{desc} returned {float(loss):.6f}, expected the weighted cross-entropy {float(want):.6f}: pop "
           "the labels, run model(**inputs), then weighted_cross_entropy(outputs.logits, labels, "
           "self.class_weights)")
    desc = "trainer.compute_loss(model, batch of 6 with labels, return_outputs=True)"
    out = attempt(compute_loss, desc, remote_model, {**batch, "labels": labels.clone()}, return_outputs=True)
    expect(isinstance(out, tuple) and len(out) == 2,
           f"{desc} returned {_short(out)}, expected a pair (loss, outputs)")
    loss, outputs = out
    got_logits = outputs.get("logits") if isinstance(outputs, dict) else None
    expect(isinstance(loss, torch.Tensor) and loss.numel() == 1 and abs(float(loss) - float(want)) < 1e-5
           and isinstance(got_logits, torch.Tensor) and got_logits.shape == logits.shape
           and torch.allclose(got_logits.float(), logits, atol=1e-5),
           f"{desc} returned ({_short(loss)}, {_type_name(outputs)}); expected (the weighted loss "
           f"{float(want):.6f}, the model's outputs with their .logits)")


def test_per_class_report_matches_sklearn(sub):
    desc = f"per_class_report(y_true={R_TRUE}, y_pred={R_PRED}, label_names={EMOTIONS})"
    out = call(sub, "per_class_report", list(R_TRUE), list(R_PRED), list(EMOTIONS), call_desc=desc)
    expect_type(out, dict, desc)
    expect(list(out) == EMOTIONS,
           f"{desc} returned the keys {list(out)}, expected every label name in order {EMOTIONS}: pass "
           "labels=list(range(K)) so that a class missing from both lists still gets a row")
    p, r, f, s = precision_recall_fscore_support(R_TRUE, R_PRED, labels=list(range(6)), zero_division=0)
    for i, name in enumerate(EMOTIONS):
        row = out[name]
        expect(isinstance(row, dict) and {"precision", "recall", "f1", "support"} <= set(row),
               f"out[{name!r}] is {describe(row)}, expected a dict with precision, recall, f1 and support")
        want = {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        got = {key: row[key] for key in want}
        close = all(isinstance(got[key], numbers.Real) and abs(float(got[key]) - want[key]) < 1e-9
                    for key in want)
        why = " ('love' is never predicted: zero_division=0 makes its precision 0)" if name == "love" else ""
        expect(close, f"out[{name!r}] is {got}, expected {want}{why}")
        expect(type(row["support"]) is int, f"out[{name!r}]['support'] should be a plain int, got "
                                             f"{type(row['support']).__name__}")


def test_most_confused_ranks_off_diagonal_cells(sub):
    desc = f"most_confused(y_true, y_pred, {EMOTIONS}) (18 examples, default k=3)"
    out = call(sub, "most_confused", list(Y_TRUE), list(Y_PRED), list(EMOTIONS), call_desc=desc)
    expect_type(out, list, desc)
    got = _as_tuples(out)
    expect(all(isinstance(x, tuple) and len(x) == 3 for x in got),
           f"{desc} returned {describe(out)}, expected a list of (true_name, predicted_name, count)")
    expect(all(x[0] != x[1] for x in got),
           f"{desc} returned {got}: it contains correct predictions (true == predicted); keep only the "
           "off-diagonal cells of the confusion matrix")
    expect(all(isinstance(x[2], numbers.Integral) for x in got),
           f"{desc} returned {got}: the counts should be ints")
    expect(got == RANKED[:3],
           f"{desc} returned {got}, expected {RANKED[:3]}: rows of the confusion matrix are the true labels, "
           "columns the predictions; sort by count (largest first), then by true index, then predicted index")
    import numpy as np

    desc = f"most_confused(np.array(y_true), np.array(y_pred), {EMOTIONS}, k=10) (only 6 cells are mistakes)"
    out = call(sub, "most_confused", np.array(Y_TRUE), np.array(Y_PRED), list(EMOTIONS), k=10, call_desc=desc)
    got = _as_tuples(out) if isinstance(out, list) else out
    expect(isinstance(got, list) and got == RANKED,
           f"{desc} returned {describe(got)}, expected the {len(RANKED)} mistakes {RANKED}: "
           "keep only counts > 0")
