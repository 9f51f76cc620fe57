"""The project's scripts (``scripts/*.py``, not a package) as modules for the tests that call their functions."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from autograder import REPO_ROOT


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` run as module ``name`` (registered in sys.modules: dataclasses look it up there)."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
