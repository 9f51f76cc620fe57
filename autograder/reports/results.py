"""Result objects of a grading run. Every report (table, JSON, exports) is rendered from these."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class CheckResult:
    name: str
    passed: bool
    score: float
    max_score: float
    message: str = ""
    hidden: bool = True


@dataclass
class StageResult:
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


@dataclass
class GradeResult:
    submission: str
    stages: list[StageResult] = field(default_factory=list)
    model: str = ""
    duration_s: float = 0.0
    sandbox: str = ""  # "sandbox: on (...)" or "sandbox: off (<reason>)": every report states it
    course: str = ""  # the course's title, for exports (reports read the result, never the manifest)
    course_stages: list[str] = field(default_factory=list)  # every stage and notebook id, in course order
    warnings: list[str] = field(default_factory=list)  # e.g. files of the submission that were refused

    @property
    def score(self) -> float:
        return round(sum(s.score for s in self.stages), 4)

    @property
    def max_score(self) -> float:
        return round(sum(s.max_score for s in self.stages), 4)

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
        )
