"""The manifest is the single description of the course: everything it names exists."""

from autograder import REPO_ROOT
from autograder.course.manifest import load_course


def test_every_stage_names_existing_files_and_valid_hints():
    course = load_course()
    assert [s.id for s in course.stages] == ["tokenize", "model", "train", "evaluate", "emotion", "zero_shot"]
    for stage in course.stages:
        assert (REPO_ROOT / "solutions" / f"{stage.module}.py").exists()
        assert (REPO_ROOT / "exercises" / f"{stage.module}.py").exists()
        assert (REPO_ROOT / "solutions" / stage.public_check_file).exists()
        assert stage.grader_file.exists()
        assert stage.points == 10 and stage.hints and stage.timeout > 0
        assert set(stage.check_hints) <= set(stage.checks)
        assert all(1 <= n <= len(stage.hints) for n in stage.check_hints.values())


def test_notebooks_have_thresholds_for_graded_metrics():
    for nb in load_course().notebooks:
        assert (REPO_ROOT / "solutions" / nb.notebook).exists() and (REPO_ROOT / "exercises" / nb.notebook).exists()
        assert set(nb.thresholds) <= set(nb.checks)
        assert {"notebook_runs", "model_saved"} <= set(nb.checks)


def test_an_unknown_key_is_an_error_naming_it_and_the_allowed_ones():
    """A misspelt limit (``memory_gb``) must not leave the real one silently at its default."""
    import tomllib

    import pytest

    from autograder.course.manifest import ManifestError, check_keys

    raw = tomllib.loads((REPO_ROOT / "course.toml").read_text())
    check_keys(raw)  # the course's own manifest is clean
    raw["sandbox"]["memory_gb"] = 8
    with pytest.raises(ManifestError) as info:
        check_keys(raw)
    assert "memory_gb" in str(info.value) and "memory_mb" in str(info.value) and "[sandbox]" in str(info.value)
    del raw["sandbox"]["memory_gb"]
    raw["stages"][0]["timout"] = 3
    with pytest.raises(ManifestError, match="timout.*stage_timeout"):
        check_keys(raw)
