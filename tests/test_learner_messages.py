"""Messages whole: every mutant of tests/test_mutants.py shows its fix words in what the student sees,
both in what `autograder check` prints (the mutants a public check catches) and in the hidden grader's
message for its check, as the reports render it (explanation first, quoted values last and short).

`autograder check` used to print pytest's summary line, cut at the terminal's width: a binary F1
showed scikit-learn's long ValueError and lost the course's explanation after it.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from rich.console import Console
from test_mutants import MUTANTS

from autograder import REPO_ROOT, student
from autograder.course.manifest import load_course
from autograder.grading import grade
from autograder.messages import remote_failure
from autograder.reports.exports import check_text

# the words a learner needs to fix each mistake: they must reach the terminal whole
FIX_WORDS = {
    "tokenize-pads-to-max-length": "do not pad",
    "model-reinitialises-the-encoder": "not from_config",
    "train-evaluates-on-test": "use tokenized['validation']",
    "train-constant-schedule": "lr_scheduler_type='linear'",
    "evaluate-uses-argmin": "argmax of the logits",
    "evaluate-binary-f1": "macro-F1 over all classes (average='macro')",
    "evaluate-predict-without-eval": "call model.eval()",
    "emotion-weights-not-inverted": "inverse of the frequency",
    "emotion-weights-without-K": "N / (K * n_c)",
    "emotion-zero-count-accepted": "a class with 0 examples",
    "emotion-trainer-ignores-weights": "weighted_cross_entropy(outputs.logits, labels, self.class_weights)",
    "emotion-loss-ignores-weights": "pass weight=weights",
    "emotion-trainer-ignores-label-smoothing": "label_smoothing=self.args.label_smoothing_factor",
    "emotion-label-counts-skip-missing-labels": "labels that never occur included",
    "emotion-report-without-labels": "labels=list(range(K))",
    "emotion-most-confused-includes-diagonal": "only the off-diagonal cells",
    "emotion-most-confused-ties-by-predicted": "then by true index",
    "zero_shot-single-label-softmax-over-nli-classes": "softmax of the entailment logits across the labels",
    "zero_shot-multi-label-softmax-over-labels": "softmax over its [contradiction, entailment] logits",
    "zero_shot-entailment-index-hard-coded-in-nli": "entailment_index(model)",
    "zero_shot-entailment-index-returns-2": "look the label up by name in model.config.label2id",
    "zero_shot-contradiction-index-hard-coded-0": "softmax over its [contradiction, entailment] logits",
    "zero_shot-mean-pool-includes-padding": "padding must not count",
    "zero_shot-mcnemar-one-sided": "mcnemar_p",
    "zero_shot-agreement-counts-correctness": "agreement: the share of texts",
}
# the same fix in the hidden grader's words, where they differ from the public check's (and the mutant that
# only a hidden check catches)
HIDDEN_FIX_WORDS = {
    **FIX_WORDS,
    "zero_shot-single-label-softmax-over-nli-classes": "softmax those across the labels (not across the NLI classes)",
    "zero_shot-mean-pool-includes-padding": "multiply by the mask and divide by the number of real tokens",
    "zero_shot-agreement-counts-correctness": "the share of texts where a and b predict the same label",
    "zero_shot-embed-not-normalised": "L2-normalise each mean-pooled vector",
}
PUBLIC = [m for m, (stage_id, _, _, check) in MUTANTS.items()
          if check in load_course().stage(stage_id).public_checks(REPO_ROOT / "solutions")]


def test_every_publicly_caught_mutant_has_fix_words():
    assert set(PUBLIC) <= set(FIX_WORDS), sorted(set(PUBLIC) - set(FIX_WORDS))


def _student_sees(work: Path, stage_id: str | None, monkeypatch) -> str:
    """What `autograder check [STAGE]` prints, at a narrow terminal's width (soft-wrapped text is whole)."""
    buffer = io.StringIO()
    monkeypatch.setattr(student, "console", Console(file=buffer, width=80, soft_wrap=True))
    code = student.run_public_checks(stage_id=stage_id, path=work)
    assert code == 1
    return buffer.getvalue()


def _public_rounds() -> list[list[str]]:
    """The publicly caught mutants as few student copies as can hold them: round k mutates each stage's
    k-th such mutant (a public check imports only its own stage's module, so the stages of one copy are
    checked in one `autograder check` without touching each other)."""
    by_stage: dict[str, list[str]] = {}
    for mutant in PUBLIC:
        by_stage.setdefault(MUTANTS[mutant][0], []).append(mutant)
    return [[m[k] for m in by_stage.values() if k < len(m)] for k in range(max(map(len, by_stage.values())))]


def test_every_publicly_caught_mutant_is_in_one_round():
    assert sorted(m for r in _public_rounds() for m in r) == sorted(PUBLIC)
    assert all(len({MUTANTS[m][0] for m in r}) == len(r) for r in _public_rounds())  # one mutant per stage


@pytest.mark.slow
@pytest.mark.parametrize("mutants", _public_rounds(), ids=[f"round{k + 1}" for k in range(len(_public_rounds()))])
def test_autograder_check_shows_the_fix_words(mutants, tmp_path, monkeypatch):
    course = load_course()
    shutil.copytree(REPO_ROOT / "exercises" / "checks", tmp_path / "checks")
    mutated = {MUTANTS[m][0]: m for m in mutants}
    for stage in course.stages:
        source = (REPO_ROOT / "solutions" / f"{stage.module}.py").read_text()
        if stage.id in mutated:
            _, old, new, _ = MUTANTS[mutated[stage.id]]
            source = source.replace(old, new)
        (tmp_path / f"{stage.module}.py").write_text(source)
    shown = _student_sees(tmp_path, None, monkeypatch)
    for mutant in mutants:
        check = MUTANTS[mutant][3]
        assert f"x {check}" in shown, (mutant, shown)
        assert FIX_WORDS[mutant] in shown, (mutant, shown)
        at = shown.index(FIX_WORDS[mutant])
        message = shown[shown.rfind(f"x {check}", 0, at):at]  # from the check's line to its fix words
        assert "..." not in message, f"{mutant}: the message was cut before its fix words"


def _rounds() -> list[list[str]]:
    """The mutants as few submissions as can hold them: round k mutates each stage's k-th mutant (one
    module per stage, so a round's stages are graded together, in one structural grade)."""
    by_stage: dict[str, list[str]] = {}
    for mutant, (stage_id, *_) in MUTANTS.items():
        by_stage.setdefault(stage_id, []).append(mutant)
    return [[m[k] for m in by_stage.values() if k < len(m)] for k in range(max(map(len, by_stage.values())))]


def test_every_mutant_has_fix_words_for_the_hidden_grader():
    assert set(HIDDEN_FIX_WORDS) == set(MUTANTS), sorted(set(MUTANTS) ^ set(HIDDEN_FIX_WORDS))
    assert sorted(m for r in _rounds() for m in r) == sorted(MUTANTS)


@pytest.mark.jail
@pytest.mark.parametrize("mutants", _rounds(), ids=[f"round{k + 1}" for k in range(len(_rounds()))])
def test_the_hidden_grader_shows_the_fix_words(mutants, tmp_path):
    """Each mutant's check fails in the hidden grader with its fix words in the message a report shows
    the student (hidden checks sanitised and capped at 600 characters: the fix words come before the cut).
    A round grades one mutant per stage in one structural grade: 9 grades for the 24 mutants."""
    submission = tmp_path / "submission"
    submission.mkdir()
    course = load_course()
    for mutant in mutants:
        stage_id, old, new, _ = MUTANTS[mutant]
        module = course.stage(stage_id).module
        source = (REPO_ROOT / "solutions" / f"{module}.py").read_text()
        (submission / f"{module}.py").write_text(source.replace(old, new))
    result = grade(submission, stages=[MUTANTS[m][0] for m in mutants])
    for mutant in mutants:
        stage_id, _, _, check_name = MUTANTS[mutant]
        stage = next(s for s in result.stages if s.id == stage_id)
        check = next(c for c in stage.checks if c.name == check_name)
        shown = check_text(stage, check)
        assert not check.passed, (mutant, shown)
        assert HIDDEN_FIX_WORDS[mutant] in shown, (mutant, shown)  # a message cut before them would lack them


class _Remote(Exception):
    """A RemoteError's shape: what the runner sends back when the submission raised."""

    limit = ""

    def __init__(self, message: str):
        super().__init__(message)
        self.type, self.message = "ValueError", message

    def mro(self) -> list[str]:
        return ["ValueError", "Exception"]

    def is_a(self, kind) -> bool:
        return kind.__name__ in self.mro()

    def where(self) -> str:
        return " (in stage4_evaluate.py, line 12, in compute_metrics)"


def test_remote_failure_keeps_the_fix_before_a_long_exception():
    """The judge's words for an exception: the fix first, the exception's own text last and capped."""
    text = remote_failure(_Remote("Target is multiclass but average='binary'. " + "x" * 5000), "compute_metrics(...)",
                          fix="use average='macro'")
    assert text.startswith("called compute_metrics(...): it raised ValueError; use average='macro'")
    assert len(text) < 700 and text.rstrip().endswith(")")
    plain = remote_failure(_Remote("boom"), "f()")
    assert plain.startswith("called f(): it raised ValueError: boom")
