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

The submissions the calibration runs (the reference, its harmless and broken variants) and the run plan
live in :mod:`autograder.grading.calibration_variants`.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from autograder import REPO_ROOT
from autograder.grading.calibration_variants import VARIANTS, Variant

#: The calibration's record (one JSON line per run): the thresholds in course.toml follow from it.
RUNS = REPO_ROOT / "docs" / "calibration_runs.jsonl"
FALSE_FAIL_TARGET = 0.01
Z_TARGET = 2.3263  # Phi^-1(0.99)
TIMEOUT_MARGIN = 3  # a notebook's time limit: at least this many times the slowest correct run


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
