"""The typed settings a judge and a batch worker receive: each survives its JSON trip whole."""

from __future__ import annotations

import dataclasses
import json

import pytest

from autograder.batch.request import GradeRequest
from autograder.course.manifest import load_course
from autograder.course.models import ResolvedModel
from autograder.grading.job_config import JudgeJob, StageSpec
from autograder.sandbox.jail import SandboxStatus

pytestmark = pytest.mark.unit


def test_a_batch_request_survives_its_trip_to_the_worker():
    model = ResolvedModel("all-MiniLM-L6-v2", "/m", "packaged", "the packaged encoder")
    request = GradeRequest("/sub", "/work", tier="all", stages=("tokenize", "emotion"), threads=2,
                           require_sandbox=True, model=model, sandbox_off="turned off")
    back = GradeRequest.from_json(request.to_json())
    assert back == request and isinstance(back.model, ResolvedModel) and isinstance(back.stages, tuple)
    bare = GradeRequest("/sub", "/work")
    assert GradeRequest.from_json(bare.to_json()) == bare and bare.model is None and bare.stages is None


def test_a_judge_job_names_every_setting_and_refuses_unknown_ones():
    course = load_course()
    stage = StageSpec("test_stage1_tokenize.py", "/g/test_stage1_tokenize.py", 30.0, 90.0)
    job = JudgeJob("/sub", "/work", (stage,), course.limits, course.caps, SandboxStatus(True, "bwrap", True, True),
                   threads=3, slots=2, warm=False)
    assert JudgeJob.from_json(job.to_json()) == job
    assert job.stage_named("test_stage1_tokenize.py") == stage and job.stage_named("test_other.py") is None
    raw = dataclasses.asdict(job) | {"extra": 1}
    with pytest.raises(TypeError):
        JudgeJob.from_json(json.dumps(raw))
