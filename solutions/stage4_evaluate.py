"""Stage 4: evaluate and predict.

``compute_metrics`` turns the Trainer's raw logits into scores you can read, with Hugging Face
``evaluate``; ``predict`` is what you would ship: raw texts in, labels and confidences out.

Metrics come from ``load_metric(name)``, the course's way to call ``evaluate.load(name)``:
offline it loads a module shipped with the course that mirrors the Hub's (same arguments, same
values); with ``COURSE_ONLINE=1`` it calls ``evaluate.load(name)`` itself. Outside the course,
write ``evaluate.load("f1")`` where you wrote ``load_metric("f1")``.
"""

from __future__ import annotations

import evaluate
import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from autograder.course.metrics import load_metric


def compute_metrics(eval_pred) -> dict[str, float]:
    """Accuracy and macro-averaged F1, precision and recall from ``eval_pred = (logits, labels)``.

    ``eval_pred`` is the Trainer's ``EvalPrediction``. The predicted class is the index of the
    largest logit. Load the metrics with ``load_metric("accuracy")``, ``load_metric("f1")``, ...
    (online: ``evaluate.load("accuracy")``, ...) and compute them with
    ``.compute(predictions=..., references=...)``; ``evaluate.combine([...])`` computes several
    in one call.

    Macro averaging (``average="macro"``) is the plain mean of the per-class scores over all the
    classes, so a rare class counts as much as a common one. The modules' default,
    ``average="binary"``, scores one class only and fails on more than two. Note that
    ``combine`` passes every keyword to every module, and accuracy has no ``average``.

    Return plain Python floats: ``{"accuracy": ..., "f1": ..., "precision": ..., "recall": ...}``.
    """
    ### BEGIN SOLUTION
    logits, labels = eval_pred
    logits = np.asarray(logits)
    preds = logits.argmax(axis=-1)
    labels = np.asarray(labels)
    scores = load_metric("accuracy").compute(predictions=preds, references=labels)
    # every class counts, even one that is missing from this evaluation set
    classes = list(range(logits.shape[-1]))
    macro = evaluate.combine([load_metric("f1"), load_metric("precision"), load_metric("recall")])
    scores.update(macro.compute(predictions=preds, references=labels, labels=classes, average="macro"))
    return {name: float(value) for name, value in scores.items()}
    ### END SOLUTION


def predict(texts: list[str], model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
            batch_size: int = 32, max_length: int = 128) -> list[dict]:
    """Classify raw texts, in batches.

    For each text return ``{"label": name, "score": probability of that label,
    "probabilities": {name: probability, ...}}`` with names from ``model.config.id2label``.
    Put the model in eval mode first (``model.eval()``: the Trainer leaves it in training mode,
    where dropout makes predictions random) and run it under ``torch.no_grad()`` (no gradients to
    keep: faster, less memory); tokenize each batch with ``padding=True, truncation=True,
    max_length=max_length``; softmax the logits.
    Raise ``ValueError`` for an empty list or an empty (or blank) text.
    """
    ### BEGIN SOLUTION
    if isinstance(texts, str):
        texts = [texts]
    if not texts:
        raise ValueError("predict() needs at least one text")
    if any(not t or not t.strip() for t in texts):
        raise ValueError("predict() cannot classify an empty text")
    model.eval()
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    results = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt").to(model.device)
            probs = torch.softmax(model(**batch).logits, dim=-1).cpu()
            for row in probs:
                best = int(row.argmax())
                results.append({
                    "label": names[best],
                    "score": float(row[best]),
                    "probabilities": {name: float(p) for name, p in zip(names, row)},
                })
    return results
    ### END SOLUTION
