"""F1: the course's offline stand-in for the Hub metric ``evaluate.load("f1")``.

Same inputs, keyword arguments and output as the Hub module, computed by scikit-learn, so a
``compute_metrics`` written against this stand-in runs unchanged online. As on the Hub, the
default ``average="binary"`` only fits two classes: pass ``average="macro"`` for the mean of
the per-class scores, or ``average=None`` for the per-class scores themselves.
Single-label only (no "multilabel" configuration).
"""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import f1_score

_DESCRIPTION = """
F1 is the harmonic mean of precision and recall: F1 = 2 * (precision * recall) / (precision + recall).
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

Returns:
    f1 (`float`, or an array of floats when average=None).

Example:
    >>> f1 = evaluate.load("f1")  # online; offline: autograder.course.metrics.load_metric
    >>> f1.compute(references=[0, 1, 2, 0, 1, 2], predictions=[0, 2, 1, 0, 0, 1], average="macro")
    {'f1': 0.26666666666666666}
"""

_CITATION = "Pedregosa et al., Scikit-learn: Machine Learning in Python, JMLR 12, pp. 2825-2830, 2011."


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class F1(evaluate.Metric):
    """F1 of integer class predictions: binary, averaged over classes, or per class."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int32"),
                                        "references": datasets.Value("int32")}),
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.f1_score.html"],
        )

    def _compute(self, predictions, references, labels=None, pos_label=1, average="binary",
                 sample_weight=None) -> dict:
        score = f1_score(references, predictions, labels=labels, pos_label=pos_label, average=average,
                         sample_weight=sample_weight)
        return {"f1": float(score) if np.ndim(score) == 0 else score}
