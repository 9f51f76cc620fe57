"""A busy machine slows grading but must not fail it: every job has an explicit thread count and
OpenMP threads that stop spinning soon (see procs.thread_env and `benchmark.py --busy`)."""

from __future__ import annotations

import os

from autograder import procs
from autograder.grading import model_tier


def test_every_environment_limits_spinning_and_pins_threads():
    for env in (procs.thread_env(None), procs.jail_env("/scratch/home"), procs.trusted_env()):
        assert env["GOMP_SPINCOUNT"] == procs.SPINCOUNT
    jailed = procs.jail_env("/scratch/home", threads=1)
    assert jailed["OMP_NUM_THREADS"] == jailed["MKL_NUM_THREADS"] == "1"


def test_a_model_tier_job_always_gets_a_thread_count(monkeypatch, tmp_path):
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
