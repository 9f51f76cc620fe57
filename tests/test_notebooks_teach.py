"""The released notebooks teach (issue 11): a cell left to fill, or a stage left to write, stops
the notebook with one plain line that says what to do, and nothing else.

Each run executes a notebook with papermill on a tiny random encoder (1 epoch), with the reference
stage modules next to it, so it stops at the cell under test within seconds.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from autograder import REPO_ROOT
from autograder.course import stubs
from autograder.course.models import tiny_model_dir
from autograder.grading.nbrun import KERNEL_NAME, write_kernelspec

NOTEBOOKS = ("sentiment.ipynb", "emotion.ipynb")


def _read(path: Path):
    import nbformat  # nbformat and papermill (~2 s) are imported when a test runs, not at collection

    return nbformat.read(path, as_version=4)


def _fill_in_ids(nb) -> list[str]:
    """grade_ids of the code cells a student fills in (nbgrader solution cells); ``nb`` read or plain JSON."""
    return [c["metadata"]["nbgrader"]["grade_id"] for c in nb["cells"]
            if c["cell_type"] == "code" and c["metadata"].get("nbgrader", {}).get("solution")]


def _cell(nb, grade_id: str):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


CASES = [(name, grade_id) for name in NOTEBOOKS
         for grade_id in _fill_in_ids(json.loads((REPO_ROOT / "exercises" / name).read_text(encoding="utf-8")))]


def _submission(tmp_path: Path, notebook) -> Path:
    """The reference stage modules beside ``notebook`` (so only the notebook's own cells can stop it)."""
    import nbformat

    sub = tmp_path / "submission"
    shutil.copytree(REPO_ROOT / "solutions", sub, ignore=shutil.ignore_patterns("__pycache__", "checks", "*.ipynb"))
    nbformat.write(notebook, sub / "notebook.ipynb")
    return sub


def _run(sub: Path, tmp_path: Path, monkeypatch, **params):
    """Execute ``sub/notebook.ipynb`` on the tiny encoder; returns (executed notebook, papermill error or None)."""
    import papermill

    monkeypatch.setenv("JUPYTER_PATH", str(write_kernelspec(tmp_path / "jupyter")))
    params = {"model_name": str(tiny_model_dir("distilbert-base")), "epochs": 1, "num_threads": 1,
              "output_dir": str(tmp_path / "outputs"), **params}
    error = None
    try:
        papermill.execute_notebook(str(sub / "notebook.ipynb"), str(tmp_path / "executed.ipynb"), parameters=params,
                                   kernel_name=KERNEL_NAME, cwd=str(sub), progress_bar=False)
    except papermill.PapermillExecutionError as exc:
        error = exc
    return _read(tmp_path / "executed.ipynb"), error


def _outputs(nb, kind: str) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == kind]


def test_every_cell_to_fill_is_marked_and_stubbed_for_a_notebook():
    """The released notebooks say which cells to fill, and their stubs are not the python files' stub."""
    for name in NOTEBOOKS:
        nb = _read(REPO_ROOT / "exercises" / name)
        ids = _fill_in_ids(nb)
        assert ids, f"{name} has no cell to fill in"
        for grade_id in ids:
            source = _cell(nb, grade_id).source
            assert "✏️ Fill in this cell:" in source and "raise CellNotFilled(" in source, source
            assert "NotImplementedError" not in source and "autograder check" not in source, source
    assert "raise NotImplementedError(" in stubs.strip_python("def f():\n    ### BEGIN SOLUTION\n    return 1\n"
                                                              "    ### END SOLUTION\n")


@pytest.mark.parametrize(("name", "grade_id"), CASES)
def test_a_released_notebook_with_one_cell_left_stops_with_one_line(name, grade_id, tmp_path, monkeypatch):
    released = _read(REPO_ROOT / "exercises" / name)
    solution = _read(REPO_ROOT / "solutions" / name)
    for other in _fill_in_ids(released):
        if other != grade_id:
            _cell(released, other).source = _cell(solution, other).source
    executed, error = _run(_submission(tmp_path, released), tmp_path, monkeypatch)

    assert error is not None, f"{name} ran to the end with the cell {grade_id!r} not filled"
    errors = _outputs(executed, "error")
    assert len(errors) == 1, errors
    (shown,) = errors[0].traceback  # what Jupyter, VS Code and papermill show: one line, no traceback
    assert shown.startswith("✏️  fill in this cell (") and shown.endswith("then run it again"), shown
    assert errors[0].ename == "CellNotFilled"
    assert error.traceback == [shown]
    assert errors[0] in _cell(executed, grade_id).outputs
    stderr = "".join(o.text for o in _outputs(executed, "stream") if o.name == "stderr")
    assert "Traceback" not in stderr and "pin_memory" not in stderr, stderr


def test_a_stage_still_a_stub_says_which_stage_to_finish(tmp_path, monkeypatch):
    sub = _submission(tmp_path, _read(REPO_ROOT / "solutions" / "sentiment.ipynb"))
    shutil.copy(REPO_ROOT / "exercises" / "stage3_train.py", sub / "stage3_train.py")
    executed, error = _run(sub, tmp_path, monkeypatch)

    assert error is not None
    (err,) = _outputs(executed, "error")
    (shown,) = err.traceback
    assert "stage3_train.make_training_args() is not written yet: finish stage 3" in shown, shown
    assert "`autograder check train`" in shown
    assert err.ename == "NotImplementedError" and err.evalue in shown  # what the grader's report quotes


def test_the_baseline_line_warns_only_when_the_model_does_not_beat_it():
    from autograder.course.notebook import majority_baseline

    baseline = majority_baseline([1, 1, 1, 0], ["negative", "positive"])
    assert (baseline.label, baseline.accuracy) == ("positive", 0.75)
    assert "⚠️" not in baseline.beside(0.8)
    assert "0.800   vs   majority-class baseline 0.750 (always 'positive')" in baseline.beside(0.8)
    assert "does not beat the majority-class baseline" in baseline.beside(0.75)
    assert "not in the metrics" in baseline.beside(None)


def test_a_stub_raised_in_a_stage_module_names_the_stage(tmp_path):
    """The innermost stage function on the traceback is the stub that raised (here called by another)."""
    import importlib.util

    from autograder.course.notebook import stage_stub_message

    path = tmp_path / "stage6_zero_shot.py"
    path.write_text("def build_hypotheses(labels):\n    raise NotImplementedError('not written yet')\n\n"
                    "def nli_zero_shot(texts, labels):\n    return build_hypotheses(labels)\n")
    spec = importlib.util.spec_from_file_location("scratch_stage6", path)  # not in sys.modules
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    with pytest.raises(NotImplementedError) as caught:
        module.nli_zero_shot(["a text"], ["joy"])
    message = stage_stub_message(caught.value)
    assert message.startswith("stage6_zero_shot.build_hypotheses() is not written yet: finish stage 6"), message
    assert "`autograder check zero_shot`" in message
    assert stage_stub_message(NotImplementedError("raised outside any stage module")) is None
    assert stage_stub_message(ValueError("not a stub")) is None
