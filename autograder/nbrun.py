"""Run one notebook with papermill in a child process (``python -m autograder.nbrun``).

The model tier starts this in its own process group, so on timeout the whole group (papermill
and its kernel) is killed. The executed notebook is written even when a cell fails.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

KERNEL_NAME = "llm-course-kit"


def write_kernelspec(root: Path) -> Path:
    """A kernelspec that runs *this* interpreter; put ``root`` on JUPYTER_PATH to use it."""
    spec_dir = root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
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
        print(json.dumps({"error": "cell", "cell": exc.exec_count, "ename": exc.ename, "evalue": exc.evalue}))
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
