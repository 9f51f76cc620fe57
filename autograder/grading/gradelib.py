"""What the hidden graders share: calling a submission's functions through its runner, with
learner-facing messages, and tiny models.

The graders never import a submission: ``sub`` is a :class:`autograder.grading.judge.RemoteModule`,
and what comes back is plain data or a :class:`~autograder.grading.judge.Handle`. A message says what
was called, what came back and what was expected (exercism's style).
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

from autograder.grading.judge import Handle, Recipe, RemoteError, RemoteModule, RunnerFailure
from autograder.messages import GraderFailure, not_written, remote_failure


class SubmissionError(GraderFailure):
    """The submission's file is missing or cannot be imported."""


def remote_module(runner, module: str) -> RemoteModule:
    """Ask the stage's runner (another process, in the jail) to import ``module``; the judge gets a
    remote handle to it, never the module itself. A learner message when it cannot."""
    try:
        remote = runner.module(module)
    except RemoteError as exc:
        raise SubmissionError(f"importing {module}.py raised {exc.type}: {exc.message}{exc.where()}") from None
    except RunnerFailure as exc:
        raise SubmissionError(f"importing {module}.py failed: {exc}") from None
    if remote.info.get("missing"):
        refused = [r for r in runner.job.refused if r.startswith(f"{module}.py ")]
        if refused:
            raise SubmissionError(f"{refused[0]} ({module}.py was not graded).")
        raise SubmissionError(f"{module}.py is missing from the submission folder.")
    if "syntax_error" in remote.info:
        err = remote.info["syntax_error"]
        raise SubmissionError(f"{module}.py has a syntax error on line {err.get('line')}: {err.get('msg')}. "
                              "Fix it, then run `autograder check`.")
    return remote


class RemoteFunction:
    """A submission's function (or a handle's method): calling it calls it in the runner."""

    def __init__(self, target, name: str | None, options: dict | None = None):
        self.target, self.name, self.options = target, name, options

    def __call__(self, *args, **kwargs):
        return self.target.call(self.name, *args, options=self.options, **kwargs)

    def traced(self, *args, **kwargs):
        return self.target.call_traced(self.name, *args, options=self.options, **kwargs)


def function(module: RemoteModule, name: str, **options) -> RemoteFunction:
    """The submission's function ``name``, or a failure saying it is missing."""
    try:
        info = module.describe(name)
    except RunnerFailure as exc:
        raise GraderFailure(str(exc)) from None
    if not info.get("exists") or not info.get("callable"):
        raise GraderFailure(f"{module.name}.py has no function `{name}`: keep the names and signatures of the stub.")
    return RemoteFunction(module, name, options or None)


def method(handle: Handle, name: str | None, **options) -> RemoteFunction:
    return RemoteFunction(handle, name, options or None)


def describe(value: Any) -> str:
    """A short, readable description of a value for messages."""
    if isinstance(value, Handle):
        return f"a {value.type}"
    text = repr(value) if not hasattr(value, "shape") else f"{type(value).__name__} of shape {tuple(value.shape)}"
    return text if len(text) <= 120 else text[:117] + "..."


def _learner_error(exc: RemoteError | RunnerFailure, desc: str) -> GraderFailure:
    return GraderFailure(remote_failure(exc, desc))


def attempt(fn, desc: str, *args, **kwargs):
    """Call ``fn`` (a remote function or method); an exception becomes 'called X: it raised Y'."""
    try:
        return fn(*args, **kwargs)
    except (RemoteError, RunnerFailure) as exc:
        raise _learner_error(exc, desc) from None


def attempt_traced(fn: RemoteFunction, desc: str, *args, **kwargs):
    """Like :func:`attempt`, returning (value, trace) (see the runner's ``trace`` option)."""
    try:
        return fn.traced(*args, **kwargs)
    except (RemoteError, RunnerFailure) as exc:
        raise _learner_error(exc, desc) from None


def call(module, name: str, *args, call_desc: str | None = None, options: dict | None = None, **kwargs):
    """Call the submission's function ``name`` with learner-facing messages (see :func:`attempt`)."""
    return attempt(function(module, name, **(options or {})), call_desc or f"{name}(...)", *args, **kwargs)


def expect_raises(fn, exc_type: type[BaseException], desc: str, *args, why: str = "", **kwargs) -> RemoteError:
    """Expect ``fn(*args)`` to raise ``exc_type``; returns the (remote) exception, else a learner message."""
    try:
        out = fn(*args, **kwargs)
    except RemoteError as exc:
        if exc.is_a(exc_type):
            return exc
        if exc.is_a(NotImplementedError):
            raise GraderFailure(not_written(desc)) from None
        raise GraderFailure(f"called {desc}: it raised {exc.type}: {exc.message}; expected a "
                            f"{exc_type.__name__}{': ' + why if why else ''}") from None
    except RunnerFailure as exc:
        raise _learner_error(exc, desc) from None
    raise GraderFailure(f"called {desc}: it returned {describe(out)}; expected a {exc_type.__name__}"
                        f"{': ' + why if why else ''}")


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise GraderFailure(message)


def is_a(value: Any, types) -> bool:
    """isinstance for values and for handles (by the class names the runner reported)."""
    types = types if isinstance(types, tuple) else (types,)
    if isinstance(value, Handle):
        return any(value.is_a(t) for t in types)
    return isinstance(value, types)


def expect_type(value: Any, types, what: str) -> None:
    if not is_a(value, types):
        names = types.__name__ if isinstance(types, type) else " or ".join(t.__name__ for t in types)
        shown = value.type if isinstance(value, Handle) else type(value).__name__
        raise GraderFailure(f"{what} should be a {names}, but it returned {shown}: {describe(value)}")


class R:  # noqa: N801 - a namespace of recipes (arguments built in the runner)
    """Arguments the runner builds from paths and plain data (see ``sandbox/probes.Recipes``)."""

    @staticmethod
    def tokenizer(path: str, **kwargs) -> Recipe:
        return Recipe("tokenizer", path=str(path), **kwargs)

    @staticmethod
    def model(path: str, head: str = "seq_cls", mode: str = "eval", seed: int | None = None, **kwargs) -> Recipe:
        return Recipe("model", path=str(path), head=head, mode=mode, seed=seed, **kwargs)

    @staticmethod
    def config_only(path: str) -> Recipe:
        return Recipe("config_only", path=str(path))

    @staticmethod
    def dataset(columns: dict, label_names: list | None = None) -> Recipe:
        return Recipe("dataset", columns=columns, label_names=label_names)

    @staticmethod
    def dataset_dict(splits: dict, label_names: list | None = None, tokenizer: Recipe | None = None,
                     max_length: int | None = None) -> Recipe:
        return Recipe("dataset_dict", splits=splits, label_names=label_names, tokenizer=tokenizer,
                      max_length=max_length)

    @staticmethod
    def training_args(**kwargs) -> Recipe:
        return Recipe("training_args", **kwargs)

    @staticmethod
    def eval_prediction(predictions, label_ids) -> Recipe:
        return Recipe("eval_prediction", predictions=predictions, label_ids=label_ids)

    @staticmethod
    def item(of, key) -> Recipe:
        return Recipe("item", of=of, key=key)


class tiny:  # noqa: N801 - a namespace of cached constructors
    """Tiny random-weight models (seconds to load) built from configs; see autograder.course.models."""

    @staticmethod
    @cache
    def path(kind: str) -> str:
        from autograder.course.models import tiny_model_dir

        return str(tiny_model_dir(kind))

    @staticmethod
    @lru_cache(maxsize=1)
    def tokenizer():
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(tiny.path("distilbert-classifier"))


MAX_ARTIFACT = 2 << 30  # bytes of weights the judge reads back from a probe


def probed_model(handle: Handle) -> tuple[dict, Any]:
    """(probe info, folder) of a model the runner saved with ``save_pretrained`` into its scratch.

    The folder is checked to lie inside the job's scratch, and to hold only regular files (no
    symlinks) within the size cap; load it with ``from_pretrained(folder, use_safetensors=True)``
    or read the weights with :func:`probed_weights`.
    """
    import os
    import stat

    try:
        info = handle.probe("model")
    except (RemoteError, RunnerFailure) as exc:
        raise GraderFailure(f"the model could not be saved for checking: {exc}") from None
    if not info.get("dir"):
        raise GraderFailure(f"the returned {info.get('class', 'object')} is not a Hugging Face model "
                            "(no save_pretrained)")
    folder = handle.runner.scratch_path(info["dir"])
    total = 0
    for entry in os.scandir(folder):
        st = os.lstat(entry.path)
        if not stat.S_ISREG(st.st_mode):
            raise GraderFailure(f"the saved model holds {entry.name}, which is not a plain file")
        total += st.st_size
    if total > MAX_ARTIFACT:
        raise GraderFailure(f"the saved model is {total >> 20} MiB, over the {MAX_ARTIFACT >> 20} MiB the grader reads")
    return info, folder


def probed_weights(handle: Handle) -> tuple[dict, dict]:
    """(probe info, state dict) of a model in the runner, read from safetensors by the judge."""
    from safetensors.torch import load_file

    info, folder = probed_model(handle)
    state: dict = {}
    for path in sorted(folder.glob("*.safetensors")):
        state.update(load_file(str(path)))
    if not state:
        raise GraderFailure("the model was saved without weights (no .safetensors file)")
    return info, state
