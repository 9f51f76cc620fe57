"""The public checks (what students run) against the manifest and the hidden graders.

Every check has a hint; every public check carries the name of a hidden check and fails on the
same mistakes (the mutants of tests/test_mutants.py) with a message that names the fix; every
hidden check without a public counterpart says why; solutions pass them and stubs fail them.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import subprocess
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from test_mutants import MUTANTS

from autograder import REPO_ROOT
from autograder.course.manifest import load_course
from autograder.course.models import tiny_model_dir

STAGES = load_course().stages
# the message a learner sees for the classic mistakes must say what to do instead
FIX_NAMED = {
    "tokenize-pads-to-max-length": "do not pad",
    "model-reinitialises-the-encoder": "not from_config",
    "train-evaluates-on-test": "use tokenized['validation']",
    "evaluate-binary-f1": "macro-F1 over all classes (average='macro')",
    "evaluate-predict-without-eval": "call model.eval()",
    "evaluate-uses-argmin": "argmax of the logits",
}


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.id)
def test_every_check_maps_to_a_hint(stage):
    assert stage.hints, f"{stage.id} has no hints"
    missing = sorted(set(stage.checks) - set(stage.check_hints))
    assert not missing, f"{stage.id}: [stages.check_hints] has no hint for {missing}"
    unknown = sorted(set(stage.check_hints) - set(stage.checks))
    assert not unknown, f"{stage.id}: [stages.check_hints] names checks that do not exist: {unknown}"
    bad = {k: v for k, v in stage.check_hints.items() if not 1 <= v <= len(stage.hints)}
    assert not bad, f"{stage.id}: hint numbers out of range 1..{len(stage.hints)}: {bad}"


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.id)
def test_public_checks_mirror_hidden_checks(stage):
    public = stage.public_checks(REPO_ROOT / "solutions")
    assert public, f"{stage.id} has no public checks"
    assert set(public) <= set(stage.checks), \
        f"{stage.id}: public checks without a hidden check of the same name: {sorted(set(public) - set(stage.checks))}"
    unexplained = sorted(set(stage.checks) - set(public) - set(stage.hidden_only))
    assert not unexplained, f"{stage.id}: hidden checks with neither a public counterpart nor a reason: {unexplained}"
    both = sorted(set(public) & set(stage.hidden_only))
    assert not both, f"{stage.id}: [stages.hidden_only] names checks that are public: {both}"
    assert all(reason.strip() for reason in stage.hidden_only.values())
    assert set(public) < set(stage.checks) or not stage.hidden_only


def _outcomes(tree: Path, tmp_path: Path) -> dict[str, bool]:
    """Run every public check of a tree in one pytest process: {file::check: passed}."""
    report = tmp_path / f"{tree.name}.xml"
    subprocess.run([sys.executable, "-m", "pytest", "checks", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                    f"--junitxml={report}"], cwd=tree, capture_output=True, text=True, timeout=600,
                   env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    out = {}
    for case in ET.parse(report).iter("testcase"):
        failed = any(child.tag in ("failure", "error") for child in case)
        out[f"{case.get('classname').split('.', 1)[-1]}::{case.get('name')}"] = not failed  # no tree name
    return out


def test_solutions_pass_and_stubs_fail_every_public_check(tmp_path):
    solutions = _outcomes(REPO_ROOT / "solutions", tmp_path)
    exercises = _outcomes(REPO_ROOT / "exercises", tmp_path)
    assert len(solutions) >= 6 * 3 and set(solutions) == set(exercises)
    assert [k for k, ok in solutions.items() if not ok] == [], "the reference solutions fail public checks"
    assert [k for k, ok in exercises.items() if ok] == [], "stubs pass public checks"


def _fixtures(tmp_path: Path) -> dict:
    return {"tmp_path": tmp_path, "tiny_model_path": str(tiny_model_dir("distilbert-classifier")),
            "tiny_base_path": str(tiny_model_dir("distilbert-base")), "tiny_nli_path": str(tiny_model_dir("nli"))}


def _run_check(fn, fixtures: dict) -> list[str]:
    """Call one public check with its fixtures (every parametrization); the failure messages."""
    params = [{}]
    for mark in getattr(fn, "pytestmark", []):
        if mark.name == "parametrize":
            params = [{mark.args[0]: value} for value in mark.args[1]]
    names = inspect.signature(fn).parameters
    failures = []
    for extra in params:
        try:
            fn(**{n: {**fixtures, **extra}[n] for n in names})
        except AssertionError as exc:
            failures.append(str(exc))
        except Exception as exc:  # noqa: BLE001 - pytest counts an error as a failed check too
            failures.append(f"{type(exc).__name__}: {exc}")
    return failures


PUBLIC_MUTANTS = [m for m, (stage_id, _, _, check) in MUTANTS.items()
                  if check in load_course().stage(stage_id).public_checks(REPO_ROOT / "solutions")]


@pytest.mark.parametrize("mutant", PUBLIC_MUTANTS)
def test_public_check_catches_the_mistake(mutant, tmp_path, monkeypatch):
    """The mutant module, imported in place of the stage, fails the public check meant for it."""
    stage_id, old, new, check = MUTANTS[mutant]
    stage = load_course().stage(stage_id)
    source = (REPO_ROOT / "solutions" / f"{stage.module}.py").read_text()
    module = types.ModuleType(stage.module)
    module.__file__ = str(tmp_path / f"{stage.module}.py")
    exec(compile(source.replace(old, new), module.__file__, "exec"), module.__dict__)  # noqa: S102 - our own code
    monkeypatch.setitem(sys.modules, stage.module, module)
    spec = importlib.util.spec_from_file_location(f"public_{mutant}", REPO_ROOT / "solutions" / stage.public_check_file)
    checks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checks)
    failures = _run_check(getattr(checks, check), _fixtures(tmp_path))
    assert failures, f"the public check {check} passes the mutant {mutant}"
    assert all(f.strip() for f in failures), f"{check} fails without a message"
    if mutant in FIX_NAMED:
        assert any(FIX_NAMED[mutant] in f for f in failures), failures


def test_hidden_checks_name_the_same_fixes():
    """Where public and hidden checks overlap, a learner reads the same words on either side."""
    for mutant, words in FIX_NAMED.items():
        stage = load_course().stage(MUTANTS[mutant][0])
        assert words in stage.grader_file.read_text(), f"the hidden grader of {stage.id} never says {words!r}"


def test_hints_are_plain_text_in_the_terminal(capsys, tmp_path):
    """'[contradiction, entailment]' in a hint is text, never Rich markup."""
    from autograder import student

    stage = next(s for s in STAGES if s.id == "zero_shot")
    student.console.width = 400
    student.show_hint(stage_id="zero_shot", show_all=True, state_file=tmp_path / "hints.json")
    out = capsys.readouterr().out
    assert "[contradiction, entailment]" in out
    assert any("[" in h for h in stage.hints)


def test_the_failed_checks_hint_reaches_every_report_as_text():
    """A failure on 'evaluate on test' shows the 'never evaluate on test' hint, brackets and all, everywhere."""
    import io

    from rich.console import Console

    from autograder.grading import stage_result
    from autograder.reports.exports import gradescope_json, junit_xml
    from autograder.reports.feedback import feedback_html, feedback_markdown
    from autograder.reports.results import GradeResult
    from autograder.reports.terminal import print_table

    course = load_course()
    train, zero = course.stage("train"), course.stage("zero_shot")
    results = [
        stage_result(train, [{"name": n, "outcome": "failed" if n == "test_trainer_evaluates_on_validation"
                              else "passed", "message": "evaluates on the TEST split"} for n in train.checks], "", 1.0),
        stage_result(zero, [{"name": n, "outcome": "failed" if n == "test_nli_multi_label_matches_pipeline"
                             else "passed", "message": "off"} for n in zero.checks], "", 1.0),
    ]
    assert "Never evaluate on 'test'" in results[0].hint
    assert "[contradiction, entailment]" in results[1].hint
    result = GradeResult("alice", results)
    buf = io.StringIO()
    print_table(result, Console(file=buf, width=400))
    gradescope = "\n".join(t.get("output", "") for t in gradescope_json(result)["tests"])
    for name, text in (("terminal", buf.getvalue()), ("markdown", feedback_markdown(result)),
                       ("html", feedback_html(result)), ("junit", junit_xml(result)), ("gradescope", gradescope)):
        assert "Never evaluate on &#x27;test&#x27;" in text or "Never evaluate on 'test'" in text, name
        assert "[contradiction, entailment]" in text, name
