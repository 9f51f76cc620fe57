"""Stage 5 (capstone): six emotions, imbalanced classes.

The emotion dataset has six labels (sadness 0, joy 1, love 2, anger 3, fear 4, surprise 5) and
they are far from equally common: joy and sadness fill most of it, surprise is rare. A model
trained with the plain cross-entropy loss learns that guessing a frequent class is usually
right, and accuracy hides it. This stage answers the workshop's questions:

1. How many examples per emotion? (:func:`label_counts`)
2. How do we make rare classes count? Weight the loss by inverse class frequency
   (:func:`class_weights`, :func:`weighted_cross_entropy`) and train with a ``Trainer`` that
   uses that loss (:class:`WeightedTrainer`).
3. Where does the model go wrong? Per-class precision/recall/F1 (:func:`per_class_report`)
   and the most frequent confusions (:func:`most_confused`).
"""

from __future__ import annotations

from collections import Counter

import torch
import torch.nn.functional as F
from datasets import Dataset
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from transformers import Trainer

EMOTION_LABELS = ["sadness", "joy", "love", "anger", "fear", "surprise"]


def label_counts(dataset: Dataset) -> dict[str, int]:
    """How many examples per emotion? Count the rows of each label, keyed by the label's NAME.

    ``dataset`` has a ``ClassLabel`` column ``label``: ``dataset.features["label"].names`` lists
    the names in label order (index 0 first). Count the ids with ``collections.Counter`` over
    ``dataset["label"]``, then build ``{name: count}`` in that order, with a count of 0 for a
    label that never occurs, and plain python ``int`` counts.
    Example: ``{"sadness": 2, "joy": 4, "love": 0, "anger": 1, "fear": 1, "surprise": 0}``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("not written yet: see the docstring, then run `autograder check`")


def class_weights(counts: dict[str, int] | list[int]) -> torch.Tensor:
    """Inverse-frequency ("balanced") class weights, one per class, in label order.

    ``counts`` is what :func:`label_counts` returns (its values are in label order) or a plain
    list of counts. With ``N`` examples in ``K`` classes and ``n_c`` examples of class ``c``:

        w_c = N / (K * n_c)

    so a class of average size weighs 1, rarer classes weigh more and frequent ones less (this is
    scikit-learn's ``class_weight="balanced"``). Return a float32 ``torch.Tensor`` of shape
    ``(K,)``. A class with count 0 has no defined weight: raise ``ValueError`` naming it.
    """
    # YOUR CODE HERE
    raise NotImplementedError("not written yet: see the docstring, then run `autograder check`")


def weighted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor,
                           weights: torch.Tensor | None, label_smoothing: float = 0.0) -> torch.Tensor:
    """The class-weighted cross-entropy loss of a batch (a 0-d tensor).

    ``logits`` has shape ``(batch, K)``, ``labels`` shape ``(batch,)``, ``weights`` shape ``(K,)``.
    Use ``torch.nn.functional.cross_entropy(logits, labels, weight=weights,
    label_smoothing=label_smoothing)``; first move the weights to the logits' device and dtype
    (``weights.to(logits.device, logits.dtype)``): cross_entropy refuses float32 weights with
    float64 logits, or CPU weights with GPU logits. ``label_smoothing`` (0 by default: none)
    spreads that share of each target over all classes, as the Trainer's own loss does when
    ``TrainingArguments(label_smoothing_factor=...)`` is set.
    """
    # YOUR CODE HERE
    raise NotImplementedError("not written yet: see the docstring, then run `autograder check`")


class WeightedTrainer(Trainer):
    """A ``Trainer`` whose loss is :func:`weighted_cross_entropy` with fixed class weights.

    Build it like a Trainer, plus the weights:
    ``WeightedTrainer(model=..., args=..., train_dataset=..., class_weights=class_weights(counts))``.
    """

    # The loss below is a per-batch weighted mean, not a sum normalised by `num_items_in_batch`:
    # this tells the Trainer to still divide it by the gradient-accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(self, *args, class_weights: torch.Tensor | None = None, **kwargs):
        """Pass ``*args`` and ``**kwargs`` on to ``Trainer.__init__`` and keep the weights in
        ``self.class_weights``."""
        # YOUR CODE HERE
        raise NotImplementedError("not written yet: see the docstring, then run `autograder check`")

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The Trainer calls this on every batch; return the weighted loss.

        ``inputs`` is the batch dict (``input_ids``, ``attention_mask``, ``labels``). Pop the
        ``labels`` (so the model does not compute its own, unweighted loss), run
        ``outputs = model(**inputs)``, and return
        ``weighted_cross_entropy(outputs.logits, labels, self.class_weights, label_smoothing=...)``
        with the smoothing the training arguments ask for, ``self.args.label_smoothing_factor``
        (0 unless set): this method replaces the Trainer's loss, so a setting it does not pass on
        is silently ignored. Return ``(loss, outputs)`` instead when ``return_outputs`` is true
        (evaluation asks for it). Keep ``num_items_in_batch`` in the signature: the Trainer passes
        it; a mean loss ignores it.
        """
        # YOUR CODE HERE
        raise NotImplementedError("not written yet: see the docstring, then run `autograder check`")


def per_class_report(y_true, y_pred, label_names: list[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of every class, keyed by label name, in label order.

    Use ``sklearn.metrics.precision_recall_fscore_support(y_true, y_pred,
    labels=list(range(K)), zero_division=0)``: ``labels=`` keeps a class that is missing from
    both lists in the report, and ``zero_division=0`` scores a class that is never predicted as
    0 instead of warning. Return
    ``{name: {"precision": float, "recall": float, "f1": float, "support": int}}``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("not written yet: see the docstring, then run `autograder check`")


def most_confused(y_true, y_pred, label_names: list[str], k: int = 3) -> list[tuple[str, str, int]]:
    """The ``k`` most frequent mistakes, as ``(true_name, predicted_name, count)``.

    Build ``sklearn.metrics.confusion_matrix(y_true, y_pred, labels=list(range(K)))``: row =
    true label, column = predicted label. The mistakes are its off-diagonal cells (the diagonal
    holds the correct predictions). Keep the cells with count > 0, sort them by count (largest
    first), break ties by true label index then predicted label index, and return the first
    ``k`` (fewer if there are fewer mistakes), with plain ``int`` counts.
    """
    # YOUR CODE HERE
    raise NotImplementedError("not written yet: see the docstring, then run `autograder check`")
