"""Stage 2: load a pretrained encoder with a new classification head.

Fine-tuning starts from an encoder that already understands language (its pretrained weights)
and adds a small, freshly initialised layer on top that maps the encoder's output to your
labels. Only the head starts from scratch; everything below it is reused.
"""

from __future__ import annotations

from transformers import AutoModelForSequenceClassification, PreTrainedModel


def label_maps(labels: list[str]) -> tuple[dict[int, str], dict[str, int]]:
    """Build ``(id2label, label2id)`` for ``labels`` in their given order.

    ``label_maps(["negative", "positive"])`` is
    ``({0: "negative", 1: "positive"}, {"negative": 0, "positive": 1})``. The model stores both
    in its config, so its predictions come back with names instead of bare numbers.
    """
    # YOUR CODE HERE
    raise NotImplementedError("not written yet: see the docstring, then run `autograder check`")


def load_classifier(model_name_or_path: str, labels: list[str]) -> PreTrainedModel:
    """Load the pretrained encoder at ``model_name_or_path`` with a new head for ``labels``.

    Reach for ``AutoModelForSequenceClassification.from_pretrained`` with ``num_labels``,
    ``id2label`` and ``label2id``: it loads the encoder's weights and creates the head. It works
    the same for DistilBERT and BERT checkpoints (the offline course model is a BERT).
    """
    # YOUR CODE HERE
    raise NotImplementedError("not written yet: see the docstring, then run `autograder check`")
