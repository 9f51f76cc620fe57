"""Public checks for stage 4 (evaluate): the hidden grader's checks of the same names, on other inputs."""

import json

import numpy as np
import stage4_evaluate as stage
import torch
from sklearn.metrics import accuracy_score, f1_score
from transformers import AutoModelForSequenceClassification, AutoTokenizer

# 6 examples, 3 classes of unequal size. Row 0 is a tie (the first largest logit wins: class 0).
# argmax is right 4 times; macro-F1, weighted F1 and accuracy all differ, and a binary F1 fails.
LOGITS = np.array([[2.0, 2.0, -1.0], [1.5, 0.2, 0.1], [0.1, 0.9, 0.3],
                   [-0.5, 1.2, 0.4], [0.0, 0.3, 0.8], [0.2, -0.3, 2.5]], dtype=np.float32)
LABELS = np.array([0, 0, 0, 1, 1, 2])
BINARY_F1 = "with 3 classes, F1 is the macro-F1 over all classes (average='macro'), not the binary F1 of one class"
TEXTS = ["a warm and witty film", "two hours I will never get back", "it is a film", "wow"]


def quoted(exc: BaseException, limit: int = 160) -> str:
    """An exception's text for a message, last and short: the fix words come before it."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float, np.number))


def _metrics() -> dict:
    try:
        out = stage.compute_metrics((LOGITS, LABELS))
    except ValueError as exc:
        if "average" not in str(exc):
            raise
        raise AssertionError(f"{BINARY_F1}. compute_metrics((6x3 logits, 6 labels)) raised ValueError: "
                             f"{quoted(exc)}") from None
    assert isinstance(out, dict) and {"accuracy", "f1"} <= set(out), \
        f"compute_metrics should return a dict with 'accuracy' and 'f1', got {out!r}"
    return out


def test_compute_metrics_on_hand_made_logits():
    out = _metrics()
    preds = LOGITS.argmax(-1)
    acc, f1 = accuracy_score(LABELS, preds), f1_score(LABELS, preds, average="macro")
    for key in ("accuracy", "f1"):
        assert _number(out[key]), f"{key} on the hand-made logits should be a number, got {out[key]!r}"
    assert abs(float(out["accuracy"]) - acc) < 1e-9, \
        f"the prediction is the argmax of the logits: accuracy on the hand-made logits is {out['accuracy']:.4g}, " \
        f"expected {acc:.4g}"
    assert abs(float(out["f1"]) - f1) < 1e-9, \
        (f"f1 should be the macro-F1, the plain mean of the per-class F1 over all classes (average='macro'): "
         f"on the hand-made logits it is {out['f1']:.6f}, expected {f1:.6f}")


def test_compute_metrics_returns_plain_floats():
    out = _metrics()
    for key in ("accuracy", "f1"):
        assert isinstance(out[key], float) and 0.0 <= out[key] <= 1.0, \
            f"{key} should be a float between 0 and 1, got {type(out[key]).__name__} {out[key]!r}"
    try:
        json.dumps(out)
    except TypeError as exc:
        raise AssertionError(f"the metrics cannot be logged as JSON ({exc}): convert them with float()") from None


def _model_and_tokenizer(path: str, train: bool = False):
    model = AutoModelForSequenceClassification.from_pretrained(path)
    return (model.train() if train else model.eval()), AutoTokenizer.from_pretrained(path)


def _predict(texts, model, tok, **kw) -> list:
    out = stage.predict(texts, model, tok, **kw)
    assert isinstance(out, list), f"predict should return a list, got {type(out).__name__}"
    assert len(out) == len(texts), f"predict on {len(texts)} texts returned {len(out)} results"
    return out


def test_predict_matches_reference(tiny_model_path):
    model, tok = _model_and_tokenizer(tiny_model_path)
    out = _predict(TEXTS, model, tok)
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    for i, row in enumerate(out):
        with torch.no_grad():  # each text alone: no padding, so a batch that leaks padding differs
            probs = torch.softmax(model(**tok([TEXTS[i]], return_tensors="pt")).logits, dim=-1)[0]
        assert isinstance(row, dict) and {"label", "score", "probabilities"} <= set(row), \
            f"each result should be a dict with label, score and probabilities, got {row!r}"
        best = int(probs.argmax())
        assert row["label"] == names[best], (f"text {i} ({TEXTS[i]!r}) was labelled {row['label']!r}, expected "
                                             f"{names[best]!r} (names come from model.config.id2label)")
        assert _number(row["score"]) and abs(float(row["score"]) - float(probs[best])) < 1e-5, \
            (f"text {i}: score {row['score']!r} should be the softmax probability of the label, "
             f"{float(probs[best]):.6f}")
        got = row["probabilities"]
        assert isinstance(got, dict) and all(_number(got.get(n)) and abs(float(got[n]) - float(p)) < 1e-5
                                             for n, p in zip(names, probs)), \
            f"text {i}: probabilities {got!r} differ from the softmax of the logits"


def test_predict_rejects_empty_input(tiny_model_path):
    model, tok = _model_and_tokenizer(tiny_model_path)
    why = "empty input has nothing to classify; say so with a clear message"
    for bad, shown in (([], "[]"), (["fine", ""], "['fine', '']")):
        desc = f"predict({shown}, model, tokenizer)"
        try:
            out = stage.predict(bad, model, tok)
        except ValueError:
            continue
        except Exception as exc:  # noqa: BLE001 - the wrong exception is the failure we report
            raise AssertionError(f"called {desc}: it raised {type(exc).__name__}: {exc}; expected a ValueError: "
                                 f"{why}") from None
        raise AssertionError(f"called {desc}: it returned {out!r}; expected a ValueError: {why}")


def test_predict_eval_mode_without_gradients(tiny_model_path):
    """The model arrives in training mode (as the Trainer leaves it); every forward pass is recorded."""
    model, tok = _model_and_tokenizer(tiny_model_path, train=True)
    seen = []
    model.register_forward_hook(lambda module, args, output: seen.append((module.training, torch.is_grad_enabled())))
    texts = TEXTS[:2]
    first = _predict(texts, model, tok)
    assert seen, "predict never ran the model"
    assert not any(training for training, _ in seen), \
        "predict ran the model in training mode: call model.eval() first (dropout makes predictions random)"
    assert not any(grad for _, grad in seen), "predict ran the model with gradients on: wrap it in torch.no_grad()"
    again = _predict(texts, model, tok)
    assert [r["score"] for r in first] == [r["score"] for r in again], \
        "predict gave different scores for the same texts: call model.eval() first (dropout makes predictions random)"
