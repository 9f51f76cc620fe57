"""Why a model-tier check failed, in words a student can act on.

A bare "accuracy 0.52 < 0.70" sends a student to guess. The evaluation already says more: a model
that predicts one class for nearly every text learned nothing (an untrained encoder built with
``from_config``, a learning rate too low to move it); a model whose recall on a few classes
collapsed is ignoring the rare classes (no class weights); a notebook whose parameters cell was
replaced by the course's values ran with other numbers than the student chose. Each function
here reads only the trusted evaluation or the submitted notebook's text (never executes it).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

# a class counts as collapsed when its recall is below this share of the macro recall
COLLAPSE_RATIO = 0.5
# predicting one class for at least this share of the texts is what an untrained model does
DOMINANT_SHARE = 0.85
# keys the grader always sets for the job itself: never a student's choice
JOB_PARAMETERS = frozenset({"model_name", "data_dir", "output_dir", "seed", "num_threads"})


def majority_baseline(confusion: list[list[int]]) -> tuple[int, float]:
    """(index of the most frequent true class, its share): the accuracy of always guessing it."""
    support = [sum(row) for row in confusion]
    total = sum(support) or 1
    best = max(range(len(support)), key=support.__getitem__)
    return best, support[best] / total


def near_baseline(evaluation: dict, learning_rate: float | None = None) -> str:
    """A message when the model does no better than guessing one class, else ''."""
    confusion, labels = evaluation.get("confusion") or [], evaluation.get("labels") or []
    if not confusion or len(labels) != len(confusion):
        return ""
    _, base = majority_baseline(confusion)
    predicted = [sum(row[j] for row in confusion) for j in range(len(labels))]
    total = sum(predicted) or 1
    top = max(range(len(labels)), key=predicted.__getitem__)
    share = predicted[top] / total
    lo = (evaluation.get("accuracy_ci") or [0.0, 0.0])[0]
    if share < DOMINANT_SHARE and lo > base:
        return ""
    lr = f" (this run used learning_rate={learning_rate:g})" if learning_rate else ""
    return (f"the model predicts '{labels[top]}' for {share:.0%} of the texts and does not beat always guessing "
            f"the most common class ({base:.0%}): it learned almost nothing. Was the encoder built with "
            f"from_pretrained (from_config starts from random weights)? Is the learning rate too low{lr}?")


def collapsed_classes(evaluation: dict) -> list[tuple[str, float]]:
    """Classes whose recall fell below half the macro recall, rarest first: [(name, recall)]."""
    per_class = evaluation.get("per_class") or {}
    recalls = {name: float(row.get("recall", 0.0)) for name, row in per_class.items() if row.get("support")}
    if len(recalls) < 3:
        return []
    mean = sum(recalls.values()) / len(recalls)
    low = [(name, r) for name, r in recalls.items() if r < COLLAPSE_RATIO * mean]
    return sorted(low, key=lambda item: per_class[item[0]].get("support", 0))


def recall_collapse(evaluation: dict, uses_class_weights: bool) -> str:
    """A message naming the classes the model almost never finds, else ''."""
    low = collapsed_classes(evaluation)
    if not low:
        return ""
    names = ", ".join(f"{name} (recall {r:.2f})" for name, r in low)
    ask = ("Does your training use the class weights (WeightedTrainer with class_weights from stage 5)? "
           "Rare classes need them." if uses_class_weights else
           "Rare classes are the first to be ignored: more epochs or class weights help.")
    return f"the model rarely finds {names}. {ask}"


def failure_reason(evaluation: dict, *, dataset: str, learning_rate: float | None = None) -> str:
    """The most useful cause for a metric below its threshold; the generic advice when none shows."""
    return (near_baseline(evaluation, learning_rate)
            or recall_collapse(evaluation, uses_class_weights=dataset == "emotion")
            or "train longer or check the training set-up")


# ----------------------------------------------------------------------------- parameters
def student_parameters(notebook: Path) -> dict:
    """The literal values of the submitted notebook's ``parameters`` cell, read as text (never run)."""
    try:
        nb = json.loads(notebook.read_text(encoding="utf-8"))
        cells = [c for c in nb.get("cells", []) if "parameters" in (c.get("metadata", {}).get("tags") or [])]
        source = cells[0].get("source", "") if cells else ""
        tree = ast.parse("".join(source) if isinstance(source, list) else str(source))
    except (OSError, ValueError, SyntaxError, AttributeError, TypeError):
        return {}
    values = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                continue
    return values


def overridden_parameters(notebook: Path, used: dict) -> str:
    """'' when the grader ran with the student's own values; else which values it used instead."""
    mine = student_parameters(notebook)
    changed = [(k, mine[k], v) for k, v in used.items()
               if k in mine and k not in JOB_PARAMETERS and mine[k] != v]
    if not changed:
        return ""
    shown = ", ".join(f"{k}={v!r} (your cell: {m!r})" for k, m, v in changed)
    return (f"the grader ran the notebook with the course's parameters {shown}: papermill replaces the "
            "parameters cell with the values in course.toml, so your own values there were not used")


# ----------------------------------------------------------------------------- timeouts
def training_progress(output_dir: Path, planned_epochs: float | None) -> str:
    """How far training got, from the newest ``trainer_state.json`` under ``output_dir``; '' if none.

    The file was written by student code: only a number is taken from it, links are not followed,
    and a large or broken file is ignored.
    """
    best = None
    for path in Path(output_dir).glob("**/trainer_state.json"):
        try:
            if path.is_symlink() or not path.is_file() or path.stat().st_size > 4 << 20:
                continue
            epoch = json.loads(path.read_text(encoding="utf-8")).get("epoch")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(epoch, (int, float)) and not isinstance(epoch, bool) and epoch >= 0:
            best = max(best or 0.0, float(epoch))
    if best is None:
        return "training had not finished its first epoch"
    of = f" of {planned_epochs:g}" if planned_epochs else ""
    return f"training had reached epoch {best:.2f}{of}"
