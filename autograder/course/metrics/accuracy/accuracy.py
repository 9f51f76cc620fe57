"""Accuracy: the course's offline stand-in for the Hub metric ``evaluate.load("accuracy")``.

Same inputs, keyword arguments and output as the Hub module, computed by scikit-learn, so a
``compute_metrics`` written against this stand-in runs unchanged online. It ships inside the
package because ``evaluate.load("accuracy")`` fetches its script from the Hub, which an
offline classroom cannot reach. Single-label only (no "multilabel" configuration).
"""

import datasets
import evaluate
from sklearn.metrics import accuracy_score

_DESCRIPTION = """
Accuracy is the proportion of correct predictions among all predictions:
Accuracy = (TP + TN) / (TP + TN + FP + FN).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted labels.
    references (`list` of `int`): true labels.
    normalize (`bool`): False returns the number of correct predictions instead. Defaults to True.
    sample_weight (`list` of `float`): weights of the examples. Defaults to None.

Returns:
    accuracy (`float`): between 0 and 1 (or a count when normalize=False).

Example:
    >>> accuracy = evaluate.load("accuracy")  # online; offline: autograder.course.metrics.load_metric
    >>> accuracy.compute(references=[0, 1, 2, 0], predictions=[0, 1, 1, 2])
    {'accuracy': 0.5}
"""

_CITATION = "Pedregosa et al., Scikit-learn: Machine Learning in Python, JMLR 12, pp. 2825-2830, 2011."


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Accuracy(evaluate.Metric):
    """Accuracy of integer class predictions against integer references."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int32"),
                                        "references": datasets.Value("int32")}),
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.accuracy_score.html"],
        )

    def _compute(self, predictions, references, normalize=True, sample_weight=None) -> dict:
        score = accuracy_score(references, predictions, normalize=normalize, sample_weight=sample_weight)
        return {"accuracy": float(score)}
