"""Shared fixtures of the hidden graders (the judge): one runner per stage, tiny models.

One judge process may grade several stages (one grader file each): each gets its own runner,
forked from one warm zygote in the grade's jail when the job file says ``warm``.

The judge process never imports the submission: ``stage_module`` returns a remote module whose
functions run in the stage's runner (in the jail when there is one).
"""

from __future__ import annotations

import os

import pytest

from autograder.procs import OFFLINE

for _key, _value in OFFLINE.items():
    os.environ.setdefault(_key, _value)

from autograder.grading.gradelib import TINY_KINDS, remote_module, tiny  # noqa: E402


@pytest.fixture(scope="session")
def job(pytestconfig):
    """The judge's settings (a ``job_config.JudgeJob``, written by ``grading/judge_process.py``)."""
    from autograder.grading.plugin import job_settings

    settings = job_settings(pytestconfig)
    if settings is None:
        pytest.exit("no job file: run graders through `autograder grade PATH`", 2)
    return settings


@pytest.fixture(scope="session")
def submission_dir(job) -> str:
    return job.submission


def _runner_settings(job) -> dict:
    """The jail's settings for this judge's runners, all from the job."""
    from autograder.course.models import packaged_encoder_path, tiny_root

    for kind in TINY_KINDS:
        tiny.path(kind)  # built before the jail starts: it sees the cache read-only
    return {"limits": job.limits, "caps": job.caps, "status": job.sandbox, "threads": job.threads or None,
            "ro": (tiny_root(), packaged_encoder_path())}


@pytest.fixture(scope="session")
def zygote(pytestconfig, submission_dir, job):
    """The warm jailed parent of this judge's runners (``grading/warm.py``): the one the judge
    server lent (``judge_server``), else one of our own; None when the job says cold."""
    from autograder.grading.plugin import lent_zygote

    lent = lent_zygote(pytestconfig)
    if lent is not None:
        yield lent
        lent.close()
        return
    if not job.warm:
        yield None
        return
    from pathlib import Path

    from autograder.grading.warm import Zygote

    settings = _runner_settings(job)
    warm = Zygote(Path(submission_dir), **settings)
    yield warm
    warm.close()


@pytest.fixture(scope="module")
def runner(request, submission_dir, job, zygote):
    """The stage's runner: a copy of the submission, a scratch folder, the jail and its limits.

    One per grader file (a stage): its call timeout and its budget come from the job file's
    entry for that file, so stages graded by one judge keep their own limits.
    """
    from pathlib import Path

    from autograder.grading.judge import Runner

    settings = _runner_settings(job)
    name = Path(str(request.module.__file__)).name
    stage = job.stage_named(name)
    if stage is None:
        pytest.exit(f"the job file does not list {name}", 2)
    run = Runner(Path(submission_dir), timeout=stage.timeout, budget=stage.budget or None, zygote=zygote,
                 name=name.removesuffix(".py"), **settings)
    yield run
    run.close()


@pytest.fixture(scope="module")
def stage_module(runner):
    """Import ``<module>`` in the runner; every check of the stage fails with the same message if it can't."""
    cache: dict = {}

    def load(module: str):
        if module not in cache:
            try:
                cache[module] = (remote_module(runner, module), None)
            except Exception as exc:  # noqa: BLE001 - any import failure becomes a learner message
                cache[module] = (None, exc)
        mod, exc = cache[module]
        if exc is not None:
            raise exc
        return mod

    return load


@pytest.fixture(scope="module")
def inputs(runner):
    """A folder the judge writes prepared models into; the runner sees it read-only, at the same path."""
    return runner.job.inputs


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return tiny.tokenizer()


@pytest.fixture(scope="session")
def tiny_paths():
    return tiny
