"""Stage 4: evaluate and predict.

``compute_metrics`` turns the Trainer's raw logits into scores you can read; ``predict`` is
what you would ship: raw texts in, labels and confidences out.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score
from transformers import PreTrainedModel, PreTrainedTokenizerBase


def compute_metrics(eval_pred) -> dict[str, float]:
    """Accuracy and macro-F1 from ``eval_pred = (logits, labels)`` (an ``EvalPrediction``).

    The predicted class is the index of the largest logit. Macro-F1 is the plain mean of the
    per-class F1 scores, so a rare class counts as much as a common one. Return plain Python
    floats: ``{"accuracy": ..., "f1": ...}``.
    """
    ### BEGIN SOLUTION
    logits, labels = eval_pred
    preds = np.asarray(logits).argmax(axis=-1)
    labels = np.asarray(labels)
    return {
        "accuracy": float(accuracy_score(labels, preds)),
        "f1": float(f1_score(labels, preds, average="macro")),
    }
    ### END SOLUTION


def predict(texts: list[str], model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
            batch_size: int = 32, max_length: int = 128) -> list[dict]:
    """Classify raw texts, in batches.

    For each text return ``{"label": name, "score": probability of that label,
    "probabilities": {name: probability, ...}}`` with names from ``model.config.id2label``.
    Put the model in eval mode (no dropout) and run it under ``torch.no_grad()``; tokenize each
    batch with ``padding=True, truncation=True, max_length=max_length``; softmax the logits.
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
