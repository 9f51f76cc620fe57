"""What a worker's result must be: the batch trusts no field it did not check.

A result that reaches the batch is data from a child process that ran a submission's grading;
:func:`validate_result` checks every field's type, finite numbers, scores within their bounds
and equal to the sum of their checks, and the manifest's stages, checks and points.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass

from autograder.course.manifest import load_course
from autograder.reports.results import CheckResult, GradeResult, StageResult

OUTPUT_CAP = 16 << 20  # bytes of a worker's result (JSON); more fails the submission
STDERR_TAIL = 4000  # characters of a worker's stderr kept for the instructor


# ----------------------------------------------------------------------------- what a result must be
@dataclass(frozen=True)
class Expected:
    """A stage (or notebook) the batch grades: its id, points and checks from the manifest."""

    id: str
    title: str
    points: float
    checks: dict[str, float]
    tier: str


def expected_stages(tier: str = "structural", stages: list[str] | None = None) -> dict[str, Expected]:
    course = load_course()
    out: dict[str, Expected] = {}
    if tier != "model":
        for st in (list(course.stages) if stages is None else [course.stage(s) for s in stages]):
            out[st.id] = Expected(st.id, st.title, st.points, dict(st.checks), "structural")
    if tier in ("model", "all"):
        for nb in course.notebooks:
            out[nb.id] = Expected(nb.id, nb.title, nb.points, dict(nb.checks), "model")
    return out


def time_limit(tier: str = "structural", stages: list[str] | None = None) -> float:
    """Wall-clock seconds one submission may take: each stage's limit in ``grading`` (timeout per
    check + 60 s), each notebook's timeout + 10 minutes to score its model, + 2 minutes to start."""
    course = load_course()
    limit = 120.0
    if tier != "model":
        chosen = list(course.stages) if stages is None else [course.stage(s) for s in stages]
        limit += sum(st.timeout * max(1, len(st.checks)) + 60 for st in chosen)
    if tier in ("model", "all"):
        limit += sum(nb.timeout + 600 for nb in course.notebooks)
    return limit


class MalformedResult(ValueError):
    """A worker's result that is not a well-formed GradeResult of the expected stages."""


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MalformedResult(f"{what} is not a finite number")
    return float(value)


def _text(value, what: str, cap: int = 20_000) -> str:
    if not isinstance(value, str):
        raise MalformedResult(f"{what} is not text")
    return value[:cap]


def _flag(value, what: str) -> bool:
    if not isinstance(value, bool):
        raise MalformedResult(f"{what} is not true or false")
    return value


def _plain(value, what: str, depth: int = 0):
    """JSON data (what ``json.loads`` gives), at most 30 levels deep; NaN and infinities become None."""
    if depth > 30:
        raise MalformedResult(f"{what} is nested too deeply")
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_plain(v, what, depth + 1) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _plain(v, what, depth + 1) for k, v in value.items()}
    raise MalformedResult(f"{what} is not plain data")


def _texts(value, what: str) -> list[str]:
    if not isinstance(value, list) or len(value) > 200:
        raise MalformedResult(f"{what} is not a list of at most 200 texts")
    return [_text(v, what, 2000) for v in value]


def _record(data, cls, what: str, known: dict[str, Callable], required: tuple[str, ...]) -> dict:
    """``data``'s fields for ``cls``: known ones checked by type, other fields of ``cls`` only as plain
    data, anything else (or a missing required field) refused."""
    if not isinstance(data, dict):
        raise MalformedResult(f"{what} is not an object")
    fields = {f.name for f in dataclasses.fields(cls)}
    out = {}
    for key, value in data.items():
        if key in known and key in fields:
            out[key] = known[key](value, f"{what}.{key}")
        elif key in fields:
            out[key] = _plain(value, f"{what}.{key}")
        elif cls is GradeResult and key in ("score", "max_score"):
            _number(value, f"{what}.{key}")  # recomputed from the stages
        else:
            raise MalformedResult(f"{what} has an unknown field {key!r}")
    missing = [k for k in required if k not in out]
    if missing:
        raise MalformedResult(f"{what} lacks {missing}")
    return out


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


def validate_result(data, expected: dict[str, Expected], *, fill_missing: bool = True) -> GradeResult:
    """The GradeResult in ``data`` (a worker's JSON), or :class:`MalformedResult`.

    Every field has its type; scores lie in [0, max]; a stage's score is the sum of its checks;
    stages are the expected ones (or the ``submission`` note, worth 0), each at most once, with the
    manifest's points for the stage and for each check. Stages that are missing are added, zeroed
    (unless ``fill_missing`` is false).
    """
    if len(json.dumps(data)) > OUTPUT_CAP:
        raise MalformedResult("the result is too large")
    top = _record(data, GradeResult, "result", {
        "submission": _text, "model": _text, "duration_s": _number, "sandbox": _text, "warnings": _texts,
        "review": _texts, "submitted": _text,
        "stages": lambda v, w: v if isinstance(v, list) and len(v) <= len(expected) + 1 else _bad(w, "a list")},
        ("submission", "stages"))
    stages, seen = [], set()
    for i, raw in enumerate(top.pop("stages")):
        what = f"stages[{i}]"
        st = _record(raw, StageResult, what, {
            "id": _text, "title": _text, "score": _number, "max_score": _number, "hint": _text, "error": _text,
            "duration_s": _number, "tier": _text, "details": _plain,
            "checks": lambda v, w: v if isinstance(v, list) and len(v) <= 200 else _bad(w, "a list")},
            ("id", "title", "score", "max_score"))
        sid = st["id"]
        exp = expected.get(sid)
        if st.get("tier", "structural") != (exp.tier if exp else "structural"):
            raise MalformedResult(f"{what}: tier {st.get('tier')!r} is not the stage's")  # hidden messages stay hidden
        if sid in seen or (exp is None and sid != "submission"):
            raise MalformedResult(f"{what}: stage {sid!r} is {'repeated' if sid in seen else 'not expected'}")
        seen.add(sid)
        if "details" in st and not isinstance(st["details"], dict):
            raise MalformedResult(f"{what}.details is not an object")
        checks, names = [], set()
        for j, rc in enumerate(st.pop("checks", [])):
            c = _record(rc, CheckResult, f"{what}.checks[{j}]", {
                "name": _text, "passed": _flag, "score": _number, "max_score": _number, "message": _text,
                "hidden": _flag}, ("name", "passed", "score", "max_score"))
            if c["name"] in names:
                raise MalformedResult(f"{what}: check {c['name']!r} is repeated")
            names.add(c["name"])
            if exp is None or c["name"] not in exp.checks or not _close(c["max_score"], exp.checks[c["name"]]):
                raise MalformedResult(f"{what}: check {c['name']!r} is not in the manifest with these points")
            if not 0 <= c["score"] <= c["max_score"] + 1e-9:
                raise MalformedResult(f"{what}: check {c['name']!r} scores outside [0, max]")
            checks.append(CheckResult(**c))
        if not _close(st["max_score"], exp.points if exp else 0.0):
            raise MalformedResult(f"{what}: max_score {st['max_score']:g} is not the manifest's")
        if not 0 <= st["score"] <= st["max_score"] + 1e-9 or (checks and not _close(
                st["score"], sum(c.score for c in checks))):
            raise MalformedResult(f"{what}: score {st['score']:g} is outside [0, max] or not its checks' sum")
        stages.append(StageResult(**st, checks=checks))
    result = GradeResult(**top, stages=stages)
    for exp in expected.values() if fill_missing else ():
        if exp.id not in seen:
            result.stages.append(_not_graded(exp, "the grader returned no result for this stage"))
    return result


def _bad(what: str, kind: str):
    raise MalformedResult(f"{what} is not {kind}")


def _not_graded(exp: Expected, why: str) -> StageResult:
    return StageResult(exp.id, exp.title, 0.0, exp.points, [
        CheckResult(name, False, 0.0, points, f"not graded: {why}", hidden=exp.tier != "model")
        for name, points in exp.checks.items()], tier=exp.tier)


def failed_result(student: str, learner: str, instructor: str, expected: dict[str, Expected]) -> GradeResult:
    """The result of a submission that could not be graded: a ``submission`` note (0 points) with the
    learner's message (and the instructor's details), then every expected stage at 0 of its points."""
    note = StageResult("submission", "Submission", 0.0, 0.0, error=learner,
                       details={"instructor": instructor[-STDERR_TAIL:]})
    why = "the submission could not be graded (see Submission)"
    return GradeResult(submission=student, stages=[note, *(_not_graded(e, why) for e in expected.values())])


