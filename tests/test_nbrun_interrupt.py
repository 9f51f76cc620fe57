"""Ctrl-C while a notebook runs stops its Jupyter kernel: nothing the model tier started survives.

A child process runs a notebook whose cell sleeps for minutes through the model tier's own code
path (``model_tier._execute``: spawn -> ``python -m autograder.grading.nbrun`` -> papermill ->
kernel); the test sends it SIGINT, as a terminal's Ctrl-C does, once the cell is running. The cell
also starts a process of its own (``sleep``): ipykernel ends itself when its parent dies (where
the orphan goes to pid 1, not to a desktop's subreaper), but nothing ends what a cell started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from autograder.grading.nbrun import write_kernelspec
from autograder.sandbox.jail import detect

DRIVER = textwrap.dedent("""
    import sys
    from pathlib import Path

    import nbformat

    import autograder
    from autograder.course.manifest import Notebook, load_course
    from autograder.grading import model_tier
    from autograder.sandbox.jail import Job, SandboxStatus, detect

    submission, mode = Path(sys.argv[1]), sys.argv[2]
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("import os, pathlib, subprocess, time\\n"
                                          "subprocess.Popen(['sleep', '600'])\\n"
                                          "(pathlib.Path(os.environ['HOME']).parent / 'started').write_text('1')\\n"
                                          "time.sleep(600)")]
    nbformat.write(nb, submission / "sleep.ipynb")
    course = load_course()
    note = Notebook(id="sleep", title="sleep", notebook="sleep.ipynb", dataset="sentiment", timeout=900,
                    parameters={}, thresholds={}, checks={})
    status = detect() if mode == "on" else SandboxStatus(False, "test")
    job = Job.create(submission, course.caps)
    print(job.root, flush=True)
    try:
        model_tier._execute(note, job, {"x": 2}, status, course, (Path(autograder.__file__).parent,), 1, {})
    finally:
        job.cleanup()
""")


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _alive(procs: list[psutil.Process]) -> list[str]:
    alive = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            pass
    return alive


def _sleeping_notebook(path: Path, started: Path) -> None:
    import nbformat  # ~1 s: imported when a test runs, not at collection

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("import pathlib, subprocess, time\nsubprocess.Popen(['sleep', '600'])\n"
                                          f"pathlib.Path({str(started)!r}).write_text('1')\ntime.sleep(600)")]
    nbformat.write(nb, path)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a shell's background job would ignore Ctrl-C


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_on_nbrun_stops_its_kernel(tmp_path: Path, signum: int) -> None:
    """nbrun itself gets Ctrl-C (a terminal signals its whole group) or SIGTERM: it stops the kernel,
    which runs in a session of its own, and says so in one JSON line instead of a traceback."""
    started = tmp_path / "started"
    _sleeping_notebook(tmp_path / "sleep.ipynb", started)
    write_kernelspec(tmp_path / "jupyter")
    proc = subprocess.Popen(
        [sys.executable, "-m", "autograder.grading.nbrun", str(tmp_path / "sleep.ipynb"), str(tmp_path / "out.ipynb"),
         "{}", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "JUPYTER_PATH": str(tmp_path / "jupyter")}, preexec_fn=_default_sigint)
    try:
        _wait_for(lambda: started.exists() or proc.poll() is not None, 120, "the sleeping cell to start")
        assert proc.poll() is None, proc.communicate()
        tree = psutil.Process(proc.pid).children(recursive=True)
        assert any("ipykernel" in " ".join(p.cmdline()) for p in tree), [p.cmdline() for p in tree]
        assert any(p.name() == "sleep" for p in tree), [p.cmdline() for p in tree]
        os.killpg(proc.pid, signum)
        out, err = proc.communicate(timeout=60)
        _wait_for(lambda: not _alive(tree), 15, f"the kernel to end: {_alive(tree)}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, (out, err)
    last = json.loads(out.strip().splitlines()[-1])
    assert last["error"] == "stopped" and signal.Signals(signum).name in last["evalue"], last
    assert "grading/nbrun.py" not in err  # no traceback of ours (the interrupted kernel may print its own)


@pytest.mark.parametrize("mode", ["off", "on"])
def test_ctrl_c_on_the_model_tier_stops_the_kernel(tmp_path: Path, mode: str) -> None:
    """The grader gets Ctrl-C while the kernel sleeps in a cell: no process of the job survives
    (with the sandbox on and off)."""
    if mode == "on" and not detect().on:
        pytest.skip("bubblewrap cannot run here")
    submission = tmp_path / "submission"
    submission.mkdir()
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(submission), mode], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"}, start_new_session=True, preexec_fn=_default_sigint)
    try:
        job_root = Path(driver.stdout.readline().strip())
        _wait_for(lambda: (job_root / "scratch" / "started").exists(), 120, "the sleeping cell to start")
        tree = psutil.Process(driver.pid).children(recursive=True)
        assert any("ipykernel" in " ".join(p.cmdline()) for p in tree), [p.cmdline() for p in tree]
        assert any(p.name() == "sleep" for p in tree), [p.cmdline() for p in tree]
        driver.send_signal(signal.SIGINT)  # what Ctrl-C in a terminal sends
        driver.wait(timeout=60)
        _wait_for(lambda: not _alive(tree), 15, f"the job's processes to end: {_alive(tree)}")
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
