"""The calibration's rule and table (the long runs themselves are scripts/calibrate_model_tier.py)."""

from __future__ import annotations

import math
import py_compile
import re
import shutil

import pytest
from script_modules import load_script

from autograder import REPO_ROOT
from autograder.grading import calibration as cal
from autograder.grading import calibration_variants as cv


@pytest.mark.parametrize("variant", cv.VARIANTS, ids=lambda v: v.id)
def test_every_variant_applies_to_the_current_solutions(variant, tmp_path):
    sub = tmp_path / "sub"
    shutil.copytree(REPO_ROOT / "solutions", sub, ignore=shutil.ignore_patterns("__pycache__", "checks"))
    assert cv.apply(variant, sub) == ""
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


def test_a_variant_a_structural_check_catches_is_shown_but_not_held_to_the_threshold():
    weights = cv.variant("no_class_weights")
    assert "test_weighted_trainer_loss_uses_the_class_weights" in weights.caught_by
    assert not weights.must_fail
    assert cv.variant("lr0").must_fail and not cv.variant("reference").must_fail
    runs = [_run("reference", True, 0.70 + i / 200, i) for i in range(10)] + [_run("no_class_weights", False, 0.71)]
    rec = cal.recommend("nb", "accuracy", runs)
    assert rec.broken_n == 0 and rec.threshold is not None  # its accuracy may match correct work
    text = cal.markdown(runs, {"nb": {"accuracy": 0.65}})
    assert "| no_class_weights | broken, caught by a structural check (not required to fail here) | 1 |" in text


def test_the_plan_runs_correct_work_first_seed_by_seed_and_resumes():
    correct = [v for v in cv.VARIANTS if v.correct]
    broken = [v for v in cv.VARIANTS if not v.correct and not v.notebooks]
    todo = cv.plan(["a", "b"], correct + broken, seeds=3, broken_seeds=1)
    assert [(s, nb) for s, nb, _ in todo[:2 * len(correct)]] == [(0, "a")] * len(correct) + [(0, "b")] * len(correct)
    assert all(v.correct for _, _, v in todo[:6 * len(correct)])
    assert not any(v.correct for *_, v in todo[6 * len(correct):])
    every = [v for v in correct if not v.notebooks]  # the correct variants a notebook "a" takes
    n = len(every)
    spread = cv.plan(["a"], correct, seeds=2 * n, broken_seeds=0, spread=True)
    assert [v.id for *_, v in spread] == [v.id for v in every] * 2  # each seed one variant, in turn
    left = cv.plan(["a"], correct, seeds=2 * n, broken_seeds=0, spread=True, done={("a", every[0].id, 0)})
    assert len(left) == 2 * n - 1 and left[0][0] == 1
    only = cv.plan(["a"], every[1:2], seeds=2 * n, broken_seeds=0, spread=True)  # --variant filters the turn
    assert [(s, v.id) for s, _, v in only] == [(1, every[1].id), (1 + n, every[1].id)]


def test_the_table_compares_the_time_limit_with_the_slowest_correct_run():
    runs = [_run("reference", True, 0.72, 0), {**_run("reference", True, 0.73, 1), "duration_s": 250.0, "threads": 1}]
    runs[0]["threads"] = 2
    line = cal.timeout_line("nb", runs, 900)
    assert "slowest correct run took 250 s (1 thread(s))" in line and "780 s" in line and "meets" in line
    assert "is UNDER" in cal.timeout_line("nb", runs, 600)


def test_a_caught_variant_names_a_mutant_that_really_fails_that_check():
    from test_mutants import MUTANTS

    for v in cv.VARIANTS:
        if v.caught_by:
            mutant = re.search(r"mutant '([^']+)'", v.caught_by).group(1)
            stage, old, new, check = MUTANTS[mutant][:4]
            assert check in v.caught_by
            (file, text, replacement), = v.edits
            assert old in text and new.replace("F.", "torch.nn.functional.") in replacement


def test_no_correct_run_seen_falls_under_the_threshold_even_when_the_normal_fit_allows_it():
    lows = [0.66, 0.66, 0.67, 0.66, 0.67, 0.66, 0.67, 0.66, 0.67, 0.66] * 2 + [0.615]  # one seed trained badly
    runs = [_run("reference", True, lo, i) for i, lo in enumerate(lows)] + [_run("lr0", False, 0.30)]
    rec = cal.recommend("nb", "accuracy", runs)
    assert math.floor((rec.correct_mean - cal.Z_TARGET * rec.correct_sd) * 100) / 100 > 0.61  # the fit alone
    assert rec.threshold == 0.61  # under the worst correct run


def _script():
    return load_script("calibrate_model_tier")


def test_the_committed_report_is_what_the_script_writes_from_the_committed_runs():
    from autograder.course.manifest import load_course

    script = _script()
    course = load_course()
    assert script.REPORT.read_text(encoding="utf-8") == script.report_text(cal.read_runs(script.RUNS), course), \
        "docs/calibration.md is stale: run `python scripts/calibrate_model_tier.py --report`"


def test_every_committed_run_was_scored_on_the_current_hidden_split():
    from autograder.course.manifest import load_course

    script = _script()
    course = load_course()
    for r in cal.read_runs(script.RUNS):
        if r.get("value"):
            assert r["test_sha256"] == script.split_sha256(course.notebook(r["notebook"]).dataset), \
                f"{r['notebook']} {r['variant']} seed {r['seed']}: scored on another test split (run --rescore)"


def test_rescoring_keys_on_the_split_hash_not_on_its_size(tmp_path, monkeypatch):
    """A test split replaced by another of the same size is still a different split: score again."""
    import json

    from autograder.course.manifest import load_course
    from autograder.grading import evaluator

    script = _script()
    course = load_course()
    nb = course.notebooks[0]
    current = script.split_sha256(nb.dataset)
    rows = len(evaluator.load_hidden_split(nb.dataset).texts)
    base = {**_run("reference", True, 0.70), "notebook": nb.id, "test_rows": rows}
    runs = tmp_path / "runs.jsonl"
    runs.write_text("".join(json.dumps({**base, "seed": s, "test_sha256": h}) + "\n"
                            for s, h in ((0, current), (1, "0" * 64), (2, "1" * 64))))
    keep = tmp_path / "models"
    (keep / f"{nb.id}-reference-1").mkdir(parents=True)  # seed 1's model was kept, seed 2's was not
    scored = []

    class Scored:
        def to_dict(self):
            return {**{m: 0.9 for m in nb.thresholds}, **{f"{m}_ci": (0.85, 0.95) for m in nb.thresholds}, "n": rows}

    monkeypatch.setattr(evaluator, "score_saved_model", lambda folder, *a, **k: scored.append(folder.name) or Scored())
    script.rescore(runs, keep, [nb.id], course)
    after = {r["seed"]: r for r in cal.read_runs(runs)}
    assert scored == [f"{nb.id}-reference-1"]
    assert sorted(after) == [0, 1]  # seed 2 dropped: no model to score on the new split
    assert after[0]["lower"] == base["lower"] and after[1]["test_sha256"] == current
    assert all(after[1]["lower"][m] == 0.85 for m in nb.thresholds)


def test_the_manifest_holds_the_thresholds_and_time_limits_the_rule_gives_from_the_committed_runs():
    """course.toml's model-tier numbers come from docs/calibration_runs.jsonl by the stated rule, not by hand."""
    from autograder.course.manifest import load_course

    runs = cal.read_runs(_script().RUNS)
    for nb in load_course().notebooks:
        for metric, threshold in nb.thresholds.items():
            rec = cal.recommend(nb.id, metric, runs)
            assert rec.correct_n >= 20, f"{nb.id} {metric}: the rule needs at least 20 correct runs"
            assert threshold == rec.threshold, f"{nb.id} {metric}: course.toml {threshold}, the rule {rec.threshold}"
        assert "meets" in cal.timeout_line(nb.id, runs, nb.timeout), cal.timeout_line(nb.id, runs, nb.timeout)


def test_the_manifest_flags_scores_above_what_correct_work_reached_in_the_calibration():
    """course.toml's review_above is the rule's (the best correct run plus the mean interval width), for every
    graded metric, and it lies above every correct run: correct work is not flagged."""
    from autograder.course.manifest import load_course

    runs = cal.read_runs(_script().RUNS)
    for nb in load_course().notebooks:
        assert set(nb.review_above) == set(nb.thresholds), nb.id
        for metric, limit in nb.review_above.items():
            assert limit == cal.review_above(nb.id, metric, runs), f"{nb.id} {metric}"
            best = max(r["value"][metric] for r in runs if r["notebook"] == nb.id and r["correct"] and r.get("value"))
            assert best < limit <= 1.0


def test_review_flags_name_the_metric_and_change_nothing_below_the_limit():
    evaluation = {"n": 2000, "accuracy": 0.97, "macro_f1": 0.5}
    flags = cal.review_flags({"accuracy": 0.86, "macro_f1": 0.80}, evaluation)
    assert len(flags) == 1 and flags[0].startswith(cal.REVIEW_NOTE) and "accuracy 0.970 on 2000" in flags[0]
    assert cal.review_flags({"accuracy": 0.86}, {"n": 2000, "accuracy": 0.86}) == []
    assert cal.review_flags({"accuracy": 0.86}, {}) == []


def test_each_harmless_variant_is_held_to_one_percent_on_its_own():
    """Issue 22: a variant whose runs sit low (cosine at seed 23) is not hidden by a pooled mean."""
    lows = [0.72, 0.73, 0.74, 0.73, 0.72, 0.74, 0.73, 0.72, 0.74, 0.73]
    runs = [_run("reference", True, lo, i) for i, lo in enumerate(lows)]
    pooled = cal.recommend("nb", "accuracy", runs).threshold
    runs += [_run("cosine", True, 0.70, 10), _run("cosine", True, 0.705, 11)]
    rec = cal.recommend("nb", "accuracy", runs)
    rates = cal.variant_false_fail("nb", "accuracy", runs, rec.threshold)
    assert set(rates) == {"reference", "cosine"} and rates["cosine"] > rates["reference"]
    assert max(rates.values()) <= cal.FALSE_FAIL_TARGET
    assert rec.threshold < pooled
    assert cal.variant_false_fail("nb", "accuracy", runs, rec.threshold + 0.01)["cosine"] > cal.FALSE_FAIL_TARGET
    text = cal.markdown(runs, {"nb": {"accuracy": rec.threshold}})
    assert "est. false-fail" in text and "the highest per harmless variant" in text
    assert "(cosine, 2 variants held to the threshold)" in text


def test_a_choice_the_course_pins_is_shown_but_does_not_lower_the_threshold():
    """batch8 (the course's batch_size parameter) and constant (a structural check asks for a decaying
    schedule) are correct code the structural tier does not accept from a student: not held (issue 22)."""
    assert cv.variant("batch8").pinned_by and cv.variant("constant").pinned_by
    assert not cv.variant("batch8").held and cv.variant("cosine").held and not cv.variant("lr0").held
    runs = [_run("reference", True, 0.72 + i / 500, i) for i in range(10)]
    alone = cal.recommend("nb", "accuracy", runs)
    runs += [_run("batch8", True, 0.60, 20), _run("batch8", True, 0.61, 21)]
    rec = cal.recommend("nb", "accuracy", runs)
    assert (rec.threshold, rec.correct_n) == (alone.threshold, alone.correct_n)
    rates = cal.variant_false_fail("nb", "accuracy", runs, rec.threshold)
    assert rates["batch8"] > 0.5  # shown: it would fail
    text = cal.markdown(runs, {"nb": {"accuracy": rec.threshold}})
    assert "| batch8 | correct, pinned by the course (not held to the threshold) | 2 |" in text
    assert "(reference, 1 variant held to the threshold)" in text
