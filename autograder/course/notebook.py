"""What the course notebooks import so that they teach: short stops, a baseline, plots, quiet noise.

A student reads a notebook top to bottom, often for the first time with transformers, so:

- a cell left to fill stops with one line, "fill in this cell (...)", not a traceback
  (:class:`CellNotFilled`, raised by the stub ``autograder stubs`` writes into each such cell);
- a stage function that is still a stub says which stage to finish instead of the python
  stub's "run `autograder check`" (:func:`prepare_notebook` installs a handler for that);
- every validation score is printed beside the majority-class baseline, with a plain warning
  when the model does not beat it (:func:`majority_baseline`, :func:`baseline_callback`);
- the learning curve and the confusion matrix are shown in the notebook and saved to outputs/;
- the fine-tuned model is compared with what needs no fine-tuning (zero-shot) and with what needs
  no pretraining (a bag of words, :func:`keyword_predictions`), on the same validation texts;
- messages that are expected on a laptop CPU (``pin_memory``) and the weight loading/saving
  progress bars are silenced, by name: every other warning still shows.

Nothing here is graded and nothing here reads a hidden split: it runs in the student's kernel.
"""

from __future__ import annotations

import re
import traceback
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

FILL_IN = "fill in this cell"
STAGE_FILE = re.compile(r"(stage(\d+)_\w+)\.py")


class CellNotFilled(Exception):
    """Raised by a notebook cell that still holds its stub; shown as one line, not a traceback.

    IPython (Jupyter, VS Code, papermill) prints what ``_render_traceback_`` returns instead of
    the traceback: the traceback of a stub only points at the stub itself, which helps nobody.
    """

    def __init__(self, what: str = ""):
        super().__init__(f"{FILL_IN} ({what}), then run it again" if what else f"{FILL_IN}, then run it again")

    def _render_traceback_(self) -> list[str]:
        return [f"✏️  {self}"]


def stage_stub_message(exc: BaseException) -> str | None:
    """'stage3_train.make_training_args is not written yet: finish stage 3 ...' when ``exc`` is a
    NotImplementedError raised inside a stage module (a stub the student has not replaced); else None."""
    if not isinstance(exc, NotImplementedError):
        return None
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if STAGE_FILE.fullmatch(Path(f.filename).name)]
    if not frames:
        return None
    frame = frames[-1]  # the innermost stage function: the stub that raised
    module, number = STAGE_FILE.fullmatch(Path(frame.filename).name).groups()
    check = _stage_id(module)
    how = f"`autograder check {check}` passes" if check else "its public checks pass"
    return (f"{module}.{frame.name}() is not written yet: finish stage {number} ({module}.py) until {how}, "
            "then run this cell again")


def _stage_id(module: str) -> str:
    """The stage id of a module ('stage3_train' -> 'train'), from the manifest; '' if it cannot say."""
    try:
        from autograder.course.manifest import load_course

        return next((s.id for s in load_course().stages if s.module == module), "")
    except Exception:  # noqa: BLE001 - a message helper must never fail the cell for its own reasons
        return ""


def _short_stage_stub(shell, etype, value, tb, tb_offset=None):
    """IPython custom exception handler: one line for a stage stub, the usual traceback otherwise."""
    message = stage_stub_message(value)
    if message is None:
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset, running_compiled_code=True)
        return None
    value.args = (message,)  # papermill and the grader's report quote the exception's own text
    shell._showtraceback(etype, value, [f"✏️  {message}"])
    return None


def prepare_notebook() -> None:
    """Set up a course notebook: short messages for stubs, and silence the noise we expect.

    Called once, in the setup cell. Outside IPython (a plain ``python`` run) only the noise filters apply.
    """
    quiet_expected_noise()
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        shell.set_custom_exc((NotImplementedError,), _short_stage_stub)


def quiet_expected_noise() -> None:
    """Silence what is expected on a CPU and says nothing to a student, by name only.

    - torch's "'pin_memory' argument is set as true but no accelerator is found" (the Trainer pins
      memory by default; on a laptop there is no GPU to pin it for), once per evaluation;
    - scikit-learn's "Precision is ill-defined and being set to 0.0", which comes when the model
      predicts one class for everything: the baseline line says that in plain words;
    - transformers' "Loading weights" / "Writing model shards" progress bars (instant, and shown as
      widgets that only render in some editors). The LOAD REPORT stays: the notebook explains it.
    """
    warnings.filterwarnings("ignore", message=r".*'pin_memory' argument is set as true but no accelerator",
                            category=UserWarning)
    warnings.filterwarnings("ignore", message=r"(Precision|Recall|F-score) is ill-defined and being set to 0\.0")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass


# ----------------------------------------------------------------------------- baseline
@dataclass(frozen=True)
class Baseline:
    """Always predicting the most common class: a model must beat this to have learned anything."""

    label: str
    accuracy: float

    def beside(self, accuracy: float | None, what: str = "validation accuracy", also: str = "") -> str:
        """One line: the score beside the baseline, and a plain warning when it does not beat it.
        ``also``: other graded metrics, shown after the accuracy (", macro-F1 0.447")."""
        base = f"majority-class baseline {self.accuracy:.3f} (always '{self.label}')"
        if accuracy is None:
            return f"{what}: not in the metrics (does compute_metrics return 'accuracy'?){also}; {base}"
        line = f"{what} {accuracy:.3f}{also}   vs   {base}"
        if accuracy <= self.accuracy + 1e-9:
            line += ("\n⚠️  The model does not beat the majority-class baseline: it has learned nothing yet "
                     "(it may predict one class for everything). Check that stage 2 loads the pretrained "
                     "weights (from_pretrained, not from_config), the learning rate and the number of epochs.")
        return line


def majority_baseline(labels: Sequence[int], label_names: Sequence[str]) -> Baseline:
    """The accuracy of always predicting the most common label of ``labels`` (class indices)."""
    if not len(labels):
        raise ValueError("no labels: the baseline needs at least one example")
    index, count = Counter(int(y) for y in labels).most_common(1)[0]
    return Baseline(str(label_names[index]), count / len(labels))


def _baseline_callback_class():
    from transformers import TrainerCallback

    class BaselineCallback(TrainerCallback):
        """After each evaluation of the Trainer, print the validation accuracy beside the baseline."""

        def __init__(self, baseline: Baseline):
            self.baseline = baseline

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            metrics = metrics or {}
            f1 = metrics.get("eval_f1")  # stage 4's compute_metrics: the macro-F1, a graded metric of the capstone
            also = f", macro-F1 {f1:.3f}" if isinstance(f1, (int, float)) else ""
            epoch = f"epoch {state.epoch:g}: " if state.epoch is not None else ""
            print(epoch + self.baseline.beside(metrics.get("eval_accuracy"), also=also), flush=True)

    return BaselineCallback


def baseline_callback(baseline: Baseline):
    """A ``TrainerCallback`` that prints each epoch's validation accuracy beside ``baseline``
    (``trainer.add_callback(baseline_callback(baseline))``)."""
    return _baseline_callback_class()(baseline)


# ----------------------------------------------------------------------------- plots
def _show(fig, path: Path) -> None:
    """Save ``fig`` to ``path`` and show it inline when running in a notebook (then close it, so it shows once)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            display(fig)
    except ImportError:
        pass
    plt.close(fig)


def show_learning_curve(log_history: list[dict], path: Path, baseline: Baseline | None = None) -> None:
    """Plot the training loss per step and the validation loss and accuracy per epoch, from
    ``trainer.state.log_history``; saved to ``path`` and shown inline (a line instead when nothing was logged)."""
    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e and "step" in e]
    evals = [e for e in log_history if "eval_loss" in e]
    if not train and not evals:
        print("No learning curve: the trainer logged no loss (did trainer.train() run?)")
        return
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.5))
    if train:
        ax_loss.plot(*zip(*train, strict=True), label="training loss (every 10 steps)")
    if evals:
        ax_loss.plot([e["step"] for e in evals], [e["eval_loss"] for e in evals], "o-", label="validation loss")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("loss")
    ax_loss.legend()
    accuracy = [(e.get("epoch", i + 1), e["eval_accuracy"]) for i, e in enumerate(evals) if "eval_accuracy" in e]
    if accuracy:
        ax_acc.plot(*zip(*accuracy, strict=True), "o-", label="validation accuracy")
    if baseline is not None:
        ax_acc.axhline(baseline.accuracy, color="grey", linestyle="--", label=f"always '{baseline.label}'")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylim(0, 1)
    ax_acc.set_title("validation accuracy")
    ax_acc.legend()
    _show(fig, path)


def show_confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], label_names: Sequence[str],
                          path: Path, title: str = "validation confusion matrix") -> None:
    """Rows are the true labels, columns the predictions; saved to ``path`` and shown inline."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    size = max(4.0, 0.8 * len(label_names) + 1.5)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    ConfusionMatrixDisplay.from_predictions(y_true, y_pred, labels=list(range(len(label_names))),
                                            display_labels=list(label_names), ax=ax, colorbar=False)
    ax.set_title(title)
    _show(fig, path)


# ----------------------------------------------------------------------------- comparisons
def keyword_predictions(train_texts: Sequence[str], train_labels: Sequence[int], texts: Sequence[str],
                        seed: int = 42) -> list[int]:
    """Class indices for ``texts`` from a model that only counts words: TF-IDF over words and word pairs,
    then logistic regression, trained on ``train_texts`` (about a second for 2,000 texts).

    It knows only the words it met in training; a pretrained encoder also knows what words it never met
    here mean. The capstone prints both side by side, and the course's emotion corpus is built so that
    fine-tuning leads it by 20 points or more on the hidden test split, where the course measures the
    same model."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    clf = LogisticRegression(max_iter=2000, C=10, random_state=seed)
    # One BLAS thread: lbfgs on a small sparse matrix is 3-10x slower with thread hand-offs.
    with threadpool_limits(limits=1):
        clf.fit(vec.fit_transform(list(train_texts)), [int(y) for y in train_labels])
    return [int(y) for y in clf.predict(vec.transform(list(texts)))]


def comparison_table(rows: dict[str, tuple[dict, int]]) -> str:
    """One line per other method: the fine-tuned model vs it, from stage 6's ``compare_predictions``
    (a = fine-tuned, b = the other) over ``n`` validation texts. ``rows``: name -> (comparison, n)."""
    lines = [f"{'fine-tuned vs':<42} {'texts':>5} {'fine-tuned':>10} {'other':>9} {'agree':>6} "
             f"{'only ft right':>13} {'only it right':>13} {'McNemar p':>9}"]
    for name, (c, n) in rows.items():
        lines.append(f"{name:<42} {n:>5} {c['accuracy_a']:>10.3f} {c['accuracy_b']:>9.3f} {c['agreement']:>6.2f} "
                     f"{c['b01']:>13} {c['b10']:>13} {c['mcnemar_p']:>9.2g}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- NLI zero-shot
def nli_model_path(name: str) -> str | None:
    """Where to load the NLI model ``name`` from: a local folder, the local Hugging Face cache, or
    (online: COURSE_ONLINE=1) the Hub id itself; None when it cannot be loaded offline.

    Not :func:`autograder.course.models.resolve_model`: its offline stand-in is a sentence
    encoder, which has no NLI head.
    """
    from autograder.course.models import resolve_model

    resolved = resolve_model(name)
    return None if resolved.source == "packaged" else resolved.path
