"""Every stage: the reference solution passes every grader, the stub fails every grader.

This is rustlings' developer check and otter's assign-time check, as a test.
"""

from __future__ import annotations

import pytest

from autograder import REPO_ROOT
from autograder.course.manifest import load_course
from autograder.grading import grade_stage

STAGES = [s for s in load_course().stages if s.checks]


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.id)
def test_solution_passes_every_check(stage):
    result = grade_stage(stage, REPO_ROOT / "solutions")
    failed = {c.name: c.message for c in result.checks if not c.passed}
    assert not failed and not result.error, (failed, result.error)
    assert result.score == result.max_score == stage.points > 0


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.id)
def test_stub_fails_every_check_with_a_message(stage):
    result = grade_stage(stage, REPO_ROOT / "exercises")
    passed = [c.name for c in result.checks if c.passed]
    assert passed == [], f"the stub passes {passed}"
    assert result.score == 0
    assert all(c.message for c in result.checks)
    # graded, not crashed: a grader that fails on every submission must not pass this test
    assert not result.error, result.error
    assert not [c.message for c in result.checks if c.message.startswith("not graded")]


def test_every_grader_check_is_in_the_manifest():
    import ast

    for stage in load_course().stages:
        assert stage.grader_file.exists(), f"{stage.id}: no grader file {stage.grader_file.name}"
        tree = ast.parse(stage.grader_file.read_text())
        names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}
        assert names == set(stage.checks), f"{stage.id}: graders {sorted(names)} vs manifest {sorted(stage.checks)}"


def _echo_source(module: str) -> str:
    """The stub with every function returning its first argument (``__init__`` calls the parent's)."""
    import ast

    source = (REPO_ROOT / "exercises" / f"{module}.py").read_text()
    lines = source.splitlines()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef):
            continue
        raises = [s for s in node.body if isinstance(s, ast.Raise)]
        assert raises, f"{module}.{node.name} of the stub does not raise"
        params = [a.arg for a in node.args.args if a.arg != "self"]
        body = "super().__init__(*args, **kwargs)" if node.name == "__init__" else f"return {params[0]}"
        lines[raises[0].lineno - 1] = " " * raises[0].col_offset + body
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.id)
def test_stub_returning_its_input_scores_zero(stage, tmp_path):
    (tmp_path / f"{stage.module}.py").write_text(_echo_source(stage.module))
    result = grade_stage(stage, tmp_path)
    passed = [c.name for c in result.checks if c.passed]
    assert passed == [] and result.score == 0, f"a stub that returns its input passes {passed}"
    assert all(c.message for c in result.checks)
    assert not [c.message for c in result.checks if c.message.startswith("not graded")]
