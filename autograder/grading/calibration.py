"""Calibrating the model tier's thresholds as measured error rates.

A threshold is fair when correct work fails it rarely and broken work never passes it. Both are
measured: the reference solution and harmless variants of it (code a competent student could
write) run over many seeds; broken variants (the classic mistakes) run over several. Each run is
graded exactly as a submission (:func:`autograder.grading.model_tier.grade_notebook`) and its
figures are appended to a JSONL file, so a long calibration can stop and resume.

The rule (see :func:`recommend`): a check compares the LOWER BOUND of a 95% interval with the
threshold. Over the correct runs, the lower bounds are close to normal (a proportion over 500-2,000
texts); the estimated false-fail rate at threshold ``t`` is ``Phi((t - mean) / sd)``. The
threshold is the largest value on a 0.01 grid whose estimate is at most 1% and that no correct run fell
under, and it must lie above
every broken run's lower bound (false-pass rate 0 on every run; a broken variant that a hidden structural
check catches and whose model scores like correct work is shown, not held to it); a check where both cannot hold
is reported, never silently set.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from autograder import REPO_ROOT

#: The calibration's record (one JSON line per run): the thresholds in course.toml follow from it.
RUNS = REPO_ROOT / "docs" / "calibration_runs.jsonl"
FALSE_FAIL_TARGET = 0.01
Z_TARGET = 2.3263  # Phi^-1(0.99)
TIMEOUT_MARGIN = 3  # a notebook's time limit: at least this many times the slowest correct run


@dataclass(frozen=True)
class Variant:
    """A submission: the reference, with text edits to its files and/or other notebook parameters."""

    id: str
    correct: bool
    what: str
    params: dict = field(default_factory=dict)
    edits: tuple[tuple[str, str, str], ...] = ()  # (file, text, replacement), each text exactly once
    notebooks: tuple[str, ...] = ()  # ids it applies to; empty: every notebook
    # Broken, but caught by a hidden structural check (named here), and its model scores within the
    # seed spread of correct work: no threshold could fail it without failing correct work as often.
    # The table shows how it scores; the rule does not require it to fail.
    caught_by: str = ""
    # Correct code, but a choice the course fixes: the spec sets it or a hidden structural check (named here)
    # asks for the course's choice, so the structural tier does not accept it from a student. Shown, with its
    # estimated false-fail rate; the threshold is not held to it (issue 22, item 4).
    pinned_by: str = ""

    @property
    def must_fail(self) -> bool:
        return not self.correct and not self.caught_by

    @property
    def held(self) -> bool:
        """Correct work the threshold must pass: harmless and accepted by the structural tier."""
        return self.correct and not self.pinned_by


VARIANTS = (
    Variant("reference", True, "the reference solution"),
    Variant("pad8", True, "DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8)", edits=((
        "stage3_train.py", "data_collator=DataCollatorWithPadding(tokenizer),",
        "data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8),"),)),
    Variant("warmup", True, "20 warm-up steps", edits=((
        "stage3_train.py", "        seed=seed,\n", "        seed=seed,\n        warmup_steps=20,\n"),)),
    Variant("weight_decay", True, "weight decay 0.1 instead of 0.01", edits=((
        "stage3_train.py", "weight_decay: float = 0.01", "weight_decay: float = 0.1"),)),
    Variant("cosine", True, "cosine learning-rate schedule", edits=((
        "stage3_train.py", "        seed=seed,\n", '        seed=seed,\n        lr_scheduler_type="cosine",\n'),)),
    Variant("constant", True, "constant learning rate (no decay)", edits=((
        "stage3_train.py", "        seed=seed,\n", '        seed=seed,\n        lr_scheduler_type="constant",\n'),),
            pinned_by="stage 3's hidden check test_training_arguments asks for a learning rate that decays "
                      "(linear, the default, or cosine; the mutant 'train-constant-schedule' of "
                      "tests/test_mutants.py)"),
    Variant("warmup_ratio", True, "linear schedule with warm-up over the first 10% of the steps", edits=((
        "stage3_train.py", "        seed=seed,\n", "        seed=seed,\n        warmup_steps=0.1,\n"),)),
    Variant("label_smoothing", True, "label smoothing 0.1", edits=((
        "stage3_train.py", "        seed=seed,\n", "        seed=seed,\n        label_smoothing_factor=0.1,\n"),)),
    Variant("best_on_f1", True, "the best checkpoint chosen on validation macro-F1 instead of the loss", edits=((
        "stage3_train.py", 'metric_for_best_model="eval_loss",\n        greater_is_better=False,',
        'metric_for_best_model="f1",\n        greater_is_better=True,'),)),
    Variant("batch8", True, "batch size 8", params={"batch_size": 8},
            pinned_by="the course's batch_size parameter (course.toml [[notebooks]] parameters), which the grader "
                      "passes to the notebook; stage 3's hidden check test_training_arguments asks make_training_args "
                      "to pass it on (per_device_train_batch_size)"),
    Variant("batch32", True, "batch size 32", params={"batch_size": 32},
            pinned_by="the course's batch_size parameter (course.toml [[notebooks]] parameters), which the grader "
                      "passes to the notebook; stage 3's hidden check test_training_arguments asks make_training_args "
                      "to pass it on (per_device_train_batch_size)"),
    Variant("untrained_head", False, "one optimisation step: the head stays untrained", edits=((
        "stage3_train.py", "        num_train_epochs=epochs,\n",
        "        num_train_epochs=epochs,\n        max_steps=1,\n"),)),
    Variant("shuffled_labels", False, "labels shuffled within each split", edits=((
        "stage1_tokenize.py", '    tokenized.set_format("torch")\n',
        '    import random\n    tokenized = tokenized.map(lambda b: {"label": random.Random(0).sample(b["label"], '
        'len(b["label"]))}, batched=True, batch_size=None)\n    tokenized.set_format("torch")\n'),)),
    Variant("from_config", False, "encoder built with from_config (random weights)", edits=((
        "stage2_model.py",
        "    return AutoModelForSequenceClassification.from_pretrained(\n"
        "        model_name_or_path, num_labels=len(labels), id2label=id2label, label2id=label2id\n    )",
        "    from transformers import AutoConfig\n"
        "    config = AutoConfig.from_pretrained(model_name_or_path, num_labels=len(labels), id2label=id2label, "
        "label2id=label2id)\n    return AutoModelForSequenceClassification.from_config(config)"),)),
    Variant("lr0", False, "learning rate 0", params={"learning_rate": 0.0}),
    Variant("no_class_weights", False, "plain cross-entropy where the capstone asks for class weights", edits=((
        "stage5_emotion.py",
        "loss = weighted_cross_entropy(outputs.logits, labels, self.class_weights, label_smoothing=smoothing)",
        "loss = torch.nn.functional.cross_entropy(outputs.logits, labels)"),),
            notebooks=("emotion_model",),
            caught_by="stage 5's hidden check test_weighted_trainer_loss_uses_the_class_weights (the mutant "
                      "'emotion-trainer-ignores-weights' of tests/test_mutants.py)"),
    Variant("workshop_lr", False, "the workshop's learning rate 1e-5 in the course's 3 epochs",
            params={"learning_rate": 1e-5}),
)
"""The reference, the training choices a competent student could make (correct), and the classic mistakes.

The correct ones beyond the reference are the choices the structural tier accepts and a student may
well make (issue 22): the schedule (cosine, constant, linear with warm-up as a ratio: transformers 5
takes it as ``warmup_steps`` under 1, it has no ``warmup_ratio``), label smoothing (the emotion
notebook's WeightedTrainer passes ``label_smoothing_factor`` on to its weighted loss), the batch size
(8 and 32, as the notebooks' ``batch_size`` parameter), padding to a multiple of 8 and the weight decay.
``load_best_model_at_end`` cannot be varied "either way": the reference already loads the best
checkpoint (evaluating and saving every epoch, as that option requires), and leaving it out fails stage
3's hidden check ``test_training_arguments``, which asks for it, so it is no harmless choice; what a student
may choose is the metric that picks the best checkpoint, hence ``best_on_f1``.
Each text edit must hold exactly once in the current solutions (``tests/test_calibration_variants.py``).
"""


def variant(variant_id: str) -> Variant:
    return next(v for v in VARIANTS if v.id == variant_id)


def apply(v: Variant, folder: Path) -> str:
    """Edit the submission copy in ``folder``; '' on success, else why the variant does not apply."""
    for name, old, new in v.edits:
        path = folder / name
        text = path.read_text(encoding="utf-8")
        if text.count(old) != 1:
            return f"{name} no longer holds the text this variant edits"
        path.write_text(text.replace(old, new), encoding="utf-8")
    return ""


def plan(notebooks: list[str], variants: list[Variant], *, seeds: int, broken_seeds: int, spread: bool = False,
         done: set[tuple[str, str, int]] = frozenset()) -> list[tuple[int, str, Variant]]:
    """The runs still to do, as (seed, notebook id, variant).

    Correct runs first, then broken ones, each in seed-major order: a calibration stopped at any point
    holds every variant at nearly the same number of seeds, and a rerun resumes where it stopped.
    ``spread``: seed s runs one correct variant (the s-th of all correct variants, cyclically) instead
    of all of them, so N seeds cost N correct runs per notebook; a harmless variant is one more random
    draw among many.
    """
    todo = []
    for correct in (True, False):
        for seed in range(seeds if correct else broken_seeds):
            for nb in notebooks:
                mine = [v for v in variants if v.correct == correct and (not v.notebooks or nb in v.notebooks)]
                if correct and spread:  # the turn is kept over all correct variants, so --variant only filters
                    every = [v for v in VARIANTS if v.correct and (not v.notebooks or nb in v.notebooks)]
                    mine = [v for v in mine if v.id == every[seed % len(every)].id]
                todo += [(seed, nb, v) for v in mine if (nb, v.id, seed) not in done]
    return todo


# ----------------------------------------------------------------------------- records
def read_runs(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def append_run(path: Path, run: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(run, sort_keys=True) + "\n")


# ----------------------------------------------------------------------------- the rule
def false_fail_rate(lower_bounds: list[float], threshold: float) -> float:
    """Estimated share of correct runs whose lower bound falls under ``threshold`` (normal fit)."""
    if len(lower_bounds) < 2:
        return float("nan")
    mean, sd = statistics.fmean(lower_bounds), statistics.stdev(lower_bounds)
    if sd == 0:
        return 0.0 if threshold <= mean else 1.0
    return 0.5 * math.erfc((mean - threshold) / (sd * math.sqrt(2)))


@dataclass
class Recommendation:
    metric: str
    notebook: str
    correct_n: int
    correct_mean: float
    correct_sd: float
    broken_n: int
    broken_max: float
    threshold: float | None  # None: no threshold meets both targets
    false_fail: float
    margin: float  # threshold - the best broken run's lower bound
    half_width: float  # mean half-width of the correct runs' intervals
    note: str = ""


def _known(variant_id: str) -> Variant | None:
    return next((v for v in VARIANTS if v.id == variant_id), None)


def _must_fail(run: dict) -> bool:
    v = _known(run["variant"])
    return v.must_fail if v else not run["correct"]


def _held(run: dict) -> bool:
    v = _known(run["variant"])
    return v.held if v else run["correct"]


def _by_variant(runs: list[dict], metric: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for r in runs:
        out.setdefault(r["variant"], []).append(r["lower"][metric])
    return out


def variant_false_fail(notebook: str, metric: str, runs: list[dict], threshold: float) -> dict[str, float]:
    """Per harmless variant: the estimated false-fail rate at ``threshold`` from the variant's own mean lower
    bound and the spread of all correct runs (a variant has a few seeds; the pooled spread, which includes
    the differences between variants, is the wider and so the more cautious one)."""
    ok = [r for r in runs if r["notebook"] == notebook and r["correct"] and metric in r.get("lower", {})]
    held = [r["lower"][metric] for r in ok if _held(r)]
    if len(held) < 2:
        return {}
    sd = statistics.stdev(held)
    means = {vid: statistics.fmean(lows) for vid, lows in _by_variant(ok, metric).items()}
    return {vid: 0.5 * math.erfc((m - threshold) / (sd * math.sqrt(2))) if sd else float(threshold > m)
            for vid, m in means.items()}


def recommend(notebook: str, metric: str, runs: list[dict]) -> Recommendation:
    """The threshold for one check from its runs: see the module docstring for the rule."""
    ok = [r for r in runs if r["notebook"] == notebook and _held(r) and metric in r.get("lower", {})]
    bad = [r for r in runs if r["notebook"] == notebook and _must_fail(r) and metric in r.get("lower", {})]
    lows = [r["lower"][metric] for r in ok]
    mean = statistics.fmean(lows) if lows else float("nan")
    sd = statistics.stdev(lows) if len(lows) > 1 else float("nan")
    broken_max = max((r["lower"][metric] for r in bad), default=0.0)
    half = statistics.fmean((r["upper"][metric] - r["lower"][metric]) / 2 for r in ok) if ok else float("nan")
    if len(lows) < 2:
        return Recommendation(metric, notebook, len(lows), mean, sd, len(bad), broken_max, None, float("nan"),
                              float("nan"), half, "needs at least 2 correct runs")
    # At most 1% estimated, and no correct run observed failing: a normal fit can understate a heavy
    # left tail (a seed that trains badly), and every correct run we saw fail is one too many. Each
    # harmless variant is held to 1% on its own too (its mean, the pooled spread): issue 22.
    worst_mean = min(statistics.fmean(v) for v in _by_variant(ok, metric).values())
    best = min(math.floor((min(mean, worst_mean) - Z_TARGET * sd) * 100), math.floor(min(lows) * 100)) / 100
    fits = best > broken_max
    note = "" if fits else (f"no threshold meets both targets: 1% false fails needs <= {best:.2f}, a broken run "
                            f"reached {broken_max:.3f}")
    return Recommendation(metric, notebook, len(lows), mean, sd, len(bad), broken_max, best if fits else None,
                          false_fail_rate(lows, best), best - broken_max, half, note)


# ----------------------------------------------------------------------------- implausible scores
REVIEW_NOTE = "needs review: possibly trained on held-out data"


def review_above(notebook: str, metric: str, runs: list[dict]) -> float | None:
    """The score above which a result asks for a person's look: the best value any correct run of the
    calibration reached plus the mean width of the correct runs' 95% intervals, rounded up to 0.01.
    Correct work lands above it about as rarely as a run beats the best of 20 by a whole interval; a model
    that has seen the hidden test texts (their source is public) lands far above it. None without 2 runs."""
    ok = [r for r in runs if r["notebook"] == notebook and r["correct"] and metric in r.get("value", {})]
    if len(ok) < 2:
        return None
    best = max(r["value"][metric] for r in ok)
    width = statistics.fmean(r["upper"][metric] - r["lower"][metric] for r in ok)
    return math.ceil(round((best + width) * 100, 6)) / 100


def review_flags(limits: dict[str, float], evaluation: dict) -> list[str]:
    """For a model-tier evaluation (``Evaluation.to_dict()``): one line per metric above its ``review_above``
    limit. The flag changes no score; it is for the instructor (the result's details, the class report)."""
    flags = []
    for metric, limit in limits.items():
        value = evaluation.get(metric)
        if isinstance(value, int | float) and value > limit:
            flags.append(f"{REVIEW_NOTE}: {metric} {value:.3f} on {evaluation.get('n', '?')} hidden test texts is "
                         f"above {limit:.2f}, the best correct run of the calibration plus an interval's width "
                         "(docs/calibration.md); look for the test texts in its training data")
    return flags


# ----------------------------------------------------------------------------- the table
def timeout_line(notebook: str, runs: list[dict], timeout: float) -> str:
    """How the notebook's time limit compares with the slowest correct run (the limit must leave a
    TIMEOUT_MARGIN-fold margin, so that a machine busy with other work slows grading but never fails it)."""
    ok = [r for r in runs if r["notebook"] == notebook and r["correct"] and not r.get("error")]
    if not ok:
        return f"- time limit {timeout:.0f} s: no correct run yet to compare it with"
    slow = max(ok, key=lambda r: r["duration_s"])
    need = math.ceil(slow["duration_s"] * TIMEOUT_MARGIN / 60) * 60
    verdict = "meets" if timeout >= need else "is UNDER"
    return (f"- time limit {timeout:.0f} s: the slowest correct run took {slow['duration_s']:.0f} s "
            f"({slow['threads']} thread(s)); {TIMEOUT_MARGIN}x that, rounded up to a minute, is {need} s, which the "
            f"limit {verdict} ({timeout / slow['duration_s']:.1f}x the slowest run)")


def markdown(runs: list[dict], thresholds: dict[str, dict[str, float]], *, header: str = "",
             timeouts: dict[str, float] | None = None) -> str:
    """docs/calibration.md: per check, the rule's figures, then every variant's runs."""
    lines = ["# Model-tier calibration", "",
             "Generated by `python scripts/calibrate_model_tier.py --report`; do not edit.", "",
             "**The rule.** A check passes when the lower bound of its 95% interval (Wilson for accuracy, seeded "
             "bootstrap for macro-F1) reaches the threshold: the lower bound, not the point estimate, so that a "
             "model that is only lucky on this test split does not pass, and the threshold reads as 'at least this "
             "good, with 95% confidence'. Over the correct runs (the reference and harmless variants, every seed) "
             "the lower bounds are fitted with a normal distribution; the estimated false-fail rate at a threshold "
             f"t is Phi((t - mean) / sd), and the recommended threshold is the largest t on a 0.01 grid with a rate "
             f"of at most {FALSE_FAIL_TARGET:.0%}, over all the correct runs and for each harmless variant on its "
             "own (its mean lower bound, the pooled sd), that no correct run fell under (a normal fit can "
             "understate a heavy left tail: a seed that trains badly). A correct variant the course pins (the spec "
             "sets the choice, or a hidden structural check asks for the course's) is shown with its rate but not "
             "held to it: the structural tier does not accept it from a student. It must also lie above the lower "
             "bound of every broken run "
             "(false-pass rate 0 on every run). A broken variant that a hidden structural check already catches "
             "and whose model scores within the seed spread of correct work is shown but not held to this: "
             "failing it by score would fail correct work as often. The margin is the recommended threshold minus "
             "the best broken run's lower bound.", ""]
    if header:
        lines += [header, ""]
    for notebook, metrics in thresholds.items():
        for metric, current in metrics.items():
            rec = recommend(notebook, metric, runs)
            ok = [r["lower"][metric] for r in runs if r["notebook"] == notebook and _held(r)
                  and metric in r.get("lower", {})]
            rate = false_fail_rate(ok, current)
            per_variant = variant_false_fail(notebook, metric, runs, current)
            held = {vid: p for vid, p in per_variant.items() if (v := _known(vid)) is None or v.held}
            worst = max(held, key=held.get, default=None)
            lines += [f"## {notebook}: {metric} (threshold in course.toml: {current:.2f})", "",
                      f"- correct runs: {rec.correct_n}, lower bound mean {rec.correct_mean:.3f}, sd "
                      f"{rec.correct_sd:.3f}; estimated false-fail rate at {current:.2f}: {rate:.2%}",
                      *([f"- the highest per harmless variant (its mean, the pooled sd): {held[worst]:.2%} "
                         f"({worst}, {len(held)} variant{'s' * (len(held) != 1)} held to the threshold)"]
                        if worst else []),
                      f"- broken runs: {rec.broken_n}, best lower bound {rec.broken_max:.3f}",
                      *([timeout_line(notebook, runs, timeouts[notebook])] if timeouts and notebook in timeouts
                        else []),
                      *([f"- needs review above: {ceiling:.2f} (the best correct run's value plus the mean "
                         f"interval width): a score above it is flagged '{REVIEW_NOTE}'; it changes no points"]
                        if (ceiling := review_above(notebook, metric, runs)) is not None else []),
                      "- recommended threshold: " + (f"{rec.threshold:.2f} (false-fail {rec.false_fail:.2%}, "
                                                     f"margin over broken {rec.margin:.3f}, mean interval "
                                                     f"half-width {rec.half_width:.3f}: the margin is "
                                                     f"{rec.margin / rec.half_width:.1f}x the half-width, "
                                                     f"target 2x)"
                                                     if rec.threshold is not None else f"none ({rec.note})"),
                      "", "| variant | kind | runs | value mean | lower bound min / mean / max | passes at "
                      f"{current:.2f} | est. false-fail | seconds (mean) |", "|---|---|---|---|---|---|---|---|"]
            lines += _variant_rows(runs, notebook, metric, current, per_variant)
            lines.append("")
    return "\n".join(lines) + "\n"


def _variant_rows(runs: list[dict], notebook: str, metric: str, current: float,
                  per_variant: dict[str, float]) -> list[str]:
    """One table row per variant of ``notebook``: its kind, runs, mean value, lower bounds, passes, the
    estimated false-fail rate (harmless variants), seconds."""
    lines = []
    for vid in dict.fromkeys(r["variant"] for r in runs if r["notebook"] == notebook):
        mine = [r for r in runs if r["notebook"] == notebook and r["variant"] == vid]
        scored = [r for r in mine if metric in r.get("lower", {})]
        kind = ("correct" if _held(mine[0]) else "correct, pinned by the course (not held to the threshold)"
                if mine[0]["correct"] else "broken" if _must_fail(mine[0])
                else "broken, caught by a structural check (not required to fail here)")
        if not scored:
            why = "; ".join(sorted({r.get("error", "")[:80] for r in mine})) or "no model scored"
            lines.append(f"| {vid} | {kind} | {len(mine)} | "
                         f"not scored: {why} | | | | |")
            continue
        lows = [r["lower"][metric] for r in scored]
        passes = sum(lo >= current for lo in lows)
        value = statistics.fmean(r["value"][metric] for r in scored)
        seconds = statistics.fmean(r["duration_s"] for r in mine)
        spread = f"{min(lows):.3f} / {statistics.fmean(lows):.3f} / {max(lows):.3f}"
        rate = f"{per_variant[vid]:.2%}" if vid in per_variant else "-"
        lines.append(f"| {vid} | {kind} | {len(mine)} | {value:.3f} | {spread} | {passes}/{len(scored)} | {rate} | "
                     f"{seconds:.0f} |")
    return lines
