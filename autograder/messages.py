"""Learner messages, in one place: how a failed check, an exception from the submission's
process, a limit or a timeout is worded, and how a message is cleaned before a report shows it.

The judge (grading/plugin.py, grading/gradelib.py) words failures here; the reports
(reports/exports.py, reports/feedback.py) clean them here. Messages follow exercism's style:
what was called, what came back, what was expected.

Every string that came from a submission (an exception's message, a returned value, a file or
folder name, printed output) goes through :func:`clean_text` once, here and where a result is
built (reports/results.py): control characters would otherwise reach the instructor's terminal
(ANSI escapes retitle the window, clear the screen, print a fake verdict) and make junit.xml
invalid XML, which CI rejects whole.
"""

from __future__ import annotations

import re

LIMITS = {"memory": "the memory limit", "processes": "the limit on processes",
          "open files": "the limit on open files", "file size": "the file-size limit",
          "disk": "the disk limit (space and number of files in /scratch, /tmp and /dev/shm together)"}
TIMEOUT = "an endless loop, or code far slower than it needs to be?"
MESSAGE_LIMIT = 600  # characters of a message from the submission's process (the runner sends 400)
QUOTE_LIMIT = 240  # an exception's text quoted after the course's fix words (see remote_failure)

# ANSI sequences go whole (CSI ``ESC [ ... m``, OSC ``ESC ] ... BEL`` with its text, two-byte
# escapes), so no payload such as a window title is left behind as text; then every C0 and C1 control
# character but newline and tab, lone surrogates (not UTF-8) and U+FFFE/U+FFFF (not XML).
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x9b[0-?]*[ -/]*[@-~]"  # CSI, 7- and 8-bit
                   r"|(?:\x1b\]|\x9d)[^\x00-\x1f\x7f-\x9f]*(?:\x07|\x1b\\|\x9c)?"  # OSC (a title, a link)
                   r"|\x1b[ -/]*[0-~]")  # any other escape
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def clean_text(text: object, limit: int | None = None) -> str:
    """``text`` as a report may show it: no control character but newline and tab, at most ``limit``
    characters (cut before cleaning too, so a 16 MiB message costs no more than ``limit`` needs)."""
    text = text if isinstance(text, str) else str(text)
    if limit is not None and len(text) > 4 * limit:
        text = text[: 4 * limit]
    text = _CONTROL.sub("", _ANSI.sub("", text.replace("\r\n", "\n")))
    return text if limit is None or len(text) <= limit else text[: limit - 3].rstrip() + "..."


class GraderFailure(AssertionError):
    """A failed check whose message is already written for the learner."""


def not_written(desc: str) -> str:
    return f"`{desc.split('(')[0]}` is not written yet (it raises NotImplementedError)."


def stopped_after(seconds: float, why: str = "something in it never finishes") -> str:
    """THE wording of a time limit hit anywhere in a stage (a call, the stage's budget, its judge)."""
    return f"Timeout: stopped after {seconds:.0f} s, the stage's time limit ({why})"


def timeout(limit: str) -> str:
    return f"Timeout: this check was stopped after {limit}, the stage's time limit ({TIMEOUT})"


def remote_failure(exc, desc: str, fix: str = "") -> str:
    """Words for a RemoteError (the submission raised) or a RunnerFailure (its process failed).

    With ``fix`` (the course's words for this mistake) the explanation comes first and the
    exception's own text last, capped at QUOTE_LIMIT: a library's long message (scikit-learn's
    ValueError lists every ``average``) must never push the fix out of a cut message.
    """
    if not hasattr(exc, "mro"):  # RunnerFailure: its text is already for the learner
        text = clean_text(exc, MESSAGE_LIMIT)
        return text if text.startswith("Timeout") else f"called {desc}: {text}"
    if exc.is_a(NotImplementedError):
        return not_written(desc)
    kind, where = clean_text(exc.type, 100), clean_text(exc.where(), 200)
    if fix:
        return f"called {desc}: it raised {kind}; {fix} ({kind}: {clean_text(exc.message, QUOTE_LIMIT)}{where})"
    said = f"{kind}: {clean_text(exc.message, MESSAGE_LIMIT)}{where}"
    if exc.limit:
        return f"called {desc}: it went over {LIMITS.get(exc.limit, exc.limit)} of the grading sandbox ({said})"
    return f"called {desc}: it raised {said}"


def from_exception(exc: BaseException) -> str:
    """A check's message from the exception that ended it in the judge, cleaned (it quotes what
    the submission returned)."""
    return clean_text(_exception_text(exc))


def _exception_text(exc: BaseException) -> str:
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
    message = clean_text(message or "").strip()
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
