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
    # YOUR CODE HERE
    raise NotImplementedError("not written yet: see the docstring, then run `autograder check`")


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
    # YOUR CODE HERE
    raise NotImplementedError("not written yet: see the docstring, then run `autograder check`")
