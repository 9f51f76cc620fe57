"""The model tier on the real packaged encoder: broken notebooks score below the thresholds.

Slow (each runs a notebook that fine-tunes MiniLM on CPU). The reference solution's full run
is `autograder grade solutions/ --tier all`; scripts/calibrate_model_tier.py reruns it over
seeds and records the margins that the manifest's thresholds are calibrated on.
"""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from autograder import REPO_ROOT
from autograder.course.manifest import load_course
from autograder.course.models import resolve_model

pytestmark = pytest.mark.slow
NB = load_course().notebook("sentiment_model")
TOKENIZE = "tokenized = stage1_tokenize.tokenize_dataset(dataset, tokenizer, max_length=max_length)"
TRAIN = "train_result = trainer.train()"

# id: [(text in a notebook cell, its replacement)], parameter overrides (to keep CI short)
VARIANTS = {
    "untrained-head": ([(TRAIN, "train_result = None")], {}),
    "labels-shuffled": ([(TOKENIZE, "import random\nshuffled = list(dataset['train']['label'])\n"
                                    "random.Random(0).shuffle(shuffled)\n"
                                    "dataset['train'] = dataset['train'].map(lambda ex, i: {'label': shuffled[i]}, "
                                    "with_indices=True)\n" + TOKENIZE)], {"epochs": 1}),
    "learning-rate-zero": ([("learning_rate=learning_rate,", "learning_rate=0.0,")], {"epochs": 1}),
    "trained-on-50-examples": ([(TOKENIZE, "dataset['train'] = dataset['train'].select(range(50))\n" + TOKENIZE)], {}),
    "predictions-without-saved-model": ([(TRAIN, "train_result = None"),
                                         ('trainer.save_model(str(out / "model"))', "pass"),
                                         ('print(sorted(p.name for p in (out / "model").iterdir()))', "pass")], {}),
}


def _variant(tmp_path, edits) -> object:
    import nbformat

    sub = tmp_path / "submission"
    shutil.copytree(REPO_ROOT / "solutions", sub, ignore=shutil.ignore_patterns("__pycache__", "checks"))
    path = sub / NB.notebook
    nb = nbformat.read(path, as_version=4)
    for old, new in edits:
        cells = [c for c in nb.cells if old in c.source]
        assert len(cells) == 1, f"the notebook should contain {old!r} once"
        cells[0].source = cells[0].source.replace(old, new)
    nbformat.write(nb, path)
    return sub


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_broken_variant_scores_below_threshold(variant, tmp_path, monkeypatch):
    from autograder.grading.model_tier import grade_notebook

    monkeypatch.delenv("COURSE_MODEL", raising=False)
    edits, overrides = VARIANTS[variant]
    nb = dataclasses.replace(NB, parameters={**NB.parameters, **overrides})
    result = grade_notebook(nb, _variant(tmp_path, edits), tmp_path / "work", resolve_model(), seed=42, threads=2)
    accuracy = next(c for c in result.checks if c.name == "accuracy")
    assert not accuracy.passed, f"{variant} passed: {accuracy.message}"
    assert result.score < result.max_score
