"""A small pytest plugin: records each check's outcome and a learner-facing message.

Loaded with ``-p autograder.grading.plugin`` by the runner. Each result is appended (and flushed) to
the JSONL file named by AUTOGRADER_RESULTS as soon as the check ends, so a stage that hangs
or crashes half-way still keeps what it already recorded.
"""

from __future__ import annotations

import json
import os
import traceback
from pathlib import Path

import pytest


class GraderFailure(AssertionError):
    """A failed check whose message is already written for the learner."""


def _submission_frame(tb) -> traceback.FrameSummary | None:
    root = os.environ.get("AUTOGRADER_SUBMISSION")
    if not root:
        return None
    root = str(Path(root).resolve())
    frames = [f for f in traceback.extract_tb(tb) if str(Path(f.filename).resolve()).startswith(root)]
    return frames[-1] if frames else None


def learner_message(excinfo: pytest.ExceptionInfo) -> str:
    exc = excinfo.value
    if isinstance(exc, (GraderFailure, pytest.fail.Exception, pytest.skip.Exception)):
        text = str(exc.msg if hasattr(exc, "msg") else exc).strip()
        if text.startswith("Timeout (>"):  # pytest-timeout's words, for a learner
            limit = text.split(">", 1)[1].split(")", 1)[0]
            return (f"Timeout: this check was stopped after {limit}, the stage's time limit (an endless loop, "
                    "or code far slower than it needs to be?)")
        return text
    if isinstance(exc, AssertionError):
        return (str(exc).split("\nassert")[0] or "a check failed").strip()
    frame = _submission_frame(excinfo.tb)
    where = f" (in {Path(frame.filename).name}, line {frame.lineno}, in {frame.name})" if frame else ""
    if isinstance(exc, NotImplementedError):
        func = frame.name if frame else "this function"
        return f"`{func}` is not written yet: it raises NotImplementedError{where}."
    return f"{type(exc).__name__}: {exc}{where}".strip()


def _record(item: pytest.Item, outcome: str, message: str) -> None:
    path = os.environ.get("AUTOGRADER_RESULTS")
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
