"""Would this run pass? The verdict a student reads where they train, and again in `autograder status`.

The grade compares the LOWER end of a 95% interval of the saved model's score on the hidden test
split with each threshold of course.toml (Wilson for accuracy, a seeded bootstrap for macro-F1:
the same functions as the grader's evaluator). The student has the validation split only, so the
verdict is computed the same way on it: "would pass on validation" is a good sign, not a grade.
It also names the parameters of this run that differ from the grader's (a quick ``epochs=1`` run
is expected to fall short, and a student should know that is why).

The notebook's last cell calls :func:`notebook_verdict`, which prints the lines and keeps the run's
parameters next to its validation predictions, so :func:`saved_run_verdict` (`autograder status`,
the practice workflow's summary) shows the same lines later.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from autograder.course.manifest import Notebook, load_course

RUN_FILE = "run_parameters.json"  # beside validation_predictions.jsonl in outputs/<notebook>/
PREDICTIONS = "validation_predictions.jsonl"
METRIC_NAMES = {"accuracy": "accuracy", "macro_f1": "macro-F1"}


def graded_run() -> bool:
    """True in the grader's run of a notebook: its jail gets a course.toml without thresholds
    (autograder.course.manifest.strip_thresholds), which no student copy has."""
    return not any(nb.thresholds for nb in load_course().notebooks)


def _notebook(name: str) -> Notebook:
    wanted = Path(name).name
    for nb in load_course().notebooks:
        if nb.notebook == wanted or Path(nb.notebook).stem == Path(wanted).stem:
            return nb
    raise KeyError(f"no notebook {name!r} in course.toml")


def score(metric: str, y_true: list, y_pred: list, labels: list) -> tuple[float, float, float]:
    """(value, lower, upper) of a graded metric, computed as the grader's evaluator computes it."""
    from autograder.stats import bootstrap_macro_f1, wilson_interval

    if metric == "accuracy":
        correct = sum(t == p for t, p in zip(y_true, y_pred, strict=True))
        return (correct / len(y_true), *wilson_interval(correct, len(y_true)))
    if metric == "macro_f1":
        return bootstrap_macro_f1(y_true, y_pred, labels=labels, seed=load_course().raw["course"].get("seed", 42))
    raise KeyError(f"no verdict for the metric {metric!r}")


def test_rows(dataset: str) -> int:
    """How many texts the hidden test split has (the instructor's manifest records the split; a student
    copy's records only its size, ``hidden_test_rows``); 0 when unknown."""
    from autograder.course.data import manifest

    entry = manifest().get(dataset, {})
    return int(entry.get("splits", {}).get("test", {}).get("rows") or entry.get("hidden_test_rows") or 0)


def lower_on_test(value: float, low: float, n_validation: int, n_test: int) -> float:
    """The lower end the grader would find if the model scored ``value`` on its larger test split: an
    interval's half-width shrinks with the square root of the number of texts."""
    if n_test <= n_validation or n_validation <= 0:
        return low
    return value - (value - low) * math.sqrt(n_validation / n_test)


def metric_line(metric: str, value: float, low: float, high: float, threshold: float,
                n_validation: int = 0, n_test: int = 0) -> str:
    """One metric's verdict in words: value, interval, threshold, would (not) pass.

    Why the test split's size: the grade compares the lower end of the interval on the hidden test
    split (2,000 sentiment texts) with the threshold; the same score on 200 validation texts has an
    interval three times as wide, so its own lower end would call correct work a failure.
    """
    graded_low = lower_on_test(value, low, n_validation, n_test)
    ok = graded_low >= threshold
    where = f"on {n_test} test texts this score's lower end would be about {graded_low:.3f}" if n_test > n_validation \
        else f"its lower end is {graded_low:.3f}"
    return (f"{METRIC_NAMES.get(metric, metric)} {value:.3f} (95% interval {low:.3f}-{high:.3f}), threshold "
            f"{threshold:.2f}: {'would pass' if ok else 'would not pass'} on validation ({where}; the grade uses "
            "the hidden test split)")


def differing_parameters(nb: Notebook, parameters: dict) -> str:
    """'this run: epochs=1; the grader uses 3' for each parameter that differs from the grader's ('' if none)."""
    parts = [f"this run: {name}={parameters[name]!r}; the grader uses {want!r}"
             for name, want in nb.parameters.items() if name in parameters and parameters[name] != want]
    return ". ".join(parts).replace("'", "")


def verdict_lines(nb: Notebook, y_true: list[str], y_pred: list[str], parameters: dict | None = None) -> list[str]:
    """The verdict: one line per graded metric, then the parameters that differ from the grader's."""
    labels = load_course().raw["datasets"][nb.dataset]["labels"]
    lines = [f"{nb.notebook}, your model on {len(y_true)} validation texts (practice, not your grade):"]
    if not nb.thresholds:
        return [*lines, "  the thresholds are not published in your course.toml"]
    for metric, threshold in nb.thresholds.items():
        lines.append("  " + metric_line(metric, *score(metric, y_true, y_pred, labels), threshold,
                                        len(y_true), test_rows(nb.dataset)))
    if differing := differing_parameters(nb, parameters or {}):
        lines.append(f"  {differing} (a run with the grader's settings may score higher)")
    return lines


def notebook_verdict(notebook: str, y_true: list[str], y_pred: list[str], parameters: dict,
                     output_dir: str | Path | None = None) -> None:
    """Print the verdict in a notebook's last cell, and keep ``parameters`` in ``output_dir`` for
    `autograder status`. ``y_true``/``y_pred``: label names of the validation texts."""
    if graded_run():
        print("verdict: skipped (this is the grader's run; it scores the saved model on the hidden test split)")
        return
    nb = _notebook(notebook)
    if output_dir is not None:
        kept = {k: v for k, v in parameters.items() if k in nb.parameters}
        (Path(output_dir) / RUN_FILE).write_text(json.dumps(kept, indent=1) + "\n")
    print("\n".join(verdict_lines(nb, list(y_true), list(y_pred), parameters)))


def saved_run_verdict(output_dir: str | Path, notebook: str) -> list[str]:
    """The verdict of the last run saved in ``output_dir`` (its validation predictions and parameters)."""
    folder = Path(output_dir)
    try:
        rows = [json.loads(line) for line in (folder / PREDICTIONS).read_text().splitlines() if line.strip()]
        y_true, y_pred = [r["label"] for r in rows], [r["prediction"] for r in rows]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    if not rows:
        return []
    try:
        parameters = json.loads((folder / RUN_FILE).read_text())
    except (OSError, ValueError):
        parameters = {}
    return verdict_lines(_notebook(notebook), y_true, y_pred, parameters if isinstance(parameters, dict) else {})
