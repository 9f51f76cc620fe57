"""Run one notebook with papermill in a child process (``python -m autograder.grading.nbrun``).

The model tier starts this inside the job's jail (``autograder.sandbox.jail.spawn``): papermill
and the Jupyter kernel it starts both run there, with the submission copy as the notebook's
working directory (read-only) and the scratch folder for everything they write. The executed
notebook is written (to the scratch) even when a cell fails; the grader copies it out.

The last line this prints is one JSON object the grader reads, size-capped, as a learner message
(it comes from the jailed side, so it is only ever shown, never trusted).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

KERNEL_NAME = "llm-course-kit"
MESSAGE_CAP = 300


def write_kernelspec(root: Path, python: str | None = None) -> Path:
    """A kernelspec that runs ``python`` (default: *this* interpreter, the venv's); put ``root``
    on JUPYTER_PATH to use it."""
    spec_dir = root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [python or sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (course)", "language": "python",
    }))
    return root


def main(argv: list[str]) -> int:
    import papermill as pm

    source, target, params_json, cwd = argv
    try:
        pm.execute_notebook(source, target, parameters=json.loads(params_json), kernel_name=KERNEL_NAME,
                            cwd=cwd, progress_bar=False, log_output=False)
    except pm.PapermillExecutionError as exc:
        print(json.dumps({"error": "cell", "cell": exc.exec_count, "ename": str(exc.ename)[:MESSAGE_CAP],
                          "evalue": str(exc.evalue)[:MESSAGE_CAP]}), flush=True)
        return 3
    except Exception as exc:  # noqa: BLE001 - the kernel died, the notebook could not be read, ...
        print(json.dumps({"error": "run", "ename": type(exc).__name__, "evalue": str(exc)[:MESSAGE_CAP]}), flush=True)
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
