"""Hidden grader, stage 3 (train). Points per check: course.toml [stages.checks].

The Trainer stays in the submission's process. The judge gives it recipes (a tiny model, a
tokenized DatasetDict), reads the arguments, collator and datasets back as data (probes), and
judges training from the model's saved weights: it computes the training loss itself, on its
own copy of the data, before and after ``trainer.train()``.
"""

from __future__ import annotations

import itertools
from functools import cache

import pytest
import torch
from datasets import Dataset, DatasetDict
from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding, Trainer, TrainingArguments

from autograder.grading.gradelib import (
    R,
    attempt,
    call,
    describe,
    expect,
    expect_type,
    hidden_rng,
    method,
    probed_model,
    tiny,
)
from autograder.grading.judge import RemoteError, RunnerFailure
from autograder.grading.plugin import GraderFailure
from autograder.grading.scratch_files import rebuild
from autograder.sandbox.wire import qualname

MODULE = "stage3_train"
GOOD = ["great", "wonderful", "moving", "brilliant", "charming", "superb"]
BAD = ["awful", "boring", "dull", "clumsy", "tedious", "lifeless"]
MAX_LENGTH = 32
_RUNS = itertools.count(1)


@pytest.fixture(scope="module")
def sub(stage_module):
    return stage_module(MODULE)


def _rows(n: int, offset: int) -> dict:
    texts, labels = [], []
    for i in range(n):
        words = GOOD if i % 2 else BAD
        texts.append(f"a {words[(i + offset) % 6]} and {words[(i + offset + 1) % 6]} film" + " indeed" * (i % 3))
        labels.append(i % 2)
    return {"text": texts, "label": labels}


def _splits() -> dict:
    """Train 24 rows; validation and test of drawn sizes (hidden seed), all three different so each
    split is recognisable, and drawn word offsets: no table of known rows can pick a split."""
    rng = hidden_rng(MODULE)
    validation = rng.randint(6, 10)
    test = rng.choice([n for n in range(11, 16) if n != validation])
    offsets = rng.sample(range(6), 3)
    return {s: _rows(n, o) for s, n, o in (("train", 24, offsets[0]), ("validation", validation, offsets[1]),
                                          ("test", test, offsets[2]))}


SPLITS = _splits()


@pytest.fixture(scope="module")
def tokenized() -> DatasetDict:
    """The judge's own copy of the tokenized splits (the runner builds the same from ``_recipe``)."""
    tok = tiny.tokenizer()
    ds = DatasetDict({s: Dataset.from_dict(cols) for s, cols in SPLITS.items()})
    out = ds.map(lambda b: tok(b["text"], truncation=True, max_length=MAX_LENGTH), batched=True,
                 remove_columns=["text"])
    out.set_format("torch")
    return out


def _recipe():
    """The tokenized DatasetDict, built in the runner: what the submission's Trainer receives."""
    return R.dataset_dict(SPLITS, tokenizer=R.tokenizer(tiny.path("distilbert-classifier")), max_length=MAX_LENGTH)


def _probe(handle, kind: str, what: str) -> dict:
    try:
        return handle.probe(kind)
    except (RemoteError, RunnerFailure) as exc:
        raise GraderFailure(f"the {what} could not be inspected: {exc}") from None


#: The schedules the calibration holds the model tier's thresholds to (docs/calibration.md): a constant rate
#: scored lower on the sentiment notebook than the threshold allows, so the course pins a decaying one.
DECAYING_SCHEDULES = ("linear", "cosine")


def _args(sub, **kw):
    """(handle, arguments as a dict) of make_training_args, with an output folder in the runner's scratch."""
    params = {"seed": 7, "learning_rate": 3e-4, "epochs": 2, "batch_size": 8, "weight_decay": 0.05, **kw}
    args = call(sub, "make_training_args", f"runs/run{next(_RUNS)}", **params,
                call_desc=f"make_training_args(output_dir, {', '.join(f'{k}={v}' for k, v in params.items())})")
    expect_type(args, TrainingArguments, "make_training_args")
    values = _probe(args, "training_args", "TrainingArguments").get("args")
    expect(isinstance(values, dict), "make_training_args returned TrainingArguments that cannot be read (no to_dict)")
    return args, values


def _model():
    return R.model(tiny.path("distilbert-base"), head="seq_cls", seed=0, num_labels=2)


def _trainer(sub, args):
    trainer = call(sub, "build_trainer", _model(), R.tokenizer(tiny.path("distilbert-classifier")), _recipe(), args,
                   call_desc="build_trainer(model, tokenizer, tokenized, args)")
    expect_type(trainer, Trainer, "build_trainer")
    return trainer


def _row_values(row: dict) -> tuple:
    """(token ids, label) of a row as flat lists (a 0-d tensor crosses the wire with shape (1,))."""
    def flat(v):
        if v is None:
            return None
        try:
            return torch.as_tensor(v).reshape(-1).tolist()
        except (TypeError, ValueError, RuntimeError):
            return repr(v)

    return flat(row.get("input_ids")), flat(row.get("label", row.get("labels")))


def _same_rows(info: dict | None, split: Dataset) -> bool:
    """Does the probed dataset hold exactly the rows of ``split`` (token ids and labels), in order?"""
    if not info or info.get("kind") != "Dataset" or info.get("num_rows") != len(split):
        return False
    rows = info.get("rows") or []
    return len(rows) == len(split) and all(isinstance(r, dict) and _row_values(r) == _row_values(split[i])
                                           for i, r in enumerate(rows))


@cache
def _train_batch() -> dict:
    batch = tiny.tokenizer()(SPLITS["train"]["text"], truncation=True, max_length=MAX_LENGTH, padding=True,
                             return_tensors="pt")
    return {**batch, "labels": torch.tensor(SPLITS["train"]["label"])}


def _training_loss(trainer, when: str) -> float:
    """The mean loss on the train split of the Trainer's model, saved by the runner, computed by the judge."""
    try:
        model = trainer.attr("model")
    except (RemoteError, RunnerFailure) as exc:
        raise GraderFailure(f"the Trainer's model could not be read {when}: {exc}") from None
    _, saved = probed_model(model)
    loaded = rebuild(saved, AutoModelForSequenceClassification, f"the Trainer's model {when}")
    try:
        with torch.no_grad():
            return float(loaded(**_train_batch()).loss)
    except Exception as exc:  # noqa: BLE001 - whatever was saved becomes a message
        raise GraderFailure(f"the Trainer's model {when} could not be run: {type(exc).__name__}: "
                            f"{describe(str(exc))}") from None


def test_training_arguments(sub):
    rng = hidden_rng("test_training_arguments")  # drawn: hard-coded values cannot pass
    params = {"seed": rng.randint(1, 9999), "learning_rate": rng.choice([1e-5, 2e-5, 3e-5, 5e-5, 1e-4, 3e-4]),
              "epochs": rng.randint(1, 5), "batch_size": rng.choice([4, 8, 16, 32]),
              "weight_decay": rng.choice([0.01, 0.02, 0.05, 0.1])}
    _, a = _args(sub, **params)
    wanted = {
        "eval_strategy": "epoch", "save_strategy": "epoch", "load_best_model_at_end": True, "seed": params["seed"],
        "learning_rate": params["learning_rate"], "weight_decay": params["weight_decay"],
        "num_train_epochs": params["epochs"], "per_device_train_batch_size": params["batch_size"],
    }
    shown = ", ".join(f"{k}={v}" for k, v in params.items())
    for name, value in wanted.items():
        got = a.get(name)
        expect(got == value, f"make_training_args(..., {shown}) set {name}={describe(got)}, expected {value!r}")
    report_to = a.get("report_to")
    expect(report_to in ([], None, "none", ["none"]),
           f"report_to is {describe(report_to)}: grading machines have no tracking service; use report_to='none'")
    expect(a.get("metric_for_best_model") is not None,
           "choose the best model on a validation metric (metric_for_best_model)")
    schedule = a.get("lr_scheduler_type")
    expect(schedule in DECAYING_SCHEDULES,
           f"lr_scheduler_type is {describe(schedule)}: the learning rate should fall towards 0 as training ends. "
           "Keep the default, lr_scheduler_type='linear' ('cosine' passes too): at a rate that stays high to the end, "
           "the course's models scored 3 to 5 accuracy points lower on held-out texts")


def test_trainer_uses_dynamic_padding(sub, tiny_tokenizer):
    info = _probe(_trainer(sub, _args(sub)[0]), "trainer", "Trainer")
    collator = info.get("collator") or {}
    expect(qualname(DataCollatorWithPadding) in collator.get("mro", []),
           f"the Trainer's data_collator is {describe(collator.get('class', 'None'))}; use "
           "DataCollatorWithPadding(tokenizer)")
    expect(collator.get("padding") in (True, "longest") and collator.get("max_length") is None,
           "DataCollatorWithPadding should pad each batch to its longest example (padding=True, no max_length)")
    proc = info.get("processing_class")
    expect(proc is not None and proc.get("vocab_size") == tiny_tokenizer.vocab_size,
           "pass the tokenizer to the Trainer as processing_class (tokenizer= was removed in transformers 5)")


def test_trainer_evaluates_on_validation(sub, tokenized):
    info = _probe(_trainer(sub, _args(sub)[0]), "trainer", "Trainer")
    ev, tr = info.get("eval_dataset"), info.get("train_dataset")
    expect(ev is not None, "the Trainer has no eval_dataset: evaluate on tokenized['validation'] each epoch")
    expect(not _same_rows(ev, tokenized["test"]),
           "the Trainer evaluates on the TEST split: use tokenized['validation']; the test split is for the end only")
    expect(_same_rows(ev, tokenized["validation"]),
           f"the eval_dataset has {describe(ev.get('num_rows'))} rows but is not tokenized['validation'] "
           f"({len(tokenized['validation'])} rows)")
    expect(_same_rows(tr, tokenized["train"]), "the Trainer should train on tokenized['train']")


def test_short_training_lowers_the_loss(sub):
    trainer = _trainer(sub, _args(sub, learning_rate=5e-3, epochs=6, batch_size=4)[0])
    before = _training_loss(trainer, "before training")
    attempt(method(trainer, "train"), "trainer.train()")
    after = _training_loss(trainer, "after training")
    expect(after < before - 0.005, f"6 epochs at learning_rate=5e-3 on 24 easy examples left the training loss at "
                                  f"{after:.4f} (it was {before:.4f}): the model is not learning")


def test_same_seed_same_loss(sub):
    reported, computed = [], []
    for _ in range(2):
        trainer = _trainer(sub, _args(sub, learning_rate=1e-3, epochs=1)[0])
        out = attempt(method(trainer, "train"), "trainer.train()")
        loss = getattr(out, "training_loss", None) if isinstance(out, dict) else None
        expect(isinstance(loss, (int, float)), f"trainer.train() returned {describe(out)}, not a TrainOutput "
                                               "with a training_loss")
        reported.append(float(loss))
        computed.append(_training_loss(trainer, "after training"))
    for losses in (reported, computed):
        expect(abs(losses[0] - losses[1]) < 1e-6,
               f"two runs with seed=7 gave training losses {losses[0]:.6f} and {losses[1]:.6f}: pass the seed on")
