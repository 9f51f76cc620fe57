"""The students' practice workflow (templates/practice.yml) goes red when a check or a notebook fails.

GitHub runs a `run:` step without `shell:` as `bash -e {0}`: a failing command piped into `tee`
then passes, because a pipe's status is its last command's. With `shell: bash` it runs
`bash --noprofile --norc -eo pipefail {0}`. These tests run each step's script the way GitHub
would, with stand-ins for `autograder` and `papermill` that fail, and read the job summary.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from autograder import REPO_ROOT

WORKFLOW = REPO_ROOT / "autograder" / "templates" / "practice.yml"
GITHUB_SHELLS = {None: ["bash", "-e"], "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail"]}


def _steps() -> tuple[dict, list[dict]]:
    flow = yaml.safe_load(WORKFLOW.read_text())
    job = flow["jobs"]["practice"]
    return flow, job["steps"]


def _shell(step: dict) -> str | None:
    """The shell GitHub picks for a step: its own, else the workflow's or the job's default."""
    flow, _ = _steps()
    job = flow["jobs"]["practice"]
    for source in (step, job.get("defaults", {}).get("run", {}), flow.get("defaults", {}).get("run", {})):
        if source.get("shell"):
            return source["shell"]
    return None


def _step(name: str) -> dict:
    return next(s for s in _steps()[1] if s.get("name", "").startswith(name))


def _fake(bin_dir: Path, name: str, status: int, text: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\necho '{text}'\nexit {status}\n")
    path.chmod(0o755)


def _run(step: dict, work: Path, bin_dir: Path) -> subprocess.CompletedProcess:
    script = work / "step.sh"
    script.write_text(step["run"])
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "GITHUB_STEP_SUMMARY": str(work / "summary.md"), "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([*GITHUB_SHELLS[_shell(step)], str(script)], cwd=work, env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def work(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "practice").mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    return tmp_path, bin_dir


def test_without_pipefail_a_pipe_hides_the_failure():
    """Why the workflow needs `shell: bash`: GitHub's default `bash -e` passes `false | tee`."""
    assert subprocess.run(["bash", "-e", "-c", "false | tee /dev/null"]).returncode == 0
    assert subprocess.run([*GITHUB_SHELLS["bash"], "-c", "false | tee /dev/null"]).returncode != 0


def test_every_step_with_a_pipe_runs_with_pipefail():
    for step in _steps()[1]:
        run = step.get("run", "")
        if "|" in run.replace("||", ""):
            assert _shell(step) == "bash" or "set -o pipefail" in run, step.get("name")


def test_failing_checks_fail_their_step_and_the_summary_says_so(work):
    tmp, bin_dir = work
    _fake(bin_dir, "autograder", 1, "x test_tokenize_batch_does_not_pad: do not pad here")
    proc = _run(_step("Public checks"), tmp, bin_dir)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "do not pad" in (tmp / "practice" / "checks.txt").read_text()
    assert _run(_step("Job summary"), tmp, bin_dir).returncode == 0
    assert "### Public checks: failed" in (tmp / "summary.md").read_text()


def test_passing_checks_pass_their_step(work):
    tmp, bin_dir = work
    _fake(bin_dir, "autograder", 0, "all public checks pass")
    assert _run(_step("Public checks"), tmp, bin_dir).returncode == 0
    _run(_step("Job summary"), tmp, bin_dir)
    assert "### Public checks: all pass" in (tmp / "summary.md").read_text()


def test_a_failing_notebook_fails_its_step_and_the_summary_says_so(work):
    tmp, bin_dir = work
    _fake(bin_dir, "papermill", 1, "PapermillExecutionError: stage1_tokenize.load_tokenizer() is not written yet")
    proc = _run(_step("Notebooks"), tmp, bin_dir)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert (tmp / "practice" / "failed_notebooks.txt").read_text().split() == ["sentiment", "emotion"]
    _run(_step("Job summary"), tmp, bin_dir)
    summary = (tmp / "summary.md").read_text()
    assert "**sentiment**: the notebook failed" in summary and "**emotion**: the notebook failed" in summary
    assert "is not written yet" in summary
    assert "Not run on this push" not in summary
