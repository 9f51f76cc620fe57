"""Run one notebook with papermill in a child process (``python -m autograder.grading.nbrun``).

The model tier starts this inside the job's jail (``autograder.sandbox.jail.spawn``): papermill
and the Jupyter kernel it starts both run there, with the submission copy as the notebook's
working directory (read-only) and the scratch folder for everything they write. The executed
notebook is written (to the scratch) even when a cell fails; the grader copies it out.

The last line this prints is one JSON object the grader reads, size-capped, as a learner message
(it comes from the jailed side, so it is only ever shown, never trusted).

Ctrl-C (SIGINT), SIGTERM or a closed terminal (SIGHUP) stops the notebook's kernel too: Jupyter
starts kernels in a session of their own, so a signal to this process's group never reaches
them, and a kernel busy in a long cell would otherwise outlive the run and keep its CPU and memory.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

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


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM and SIGHUP end the run the way Ctrl-C does: through KeyboardInterrupt, so one
    handler stops the kernel whatever the signal."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def stop_descendants(timeout: float = 5.0) -> list[int]:
    """Kill every process this one started (the kernel and whatever its cells started); their pids.

    Asks first (SIGTERM), then kills what is left after ``timeout`` seconds. psutil finds the kernel
    although it runs in its own session, because it is still our child.
    """
    import psutil

    try:
        kids = psutil.Process().children(recursive=True)
    except psutil.Error:
        return []
    for kid in kids:
        try:
            kid.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(kids, timeout=timeout)
    for kid in alive:
        try:
            kid.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=timeout)
    return [k.pid for k in kids]


def main(argv: list[str]) -> int:
    import papermill as pm

    source, target, params_json, cwd = argv
    for name in ("SIGTERM", "SIGHUP"):  # SIGHUP: a closed terminal (POSIX only)
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _interrupt)
    try:
        pm.execute_notebook(source, target, parameters=json.loads(params_json), kernel_name=KERNEL_NAME,
                            cwd=cwd, progress_bar=False, log_output=False)
    except KeyboardInterrupt as exc:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # the interrupted cell's task: not news
        stop_descendants()
        print(json.dumps({"error": "stopped", "ename": "KeyboardInterrupt",
                          "evalue": f"stopped from outside ({str(exc) or 'SIGINT'}); the kernel was stopped too"}),
              flush=True)
        return 130
    except pm.PapermillExecutionError as exc:
        print(json.dumps({"error": "cell", "cell": exc.exec_count, "ename": str(exc.ename)[:MESSAGE_CAP],
                          "evalue": str(exc.evalue)[:MESSAGE_CAP]}), flush=True)
        return 3
    except Exception as exc:  # noqa: BLE001 - the kernel died, the notebook could not be read, ...
        print(json.dumps({"error": "run", "ename": type(exc).__name__, "evalue": str(exc)[:MESSAGE_CAP]}), flush=True)
        return 4
    finally:
        stop_descendants(timeout=2.0)  # nothing a cell started outlives the run, whatever happened
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
