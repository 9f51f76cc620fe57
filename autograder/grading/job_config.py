"""The judge's settings as one typed value: what the judge server and each of its children are told.

A judge learns nothing from its environment (an allow-list, ``procs.trusted_env``: nothing of the
grader's may ride along towards a jail) and nothing from a global: ``judge_process`` writes one
:class:`JudgeJob` as JSON, names the file on the server's command line, and the server hands each
judge child the same value narrowed to its one stage (:meth:`JudgeJob.for_stage`), which the
graders' plugin reads back whole. One class, so a setting added for the server cannot be dropped on
the way to the child; frozen, so nothing changes it between the two.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from autograder.course.manifest import Limits, SubmissionCaps
from autograder.sandbox.jail import SandboxStatus


@dataclass(frozen=True)
class StageSpec:
    """One stage as the judge runs it: its grader file, a call's time limit, all its calls' budget."""

    name: str  # the grader file's name, e.g. test_stage1_tokenize.py
    file: str
    timeout: float
    budget: float


@dataclass(frozen=True)
class JudgeJob:
    """Everything a judge needs: the submission, the stages with their limits, how to jail the runners.

    ``results`` is a judge child's records file (JSON lines, one per check); the server's own job has
    none. ``threads`` 0 leaves the runners' thread count to the jail's default; ``slots`` is how many
    stages the server grades side by side; ``warm`` lends each stage a warm jailed zygote.
    """

    submission: str
    work: str
    stages: tuple[StageSpec, ...]
    limits: Limits
    caps: SubmissionCaps
    sandbox: SandboxStatus
    threads: int = 0
    slots: int = 1
    warm: bool = True
    results: str = ""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> JudgeJob:
        raw = json.loads(text)
        return cls(**{**raw, "stages": tuple(StageSpec(**s) for s in raw["stages"]),
                      "limits": Limits(**raw["limits"]), "caps": SubmissionCaps(**raw["caps"]),
                      "sandbox": SandboxStatus(**raw["sandbox"])})

    @classmethod
    def read(cls, path: str | Path) -> JudgeJob:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def write(self, path: Path) -> Path:
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    def for_stage(self, stage: StageSpec) -> JudgeJob:
        """The job of the judge child that grades ``stage``: that stage only, with its own records file."""
        return dataclasses.replace(self, stages=(stage,), results=str(self.results_file(stage)))

    def results_file(self, stage: StageSpec) -> Path:
        return Path(self.work) / f"{stage.name}.jsonl"

    def stage_named(self, name: str) -> StageSpec | None:
        """The spec of the grader file ``name`` (``test_stage1_tokenize.py``), if this job grades it."""
        return next((s for s in self.stages if s.name == name), None)
