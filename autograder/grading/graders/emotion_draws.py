"""Inputs of the stage-5 (emotion) hidden checks, drawn with the hidden seed, and the small helpers
that show the submission's values in messages.

Why drawn: each check's inputs (label columns, counts, confusion cells) used to be constants, so a
table of the grader's answers passed them. Each draw below keeps what the check needs to tell the
classic mistakes apart (a class that never occurs, a class never predicted, tied cells whose order
differs by true and by predicted index, ...), and the judge computes every expected value itself.
This module lives with the graders: it is neither released nor mounted in the jail.
"""

from __future__ import annotations

import random

import torch

from autograder.grading.gradelib import describe, hidden_rng
from autograder.grading.hidden_inputs import label_names
from autograder.grading.judge import Handle
from autograder.sandbox.wire import Record


def label_column(check: str) -> tuple[list[str], list[int], list[str], list[int]]:
    """(names, labels, small names, small labels): a 5 to 7 class column where two classes never
    occur and the first label is not class 0 (so counting in order of appearance shows), and a
    3 or 4 class column without one of its middle classes."""
    rng = hidden_rng(check)
    names = label_names(rng, rng.randint(5, 7))
    missing = rng.sample(range(len(names)), 2)
    present = [i for i in range(len(names)) if i not in missing]
    labels = [rng.choice(present) for _ in range(rng.randint(8, 14))]
    if labels[0] == 0:
        labels[0] = rng.choice([i for i in present if i != 0])
    small = label_names(rng, rng.randint(3, 4))
    gap = rng.randrange(1, len(small) - 1)
    small_labels = [rng.choice([i for i in range(len(small)) if i != gap]) for _ in range(rng.randint(3, 6))]
    small_labels[0] = len(small) - 1
    return names, labels, small, small_labels


def balanced(counts: list[int]) -> list[float]:
    """scikit-learn's ``class_weight="balanced"``: w_c = N / (K * n_c), the judge's reference."""
    return [sum(counts) / (len(counts) * n) for n in counts]


def decreasing_counts(rng: random.Random, k: int) -> list[int]:
    """``k`` different class sizes, largest first."""
    return sorted(rng.sample(range(2, 90), k), reverse=True)


def with_a_zero(rng: random.Random) -> list[int]:
    counts = [rng.randint(1, 9) for _ in range(rng.randint(3, 5))]
    counts[rng.randrange(len(counts))] = 0
    return counts


def report_lists(check: str) -> tuple[list[str], list[int], list[int], str]:
    """(names, y_true, y_pred, the name never predicted): 6 classes, one in neither list, one that
    occurs in y_true but is never predicted (its precision is 0 only with zero_division=0)."""
    rng = hidden_rng(check)
    names = label_names(rng, 6)
    absent, never = rng.sample(range(6), 2)
    used = [i for i in range(6) if i != absent]
    y_true = [rng.choice(used) for _ in range(rng.randint(14, 20))] + [never]
    rng.shuffle(y_true)
    guesses = [i for i in used if i != never]
    y_pred = [t if t != never and rng.random() < 0.6 else rng.choice(guesses) for t in y_true]
    return names, y_true, y_pred, names[never]


def _ranked(cells: dict, by_true: bool = True) -> list[tuple[int, int, int]]:
    off = [(n, t, p) for (t, p), n in cells.items() if t != p and n > 0]
    return sorted(off, key=(lambda c: (-c[0], c[1], c[2])) if by_true else (lambda c: (-c[0], c[2], c[1])))


def confusion(check: str) -> tuple[list[str], list[int], list[int], list[tuple[str, str, int]]]:
    """(names, y_true, y_pred, every mistake ranked): 6 to 8 off-diagonal cells, one largest, three
    tied whose order by true index differs from the order by predicted index within the top 3, and
    a diagonal cell larger than any mistake (it would rank first if the diagonal were kept)."""
    rng = hidden_rng(check)
    names = label_names(rng, 6)
    pairs = [(t, p) for t in range(6) for p in range(6) if t != p]
    while True:
        chosen = rng.sample(pairs, rng.randint(6, 8))
        top = rng.randint(3, 4)
        cells = {cell: top if i == 0 else 2 if i < 4 else 1 for i, cell in enumerate(chosen)}
        if _ranked(cells)[:3] != _ranked(cells, by_true=False)[:3]:
            break
    for i in rng.sample(range(6), rng.randint(2, 4)):
        cells[(i, i)] = rng.randint(1, top + 2)
    cells[(rng.randrange(6),) * 2] = top + 1 + rng.randint(0, 2)
    pairs_out = [pair for pair, n in cells.items() for _ in range(n)]
    rng.shuffle(pairs_out)
    ranked = [(names[t], names[p], n) for n, t, p in _ranked(cells)]
    return names, [t for t, _ in pairs_out], [p for _, p in pairs_out], ranked


def type_name(value) -> str:
    """The class name of a value as the submission made it (a handle's or a record's remote type)."""
    if isinstance(value, Handle):
        return value.type
    if isinstance(value, Record) and value.remote_type:
        return value.remote_type.rsplit(".", 1)[-1][:60]
    return type(value).__name__


def short(value) -> str:
    """A one-line description: a model or other big object by its type only."""
    if isinstance(value, torch.Tensor):
        return f"{float(value):.6f}" if value.numel() == 1 else describe(value)
    if isinstance(value, (int, float, str, type(None))):
        return describe(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(short(v) for v in value[:4]) + (", ..." if len(value) > 4 else "") + ")"
    return f"a {type_name(value)}"


def as_tuples(items: list) -> list:
    """Rows as tuples (a named tuple crosses the boundary as a record of its fields)."""
    return [tuple(x) if isinstance(x, (tuple, list)) or (isinstance(x, Record) and x.is_record) else x
            for x in items]


def rounded(t: torch.Tensor) -> list[float]:
    return [round(float(x), 4) for x in t]
