"""Broken submissions get one learner message per check and a score, never a grader crash."""

from __future__ import annotations

import dataclasses
import shutil

from autograder import REPO_ROOT
from autograder.course.manifest import load_course
from autograder.grading import grade, grade_stage

STAGE = load_course().stage("tokenize")


def _submission(tmp_path, source: str | None):
    folder = tmp_path / "sub"
    folder.mkdir()
    if source is not None:
        (folder / f"{STAGE.module}.py").write_text(source)
    return folder


def test_syntax_error(tmp_path):
    result = grade_stage(STAGE, _submission(tmp_path, "def load_tokenizer(:\n    pass\n"))
    assert result.score == 0
    assert all("syntax error on line 1" in c.message for c in result.checks)


def test_missing_file(tmp_path):
    result = grade_stage(STAGE, _submission(tmp_path, None))
    assert result.score == 0 and all("is missing" in c.message for c in result.checks)


def test_missing_function_costs_only_its_checks(tmp_path):
    src = (REPO_ROOT / "solutions" / f"{STAGE.module}.py").read_text()
    src = src.replace("def tokenize_dataset(", "def tokenise_dataset(")
    result = grade_stage(STAGE, _submission(tmp_path, src))
    by_name = {c.name: c for c in result.checks}
    assert "no function `tokenize_dataset`" in by_name["test_tokenize_dataset_keeps_splits_and_labels"].message
    assert by_name["test_tokenize_batch_matches_tokenizer"].passed
    assert 0 < result.score < result.max_score


def test_wrong_return_type(tmp_path):
    src = (REPO_ROOT / "solutions" / f"{STAGE.module}.py").read_text()
    src = src.replace("    tokenized.set_format(\"torch\")\n    return tokenized", "    return list(tokenized)")
    result = grade_stage(STAGE, _submission(tmp_path, src))
    msg = {c.name: c.message for c in result.checks}["test_tokenize_dataset_drops_text_and_uses_torch"]
    assert "should be a DatasetDict, but it returned list" in msg


def test_hanging_function_is_stopped_and_other_checks_kept(tmp_path):
    src = (REPO_ROOT / "solutions" / f"{STAGE.module}.py").read_text()
    src = src.replace('    return AutoTokenizer.from_pretrained(model_name_or_path)',
                      '    import time\n    time.sleep(600)')
    stage = dataclasses.replace(STAGE, timeout=20)
    result = grade_stage(stage, _submission(tmp_path, src))
    by_name = {c.name: c for c in result.checks}
    assert not by_name["test_load_tokenizer_returns_fast_tokenizer"].passed
    assert "Timeout" in by_name["test_load_tokenizer_returns_fast_tokenizer"].message
    assert by_name["test_tokenize_batch_matches_tokenizer"].passed


def test_exit_at_import_and_a_missing_folder(tmp_path):
    result = grade_stage(STAGE, _submission(tmp_path, "import os\nos._exit(3)\n"))
    assert result.score == 0 and all("exited with code 3" in c.message for c in result.checks)
    try:
        grade(tmp_path / "nope")
    except FileNotFoundError as exc:
        assert "not a folder" in str(exc)
    shutil.rmtree(tmp_path / "sub")
