"""Stage 4's public checks catch the two silent mistakes of issue 11 locally, with the fix in the message.

Each mistake is a mutant of the reference solution (tests/test_mutants.py, where the hidden
graders are shown to catch it too). The mutant is imported in place of ``stage4_evaluate`` and
the public check meant for it runs on it in this process, as ``pytest checks`` would.
"""

from __future__ import annotations

import importlib.util
import sys
import types

import pytest
from test_mutants import MUTANTS

from autograder import REPO_ROOT
from autograder.course.manifest import load_course
from autograder.course.models import tiny_model_dir

STAGE = load_course().stage("evaluate")
# mutant: the words its failure must contain (what to do instead)
FIX_NAMED = {
    "evaluate-binary-f1": "macro-F1 over all classes (average='macro')",
    "evaluate-predict-without-eval": "call model.eval()",
    "evaluate-uses-argmin": "argmax of the logits",
}


def _public_checks_on(mutant: str, tmp_path, monkeypatch) -> types.ModuleType:
    stage_id, old, new, _ = MUTANTS[mutant]
    assert stage_id == STAGE.id
    source = (REPO_ROOT / "solutions" / f"{STAGE.module}.py").read_text()
    assert source.count(old) == 1, f"mutant {mutant}: its target text is not (exactly once) in the solution"
    module = types.ModuleType(STAGE.module)
    module.__file__ = str(tmp_path / f"{STAGE.module}.py")
    exec(compile(source.replace(old, new), module.__file__, "exec"), module.__dict__)  # noqa: S102 - our own code
    monkeypatch.setitem(sys.modules, STAGE.module, module)
    spec = importlib.util.spec_from_file_location(f"public_{mutant}", REPO_ROOT / "solutions" / STAGE.public_check_file)
    checks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checks)
    return checks


@pytest.mark.parametrize("mutant", list(FIX_NAMED))
def test_public_check_fails_the_mistake_and_names_the_fix(mutant, tmp_path, monkeypatch):
    check = MUTANTS[mutant][3]
    fn = getattr(_public_checks_on(mutant, tmp_path, monkeypatch), check)
    kwargs = {"tiny_model_path": str(tiny_model_dir("distilbert-classifier"))} if fn.__code__.co_argcount else {}
    with pytest.raises(AssertionError) as failed:
        fn(**kwargs)
    assert FIX_NAMED[mutant] in str(failed.value), str(failed.value)


def test_public_checks_carry_hidden_names_and_a_hint_each():
    public = STAGE.public_checks(REPO_ROOT / "solutions")
    assert set(public) < set(STAGE.checks), "the public checks must be a proper subset of the hidden ones"
    assert set(STAGE.checks) - set(public) == set(STAGE.hidden_only)
    assert set(STAGE.check_hints) == set(STAGE.checks)
    assert all(1 <= n <= len(STAGE.hints) for n in STAGE.check_hints.values())


def test_hidden_checks_name_the_same_fixes():
    """Where public and hidden checks overlap, a learner reads the same words on either side."""
    grader = (REPO_ROOT / "autograder" / "grading" / "graders" / f"test_{STAGE.module}.py").read_text()
    public = (REPO_ROOT / "solutions" / STAGE.public_check_file).read_text()
    binary = next(ln for ln in public.splitlines() if ln.startswith("BINARY_F1 = "))
    assert binary in grader.splitlines()
    assert all(words in grader for words in FIX_NAMED.values())
