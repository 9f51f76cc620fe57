"""Model-tier mechanics on a tiny random model: bad notebooks cost only their own points.

These run the real papermill path (in the jail where bubblewrap runs: kernel, parameters, saved
model copied out, trusted evaluator) with a tiny encoder, so they take seconds of CPU per notebook;
accuracy is not what they check. The attacks on that path are in test_model_tier_sandbox.py.
"""

from __future__ import annotations

import dataclasses
import shutil

import psutil
import pytest

from autograder import REPO_ROOT
from autograder.course.manifest import load_course
from autograder.course.models import resolve_model, tiny_model_dir
from autograder.course.split_hashes import expected
from autograder.sandbox.jail import detect

NB = load_course().notebook("sentiment_model")


@pytest.fixture()
def submission(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_MODEL", str(tiny_model_dir("distilbert-base")))
    sub = tmp_path / "submission"
    shutil.copytree(REPO_ROOT / "solutions", sub, ignore=shutil.ignore_patterns("__pycache__", "checks"))
    return sub


def grade_notebook(*args, **kwargs):
    """The model tier's grade_notebook; it (torch, scikit-learn) is imported when a test runs, not at collection."""
    from autograder.grading.model_tier import grade_notebook

    return grade_notebook(*args, **kwargs)


def _grade(sub, tmp_path, nb=NB, **params):
    nb = dataclasses.replace(nb, parameters={**nb.parameters, "epochs": 1, **params})
    return grade_notebook(nb, sub, tmp_path / "work", resolve_model(), seed=0, threads=1)


def _add_cell(path, source: str, index: int = 3):
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(index, nbformat.v4.new_code_cell(source))
    nbformat.write(nb, path)


def test_tiny_run_saves_a_model_the_evaluator_scores_the_same_twice(submission, tmp_path):
    result = _grade(submission, tmp_path)
    checks = {c.name: c for c in result.checks}
    assert checks["notebook_runs"].passed and checks["model_saved"].passed, result
    evaluation = result.details["evaluation"]
    assert evaluation["n"] == expected(NB.dataset, "test")["rows"]
    assert 0 <= evaluation["accuracy_ci"][0] <= evaluation["accuracy"]
    assert (tmp_path / "work" / "executed_sentiment.ipynb").exists()
    assert (tmp_path / "work" / "output" / "log_history.json").exists()  # copied out of the job for feedback
    assert result.details["sandbox"] == detect().describe()
    assert sorted(p.name for p in (tmp_path / "work" / "output" / "model").iterdir()) == [
        "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]  # no training_args.bin
    again = grade_notebook(dataclasses.replace(NB, parameters={**NB.parameters, "epochs": 1}), submission,
                           tmp_path / "again", resolve_model(), seed=0, threads=1)
    assert again.details["evaluation"] == evaluation, "grading the same submission twice must give the same result"


def test_invalid_json_costs_only_this_notebook(submission, tmp_path):
    (submission / "sentiment.ipynb").write_text("{ this is not json")
    result = _grade(submission, tmp_path)
    assert result.score == 0
    assert "not a valid notebook" in result.error
    assert all(c.message for c in result.checks)


def test_a_raising_cell_is_reported(submission, tmp_path):
    import nbformat

    _add_cell(submission / "sentiment.ipynb", "raise RuntimeError('boom in my notebook')")
    result = _grade(submission, tmp_path)
    assert result.score == 0
    assert "RuntimeError: boom in my notebook" in result.error
    executed = nbformat.read(tmp_path / "work" / "executed_sentiment.ipynb", as_version=4)
    assert any(o.get("ename") == "RuntimeError" for c in executed.cells for o in c.get("outputs", []))


def test_predictions_without_a_saved_model_score_nothing(submission, tmp_path):
    import nbformat

    path = submission / "sentiment.ipynb"
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if 'trainer.save_model(str(out / "model"))' in c.source)
    cell.source = (cell.source.replace('trainer.save_model(str(out / "model"))', "pass")
                   .replace('print(sorted(p.name for p in (out / "model").iterdir()))', "pass"))
    nbformat.write(nb, path)
    result = _grade(submission, tmp_path)
    checks = {c.name: c for c in result.checks}
    assert checks["notebook_runs"].passed
    assert not checks["model_saved"].passed and "save_model" in checks["model_saved"].message
    assert not checks["accuracy"].passed


def _kernels() -> set[int]:
    return {p.pid for p in psutil.process_iter(["cmdline"])
            if "ipykernel_launcher" in " ".join(p.info["cmdline"] or [])}


def test_a_notebook_that_never_finishes_is_stopped_with_its_kernel(submission, tmp_path):
    _add_cell(submission / "sentiment.ipynb", "import time\nwhile True:\n    time.sleep(1)")
    before = _kernels()
    result = _grade(submission, tmp_path, nb=dataclasses.replace(NB, timeout=25))
    assert result.score == 0 and "did not finish within 25 s" in result.error
    assert _kernels() - before == set()


def test_the_evaluator_loads_a_model_without_a_progress_bar(capfd):
    """The grade's terminal is one line per stage: loading a saved model draws no "Loading weights" bar."""
    from transformers.utils import logging as hf_logging

    from autograder.grading.evaluator import load_saved_model

    hf_logging.enable_progress_bar()  # as in a fresh process (another test may have turned it off)
    model, mapping = load_saved_model(tiny_model_dir("distilbert-classifier"), ["negative", "positive"])
    assert mapping == [0, 1]
    assert "Loading weights" not in capfd.readouterr().err
