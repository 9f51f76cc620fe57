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
    # YOUR CODE HERE
    raise NotImplementedError("not written yet: see the docstring, then run `autograder check`")


def predict(texts: list[str], model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
            batch_size: int = 32, max_length: int = 128) -> list[dict]:
    """Classify raw texts, in batches.

    For each text return ``{"label": name, "score": probability of that label,
    "probabilities": {name: probability, ...}}`` with names from ``model.config.id2label``.
    Put the model in eval mode (no dropout) and run it under ``torch.no_grad()``; tokenize each
    batch with ``padding=True, truncation=True, max_length=max_length``; softmax the logits.
    Raise ``ValueError`` for an empty list or an empty (or blank) text.
    """
    # YOUR CODE HERE
    raise NotImplementedError("not written yet: see the docstring, then run `autograder check`")
