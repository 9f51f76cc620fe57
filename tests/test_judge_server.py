"""The judge server's own pieces: its job files, the kill of a just-forked child, the cleanup of
jobs whose owner was killed. (Grading through it is tested everywhere a submission is graded.)"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time

import pytest

from autograder.course.manifest import load_course
from autograder.grading.job_config import JudgeJob
from autograder.grading.judge_process import write_job_file
from autograder.procs import kill_tree
from autograder.sandbox.jail import SandboxStatus, cleanup_leftovers

pytestmark = pytest.mark.unit  # in this process: no judge, no jail


def test_the_server_job_and_each_childs_job_file(tmp_path):
    """One file for the server; one per stage in the format the graders' plugin reads, with that
    stage's own limits, its own records file, and nothing else's."""
    course = load_course()
    stages = [course.stage("tokenize"), course.stage("train")]
    path = write_job_file(tmp_path, tmp_path / "sub", course, stages, threads=1,
                          sandbox=SandboxStatus(False, "test"), slots=2)
    job = JudgeJob.read(path)
    assert [s.name for s in job.stages] == ["test_stage1_tokenize.py", "test_stage3_train.py"]
    assert job.slots == 2 and job.limits == course.limits and job.caps == course.caps and not job.results
    child = JudgeJob.from_json(job.for_stage(job.stages[1]).to_json())
    assert child.stages == (job.stages[1],) and child.stages[0].timeout == stages[1].timeout
    assert child.stages[0].budget == stages[1].budget
    assert child.results == str(tmp_path / "test_stage3_train.py.jsonl")
    assert child.sandbox == SandboxStatus(False, "test") and child.limits == course.limits
    assert child == dataclasses.replace(job, stages=child.stages, results=child.results)  # nothing else differs


def test_killing_a_child_that_leads_no_group_does_not_hang():
    """A judge child killed before its setsid() is no group leader: killing the group alone missed it
    and the wait that followed never returned."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        time.sleep(60)
        os._exit(0)
    start = time.monotonic()
    kill_tree(pid)
    assert time.monotonic() - start < 10
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped


@pytest.mark.skipif(os.getuid() != 0, reason="mounting a tmpfs needs root")
def test_a_killed_owners_jobs_are_unmounted_and_removed(tmp_path):
    root = tmp_path / "ag-job-x1"
    (root / "scratch").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(root / "scratch")], check=True)
    (root / "scratch" / "file").write_text("left behind")
    (tmp_path / "kept").mkdir()
    cleanup_leftovers(tmp_path)
    assert not root.exists() and not os.path.ismount(root / "scratch") and (tmp_path / "kept").is_dir()


@pytest.mark.skipif(os.getuid() != 0, reason="mounting a tmpfs needs root")
def test_jobs_of_a_dead_owner_are_swept_and_live_ones_kept(tmp_path):
    """A batch worker killed past its time limit never cleans up: the next job made in the same
    folder (or the batch, once the worker is gone) removes its jobs, never a live owner's."""
    from autograder.sandbox.jail import OWNER, _process_tag, sweep_orphans

    dead = subprocess.Popen(["true"])
    dead.wait()
    jobs = {}
    for name, pid in (("ag-job-dead", dead.pid), ("ag-job-live", os.getpid())):
        root = tmp_path / "grade-1" / name
        (root / "scratch").mkdir(parents=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(root / "scratch")], check=True)
        (root / OWNER).write_text(_process_tag(pid))
        jobs[name] = root
    try:
        sweep_orphans(tmp_path)
        assert not jobs["ag-job-dead"].exists()
        assert os.path.ismount(jobs["ag-job-live"] / "scratch")
    finally:
        cleanup_leftovers(tmp_path / "grade-1")
