"""A student release holds nothing hidden, and its public checks work on their own."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from autograder import REPO_ROOT
from autograder.course import release


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "student-repo"
    files = release.build_release(out, check=False)
    return out, files


def test_nothing_hidden_is_released(released):
    out, files = released
    assert not any(f.startswith(("solutions/", "tests/")) for f in files)
    assert not (out / "autograder" / "grading" / "graders").exists()
    assert not (out / "autograder" / "stubs.py").exists() and not (out / "autograder" / "release.py").exists()
    assert not (out / "autograder" / "classroom.py").exists()
    assert not any(f.endswith("instructor-grade.yml") for f in files)
    assert not any(f.endswith("test.jsonl") or f.endswith("corpus.jsonl") for f in files)
    manifest = json.loads((out / "datasets_cache" / "manifest.json").read_text())
    assert all(set(entry["splits"]) == {"train", "validation"} for entry in manifest.values())
    assert "thresholds" not in (out / "course.toml").read_text()


def test_no_hidden_test_text_or_solution_code_anywhere(released):
    out, files = released
    hidden = []
    for name in ("sentiment", "emotion"):
        rows = (REPO_ROOT / "datasets_cache" / name / "test.jsonl").read_text().split("\n")
        hidden += [json.loads(r)["text"] for r in rows if r]
    blob = "\n".join((out / f).read_text(errors="ignore") for f in files)
    assert "### BEGIN SOLUTION" not in blob and "### END SOLUTION" not in blob
    leaked = [t for t in hidden if t in blob]
    assert leaked == [], f"{len(leaked)} hidden test texts are in the release, e.g. {leaked[:2]}"


def test_release_has_what_students_need(released):
    out, files = released
    for needed in ("README.md", "course.toml", "pyproject.toml", "stage1_tokenize.py", "stage6_zero_shot.py",
                   "sentiment.ipynb", "emotion.ipynb", "checks/test_stage1_tokenize.py",
                   ".github/workflows/practice.yml", "datasets_cache/sentiment/train.jsonl"):
        assert needed in files, needed


def test_public_checks_run_inside_the_release(released):
    out, _ = released
    env = {**os.environ, "PYTHONPATH": str(out)}
    proc = subprocess.run([sys.executable, "-m", "autograder.cli", "check", "tokenize"], cwd=out, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "not written yet" in proc.stdout


def test_release_is_blocked_when_a_solution_fails(monkeypatch, tmp_path):
    monkeypatch.setattr(release, "verify_solutions_and_stubs", lambda: ["solution fails tokenize/x: boom"])
    with pytest.raises(RuntimeError, match="release blocked"):
        release.build_release(tmp_path / "out")


def test_released_workflow_is_practice_only(released):
    """A workflow the student can edit can print any secret it gets: it gets none, and no graders."""
    out, files = released
    workflows = [f for f in files if f.startswith(".github/")]
    assert workflows == [".github/workflows/practice.yml"]
    text = (out / workflows[0]).read_text()
    assert "GRADER_TOKEN" not in text and "secrets." not in text and "GRADER_REPOSITORY" not in text
    assert "practice: not your grade" in text.lower()
    assert "autograder check" in text and "validation_predictions.jsonl" in text
    try:
        import yaml
    except ImportError:  # text checks only
        assert "repository:" not in text and "token:" not in text
        return
    workflow = yaml.safe_load(text)
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout"):
                assert not {"repository", "token", "ssh-key"} & set(step.get("with") or {}), step
