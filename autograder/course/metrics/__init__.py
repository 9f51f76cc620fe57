"""The course's metrics as Hugging Face ``evaluate`` modules, resolved the way the course model is.

``load_metric("f1")`` returns an ``evaluate.EvaluationModule``:

- with ``COURSE_ONLINE=1``: ``evaluate.load("f1")``, the Hub's module (or its copy in the local
  Hugging Face cache), exactly what every Trainer tutorial writes;
- otherwise: the stand-in shipped in this folder (``f1/f1.py``), loaded with ``evaluate.load(folder)``,
  which works with ``HF_HUB_OFFLINE=1``. ``evaluate.load("f1")`` itself would fetch the script
  from the Hub, which an offline classroom or the grading jail cannot reach.

Both take the same keyword arguments and give the same values (scikit-learn's), so code written
offline runs unchanged online. One line says which was used; each module is loaded once per
process (the first load imports ``evaluate`` and ``datasets``: seconds; later ones are free).

This module imports nothing else from ``autograder``: submissions import it inside the grading
jail, where only this folder of the package is mounted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import evaluate

#: The metrics the course ships; online, any name on the Hub loads.
METRICS = ("accuracy", "f1", "precision", "recall")
HERE = Path(__file__).resolve().parent
_LOADED: dict[tuple[str, str], evaluate.EvaluationModule] = {}


@dataclass(frozen=True)
class ResolvedMetric:
    """What a metric name resolved to, and why (shown to the user in one line)."""

    name: str
    path: str  # what evaluate.load is given: a Hub name or a module folder
    source: str  # "hub" | "packaged"
    reason: str

    def describe(self) -> str:
        return f"metric {self.name}: {self.reason}"


def _online() -> bool:
    # the same switch as autograder.course.models.resolve_model (not imported: see the docstring)
    return os.environ.get("COURSE_ONLINE", "") not in ("", "0", "false")


def shipped_metric_dir(name: str) -> Path:
    """The folder of the shipped module ``name`` (it holds ``<name>.py``, as ``evaluate`` expects)."""
    if name not in METRICS:
        raise ValueError(f"the course ships the metrics {', '.join(METRICS)}; {name!r} is not one of them "
                         f"(online, set COURSE_ONLINE=1 and evaluate.load({name!r}) fetches it from the Hub)")
    return HERE / name


def resolve_metric(name: str, *, online: bool | None = None) -> ResolvedMetric:
    """Resolve a metric name to the Hub's module (``COURSE_ONLINE=1``) or the shipped stand-in."""
    if online is None:
        online = _online()
    if online:
        return ResolvedMetric(name, name, "hub", f'evaluate.load("{name}") from the Hub or the local cache '
                                                 "(COURSE_ONLINE=1)")
    folder = shipped_metric_dir(name)
    return ResolvedMetric(name, str(folder), "packaged",
                          f"the course's offline stand-in for evaluate.load(\"{name}\") "
                          f"(autograder/course/metrics/{name}/)")


def load_metric(name: str, *, online: bool | None = None, quiet: bool = False) -> evaluate.EvaluationModule:
    """The ``evaluate`` module for ``name``, loaded once per process (see the module docstring).

    ``load_metric("accuracy")`` stands for ``evaluate.load("accuracy")``: use the result the same
    way, e.g. ``load_metric("f1").compute(predictions=..., references=..., average="macro")``.
    """
    resolved = resolve_metric(name, online=online)
    key = (resolved.source, resolved.path)
    if key not in _LOADED:
        import evaluate

        # in memory: no cache files to write or lock, so parallel graders and read-only homes are fine
        _LOADED[key] = evaluate.load(resolved.path, keep_in_memory=True)
        if not quiet:
            print(resolved.describe(), flush=True)
    return _LOADED[key]
