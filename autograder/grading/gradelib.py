"""What the hidden graders share: calling a submission's functions through its runner, with
learner-facing messages, and tiny models.

The graders never import a submission: ``sub`` is a :class:`autograder.grading.judge.RemoteModule`,
and what comes back is plain data or a :class:`~autograder.grading.judge.Handle`. A message says what
was called, what came back and what was expected (exercism's style), with values from the
submission cut before they are shown (:func:`short_repr`). Inputs that a constant or a lookup table
could answer are drawn with :func:`hidden_rng` (see :mod:`autograder.grading.hidden_inputs`).
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

from autograder.grading.hidden_inputs import hidden_rng as hidden_rng  # re-exported for the graders
from autograder.grading.judge import Handle, Recipe, RemoteError, RemoteModule, RunnerFailure
from autograder.grading.scratch_files import SavedModel, read_saved_model
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


SHOWN = 120  # characters of a value from the submission shown in a message
_ITEMS = 8  # items of a list or dict shown before "..."


def short_repr(value: Any, limit: int = SHOWN, depth: int = 0) -> str:
    """A repr of a value from the submission that never costs more than ``limit`` characters' work.

    Why: a reply may hold a 50 MB string, a list of a million items or an int of a million digits;
    repr() of the whole would take seconds and memory before being cut. Strings and bytes are cut
    before repr, containers show their first items, big ints their size, arrays their shape.
    """
    if isinstance(value, Handle):
        text = f"a {value.type[:80]}"
    elif isinstance(value, (str, bytes, bytearray)):
        text = repr(value[:limit]) + ("..." if len(value) > limit else "")
    elif isinstance(value, bool) or value is None or isinstance(value, float):
        text = repr(value)
    elif isinstance(value, int):
        text = repr(value) if value.bit_length() <= 200 else f"an int of {value.bit_length()} bits"
    elif hasattr(value, "shape") and hasattr(value, "dtype"):
        text = f"{type(value).__name__} of shape {tuple(value.shape)}"
        if tuple(value.shape) == () and str(value.dtype).removeprefix("torch.").startswith(("float", "int", "uint")):
            text = f"{type(value).__name__}({value.item()!r})"  # a numpy or torch scalar: its number
    elif depth >= 3:
        text = "..."
    elif isinstance(value, dict):
        items = [f"{short_repr(k, limit, depth + 1)}: {short_repr(v, limit, depth + 1)}"
                 for k, v in list(dict.items(value))[:_ITEMS]]
        text = "{" + ", ".join(items) + (", ..." if len(value) > _ITEMS else "") + "}"
    elif isinstance(value, (list, tuple)):
        items = [short_repr(v, limit, depth + 1) for v in value[:_ITEMS]]
        ends = "()" if isinstance(value, tuple) else "[]"
        text = ends[0] + ", ".join(items) + (", ..." if len(value) > _ITEMS else "") + ends[1]
    else:
        text = f"a {type(value).__name__}"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def describe(value: Any) -> str:
    """A short, readable description of a value for messages (see :func:`short_repr`)."""
    return short_repr(value)


def _learner_error(exc: RemoteError | RunnerFailure, desc: str,
                   fixes: dict[type[BaseException], str] | None = None) -> GraderFailure:
    """'called X: it raised Y'; with ``fixes``, the course's words for an exception of that type first."""
    fix = next((words for kind, words in (fixes or {}).items() if hasattr(exc, "mro") and exc.is_a(kind)), "")
    return GraderFailure(remote_failure(exc, desc, fix))


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


def call(module, name: str, *args, call_desc: str | None = None, options: dict | None = None,
         fixes: dict[type[BaseException], str] | None = None, **kwargs):
    """Call the submission's function ``name`` with learner-facing messages (see :func:`attempt`);
    ``fixes`` maps an exception type the mistake raises to the course's words for it (they come first)."""
    fn = function(module, name, **(options or {}))
    try:
        return fn(*args, **kwargs)
    except (RemoteError, RunnerFailure) as exc:
        raise _learner_error(exc, call_desc or f"{name}(...)", fixes) from None


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
        shown = (value.type if isinstance(value, Handle) else type(value).__name__)[:80]
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


TINY_KINDS = ("distilbert-base", "bert-base", "distilbert-classifier", "nli")  # every tiny model the graders use


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


def probed_model(handle: Handle) -> tuple[dict, SavedModel]:
    """(probe info, saved model) of a model the runner saved with ``save_pretrained`` into its scratch.

    The judge reads the folder itself, never by a path the runner could swap: every component is
    opened with ``O_NOFOLLOW`` under the job's scratch, the files are checked on their descriptors
    and parsed from their bytes; rebuild a model with :func:`autograder.grading.scratch_files.rebuild`.
    """
    try:
        info = handle.probe("model")
    except (RemoteError, RunnerFailure) as exc:
        raise GraderFailure(f"the model could not be saved for checking: {exc}") from None
    if not isinstance(info, dict) or not info.get("dir"):
        kind = info.get("class") if isinstance(info, dict) and isinstance(info.get("class"), str) else "object"
        raise GraderFailure(f"the returned {kind[:60]} is not a Hugging Face model (no save_pretrained)")
    return info, read_saved_model(handle.runner.job.scratch, info["dir"], MAX_ARTIFACT)


def probed_weights(handle: Handle) -> tuple[dict, dict]:
    """(probe info, state dict) of a model in the runner, read from safetensors bytes by the judge."""
    info, saved = probed_model(handle)
    return info, saved.state
