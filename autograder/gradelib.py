"""What the hidden graders share: importing a submission, calling its functions with
learner-facing error messages, and tiny models.

A message says what was called, what came back and what was expected (exercism's style).
"""

from __future__ import annotations

import importlib.util
import sys
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from autograder.plugin import GraderFailure


class SubmissionError(GraderFailure):
    """The submission's file is missing or cannot be imported."""


def import_submission_module(submission_dir: str | Path, module: str):
    """Import ``submission_dir/module.py`` under a private name, with a learner message on failure."""
    path = Path(submission_dir) / f"{module}.py"
    if not path.exists():
        raise SubmissionError(f"{module}.py is missing from the submission folder {submission_dir}.")
    spec = importlib.util.spec_from_file_location(f"submission_{module}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(Path(submission_dir).resolve()))
    try:
        spec.loader.exec_module(mod)
    except SyntaxError as exc:
        raise SubmissionError(
            f"{module}.py has a syntax error on line {exc.lineno}: {exc.msg}. Fix it, then run `autograder check`."
        ) from None
    except Exception as exc:  # noqa: BLE001
        raise SubmissionError(f"importing {module}.py raised {type(exc).__name__}: {exc}") from None
    finally:
        sys.path.remove(str(Path(submission_dir).resolve()))
    return mod


def function(module, name: str):
    """The submission's function ``name``, or a failure saying it is missing."""
    fn = getattr(module, name, None)
    if fn is None or not callable(fn):
        raise GraderFailure(f"{module.__name__.removeprefix('submission_')}.py has no function `{name}`: "
                            "keep the names and signatures of the stub.")
    return fn


def describe(value: Any) -> str:
    """A short, readable description of a value for messages."""
    text = repr(value) if not hasattr(value, "shape") else f"{type(value).__name__} of shape {tuple(value.shape)}"
    return text if len(text) <= 120 else text[:117] + "..."


def attempt(fn, desc: str, *args, **kwargs):
    """Call ``fn`` (a submission's function or method); an exception becomes 'called X: it raised Y'."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise GraderFailure(f"`{desc.split('(')[0]}` is not written yet (it raises NotImplementedError).") from None
    except GraderFailure:
        raise
    except Exception as exc:  # noqa: BLE001
        raise GraderFailure(f"called {desc}: it raised {type(exc).__name__}: {exc}") from None


def call(module, name: str, *args, call_desc: str | None = None, **kwargs):
    """Call the submission's function ``name`` with learner-facing messages (see :func:`attempt`)."""
    return attempt(function(module, name), call_desc or f"{name}(...)", *args, **kwargs)


def expect_raises(fn, exc_type: type[BaseException], desc: str, *args, why: str = "", **kwargs) -> BaseException:
    """Expect ``fn(*args)`` to raise ``exc_type``; returns the exception, else a learner message."""
    try:
        out = fn(*args, **kwargs)
    except exc_type as exc:
        return exc
    except NotImplementedError:
        raise GraderFailure(f"`{desc.split('(')[0]}` is not written yet (it raises NotImplementedError).") from None
    except Exception as exc:  # noqa: BLE001
        raise GraderFailure(f"called {desc}: it raised {type(exc).__name__}: {exc}; expected a "
                            f"{exc_type.__name__}{': ' + why if why else ''}") from None
    raise GraderFailure(f"called {desc}: it returned {describe(out)}; expected a {exc_type.__name__}"
                        f"{': ' + why if why else ''}")


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise GraderFailure(message)


def expect_type(value: Any, types, what: str) -> None:
    if not isinstance(value, types):
        names = types.__name__ if isinstance(types, type) else " or ".join(t.__name__ for t in types)
        raise GraderFailure(f"{what} should be a {names}, but it returned {type(value).__name__}: {describe(value)}")


class tiny:  # noqa: N801 - a namespace of cached constructors
    """Tiny random-weight models (seconds to load) built from configs; see autograder.models."""

    @staticmethod
    @cache
    def path(kind: str) -> str:
        from autograder.models import tiny_model_dir

        return str(tiny_model_dir(kind))

    @staticmethod
    @lru_cache(maxsize=1)
    def tokenizer():
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(tiny.path("distilbert-classifier"))
