"""Recall: the course's offline stand-in for the Hub metric ``evaluate.load("recall")``.

Same inputs, keyword arguments and output as the Hub module, computed by scikit-learn, so a
``compute_metrics`` written against this stand-in runs unchanged online. As on the Hub, the
default ``average="binary"`` only fits two classes: pass ``average="macro"`` for the mean of
the per-class scores, or ``average=None`` for the per-class scores themselves.
Single-label only (no "multilabel" configuration).
"""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import recall_score

_DESCRIPTION = """
Recall is the share of the examples of a class that are found: TP / (TP + FN).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted labels.
    references (`list` of `int`): true labels.
    labels (`list` of `int`): the classes to score, in this order when average=None. A class
        listed here but absent from both predictions and references scores 0 in a macro average.
        Defaults to the classes present, sorted.
    pos_label (`int`): the positive class when average="binary". Defaults to 1.
    average (`str` or None): "binary" (default; two classes only), "macro" (unweighted mean over
        the classes), "micro", "weighted", or None for one score per class.
    sample_weight (`list` of `float`): weights of the examples. Defaults to None.
    zero_division ("warn", 0 or 1): the score of a class with an empty denominator. Defaults to
        "warn" (score 0 and a warning).

Returns:
    recall (`float`, or an array of floats when average=None).
"""

_CITATION = "Pedregosa et al., Scikit-learn: Machine Learning in Python, JMLR 12, pp. 2825-2830, 2011."


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Recall(evaluate.Metric):
    """Recall of integer class predictions: binary, averaged over classes, or per class."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int32"),
                                        "references": datasets.Value("int32")}),
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.recall_score.html"],
        )

    def _compute(self, predictions, references, labels=None, pos_label=1, average="binary",
                 sample_weight=None, zero_division="warn") -> dict:
        score = recall_score(references, predictions, labels=labels, pos_label=pos_label, average=average,
                             sample_weight=sample_weight, zero_division=zero_division)
        return {"recall": float(score) if np.ndim(score) == 0 else score}
