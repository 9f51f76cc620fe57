"""A small pytest plugin: records each check's outcome and a learner-facing message.

Loaded with ``-p autograder.grading.plugin`` by the judge. Its one option, ``--autograder-job``,
names the job file (``grading/structural.py``: submission, results file, time limits, sandbox).
Each result is appended (and flushed) to the JSONL results file as soon as the check ends, so a
stage that hangs or crashes half-way still keeps what it already recorded.
"""

from __future__ import annotations

import json

import pytest

from autograder.messages import GraderFailure, from_exception  # noqa: F401 - GraderFailure re-exported

JOB = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--autograder-job", default=None, help="the judge's job file (JSON), written by the grader")


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("autograder_job", None)
    config.stash[JOB] = json.loads(open(path, encoding="utf-8").read()) if path else {}


def job_settings(config: pytest.Config) -> dict:
    """The job file's settings ({} when the graders run without one)."""
    return config.stash.get(JOB, {})


def learner_message(excinfo: pytest.ExceptionInfo) -> str:
    return from_exception(excinfo.value)


def _record(item: pytest.Item, outcome: str, message: str) -> None:
    path = job_settings(item.config).get("results")
    if not path:
        return
    name = getattr(item, "originalname", None) or item.name
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"name": name, "nodeid": item.nodeid, "outcome": outcome, "message": message}) + "\n")
        f.flush()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or (report.when == "setup" and report.failed):
        if report.passed:
            _record(item, "passed", "")
        elif call.excinfo is not None:
            _record(item, "failed", learner_message(call.excinfo))
        else:
            _record(item, "failed", str(report.longrepr)[-400:])
