"""What a batch worker is asked to grade: one typed request, sent as one JSON line on its stdin.

The worker (``batch/worker.py``) is a fresh process with an environment the batch chose
(``child.worker_env``): every setting it needs is here, never in a variable it would read, and the
model arrives resolved (the Dask worker resolved it once for all its submissions). Frozen and
serialised whole, so a field added on the sending side cannot be dropped on the way.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from autograder.course.models import ResolvedModel


@dataclass(frozen=True)
class GradeRequest:
    """Grade ``submission`` (a fresh copy) as ``autograder grade`` would, working in ``work_dir``.

    ``sandbox_off`` is a reason to grade without the jail (the CLI's AUTOGRADER_SANDBOX=off, passed
    down); None lets the worker probe its own machine. ``stages`` None grades every stage of the tier.
    """

    submission: str
    work_dir: str
    tier: str = "structural"
    stages: tuple[str, ...] | None = None
    threads: int = 1
    require_sandbox: bool = False
    model: ResolvedModel | None = None
    sandbox_off: str | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> GradeRequest:
        raw = json.loads(text)
        model = raw.get("model")
        stages = raw.get("stages")
        return cls(**{**raw, "model": ResolvedModel(**model) if model else None,
                      "stages": tuple(stages) if stages is not None else None})
