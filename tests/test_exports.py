"""Exports of a GradeResult: Gradescope results.json (against its schema), JUnit XML, gradebooks."""

from __future__ import annotations

import copy
import csv
import json
import os
import sys
import xml.etree.ElementTree as ET

import pytest

from autograder.course.manifest import load_course
from autograder.grading import stage_result
from autograder.reports import exports
from autograder.reports.results import CheckResult, GradeResult, StageResult

# What the plugin records when a grader's assertion is reported as pytest's long text: grader code.
LONGREPR = (">       assert 'padding' not in kwargs\n"
            "E       AssertionError: tokenize_batch pads every text; leave padding to the collator\n"
            "E       assert False\n\nautograder/grading/graders/test_stage1_tokenize.py:41: AssertionError")
HINT = "Call the tokenizer on batch['text'] with truncation=True. Do not pad."


def make_result(name: str = "submissions/alice", *, tokenize_score: float = 3.0,
                tmp_path=None) -> GradeResult:
    details = {"evaluation": {"n": 500, "accuracy": 0.81, "accuracy_ci": [0.77, 0.84], "macro_f1": 0.8,
                              "macro_f1_ci": [0.76, 0.84], "per_class": {},
                              "confusion": [[200, 50], [45, 205]], "labels": ["negative", "positive"]}}
    if tmp_path is not None:
        details["output_dir"] = str(tmp_path)
    course = load_course()
    return GradeResult(submission=name, model="tiny-bert", duration_s=42.6, sandbox="sandbox: on (test)",
                       course=course.title,
                       course_stages=[s.id for s in course.stages] + [n.id for n in course.notebooks], stages=[
        StageResult("tokenize", "Tokenize a dataset", tokenize_score, 5.0, [
            CheckResult("test_load_tokenizer_returns_fast_tokenizer", True, 1.0, 1.0),
            CheckResult("test_tokenize_batch_does_not_pad", False, 0.0, 2.0, LONGREPR),
            CheckResult("test_tokenize_dataset_keeps_splits_and_labels", True, 2.0, 2.0)],
            hint=HINT, duration_s=12.25),
        StageResult("sentiment_model", "Sentiment notebook", 10.0, 10.0, [
            CheckResult("notebook_runs", True, 2.0, 2.0, "the notebook ran from top to bottom", hidden=False),
            CheckResult("model_saved", True, 2.0, 2.0, "the trained model was saved and loads", hidden=False),
            CheckResult("accuracy", True, 6.0, 6.0, "accuracy 0.810 on 500 hidden test texts", hidden=False)],
            tier="model", duration_s=30.0, details=details),
    ])


def real_structural_result() -> GradeResult:
    """What grading exercises/ gives (every stage raises NotImplementedError), built by the grader's code."""
    course = load_course()
    message = "`f` is not written yet: it raises NotImplementedError (in stage1_tokenize.py, line 3, in f)."
    stages = [stage_result(st, [{"name": n, "outcome": "failed", "message": message} for n in st.checks],
                           "", 1.5) for st in course.stages]
    return GradeResult(submission="exercises", stages=stages, duration_s=9.0)


# ----------------------------------------------------------------------------- learner text
def test_hidden_messages_keep_the_prose_and_drop_grader_code():
    text = exports.learner_text(LONGREPR, hidden=True)
    assert text == "AssertionError: tokenize_batch pads every text; leave padding to the collator"
    assert exports.learner_text(LONGREPR, hidden=False) == LONGREPR
    assert exports.learner_text("```\nassert x\n```", hidden=True) == exports.HIDDEN_FALLBACK
    assert exports.learner_text("`load_tokenizer` is not written yet.", hidden=True) == \
        "`load_tokenizer` is not written yet."


# ----------------------------------------------------------------------------- Gradescope
@pytest.mark.parametrize("result", [make_result(), real_structural_result()],
                         ids=["hand-built", "structural"])
def test_gradescope_json_follows_the_documented_schema(result):
    import jsonschema  # ~1 s to import: when the test runs, not when the suite is collected

    data = exports.gradescope_json(result)
    jsonschema.Draft202012Validator(exports.gradescope_schema()).validate(data)
    assert data["score"] == pytest.approx(result.score)
    assert isinstance(data["execution_time"], int)
    assert "leaderboard" not in data
    checks = [(s, c) for s in result.stages for c in s.checks]
    assert [t["name"] for t in data["tests"]] == [f"{s.id}/{c.name}" for s, c in checks]
    assert sum(t["score"] for t in data["tests"]) == pytest.approx(result.score)
    assert sum(t["max_score"] for t in data["tests"]) == pytest.approx(result.max_score)
    for test, (stage, check) in zip(data["tests"], checks, strict=True):
        assert test["status"] == ("passed" if check.passed else "failed")
        assert test["visibility"] == "visible" and test["name_format"] == "text"
        if not check.passed and stage.hint:
            assert test["output"].endswith(f"Hint: {stage.hint}")


def test_gradescope_hidden_checks_show_no_grader_code():
    data = exports.gradescope_json(make_result())
    test = next(t for t in data["tests"] if t["name"] == "tokenize/test_tokenize_batch_does_not_pad")
    assert test["output"] == ("AssertionError: tokenize_batch pads every text; leave padding to the "
                              f"collator\nHint: {HINT}")
    dumped = json.dumps(data)
    assert "assert 'padding'" not in dumped and "test_stage1_tokenize.py" not in dumped


def test_gradescope_visibility_is_configurable(tmp_path):
    import jsonschema

    path = exports.write_gradescope(make_result(), tmp_path / "results" / "results.json",
                                    visibility="after_published")
    data = json.loads(path.read_text())
    jsonschema.validate(data, exports.gradescope_schema())
    assert data["visibility"] == data["stdout_visibility"] == "after_published"
    assert {t["visibility"] for t in data["tests"]} == {"after_published"}
    with pytest.raises(ValueError, match="visibility"):
        exports.gradescope_json(make_result(), visibility="sometimes")


def test_schema_rejects_what_gradescope_does_not_document():
    import jsonschema

    schema, good = exports.gradescope_schema(), exports.gradescope_json(make_result())
    for mutate in (lambda d: d["tests"][0].update(status="ok"), lambda d: d.update(visibility="public"),
                   lambda d: d.update(execution_time=1.5), lambda d: d["tests"][0].update(name_format="rst"),
                   lambda d: d.update(leaderboard=[{"name": "accuracy"}]),
                   lambda d: (d.pop("score"), d["tests"][0].pop("score"))):
        bad = copy.deepcopy(good)
        mutate(bad)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


# ----------------------------------------------------------------------------- JUnit
def test_junit_xml_parses_with_one_suite_per_stage_and_one_case_per_check():
    result = make_result()
    root = ET.fromstring(exports.junit_xml(result))
    assert root.tag == "testsuites" and int(root.get("tests")) == 6 and int(root.get("failures")) == 1
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["tokenize", "sentiment_model"]
    assert [float(s.get("time")) for s in suites] == [12.25, 30.0]
    assert [len(s.findall("testcase")) for s in suites] == [3, 3]
    failures = root.findall(".//failure")
    assert len(failures) == 1
    assert failures[0].get("message").startswith("AssertionError: tokenize_batch pads")
    assert "assert 'padding'" not in ET.tostring(root, encoding="unicode")


def test_junit_xml_of_a_real_structural_result():
    result = real_structural_result()
    root = ET.fromstring(exports.junit_xml(result))
    assert len(root.findall("testsuite")) == len(result.stages)
    assert len(root.findall(".//testcase")) == len(root.findall(".//failure")) == sum(
        len(s.checks) for s in result.stages)


# ----------------------------------------------------------------------------- gradebooks
def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_gradebook_merges_a_batch_regrade(tmp_path):
    path = tmp_path / "gradebook.csv"
    exports.gradebook_csv([make_result("subs/alice"), make_result("subs/bob", tokenize_score=5)], path)
    exports.gradebook_csv([make_result("subs/alice/", tokenize_score=0), make_result("subs/carol")], path)
    rows = {r["student"]: r for r in read_csv(path)}
    assert sorted(rows) == ["alice", "bob", "carol"]
    assert rows["alice"]["tokenize"] == "0" and rows["alice"]["total"] == "10"
    assert rows["bob"]["tokenize"] == "5" and rows["bob"]["total"] == "15" and rows["bob"]["max"] == "15"
    header = list(read_csv(path)[0])
    course = load_course()
    assert header[0] == "student" and header[-3:] == ["total", "max", "sandbox"]
    assert [s.id for s in course.stages] + [n.id for n in course.notebooks] == header[1:-3]
    assert rows["alice"]["sandbox"] == "on"
    assert rows["carol"]["train"] == ""  # not graded: an empty cell, not a zero


def test_nbgrader_csv_has_the_columns_of_nbgrader_export(tmp_path, monkeypatch):
    from nbgrader.api import Gradebook
    from nbgrader.plugins.export import CsvExportPlugin

    # nbgrader's Gradebook runs the `alembic` script of the environment it is installed in
    monkeypatch.setenv("PATH", os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gb:
        gb.add_assignment("ps1")
        gb.add_student("alice")
        plugin = CsvExportPlugin()
        plugin.to = str(tmp_path / "nbgrader.csv")
        plugin.export(gb)
    nbgrader_header = (tmp_path / "nbgrader.csv").read_text().splitlines()[0].split(",")

    path = tmp_path / "grades.csv"
    exports.nbgrader_gradebook([make_result("subs/alice"), make_result("subs/bob")], path)
    exports.nbgrader_gradebook(make_result("subs/alice", tokenize_score=0), path)
    exports.nbgrader_gradebook(make_result("subs/alice"), path, assignment="ps2",
                               timestamp="2025-01-01 10:00:00")
    assert path.read_text().splitlines()[0].split(",") == nbgrader_header == exports.NBGRADER_COLUMNS
    rows = read_csv(path)
    title = load_course().title
    assert sorted((r["assignment"], r["student_id"]) for r in rows) == sorted(
        [("ps2", "alice"), (title, "alice"), (title, "bob")])
    alice = next(r for r in rows if r["assignment"] == title and r["student_id"] == "alice")
    assert (alice["raw_score"], alice["score"], alice["max_score"]) == ("10", "10", "15")
    assert next(r for r in rows if r["assignment"] == "ps2")["timestamp"] == "2025-01-01 10:00:00"


# ----------------------------------------------------------------------------- CSV injection
@pytest.mark.parametrize("cell, want", [
    ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'), ("+1+1", "'+1+1"), ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"), ("alice", "alice"), ("-1.5", "-1.5"),
    ("+3", "+3"), ("10", "10"), ("", ""), ("'=x", "'=x"), (None, ""),
])
def test_csv_cells_never_start_a_formula(cell, want):
    assert exports.csv_safe(cell) == want
    assert exports.csv_safe(exports.csv_safe(cell)) == want  # idempotent: merging a file twice is stable


def test_both_gradebooks_neutralise_formulas_and_still_merge(tmp_path):
    evil = make_result('subs/=HYPERLINK("x","y")')
    for _ in range(2):  # the second write merges into the first: still one row per student
        exports.gradebook_csv([evil, make_result("subs/alice")], tmp_path / "gradebook.csv")
        exports.nbgrader_gradebook([evil], tmp_path / "nb.csv", assignment="@assignment")
    for name in ("gradebook.csv", "nb.csv"):
        rows = read_csv(tmp_path / name)
        cells = [c for r in rows for c in r.values()] + list(rows[0])
        assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))], cells
    rows = read_csv(tmp_path / "gradebook.csv")
    assert sorted(r["student"] for r in rows) == ["'=HYPERLINK(\"x\",\"y\")", "alice"]
    (row,) = read_csv(tmp_path / "nb.csv")
    assert row["student_id"] == "'=HYPERLINK(\"x\",\"y\")" and row["assignment"] == "'@assignment"
