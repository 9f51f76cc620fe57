"""Confidence intervals for thresholds that never fail a correct model by chance.

A threshold is compared with the *lower bound* of a 95% interval: a model passes only when
the data make it unlikely that its true accuracy is below the threshold.

Shared by the grader's evaluator (autograder.grading.evaluator) and the student's verdict
(autograder.verdict), so a student's copy computes the same intervals without the grading side.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import f1_score

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (well behaved near 0 and 1)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _per_class_f1(t, p, k: int) -> np.ndarray:
    """F1 of each class (columns) for each row of ``t``/``p`` (resamples x n), from counts at once."""
    rows = np.arange(t.shape[0])[:, None]
    tp = np.zeros((t.shape[0], k))
    true_n = np.zeros((t.shape[0], k))
    pred_n = np.zeros((t.shape[0], k))
    np.add.at(tp, (rows, t), (t == p))
    np.add.at(true_n, (rows, t), 1)
    np.add.at(pred_n, (rows, p), 1)
    denom = true_n + pred_n
    return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)


def bootstrap_macro_f1(y_true, y_pred, *, n_boot: int = 1000, seed: int = 0,
                       labels=None) -> tuple[float, float, float]:
    """(macro-F1, lower, upper): percentile bootstrap over examples, seeded so grading repeats exactly.

    Macro-F1 over ``labels`` (default: the classes present), as sklearn's
    ``f1_score(average="macro", zero_division=0)``; resamples are scored all at once with numpy.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = sorted(set(y_true.tolist())) if labels is None else list(labels)
    index = {label: i for i, label in enumerate(labels)}
    k = len(labels)
    t = np.array([index.get(v, k) for v in y_true.tolist()])
    p = np.array([index.get(v, k) for v in y_pred.tolist()])
    point = float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(t), (n_boot, len(t)))
    scores = _per_class_f1(t[idx], p[idx], k + 1)[:, :k].mean(axis=1)  # slot k: values outside ``labels``
    lo, hi = np.percentile(scores, [2.5, 97.5])
    return point, float(lo), float(hi)


def mcnemar_exact(a_correct, b_correct) -> tuple[int, int, float]:
    """(a right & b wrong, a wrong & b right, exact two-sided p) of two classifiers on the same items."""
    from scipy.stats import binomtest

    a, b = np.asarray(a_correct, bool), np.asarray(b_correct, bool)
    b01, b10 = int((a & ~b).sum()), int((~a & b).sum())
    p = 1.0 if b01 + b10 == 0 else float(binomtest(min(b01, b10), b01 + b10, 0.5).pvalue)
    return b01, b10, p
