"""Hidden grader, stage 4 (evaluate). Points per check: course.toml [stages.checks]."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score
from transformers import AutoModelForSequenceClassification, EvalPrediction

from autograder.gradelib import GraderFailure, call, describe, expect, expect_raises, expect_type, function, tiny

MODULE = "stage4_evaluate"
# 8 examples, 3 classes. argmax is right 5 times; argmin would be right once.
LOGITS = np.array([[2.0, 0.1, 0.3], [0.2, 1.5, 0.1], [0.1, 0.2, 3.0], [1.0, 0.9, 0.1],
                   [0.3, 2.2, 0.2], [0.5, 0.1, 0.4], [0.1, 0.2, 0.3], [1.2, 0.4, 1.1]], dtype=np.float32)
LABELS = np.array([0, 1, 2, 1, 1, 0, 0, 2])
TEXTS = ["an utterly charming film", "flat, lifeless and far too long", "it is a film",
         "the actors seem to be having fun even when we are not", "wow"]


@pytest.fixture(scope="module")
def sub(stage_module):
    return stage_module(MODULE)


@pytest.fixture(scope="module")
def model():
    m = AutoModelForSequenceClassification.from_pretrained(tiny.path("distilbert-classifier"))
    m.eval()
    return m


def _reference(model, texts):
    tok = tiny.tokenizer()
    with torch.no_grad():
        batch = tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
        return torch.softmax(model(**batch).logits, dim=-1)


def _metrics(sub):
    out = call(sub, "compute_metrics", EvalPrediction(predictions=LOGITS, label_ids=LABELS),
               call_desc="compute_metrics(EvalPrediction(8x3 logits, 8 labels))")
    expect(isinstance(out, dict) and {"accuracy", "f1"} <= set(out),
           f"compute_metrics should return a dict with 'accuracy' and 'f1', got {describe(out)}")
    return out


def test_compute_metrics_on_hand_made_logits(sub):
    out = _metrics(sub)
    preds = LOGITS.argmax(-1)
    acc, f1 = accuracy_score(LABELS, preds), f1_score(LABELS, preds, average="macro")
    expect(abs(out["accuracy"] - acc) < 1e-9, f"accuracy on the hand-made logits is {out['accuracy']}, expected "
                                              f"{acc} (prediction = argmax of the logits)")
    expect(abs(out["f1"] - f1) < 1e-9, f"f1 on the hand-made logits is {out['f1']}, expected the macro-F1 {f1:.6f}")


def test_compute_metrics_returns_plain_floats(sub):
    out = _metrics(sub)
    for key in ("accuracy", "f1"):
        expect(isinstance(out[key], float) and 0.0 <= out[key] <= 1.0,
               f"{key} should be a float between 0 and 1, got {type(out[key]).__name__} {out[key]!r}")
    try:
        json.dumps(out)
    except TypeError as exc:
        raise GraderFailure(f"the metrics cannot be logged as JSON ({exc}): convert them with float()") from None


def _predict(sub, texts, model, **kw):
    out = call(sub, "predict", texts, model, tiny.tokenizer(), **kw,
               call_desc=f"predict({len(texts)} texts, model, tokenizer{', ' if kw else ''}"
                         f"{', '.join(f'{k}={v}' for k, v in kw.items())})")
    expect_type(out, list, "predict")
    expect(len(out) == len(texts), f"predict on {len(texts)} texts returned {len(out)} results")
    return out


def test_predict_matches_reference(sub, model):
    out = _predict(sub, TEXTS, model)
    ref = _reference(model, TEXTS)
    names = ["negative", "positive"]
    for i, (row, probs) in enumerate(zip(out, ref)):
        expect(isinstance(row, dict) and {"label", "score", "probabilities"} <= set(row),
               f"each result should be a dict with label, score and probabilities, got {describe(row)}")
        best = int(probs.argmax())
        expect(row["label"] == names[best], f"text {i} ({TEXTS[i]!r}) was labelled {row['label']!r}, "
                                            f"expected {names[best]!r} (names come from model.config.id2label)")
        expect(abs(float(row["score"]) - float(probs[best])) < 1e-5,
               f"text {i}: score {row['score']} should be the softmax probability of the label, {float(probs[best]):.6f}")
        got = row["probabilities"]
        expect(isinstance(got, dict) and all(abs(float(got.get(n, -1)) - float(p)) < 1e-5 for n, p in zip(names, probs)),
               f"text {i}: probabilities {describe(got)} differ from the softmax of the logits")


def test_predict_batch_equals_single_texts(sub, model):
    batched = _predict(sub, TEXTS, model, batch_size=2)
    for i, text in enumerate(TEXTS):
        single = _predict(sub, [text], model)[0]
        expect(abs(float(single["score"]) - float(batched[i]["score"])) < 1e-5 and single["label"] == batched[i]["label"],
               f"text {i} gives {single['label']} {single['score']:.6f} alone but {batched[i]['label']} "
               f"{batched[i]['score']:.6f} in a batch of 2: padding must not change results (use the attention mask)")


def test_predict_rejects_empty_input(sub, model):
    fn = function(sub, "predict")
    for bad, shown in (([], "[]"), (["fine", ""], "['fine', '']")):
        expect_raises(fn, ValueError, f"predict({shown}, model, tokenizer)", bad, model, tiny.tokenizer(),
                      why="empty input has nothing to classify; say so with a clear message")


def test_predict_eval_mode_without_gradients(sub, model):
    seen = []
    handle = model.register_forward_pre_hook(lambda mod, args: seen.append((mod.training, torch.is_grad_enabled())))
    model.train()
    try:
        _predict(sub, TEXTS[:2], model)
    finally:
        handle.remove()
        model.eval()
    expect(seen, "predict never ran the model")
    expect(not any(training for training, _ in seen), "predict ran the model in training mode: call model.eval() "
                                                     "first (dropout makes predictions random)")
    expect(not any(grad for _, grad in seen), "predict ran the model with gradients on: wrap it in torch.no_grad()")
