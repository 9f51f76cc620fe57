"""Shared fixtures of the hidden graders: the submission's stage modules and tiny models."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from autograder.gradelib import import_submission_module, tiny  # noqa: E402


@pytest.fixture(scope="session")
def submission_dir() -> str:
    path = os.environ.get("AUTOGRADER_SUBMISSION")
    if not path:
        pytest.exit("AUTOGRADER_SUBMISSION is not set: run graders through `autograder grade PATH`", 2)
    return path


@pytest.fixture(scope="session")
def stage_module(submission_dir):
    """Import ``<submission>/<module>.py``; every check of the stage fails with the same message if it can't."""
    cache: dict = {}

    def load(module: str):
        if module not in cache:
            try:
                cache[module] = (import_submission_module(submission_dir, module), None)
            except Exception as exc:  # noqa: BLE001 - any import failure becomes a learner message
                cache[module] = (None, exc)
        mod, exc = cache[module]
        if exc is not None:
            raise exc
        return mod

    return load


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return tiny.tokenizer()


@pytest.fixture(scope="session")
def tiny_paths():
    return tiny
