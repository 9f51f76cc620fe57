"""A busy machine slows grading but must not fail it: every job has an explicit thread count and
OpenMP threads that stop spinning soon (see procs.thread_env and `benchmark.py --busy`)."""

from __future__ import annotations

import os

from autograder import procs


def test_every_environment_limits_spinning_and_pins_threads():
    for env in (procs.thread_env(None), procs.jail_env("/scratch/home"), procs.trusted_env()):
        assert env["GOMP_SPINCOUNT"] == procs.SPINCOUNT
    jailed = procs.jail_env("/scratch/home", threads=1)
    assert jailed["OMP_NUM_THREADS"] == jailed["MKL_NUM_THREADS"] == "1"


def test_a_model_tier_job_always_gets_a_thread_count(monkeypatch, tmp_path):
    from autograder.grading import model_tier  # torch and scikit-learn: imported when the test runs

    seen = []
    monkeypatch.setattr(model_tier, "grade_notebook", lambda nb, *a, threads=None, **k: seen.append(threads))
    monkeypatch.setattr(model_tier, "detect", lambda: None)
    model_tier.grade_notebooks(tmp_path, tmp_path, model=object())
    model_tier.grade_notebooks(tmp_path, tmp_path, model=object(), threads=1)
    n = len(model_tier.load_course().notebooks)
    cores = len(os.sched_getaffinity(0))
    assert seen[:n] == [max(1, cores // min(n, cores))] * n  # side by side, the cores shared out
    assert seen[n:] == [1] * n
    seen.clear()
    model_tier.grade_notebooks(tmp_path, tmp_path, model=object(), notebooks=["emotion_model"])
    assert seen == [cores]  # one notebook alone: every core


def test_an_interrupted_grade_stops_the_notebooks_running_side_by_side(monkeypatch, tmp_path):
    import subprocess
    import time

    import pytest

    from autograder.grading import model_tier

    started = []

    lives = []

    def slow_notebook(nb, *args, live, **kwargs):
        proc = subprocess.Popen(["sleep", "120"], start_new_session=True)
        started.append(proc)
        lives.append(live)
        live.adopt(proc)
        try:
            proc.wait()
        finally:
            live.release(proc)

    calls = []

    def ctrl_c_once_the_first_runs(nb):  # progress is called as each notebook is submitted
        calls.append(nb)
        if len(calls) == 2:
            deadline = time.monotonic() + 10
            while not started and time.monotonic() < deadline:
                time.sleep(0.05)
            raise KeyboardInterrupt

    monkeypatch.setattr(model_tier, "grade_notebook", slow_notebook)
    monkeypatch.setattr(model_tier, "detect", lambda: None)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})  # two cores: side by side
    begin = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        model_tier.grade_notebooks(tmp_path, tmp_path, model=object(), progress=ctrl_c_once_the_first_runs)
    assert time.monotonic() - begin < 30, "the grade waited for its notebooks instead of stopping them"
    assert started and all(p.poll() is not None for p in started)
    assert lives and not len(lives[0])  # the grade's own registry of live jobs, emptied
