"""Why a model-tier check failed, in words a student can act on.

A bare "accuracy 0.52 < 0.70" sends a student to guess. The evaluation already says more: a model
that predicts one class for nearly every text learned nothing (an untrained encoder built with
``from_config``, a learning rate too low to move it); a model whose recall on a few classes
collapsed is ignoring the rare classes (no class weights); a notebook whose parameters cell was
replaced by the course's values ran with other numbers than the student chose. Each function
here reads only the trusted evaluation or the submitted notebook's text (never executes it).

Before any of those guesses comes the run's own record: the Trainer's log history (the learning
curve the grader copied out, numbers only). A model trained for a third of the course's steps
also misses the rare classes, and asking about class weights then sends the student after the
wrong cause: the number of optimisation steps against the course's, and a training loss still
falling steeply when training stopped, are named first. That record was written by the
student's code, so it only ever shapes a message, never a score.
"""

from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass
from pathlib import Path

# a class counts as collapsed when its recall is below this share of the macro recall
COLLAPSE_RATIO = 0.5
# predicting one class for at least this share of the texts is what an untrained model does
DOMINANT_SHARE = 0.85
# keys the grader always sets for the job itself: never a student's choice
JOB_PARAMETERS = frozenset({"model_name", "data_dir", "output_dir", "seed", "num_threads"})
# A run is short when it made fewer than this share of the optimisation steps the course's parameters give.
# Not 1.0: a Trainer that drops each epoch's last, partial batch (dataloader_drop_last) makes a step or two
# fewer per epoch and trains just as well; a changed epoch count or batch size falls far below it.
SHORT_RUN_SHARE = 0.9
# The training loss is "still falling steeply" at the end when, over the second half of the logged losses,
# a straight line through them falls by at least this share of the FIRST logged loss per epoch (the first
# loss is the untrained head's, about ln(number of classes)). A share of the first loss, not of the last,
# so that a loss near zero cannot look steep by falling a little. Measured on the capstone's log histories:
# a run cut to 1 epoch still falls 19% per epoch at its end. 10-step averages scatter by up to about 0.1,
# which tilts the line fitted over the second half of a 3-epoch run by about 4% of the first loss per epoch:
# 10% stays clear of that noise and well under what a run cut short shows.
STEEP_FALL_PER_EPOCH = 0.10
# ...and only while the loss is still at least this share of the first one. A loss far below its start is
# the model memorising texts it has seen in earlier epochs: the reference ends its 3 epochs at 22% of its
# first loss and still falls 22% of it per epoch, which says nothing about learning left to do. The 1-epoch
# run ends at 82%.
STILL_HIGH_SHARE = 0.5
MIN_LOGGED_LOSSES = 4  # fewer points draw no trend out of the noise of 10-step averages


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


def _rarely_found(evaluation: dict) -> str:
    """'the model rarely finds surprise (recall 0.03), ...' for the collapsed classes, else ''."""
    low = collapsed_classes(evaluation)
    return "the model rarely finds " + ", ".join(f"{name} (recall {r:.2f})" for name, r in low) if low else ""


def recall_collapse(evaluation: dict, uses_class_weights: bool) -> str:
    """A message naming the classes the model almost never finds, else ''."""
    found = _rarely_found(evaluation)
    if not found:
        return ""
    ask = ("Does your training use the class weights (WeightedTrainer with class_weights from stage 5)? "
           "Rare classes need them." if uses_class_weights else
           "Rare classes are the first to be ignored: more epochs or class weights help.")
    return f"{found}. {ask}"


def failure_reason(evaluation: dict, *, dataset: str, learning_rate: float | None = None,
                   curve: list[dict] | None = None, plan: CoursePlan | None = None) -> str:
    """The most useful cause for a metric below its threshold; the generic advice when none shows.

    ``curve`` is the run's learning curve (``details["learning_curve"]``) and ``plan`` what the course's
    parameters ask; with both, a run that trained too little is told so first, and what the evaluation
    shows (rare classes missed) follows as its consequence, not as a question about class weights.
    """
    record = run_record(curve or [])
    length = training_length(record, plan)
    if length:
        seen = _rarely_found(evaluation)
        return f"{length}{'' if length.endswith('?') else '.'} At that point {seen}" if seen else length
    return (near_baseline(evaluation, learning_rate)
            or recall_collapse(evaluation, uses_class_weights=dataset == "emotion")
            or "train longer or check the training set-up")


# ----------------------------------------------------------------------------- the run's own record
@dataclass(frozen=True)
class CoursePlan:
    """How long the course's parameters make a run: ``epochs`` over ``train_rows`` texts in batches of
    ``batch_size``, one optimisation step per batch (the course sets no gradient accumulation)."""

    epochs: float
    batch_size: int
    train_rows: int

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.train_rows / self.batch_size)

    @property
    def steps(self) -> int:
        """The Trainer's own count: ``ceil(epochs * steps per epoch)``."""
        return math.ceil(self.epochs * self.steps_per_epoch)


def course_plan(parameters: dict, train_rows: int) -> CoursePlan | None:
    """The plan of a run from the parameters the grader passed to the notebook; None without usable ones."""
    epochs, batch = parameters.get("epochs"), parameters.get("batch_size")
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in (epochs, batch))
    if not numbers or train_rows <= 0:
        return None
    return CoursePlan(float(epochs), int(batch), int(train_rows))


@dataclass(frozen=True)
class RunRecord:
    """What a run's log history says about its training: the last optimisation step and epoch it
    reached, and its logged training losses as (epoch, loss) in order."""

    steps: int
    epoch: float
    losses: tuple[tuple[float, float], ...]


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def run_record(curve: list[dict]) -> RunRecord | None:
    """The record of a learning curve (:func:`autograder.grading.artifacts.learning_curve` already keeps
    only finite numbers; checked again here, since the log history was written by student code); None
    when it holds no step (a notebook that saved no log history)."""
    points = [p for p in curve if isinstance(p, dict)]
    steps = [p["step"] for p in points if _number(p.get("step"))]
    epochs = [p["epoch"] for p in points if _number(p.get("epoch"))]
    if not steps or not epochs:
        return None
    losses = tuple((float(p["epoch"]), float(p["loss"])) for p in points
                   if _number(p.get("epoch")) and _number(p.get("loss")))
    return RunRecord(int(max(steps)), float(max(epochs)), losses)


def _epochs(n: float) -> str:
    shown = f"{n:.1f}" if n >= 0.1 else f"{n:.2f}"  # a run of a few steps is not "0.0 epochs"
    return f"{shown} epoch" + ("" if shown == "1.0" else "s")


def short_training(record: RunRecord | None, plan: CoursePlan | None) -> str:
    """'' unless the run made clearly fewer optimisation steps than the course's parameters give; then
    both counts, and the setting that most likely cut the run short."""
    if record is None or plan is None or record.steps >= SHORT_RUN_SHARE * plan.steps:
        return ""
    steps = f"{record.steps} optimisation step" + ("" if record.steps == 1 else "s")
    said = (f"training ran {steps} ({_epochs(record.epoch)}); the course's parameters "
            f"give {plan.steps} ({plan.epochs:g} epoch{'' if plan.epochs == 1 else 's'} of {plan.steps_per_epoch} "
            f"steps: {plan.train_rows:,} "
            f"training texts in batches of {plan.batch_size})")
    if record.epoch < SHORT_RUN_SHARE * plan.epochs:
        return (f"{said}: did the notebook override num_train_epochs or max_steps? Pass the parameters cell's "
                "epochs on (make_training_args(..., epochs=epochs)), which the grader sets, and set no max_steps")
    return (f"{said}: it went through every epoch in fewer, larger steps. Did the notebook change the batch size "
            "or set gradient_accumulation_steps? Pass the parameters cell's batch_size on, which the grader sets")


def _slope(points: tuple[tuple[float, float], ...]) -> float | None:
    """Least-squares slope of loss against epoch; None when the epochs do not vary."""
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var > 0 else None


def still_falling(record: RunRecord | None) -> str:
    """'' unless the training loss was still high and falling steeply when training stopped
    (STEEP_FALL_PER_EPOCH, STILL_HIGH_SHARE); then by how much, in the run's own numbers."""
    if record is None or len(record.losses) < MIN_LOGGED_LOSSES:
        return ""
    first = record.losses[0][1]
    tail = record.losses[len(record.losses) // 2:]
    slope = _slope(tail)
    end = sum(loss for _, loss in tail[-2:]) / len(tail[-2:])
    if first <= 0 or slope is None or -slope < STEEP_FALL_PER_EPOCH * first or end < STILL_HIGH_SHARE * first:
        return ""
    return (f"the training loss was still falling steeply when training stopped (by {-slope:.2f} per epoch over "
            f"the last {_epochs(tail[-1][0] - tail[0][0])}, from {tail[0][1]:.2f} to {tail[-1][1]:.2f}) and was still "
            f"{end / first:.0%} of its first value ({first:.2f}): the model had more to learn")


def training_length(record: RunRecord | None, plan: CoursePlan | None) -> str:
    """What the run's record says about its length (too few steps, a loss still falling), joined; else ''."""
    short, falling = short_training(record, plan), still_falling(record)
    if short and falling:
        return f"{short}. Also, {falling}"
    return short or (f"{falling}. Does the notebook pass the parameters cell's epochs and learning_rate on (the "
                     "grader sets them)?" if falling else "")


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
