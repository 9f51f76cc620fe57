"""Hidden grader, stage 4 (evaluate). Points per check: course.toml [stages.checks].

The submission runs in its own process: the EvalPrediction, the model and the tokenizer are
built there from recipes, and the judge computes the references with its own copy of the
same checkpoint.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score
from transformers import AutoModelForSequenceClassification

from autograder.grading.gradelib import (
    GraderFailure,
    R,
    attempt,
    attempt_traced,
    call,
    describe,
    expect,
    expect_raises,
    expect_type,
    function,
    hidden_rng,
    tiny,
)
from autograder.grading.hidden_inputs import sentences, words
from autograder.grading.judge import RemoteError, RunnerFailure
from autograder.messages import remote_failure

MODULE = "stage4_evaluate"


def _hand_made_logits() -> tuple[np.ndarray, np.ndarray]:
    """8 to 14 examples of 3 to 5 classes, drawn with the hidden seed (a table of answers for known
    logits cannot pass): every class among the labels, no tied logits, argmax right more often than
    argmin, and the macro-F1 different from the accuracy (so each mistake shows)."""
    rng = hidden_rng("hand-made logits")
    gen = np.random.default_rng(rng.getrandbits(64))
    while True:
        n, k = rng.randint(8, 14), rng.randint(3, 5)
        logits = np.round(gen.normal(0.0, 1.5, size=(n, k)), 2).astype(np.float32)
        best = logits.argmax(-1)
        labels = np.array([b if rng.random() < 0.65 else rng.randrange(k) for b in best])
        preds = logits.argmax(-1)
        acc, f1 = accuracy_score(labels, preds), f1_score(labels, preds, average="macro")
        if (all(len(set(row.tolist())) == k for row in logits) and set(labels.tolist()) == set(range(k))
                and acc > accuracy_score(labels, logits.argmin(-1)) and abs(acc - f1) > 1e-3):
            return logits, labels


LOGITS, LABELS = _hand_made_logits()
# the same words as the public check's, for the same mistake (a binary F1 raises on 3 classes)
BINARY_F1 = "with 3 classes, F1 is the macro-F1 over all classes (average='macro'), not the binary F1 of one class"
_TEXTS_RNG = hidden_rng("predict texts")
TEXTS = [words(_TEXTS_RNG, 1, 2), *sentences(_TEXTS_RNG, _TEXTS_RNG.randint(3, 5), 3, 16)]  # lengths differ: padding
_TEXTS_RNG.shuffle(TEXTS)


@pytest.fixture(scope="module")
def sub(stage_module):
    return stage_module(MODULE)


@pytest.fixture(scope="module")
def model():
    """The judge's own copy of the checkpoint, for the reference probabilities."""
    m = AutoModelForSequenceClassification.from_pretrained(tiny.path("distilbert-classifier"))
    m.eval()
    return m


def _remote_model(mode: str = "eval"):
    """The same checkpoint, built in the submission's process (a fresh one for each call)."""
    return R.model(tiny.path("distilbert-classifier"), mode=mode)


def _remote_tokenizer():
    return R.tokenizer(tiny.path("distilbert-classifier"))


def _reference(model, texts):
    tok = tiny.tokenizer()
    with torch.no_grad():
        batch = tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
        return torch.softmax(model(**batch).logits, dim=-1)


def _metrics(sub):
    desc = f"compute_metrics(EvalPrediction({LOGITS.shape[0]}x{LOGITS.shape[1]} logits, {len(LABELS)} labels))"
    try:
        out = function(sub, "compute_metrics")(R.eval_prediction(LOGITS, LABELS))
    except RemoteError as exc:
        if exc.is_a(ValueError) and "average" in exc.message:  # scikit-learn: "average='binary'" on 3 classes
            why = exc.message.rstrip(".")
            raise GraderFailure(f"called {desc}: it raised ValueError: {why}; {BINARY_F1}") from None
        raise GraderFailure(remote_failure(exc, desc)) from None
    except RunnerFailure as exc:
        raise GraderFailure(remote_failure(exc, desc)) from None
    expect(isinstance(out, dict) and {"accuracy", "f1"} <= set(out),
           f"compute_metrics should return a dict with 'accuracy' and 'f1', got {describe(out)}")
    return out


def test_compute_metrics_on_hand_made_logits(sub):
    out = _metrics(sub)
    preds = LOGITS.argmax(-1)
    acc = accuracy_score(LABELS, preds)
    f1 = f1_score(LABELS, preds, labels=list(range(LOGITS.shape[1])), average="macro", zero_division=0)
    for key in ("accuracy", "f1"):
        expect(_number(out[key]), f"{key} on the hand-made logits should be a number, got {describe(out[key])}")
    expect(abs(float(out["accuracy"]) - acc) < 1e-9,
           f"accuracy on the hand-made logits is {describe(out['accuracy'])}, expected {acc} "
           "(prediction = argmax of the logits)")
    expect(abs(float(out["f1"]) - f1) < 1e-9, f"f1 on the hand-made logits is {describe(out['f1'])}, expected the "
                                              f"macro-F1 {f1:.6f}: the plain mean of the per-class F1 over all "
                                              "classes (average='macro')")


def test_compute_metrics_returns_plain_floats(sub):
    out = _metrics(sub)
    for key in ("accuracy", "f1"):
        # numpy scalars cross the boundary as numpy scalars: a np.float32 is not a float
        expect(isinstance(out[key], float) and 0.0 <= out[key] <= 1.0,
               f"{key} should be a float between 0 and 1, got {describe(out[key])} of type {type(out[key]).__name__}")
    try:
        json.dumps(out)
    except TypeError as exc:
        raise GraderFailure(f"the metrics cannot be logged as JSON ({exc}): convert them with float()") from None


def _predict(sub, texts, model=None, **kw):
    return _check_predicted(call(sub, "predict", texts, model or _remote_model(), _remote_tokenizer(), **kw,
                                 call_desc=_predict_desc(texts, kw)), texts)


def _predict_desc(texts, kw) -> str:
    return (f"predict({len(texts)} texts, model, tokenizer{', ' if kw else ''}"
            f"{', '.join(f'{k}={v}' for k, v in kw.items())})")


def _check_predicted(out, texts):
    expect_type(out, list, "predict")
    expect(len(out) == len(texts), f"predict on {len(texts)} texts returned {len(out)} results")
    return out


def test_predict_matches_reference(sub, model):
    out = _predict(sub, TEXTS)
    ref = _reference(model, TEXTS)
    names = ["negative", "positive"]
    for i, (row, probs) in enumerate(zip(out, ref)):
        expect(isinstance(row, dict) and {"label", "score", "probabilities"} <= set(row),
               f"each result should be a dict with label, score and probabilities, got {describe(row)}")
        best = int(probs.argmax())
        expect(row["label"] == names[best], f"text {i} ({TEXTS[i]!r}) was labelled {describe(row['label'])}, "
                                            f"expected {names[best]!r} (names come from model.config.id2label)")
        expect(_number(row["score"]) and abs(float(row["score"]) - float(probs[best])) < 1e-5,
               f"text {i}: score {describe(row['score'])} should be the softmax probability of the label, "
               f"{float(probs[best]):.6f}")
        got = row["probabilities"]
        expect(isinstance(got, dict) and all(_number(got.get(n)) and abs(float(got[n]) - float(p)) < 1e-5
                                             for n, p in zip(names, probs)),
               f"text {i}: probabilities {describe(got)} differ from the softmax of the logits")


def _number(value) -> bool:
    """A number the judge can read with float(): a Python or numpy number, or a one-element tensor."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float, np.number)):
        return True
    if isinstance(value, torch.Tensor):
        return value.numel() == 1
    return isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "iuf"


def test_predict_batch_equals_single_texts(sub):
    batched = _predict(sub, TEXTS, batch_size=2)
    for i, text in enumerate(TEXTS):
        single = _predict(sub, [text])[0]
        for row in (single, batched[i]):
            expect(isinstance(row, dict) and {"label", "score"} <= set(row) and _number(row["score"]),
                   f"each result should be a dict with label, score and probabilities, got {describe(row)}")
        same = abs(float(single["score"]) - float(batched[i]["score"])) < 1e-5
        expect(same and single["label"] == batched[i]["label"],
               f"text {i} gives {single['label']} {float(single['score']):.6f} alone but {batched[i]['label']} "
               f"{float(batched[i]['score']):.6f} in a batch of 2: padding must not change results "
               "(use the attention mask)")


def test_predict_rejects_empty_input(sub):
    fn = function(sub, "predict")
    word = words(hidden_rng("test_predict_rejects_empty_input"), 1, 1)
    for bad, shown in (([], "[]"), ([word, ""], f"[{word!r}, '']")):
        expect_raises(fn, ValueError, f"predict({shown}, model, tokenizer)", bad, _remote_model(),
                      _remote_tokenizer(), why="empty input has nothing to classify; say so with a clear message")


def test_predict_eval_mode_without_gradients(sub, runner):
    """The model is built in training mode in the runner; its forward passes are traced there."""
    try:
        handle = runner.build(_remote_model(mode="train"))
    except (RemoteError, RunnerFailure) as exc:
        raise GraderFailure(f"the model for predict could not be built: {exc}") from None
    fn = function(sub, "predict", trace=handle.id)
    texts = TEXTS[:2]
    out, seen = attempt_traced(fn, _predict_desc(texts, {}), texts, handle, _remote_tokenizer())
    _check_predicted(out, texts)
    seen = [(bool(training), bool(grad)) for training, grad in seen]
    expect(seen, "predict never ran the model")
    expect(not any(training for training, _ in seen), "predict ran the model in training mode: call model.eval() "
                                                     "first (dropout makes predictions random)")
    expect(not any(grad for _, grad in seen), "predict ran the model with gradients on: wrap it in torch.no_grad()")
    again = attempt(fn, _predict_desc(texts, {}), texts, handle, _remote_tokenizer())
    expect(isinstance(again, list) and [_score(r) for r in out] == [_score(r) for r in again],
           "predict gave different scores for the same texts: call model.eval() first (dropout makes predictions "
           "random)")


def _score(row):
    return float(row["score"]) if isinstance(row, dict) and _number(row.get("score")) else None
