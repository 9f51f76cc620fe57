"""The course's `evaluate` metric modules: they load offline through ``evaluate.load``, give
scikit-learn's values, agree with the trusted evaluator, and ship in a wheel and a release.

The evaluator stays on scikit-learn (it must not depend on student-facing code); the agreement
test is what lets the course say "the score you see in training is the score you are graded on".
"""

from __future__ import annotations

import fnmatch
import importlib.util
import tomllib
import warnings

import numpy as np
import pytest

from autograder import REPO_ROOT
from autograder.course import metrics
from autograder.course.metrics import METRICS, load_metric, resolve_metric, shipped_metric_dir


def sklearn_score(name: str):
    """scikit-learn's ``{name}_score``: scikit-learn is imported when a test runs, not at collection."""
    from sklearn import metrics as sk

    return getattr(sk, f"{name}_score")


RNG = np.random.default_rng(7)
# (references, predictions): binary; 3 classes; class 2 never predicted; class 3 in no row at all
CASES = {
    "binary": ([0, 1, 1, 0, 1, 0, 0, 1], [0, 1, 0, 0, 1, 1, 0, 1]),
    "three-classes": ([0, 1, 2, 0, 1, 2, 2, 1, 0], [0, 2, 1, 0, 0, 1, 2, 1, 1]),
    "never-predicted": ([0, 1, 2, 2, 1, 0], [0, 1, 1, 0, 1, 0]),
    "random-6-classes": (RNG.integers(0, 6, 200).tolist(), RNG.integers(0, 6, 200).tolist()),
}
OPTIONS = {  # keyword arguments each module takes, as the Hub's modules do
    "binary": [{}, {"pos_label": 0}, {"sample_weight": [0.5, 1, 2, 1, 1, 3, 1, 0.2]}],
    "three-classes": [{"average": "macro"}, {"average": "micro"}, {"average": "weighted"}, {"average": None},
                      {"average": "macro", "labels": [0, 1, 2, 3]}, {"average": None, "labels": [2, 0, 1]}],
    "never-predicted": [{"average": "macro"}, {"average": None}, {"average": "macro", "labels": [0, 1, 2, 3]}],
    "random-6-classes": [{"average": "macro"}, {"average": None}],
}


@pytest.fixture(scope="module")
def loaded():
    return {name: load_metric(name, online=False, quiet=True) for name in METRICS}


@pytest.mark.parametrize("name", METRICS)
def test_each_module_loads_offline_through_evaluate_load(name):
    import evaluate
    from huggingface_hub import constants

    assert constants.HF_HUB_OFFLINE
    module = evaluate.load(str(shipped_metric_dir(name)), keep_in_memory=True)
    assert isinstance(module, evaluate.Metric) and module.name == name
    assert set(module.compute(predictions=[0, 1], references=[1, 1])) == {name}


def _cases():
    for case, options in OPTIONS.items():
        for kw in options:
            for name in METRICS:
                if name == "accuracy" and set(kw) - {"sample_weight"}:
                    continue  # accuracy takes no labels, average or pos_label (as on the Hub)
                yield pytest.param(name, case, kw, id=f"{name}-{case}-{kw}")


@pytest.mark.parametrize(("name", "case", "kw"), list(_cases()))
def test_values_equal_scikit_learns(loaded, name, case, kw):
    from sklearn.exceptions import UndefinedMetricWarning

    refs, preds = CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)  # absent classes score 0 on both sides
        got = loaded[name].compute(predictions=preds, references=refs, **kw)[name]
        want = sklearn_score(name)(refs, preds, **kw)
    if kw.get("average", "binary") is None:
        assert isinstance(got, np.ndarray) and got.shape == np.shape(want)
        np.testing.assert_array_equal(got, want)
    else:
        assert type(got) is float and got == float(want)


def test_precision_and_recall_take_zero_division(loaded):
    refs, preds = CASES["never-predicted"]
    for name in ("precision", "recall"):
        for zd in (0, 1):
            got = loaded[name].compute(predictions=preds, references=refs, average=None, labels=[0, 1, 2, 3],
                                       zero_division=zd)[name]
            np.testing.assert_array_equal(got, sklearn_score(name)(refs, preds, average=None, labels=[0, 1, 2, 3],
                                                             zero_division=zd))


def test_combine_gives_macro_scores_in_one_call(loaded):
    import evaluate

    refs, preds = CASES["three-classes"]
    out = evaluate.combine([loaded["f1"], loaded["precision"], loaded["recall"]]).compute(
        predictions=preds, references=refs, average="macro")
    assert out == {name: float(sklearn_score(name)(refs, preds, average="macro"))
                   for name in ("f1", "precision", "recall")}


def test_binary_default_fails_on_three_classes_as_on_the_hub(loaded):
    refs, preds = CASES["three-classes"]
    with pytest.raises(ValueError, match="average"):
        loaded["f1"].compute(predictions=preds, references=refs)


def test_evaluator_and_metric_modules_agree(loaded):
    """The trusted evaluator (scikit-learn) and the modules students use score predictions alike."""
    from sklearn.exceptions import UndefinedMetricWarning

    from autograder.grading.evaluator import score

    names = ["sadness", "joy", "love", "anger", "fear", "surprise"]
    refs, preds = CASES["random-6-classes"]
    preds = [p if p != 5 else 4 for p in preds]  # one class never predicted
    result = score(refs, preds, names)
    classes = list(range(len(names)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        assert result.accuracy == pytest.approx(loaded["accuracy"].compute(predictions=preds, references=refs)
                                                ["accuracy"], abs=1e-12)
        macro = loaded["f1"].compute(predictions=preds, references=refs, labels=classes, average="macro")["f1"]
        assert result.macro_f1 == pytest.approx(macro, abs=1e-12)
        for metric in ("f1", "precision", "recall"):
            kw = {"zero_division": 0} if metric != "f1" else {}
            per_class = loaded[metric].compute(predictions=preds, references=refs, labels=classes, average=None,
                                               **kw)[metric]
            assert [result.per_class[n][metric] for n in names] == pytest.approx(per_class.tolist(), abs=1e-12)


def test_solution_compute_metrics_matches_scikit_learn_with_ties():
    """Tied logits: the first largest wins (argmax), as in the hidden grader's reference."""
    spec = importlib.util.spec_from_file_location("solution_stage4", REPO_ROOT / "solutions" / "stage4_evaluate.py")
    solution = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(solution)
    logits = np.array([[1.0, 1.0, 0.0], [0.2, 0.2, 0.2], [0.0, 3.0, 3.0], [0.1, 0.0, 0.9], [2.0, 0.0, 0.0],
                       [0.0, 1.0, 0.5]], dtype=np.float32)
    labels = np.array([0, 0, 1, 2, 1, 2])
    preds = logits.argmax(-1)
    out = solution.compute_metrics((logits, labels))
    want = {"accuracy": sklearn_score("accuracy")(labels, preds)}
    want.update({m: sklearn_score(m)(labels, preds, average="macro") for m in ("f1", "precision", "recall")})
    assert out == pytest.approx(want, abs=1e-12) and all(type(v) is float for v in out.values())


def test_resolver_says_which_once_and_caches(monkeypatch, capsys):
    monkeypatch.setattr(metrics, "_LOADED", {})
    monkeypatch.delenv("COURSE_ONLINE", raising=False)
    first = load_metric("accuracy")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "offline stand-in" in lines[0] and 'evaluate.load("accuracy")' in lines[0]
    assert load_metric("accuracy") is first and capsys.readouterr().out == ""


def test_online_resolves_to_the_hub_name(monkeypatch):
    monkeypatch.setenv("COURSE_ONLINE", "1")
    resolved = resolve_metric("f1")
    assert (resolved.source, resolved.path) == ("hub", "f1") and "COURSE_ONLINE=1" in resolved.describe()
    assert resolve_metric("bleu").path == "bleu"  # online, any Hub metric
    monkeypatch.setenv("COURSE_ONLINE", "0")
    assert resolve_metric("f1").path == str(shipped_metric_dir("f1"))
    with pytest.raises(ValueError, match="COURSE_ONLINE=1"):
        resolve_metric("bleu")


def test_modules_are_package_data():
    """A non-editable install (and so the student release's `pip install .`) carries the modules."""
    data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = data["autograder"]
    for name in METRICS:
        rel = f"course/metrics/{name}/{name}.py"
        assert (REPO_ROOT / "autograder" / rel).is_file()
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), f"{rel} is not package data in pyproject.toml"


def test_release_ships_the_modules(tmp_path):
    from autograder import release

    release._copy_library(tmp_path)
    for name in METRICS:
        assert (tmp_path / "autograder" / "course" / "metrics" / name / f"{name}.py").is_file()
    assert (tmp_path / "autograder" / "course" / "metrics" / "__init__.py").is_file()
