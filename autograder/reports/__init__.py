"""Results and what is rendered from them alone: terminal table, result.json, Gradescope,
JUnit, CSV gradebooks, Markdown/HTML feedback."""

from __future__ import annotations

from pathlib import Path


def write_reports(result, out: Path, *, visibility: str = "visible") -> None:
    """Everything an instructor or CI keeps of one graded submission, from one result object:
    result.json, Gradescope's results.json, JUnit XML and the Markdown/HTML feedback."""
    from autograder.reports.exports import write_gradescope, write_junit
    from autograder.reports.feedback import write_feedback
    from autograder.reports.terminal import to_json

    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(to_json(result))
    write_gradescope(result, out / "results.json", visibility=visibility)
    write_junit(result, out / "junit.xml")
    write_feedback(result, out)
