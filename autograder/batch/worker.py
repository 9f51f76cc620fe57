"""One submission of a batch, graded in a child process of the batch (``autograder.batch``).

Reads one JSON request line on stdin (a ``request.GradeRequest``: the submission's fresh copy,
tier, stages, threads, a work folder, the resolved course model, the sandbox setting) and writes
one JSON reply on a private copy of stdout: ``{"result": GradeResult}`` or ``{"error": ...,
"traceback": ...}``. Everything else this process or its children print goes to stderr. It never
writes the batch's output folder (it is not told where that is): the batch validates the reply and
writes the result itself.

stdin stays open while the batch waits: when it closes (the batch died or was killed), this
process kills everything it started (:func:`autograder.batch.kill.end_own_children`) and exits, so
no grading outlives its batch.

The model comes in the request as a value, never through an environment variable.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import traceback
from pathlib import Path

from autograder.batch.kill import end_own_children
from autograder.batch.request import GradeRequest


def _watch_batch() -> None:
    """Exit when the batch closes our stdin (it ended without waiting for us)."""
    try:
        while os.read(0, 1 << 16):
            pass
    except OSError:
        pass
    end_own_children()
    os._exit(70)


def grade_request(request: GradeRequest) -> dict:
    """Grade the request's submission as ``autograder grade`` would, with the course model the Dask
    worker resolved (not resolved again here)."""
    from autograder.grading import grade_submission
    from autograder.sandbox.jail import detect

    sandbox = detect(turned_off=request.sandbox_off)  # detected here: this worker's machine
    result = grade_submission(Path(request.submission), tier=request.tier,
                              stages=list(request.stages) if request.stages is not None else None,
                              require_sandbox=request.require_sandbox, work_dir=Path(request.work_dir),
                              threads=request.threads or 1, jobs=1, model=request.model, sandbox=sandbox)
    return {"result": result.to_dict()}


def _read_request() -> bytes:
    """The first line of stdin, read from the file descriptor (no buffer shared with the watcher)."""
    data = b""
    while b"\n" not in data and len(data) < 1 << 20:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0]


def main() -> None:
    """Read the request, grade, answer on a private stdout; this process's own prints go to stderr."""
    line = _read_request()
    reply_to = os.fdopen(os.dup(1), "w", encoding="utf-8")  # not inherited by anything we start
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    threading.Thread(target=_watch_batch, daemon=True).start()
    try:
        reply = grade_request(GradeRequest.from_json(line))
    except Exception as exc:  # noqa: BLE001 - the batch turns this into the submission's result
        reply = {"error": f"{type(exc).__name__}: {exc}"[:1000], "traceback": traceback.format_exc()[-4000:]}
    reply_to.write(json.dumps(reply))
    reply_to.flush()
    sys.stderr.flush()
    os._exit(0)  # no interpreter shutdown to wait on the watcher or on threads grading left behind


if __name__ == "__main__":
    main()
