"""Result objects of a grading run. Every report (table, JSON, exports) is rendered from these.

Their text fields are cleaned as they are set (:func:`autograder.messages.clean_text`), whoever
builds them: the structural grader, the model tier, a batch worker's validated JSON. A result
therefore never holds a control character, and no report has to remember to drop them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from autograder.messages import clean_text


def clean_data(value: Any) -> Any:
    """Strings cleaned in a nest of lists and dicts, in place (whoever holds the dict sees the change)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        value[:] = [clean_data(v) for v in value]
    elif isinstance(value, tuple):
        return tuple(clean_data(v) for v in value)
    elif isinstance(value, dict):
        items = [(clean_data(k), clean_data(v)) for k, v in value.items()]
        value.clear()
        value.update(items)
    return value


class _Cleaned:
    """Text fields (``TEXT``) pass through :func:`clean_data` on every assignment, __init__'s included."""

    TEXT: ClassVar[frozenset[str]] = frozenset()

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, clean_data(value) if name in self.TEXT else value)


@dataclass
class CheckResult(_Cleaned):
    name: str
    passed: bool
    score: float
    max_score: float
    message: str = ""
    hidden: bool = True
    TEXT: ClassVar[frozenset[str]] = frozenset({"name", "message"})


@dataclass
class StageResult(_Cleaned):
    id: str
    title: str
    score: float
    max_score: float
    checks: list[CheckResult] = field(default_factory=list)
    hint: str = ""
    error: str = ""
    duration_s: float = 0.0
    tier: str = "structural"
    details: dict = field(default_factory=dict)
    TEXT: ClassVar[frozenset[str]] = frozenset({"id", "title", "hint", "error", "tier", "details"})


@dataclass
class GradeResult(_Cleaned):
    submission: str
    stages: list[StageResult] = field(default_factory=list)
    model: str = ""
    duration_s: float = 0.0
    sandbox: str = ""  # "sandbox: on (...)" or "sandbox: off (<reason>)": every report states it
    course: str = ""  # the course's title, for exports (reports read the result, never the manifest)
    course_stages: list[str] = field(default_factory=list)  # every stage and notebook id, in course order
    warnings: list[str] = field(default_factory=list)  # e.g. files of the submission that were refused
    # for the instructor, never a score: e.g. hidden test texts found in the submission's files
    review: list[str] = field(default_factory=list)
    submitted: str = ""  # when the submission last changed (ISO 8601, UTC): for "late", without its files
    TEXT: ClassVar[frozenset[str]] = frozenset({"submission", "model", "sandbox", "course", "course_stages",
                                                "warnings", "review", "submitted"})

    @property
    def score(self) -> float:
        return round(sum(s.score for s in self.stages), 4)

    @property
    def max_score(self) -> float:
        return round(sum(s.max_score for s in self.stages), 4)

    def needs_review(self) -> list[str]:
        """What a person should look at before the grade stands: the result's own review lines and each
        stage's (``details["needs_review"]``: a model-tier score above what correct work reaches)."""
        stages = [f"{s.id}: {line}" for s in self.stages for line in s.details.get("needs_review", [])
                  if isinstance(line, str)]
        return [*self.review, *stages]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["score"] = self.score
        data["max_score"] = self.max_score
        return data

    @classmethod
    def from_dict(cls, data: dict) -> GradeResult:
        stages = [
            StageResult(**{**s, "checks": [CheckResult(**c) for c in s.get("checks", [])]})
            for s in data.get("stages", [])
        ]
        return cls(
            submission=data["submission"],
            stages=stages,
            model=data.get("model", ""),
            duration_s=data.get("duration_s", 0.0),
            sandbox=str(data.get("sandbox", "")),
            course=str(data.get("course", "")),
            course_stages=[str(x) for x in data.get("course_stages", [])],
            warnings=[str(w) for w in data.get("warnings", [])],
            review=[str(w) for w in data.get("review", [])],
            submitted=str(data.get("submitted", "")),
        )
