"""A small pytest plugin: records each check's outcome and a learner-facing message.

Loaded with ``-p autograder.grading.plugin`` by the judge. Its one option, ``--autograder-job``,
names the job file (a ``job_config.JudgeJob``: submission, results file, time limits, sandbox).
Each result is appended (and flushed) to the JSONL results file as soon as the check ends, so a
stage that hangs or crashes half-way still keeps what it already recorded.
"""

from __future__ import annotations

import json

import pytest

from autograder.grading.job_config import JudgeJob
from autograder.messages import GraderFailure, from_exception  # noqa: F401 - GraderFailure re-exported

JOB = pytest.StashKey["JudgeJob | None"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--autograder-job", default=None, help="the judge's job file (JSON), written by the grader")


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("autograder_job", None)
    config.stash[JOB] = JudgeJob.read(path) if path else None


LENT = pytest.StashKey[object]()


class LentZygote:
    """Hands a judge child the warm zygote its server lent it (``judge_server``); the graders'
    ``zygote`` fixture takes it from ``config.stash`` instead of starting a jail of its own."""

    def __init__(self, zygote) -> None:
        self.zygote = zygote

    def pytest_configure(self, config: pytest.Config) -> None:
        if self.zygote is not None:
            config.stash[LENT] = self.zygote


def lent_zygote(config: pytest.Config):
    return config.stash.get(LENT, None)


def job_settings(config: pytest.Config) -> JudgeJob | None:
    """The job file's settings (None when the graders run without one)."""
    return config.stash.get(JOB, None)


def learner_message(excinfo: pytest.ExceptionInfo) -> str:
    return from_exception(excinfo.value)


SETUP_SECONDS = pytest.StashKey[float]()


def _record(item: pytest.Item, outcome: str, message: str, seconds: float) -> None:
    job = job_settings(item.config)
    if job is None or not job.results:
        return
    name = getattr(item, "originalname", None) or item.name
    record = {"name": name, "nodeid": item.nodeid, "outcome": outcome, "message": message,
              "duration": round(seconds, 3)}  # set-up (a stage's first check forks its runner) and call
    with open(job.results, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.when == "setup" and report.passed:
        item.stash[SETUP_SECONDS] = report.duration
    if report.when == "call" or (report.when == "setup" and report.failed):
        seconds = item.stash.get(SETUP_SECONDS, 0.0) + (report.duration if report.when == "call" else 0.0)
        if report.passed:
            _record(item, "passed", "", seconds)
        elif call.excinfo is not None:
            _record(item, "failed", learner_message(call.excinfo), seconds)
        else:
            _record(item, "failed", str(report.longrepr)[-400:], seconds)
