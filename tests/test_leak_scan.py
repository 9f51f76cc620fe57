"""The scan for hidden test texts in a submission: it finds them however they are brought in (a data file,
a notebook cell, a stage module; case, punctuation and JSON escapes changed), and finds nothing in honest
work, including a student's whole copy of the course with its train and validation files."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from autograder import REPO_ROOT
from autograder.course.manifest import load_course
from autograder.grading import leak_scan

COURSE = load_course()
pytestmark = pytest.mark.unit  # in this process: no judge, no jail, no training


def _hidden(name: str, count: int, *, start: int = 0) -> list[tuple[int, str]]:
    """(row, text) of hidden test texts long enough to be looked for."""
    rows = [json.loads(line)["text"] for line in (REPO_ROOT / "datasets_cache" / name / "test.jsonl").open()]
    long = [(i, t) for i, t in enumerate(rows) if len(leak_scan._words(t)) >= leak_scan.MIN_WORDS + 4]
    return long[start:start + count]


@pytest.fixture()
def honest(tmp_path):
    sub = tmp_path / "submission"
    shutil.copytree(REPO_ROOT / "solutions", sub, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    return sub


def test_honest_work_has_no_finding(honest):
    assert leak_scan.scan_submission(honest, COURSE) == []


def test_a_student_copy_with_its_train_and_validation_files_has_no_finding(tmp_path):
    from autograder.release import build_release

    copy = tmp_path / "student-repo"
    build_release(copy, check=False, git=False)
    shutil.copytree(REPO_ROOT / "solutions", copy, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    assert leak_scan.scan_submission(copy, COURSE) == []


def test_a_data_file_of_hidden_texts_is_found_with_its_rows(honest):
    texts = _hidden("sentiment", 40)
    extra = honest / "data" / "more_reviews.jsonl"
    extra.parent.mkdir()
    extra.write_text("".join(json.dumps({"text": t.upper(), "label": 1}) + "\n" for _, t in texts))
    (finding,) = leak_scan.scan_submission(honest, COURSE)
    assert (finding.file, finding.dataset, finding.found) == ("data/more_reviews.jsonl", "sentiment", 40)
    assert finding.rows == tuple(i for i, _ in texts[:leak_scan.ROWS_SHOWN])
    assert finding.message.startswith("needs review: data/more_reviews.jsonl holds 40 of the")
    assert all(t not in finding.message for _, t in texts), "a finding never quotes a hidden text"
    assert leak_scan.review_lines(honest, COURSE) == [finding.message]


def test_hidden_texts_in_a_notebook_cell_and_a_stage_module_are_found(honest):
    import nbformat  # ~1 s: imported when the test runs, not at collection

    emotion = _hidden("emotion", 5)
    nb = nbformat.read(honest / "emotion.ipynb", as_version=4)
    pasted = "extra = [\n" + "".join(f"    {json.dumps(t)},\n" for _, t in emotion) + "]\n"
    nb.cells.append(nbformat.v4.new_code_cell(pasted))
    nbformat.write(nb, honest / "emotion.ipynb")
    sentiment = _hidden("sentiment", 3, start=100)
    module = honest / "stage3_train.py"
    squeezed = "  ".join(t.replace(",", " ;").replace("'", "") for _, t in sentiment)  # punctuation changed
    module.write_text(module.read_text() + f"\nEXTRA = {squeezed!r}\n")
    found = {(f.file, f.dataset): f.found for f in leak_scan.scan_submission(honest, COURSE)}
    assert found == {("emotion.ipynb", "emotion"): 5, ("stage3_train.py", "sentiment"): 3}


def test_links_and_skipped_folders_are_not_read(honest):
    os.symlink(REPO_ROOT / "datasets_cache" / "sentiment" / "test.jsonl", honest / "test.jsonl")
    (honest / "outputs").mkdir()  # never copied into the jail: the notebook cannot train on it there
    shutil.copy(REPO_ROOT / "datasets_cache" / "sentiment" / "test.jsonl", honest / "outputs" / "test.jsonl")
    fifo = honest / "pipe"
    os.mkfifo(fifo)
    assert leak_scan.scan_submission(honest, COURSE) == []


def test_the_scan_takes_well_under_a_second_per_submission(honest):
    leak_scan.scan_submission(honest, COURSE)  # the hidden splits' index is built once per process
    start = time.perf_counter()
    leak_scan.scan_submission(honest, COURSE)
    assert time.perf_counter() - start < 1.0
