"""The students' grade preview (`autograder status`) and `autograder grade` in a student's copy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import cli, preview, release
from autograder.course.manifest import load_course


@pytest.fixture(scope="module")
def student_copy(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("preview") / "student-repo"
    release.build_release(out, check=False, git=False)
    return out


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_one_pytest_run_sorts_outcomes_by_stage(tmp_path: Path) -> None:
    """Passing, failing, unimportable and missing check files each land on their own stage."""
    course = load_course()
    tokenize, model, train = course.stages[:3]
    _write(tmp_path / tokenize.public_check_file, "def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    _write(tmp_path / model.public_check_file, "def test_a():\n    pass\n\ndef test_b():\n    assert False\n")
    _write(tmp_path / train.public_check_file, "import no_such_module_for_the_preview\n")
    by_id = {p.stage.id: p for p in preview.run_public_checks(tmp_path, course)}
    assert by_id[tokenize.id].done and (by_id[tokenize.id].passed, by_id[tokenize.id].total) == (2, 2)
    assert not by_id[model.id].done and (by_id[model.id].passed, by_id[model.id].total) == (1, 2)
    assert not by_id[train.id].done and "could not be imported" in by_id[train.id].problem
    assert all("no public checks" in by_id[s.id].problem for s in course.stages[3:])


def test_validation_scores_of_a_notebook_run(tmp_path: Path) -> None:
    course = load_course()
    nb = course.notebooks[0]
    out = tmp_path / "outputs" / Path(nb.notebook).stem
    _write(out / "model" / "config.json", "{}")
    rows = [("a", "a"), ("a", "a"), ("b", "a"), ("b", "b")]
    _write(out / "validation_predictions.jsonl", "".join(json.dumps({"label": y, "prediction": p}) + "\n"
                                                          for y, p in rows))
    found = {n.notebook.id: n for n in preview.notebook_progress(tmp_path, course)}
    assert found[nb.id].model_saved and found[nb.id].validation["accuracy"] == pytest.approx(0.75)
    assert found[nb.id].validation["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert all(not n.model_saved and not n.validation for i, n in found.items() if i != nb.id)


def test_status_in_a_fresh_release_lists_hidden_checks_and_thresholds(student_copy: Path) -> None:
    """One `autograder status` in a fresh release: every hidden check with its points, the notebooks'
    thresholds, and what is left (stages and notebooks), from the release's own course.toml."""
    course = load_course(student_copy / "course.toml")
    assert all(nb.thresholds for nb in course.notebooks), "the release keeps the thresholds"
    proc = subprocess.run([sys.executable, "-m", "autograder.student_cli", "status"], cwd=student_copy,
                          env={**os.environ, "COLUMNS": "200", "PYTHONPATH": str(student_copy)},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for stage in course.stages:
        assert all(name in out for name in stage.checks), stage.id
    for nb in course.notebooks:
        assert nb.notebook in out
        for metric, value in nb.thresholds.items():
            assert f"{metric} >= {value:.2f}" in out
        assert f"outputs/{Path(nb.notebook).stem}/model" in out  # what is left: run the notebook
    assert f"0/{len(course.stages)} stages pass" in out and "What is left" in out
    assert f"= {course.max_score:g}" in out


@pytest.mark.parametrize("command", [["grade", "."], ["grade-batch", "."]])
def test_grade_in_a_student_copy_says_where_grading_happens(student_copy: Path, command: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "autograder.student_cli", *command], cwd=student_copy,
                          env={**os.environ, "PYTHONPATH": str(student_copy)}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert "grading happens on your course's side" in proc.stderr
    assert "autograder status" in proc.stderr and "autograder check" in proc.stderr
    assert "0/" not in proc.stdout + proc.stderr and "not found" not in proc.stderr


def test_a_student_copy_is_told_by_its_missing_graders(monkeypatch) -> None:
    """The course's repository grades; a copy without autograder/grading/graders is refused."""
    assert preview.student_copy_message() is None
    monkeypatch.setattr(preview, "GRADERS", Path("/nonexistent/graders"))
    assert cli.main(["grade", "."]) == 2
