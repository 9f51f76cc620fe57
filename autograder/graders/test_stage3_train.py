"""Hidden grader, stage 3 (train). Points per check: course.toml [stages.checks]."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset, DatasetDict
from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding, Trainer, TrainingArguments

from autograder.gradelib import call, expect, expect_type, tiny

MODULE = "stage3_train"
GOOD = ["great", "wonderful", "moving", "brilliant", "charming", "superb"]
BAD = ["awful", "boring", "dull", "clumsy", "tedious", "lifeless"]


@pytest.fixture(scope="module")
def sub(stage_module):
    return stage_module(MODULE)


@pytest.fixture(scope="module")
def tokenized() -> DatasetDict:
    """Train 24 / validation 8 / test 12 rows: sizes differ so each split is recognisable."""
    def rows(n: int, offset: int) -> dict:
        texts, labels = [], []
        for i in range(n):
            words = GOOD if i % 2 else BAD
            texts.append(f"a {words[(i + offset) % 6]} and {words[(i + offset + 1) % 6]} film" + " indeed" * (i % 3))
            labels.append(i % 2)
        return {"text": texts, "label": labels}

    tok = tiny.tokenizer()
    ds = DatasetDict({s: Dataset.from_dict(rows(n, o)) for s, n, o in
                      (("train", 24, 0), ("validation", 8, 1), ("test", 12, 2))})
    out = ds.map(lambda b: tok(b["text"], truncation=True, max_length=32), batched=True, remove_columns=["text"])
    out.set_format("torch")
    return out


def _args(sub, tmp_path, **kw) -> TrainingArguments:
    params = {"seed": 7, "learning_rate": 3e-4, "epochs": 2, "batch_size": 8, "weight_decay": 0.05, **kw}
    args = call(sub, "make_training_args", str(tmp_path), **params,
                call_desc=f"make_training_args(output_dir, {', '.join(f'{k}={v}' for k, v in params.items())})")
    expect_type(args, TrainingArguments, "make_training_args")
    return args


def _model():
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_pretrained(tiny.path("distilbert-base"), num_labels=2)


def _trainer(sub, args, tokenized) -> Trainer:
    trainer = call(sub, "build_trainer", _model(), tiny.tokenizer(), tokenized, args,
                   call_desc="build_trainer(model, tokenizer, tokenized, args)")
    expect_type(trainer, Trainer, "build_trainer")
    return trainer


def test_training_arguments(sub, tmp_path):
    a = _args(sub, tmp_path)
    wanted = {
        "eval_strategy": "epoch", "save_strategy": "epoch", "load_best_model_at_end": True, "seed": 7,
        "learning_rate": 3e-4, "weight_decay": 0.05, "num_train_epochs": 2, "per_device_train_batch_size": 8,
    }
    for name, value in wanted.items():
        got = getattr(a, name)
        got = got.value if hasattr(got, "value") else got
        expect(got == value, f"make_training_args(..., seed=7, learning_rate=3e-4, epochs=2, batch_size=8, "
                             f"weight_decay=0.05) set {name}={got!r}, expected {value!r}")
    expect(a.report_to in ([], None, "none", ["none"]),
           f"report_to is {a.report_to!r}: grading machines have no tracking service; use report_to='none'")
    expect(a.metric_for_best_model is not None, "choose the best model on a validation metric (metric_for_best_model)")


def test_trainer_uses_dynamic_padding(sub, tmp_path, tokenized):
    trainer = _trainer(sub, _args(sub, tmp_path), tokenized)
    collator = trainer.data_collator
    expect(isinstance(collator, DataCollatorWithPadding),
           f"the Trainer's data_collator is {type(collator).__name__}; use DataCollatorWithPadding(tokenizer)")
    expect(collator.padding in (True, "longest") and collator.max_length is None,
           "DataCollatorWithPadding should pad each batch to its longest example (padding=True, no max_length)")
    expect(trainer.processing_class is not None and trainer.processing_class.vocab_size == tiny.tokenizer().vocab_size,
           "pass the tokenizer to the Trainer as processing_class (tokenizer= was removed in transformers 5)")


def test_trainer_evaluates_on_validation(sub, tmp_path, tokenized):
    trainer = _trainer(sub, _args(sub, tmp_path), tokenized)
    ev, tr = trainer.eval_dataset, trainer.train_dataset
    expect(ev is not None, "the Trainer has no eval_dataset: evaluate on tokenized['validation'] each epoch")
    expect(len(ev) != len(tokenized["test"]) or ev._fingerprint != tokenized["test"]._fingerprint,
           "the Trainer evaluates on the TEST split: use tokenized['validation']; the test split is for the end only")
    expect(ev._fingerprint == tokenized["validation"]._fingerprint,
           f"the eval_dataset has {len(ev)} rows but is not tokenized['validation'] (8 rows)")
    expect(tr is not None and tr._fingerprint == tokenized["train"]._fingerprint,
           "the Trainer should train on tokenized['train']")


def test_short_training_lowers_the_loss(sub, tmp_path, tokenized):
    trainer = _trainer(sub, _args(sub, tmp_path, learning_rate=5e-3, epochs=6, batch_size=4), tokenized)
    before = trainer.evaluate(eval_dataset=tokenized["train"])["eval_loss"]
    trainer.train()
    after = trainer.evaluate(eval_dataset=tokenized["train"])["eval_loss"]
    expect(after < before - 0.005, f"6 epochs at learning_rate=5e-3 on 24 easy examples left the training loss at "
                                  f"{after:.4f} (it was {before:.4f}): the model is not learning")


def test_same_seed_same_loss(sub, tmp_path, tokenized):
    losses = []
    for run in range(2):
        trainer = _trainer(sub, _args(sub, tmp_path / f"run{run}", learning_rate=1e-3, epochs=1), tokenized)
        losses.append(trainer.train().training_loss)
    expect(abs(losses[0] - losses[1]) < 1e-6,
           f"two runs with seed=7 gave training losses {losses[0]:.6f} and {losses[1]:.6f}: pass the seed on")
