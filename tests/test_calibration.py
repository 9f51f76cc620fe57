"""The calibration's rule and table (the long runs themselves are scripts/calibrate_model_tier.py)."""

from __future__ import annotations

import py_compile
import shutil

import pytest

from autograder import REPO_ROOT
from autograder.grading import calibration as cal


@pytest.mark.parametrize("variant", cal.VARIANTS, ids=lambda v: v.id)
def test_every_variant_applies_to_the_current_solutions(variant, tmp_path):
    sub = tmp_path / "sub"
    shutil.copytree(REPO_ROOT / "solutions", sub, ignore=shutil.ignore_patterns("__pycache__", "checks"))
    assert cal.apply(variant, sub) == ""
    for name, _, new in variant.edits:
        assert new in (sub / name).read_text()
        py_compile.compile(str(sub / name), doraise=True)


def _run(variant: str, correct: bool, lower: float, seed: int = 0) -> dict:
    return {"notebook": "nb", "variant": variant, "correct": correct, "seed": seed, "duration_s": 100.0,
            "value": {"accuracy": lower + 0.04}, "lower": {"accuracy": lower}, "upper": {"accuracy": lower + 0.08}}


def test_the_threshold_keeps_false_fails_under_one_percent_and_broken_runs_out():
    lows = [0.70, 0.72, 0.74, 0.71, 0.73, 0.72, 0.70, 0.74, 0.73, 0.71]
    runs = [_run("reference", True, lo, i) for i, lo in enumerate(lows)] + [_run("lr0", False, 0.45)]
    rec = cal.recommend("nb", "accuracy", runs)
    assert rec.correct_n == 10 and rec.broken_n == 1
    assert rec.threshold == 0.68  # mean 0.72 - 2.326 * sd 0.0149 = 0.685, on the 0.01 grid below
    assert rec.false_fail <= cal.FALSE_FAIL_TARGET
    assert cal.false_fail_rate(lows, 0.69) > cal.FALSE_FAIL_TARGET
    assert rec.margin == pytest.approx(0.68 - 0.45)
    assert rec.half_width == pytest.approx(0.04)


def test_no_threshold_when_a_broken_run_scores_like_correct_work():
    runs = [_run("reference", True, lo, i) for i, lo in enumerate([0.60, 0.62, 0.61])] + [_run("x", False, 0.61)]
    rec = cal.recommend("nb", "accuracy", runs)
    assert rec.threshold is None and "no threshold meets both targets" in rec.note


def test_the_table_states_the_rule_and_every_variant():
    runs = [_run("reference", True, 0.71 + i / 100, i) for i in range(5)] + [_run("from_config", False, 0.40)]
    text = cal.markdown(runs, {"nb": {"accuracy": 0.65}}, header="Runs: CPU, 2 threads")
    assert "**The rule.**" in text and "LOWER BOUND" not in text and "lower bound" in text
    assert "## nb: accuracy (threshold in course.toml: 0.65)" in text
    assert "| reference | correct | 5 |" in text and "| from_config | broken | 1 |" in text
    assert "passes at 0.65" in text and "5/5" in text and "0/1" in text
