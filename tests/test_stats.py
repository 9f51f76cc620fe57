"""Interval helpers: Wilson bounds and the vectorised bootstrap agree with the textbook/sklearn."""

import numpy as np

# autograder.stats and scikit-learn (~1-2 s) are imported in the tests: collecting the suite costs none of it.


def test_wilson_interval_known_value():
    from autograder.stats import wilson_interval

    lo, hi = wilson_interval(386, 500)
    assert abs(lo - 0.7335) < 1e-3 and abs(hi - 0.8071) < 1e-3
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_vectorised_macro_f1_equals_sklearn():
    from sklearn.metrics import f1_score

    from autograder.stats import _per_class_f1

    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 6, (50, 200)), rng.integers(0, 6, (50, 200))
    p[:, :100] = t[:, :100]
    ours = _per_class_f1(t, p, 6).mean(axis=1)
    theirs = [f1_score(a, b, labels=range(6), average="macro", zero_division=0) for a, b in zip(t, p)]
    assert np.allclose(ours, theirs)


def test_bootstrap_is_seeded_and_brackets_the_point():
    from autograder.stats import bootstrap_macro_f1

    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    pred = np.where(rng.random(300) < 0.7, y, rng.integers(0, 3, 300))
    point, lo, hi = bootstrap_macro_f1(y, pred, labels=range(3), seed=5)
    assert lo < point < hi and bootstrap_macro_f1(y, pred, labels=range(3), seed=5) == (point, lo, hi)


def test_mcnemar_exact():
    from autograder.stats import mcnemar_exact

    assert mcnemar_exact([1, 1, 0], [1, 1, 0]) == (0, 0, 1.0)
    b01, b10, p = mcnemar_exact([1] * 10 + [0], [0] * 10 + [1])
    assert (b01, b10) == (10, 1) and abs(p - 2 * sum(__import__("math").comb(11, i) for i in range(2)) / 2**11) < 1e-12
