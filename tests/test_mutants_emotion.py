"""Mutation tests of the emotion graders: each plausible mistake in the reference solution must cost points.

A mutant is the reference solution with one text replacement; it is graded like a submission, and the
check that should catch it must fail (so the stage scores below full marks).
"""

from __future__ import annotations

import ast
import shutil

import pytest

from autograder import REPO_ROOT
from autograder.grading import grade_stage
from autograder.manifest import load_course

STAGE = load_course().stage("emotion")
MODULE = f"{STAGE.module}.py"

# id: (text in the solution, its replacement, the check that must fail)
MUTANTS = {
    "weights-not-inverted": (
        "return (n_c.sum() / (len(values) * n_c)).to(torch.float32)",
        "return (n_c / n_c.sum()).to(torch.float32)",
        "test_class_weights_are_balanced_inverse_frequency",
    ),
    "weights-without-K": (
        "return (n_c.sum() / (len(values) * n_c)).to(torch.float32)",
        "return (n_c.sum() / n_c).to(torch.float32)",
        "test_class_weights_are_balanced_inverse_frequency",
    ),
    "zero-count-accepted": (
        "        if n <= 0:\n",
        "        if n < 0:\n",
        "test_class_weights_are_balanced_inverse_frequency",
    ),
    "trainer-ignores-weights": (
        "loss = weighted_cross_entropy(outputs.logits, labels, self.class_weights)",
        "loss = F.cross_entropy(outputs.logits, labels)",
        "test_weighted_trainer_loss_uses_the_class_weights",
    ),
    "loss-ignores-weights": (
        "return F.cross_entropy(logits, labels.to(logits.device), weight=weights)",
        "return F.cross_entropy(logits, labels.to(logits.device))",
        "test_weighted_cross_entropy_matches_torch",
    ),
    "label-counts-skip-missing-labels": (
        "return {name: int(counts.get(i, 0)) for i, name in enumerate(names)}",
        "return {names[i]: int(n) for i, n in counts.items()}",
        "test_label_counts_per_name_in_label_order",
    ),
    "report-without-labels": (
        "y_true, y_pred, labels=list(range(len(label_names))), zero_division=0",
        "y_true, y_pred, zero_division=0",
        "test_per_class_report_matches_sklearn",
    ),
    "most-confused-includes-diagonal": (
        "if t != p and cm[t, p] > 0]",
        "if cm[t, p] > 0]",
        "test_most_confused_ranks_off_diagonal_cells",
    ),
    "most-confused-ties-by-predicted": (
        "key=lambda cell: (-cell[0], cell[1], cell[2])",
        "key=lambda cell: (-cell[0], cell[2], cell[1])",
        "test_most_confused_ranks_off_diagonal_cells",
    ),
}


def _submission(tmp_path, source: str):
    folder = tmp_path / "solutions"
    shutil.copytree(REPO_ROOT / "solutions", folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / MODULE).write_text(source)
    return folder


@pytest.mark.parametrize("mutant", list(MUTANTS))
def test_mutant_loses_points(mutant, tmp_path):
    old, new, check = MUTANTS[mutant]
    source = (REPO_ROOT / "solutions" / MODULE).read_text()
    assert source.count(old) == 1, f"mutant {mutant!r}: its target text is not (exactly once) in the solution"
    result = grade_stage(STAGE, _submission(tmp_path, source.replace(old, new)))
    by_name = {c.name: c for c in result.checks}
    assert not result.error, result.error
    assert result.score < result.max_score, f"mutant {mutant!r} gets full marks"
    assert not by_name[check].passed, f"mutant {mutant!r} passes {check}"
    assert by_name[check].message, f"{check} fails without a message"


def _echo_source() -> str:
    """The stub with every function returning its first argument (``__init__`` just calls Trainer's)."""
    source = (REPO_ROOT / "exercises" / MODULE).read_text()
    lines = source.splitlines()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef):
            continue
        raises = [s for s in node.body if isinstance(s, ast.Raise)]
        assert raises, f"{node.name} of the stub does not raise"
        params = [a.arg for a in node.args.args if a.arg != "self"]
        indent = " " * raises[0].col_offset
        body = "super().__init__(*args, **kwargs)" if node.name == "__init__" else f"return {params[0]}"
        lines[raises[0].lineno - 1] = indent + body
    return "\n".join(lines) + "\n"


def test_stub_returning_its_input_scores_zero(tmp_path):
    result = grade_stage(STAGE, _submission(tmp_path, _echo_source()))
    passed = [c.name for c in result.checks if c.passed]
    assert passed == [] and result.score == 0, f"a stub that returns its input passes {passed}"
    assert all(c.message for c in result.checks)
