"""Public checks: quick tests you can run yourself with `autograder check` (or plain pytest).

They import your stage modules from the folder above and use tiny random models, so they run
in seconds and never need the internet.
"""

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


@pytest.fixture(scope="session")
def tiny_model_path() -> str:
    from autograder.course.models import tiny_model_dir

    return str(tiny_model_dir("distilbert-classifier"))


@pytest.fixture(scope="session")
def tiny_base_path() -> str:
    """A bare encoder without a head, like distilbert-base-uncased (tiny and random)."""
    from autograder.course.models import tiny_model_dir

    return str(tiny_model_dir("distilbert-base"))


@pytest.fixture(scope="session")
def tiny_nli_path() -> str:
    from autograder.course.models import tiny_model_dir

    return str(tiny_model_dir("nli"))


def pytest_configure(config):
    # The Trainer asks for pinned memory by default; on a machine without a GPU torch warns on every
    # batch. It is harmless here, and a wall of warnings hides the one line that matters.
    config.addinivalue_line("filterwarnings", "ignore:'pin_memory' argument is set as true:UserWarning")
