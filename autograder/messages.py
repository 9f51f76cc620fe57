"""Learner messages, in one place: how a failed check, an exception from the submission's
process, a limit or a timeout is worded, and how a message is cleaned before a report shows it.

The judge (grading/plugin.py, grading/gradelib.py) words failures here; the reports
(reports/exports.py, reports/feedback.py) clean them here. Messages follow exercism's style:
what was called, what came back, what was expected.
"""

from __future__ import annotations

import re

LIMITS = {"memory": "the memory limit", "processes": "the limit on processes",
          "open files": "the limit on open files", "file size": "the file-size limit"}
TIMEOUT = "an endless loop, or code far slower than it needs to be?"


class GraderFailure(AssertionError):
    """A failed check whose message is already written for the learner."""


def not_written(desc: str) -> str:
    return f"`{desc.split('(')[0]}` is not written yet (it raises NotImplementedError)."


def timeout(limit: str) -> str:
    return f"Timeout: this check was stopped after {limit}, the stage's time limit ({TIMEOUT})"


def remote_failure(exc, desc: str) -> str:
    """Words for a RemoteError (the submission raised) or a RunnerFailure (its process failed)."""
    if not hasattr(exc, "mro"):  # RunnerFailure: its text is already for the learner
        text = str(exc)
        return text if text.startswith("Timeout") else f"called {desc}: {text}"
    if exc.is_a(NotImplementedError):
        return not_written(desc)
    if exc.limit:
        return (f"called {desc}: it went over {LIMITS.get(exc.limit, exc.limit)} of the grading sandbox "
                f"({exc.type}: {exc.message}){exc.where()}")
    return f"called {desc}: it raised {exc.type}: {exc.message}{exc.where()}"


def from_exception(exc: BaseException) -> str:
    """A check's message from the exception that ended it in the judge."""
    import pytest

    if isinstance(exc, (GraderFailure, pytest.fail.Exception, pytest.skip.Exception)):
        text = str(exc.msg if hasattr(exc, "msg") else exc).strip()
        if text.startswith("Timeout (>"):  # pytest-timeout's words, for a learner
            return timeout(text.split(">", 1)[1].split(")", 1)[0])
        return text
    if isinstance(exc, AssertionError):
        return (str(exc).split("\nassert")[0] or "a check failed").strip()
    if hasattr(exc, "mro") or type(exc).__name__ == "RunnerFailure":  # escaped a grader unwrapped
        return remote_failure(exc, "the submission")
    return f"{type(exc).__name__}: {exc}".strip()


# ----------------------------------------------------------------------------- cleaning for reports
_CODE_LINE = re.compile(
    r"^\s*(>|def |class |import |from \S+ import |assert |return |raise |@|Traceback|File \"|where |\+"
    r"|-{3,}|_{3,})|\.py:\d+|^\s{4,}\S"
)
_FENCE = re.compile(r"```.*?(```|$)", re.S)
HIDDEN_FALLBACK = "this check failed (its details are hidden)"


def learner_text(message: str, *, hidden: bool, limit: int = 600) -> str:
    """The learner-facing text of a check message; for hidden checks, with no line of grader code.

    Drops fenced blocks, pytest source lines (``>``, ``E  assert ...``, ``file.py:12``), tracebacks
    and indented code; keeps the prose and inline names such as `load_tokenizer`.
    """
    message = (message or "").strip()
    if not hidden or not message:
        return message[:limit]
    kept = []
    for line in _FENCE.sub("", message).splitlines():
        if line.startswith("E "):
            line = line[1:].strip()
        if not line.strip() or _CODE_LINE.search(line):
            continue
        kept.append(line.strip())
    text = "\n".join(kept).strip()
    if len(text) > limit:
        text = text[: limit - 3].rstrip() + "..."
    return text or HIDDEN_FALLBACK
