"""Public checks for stage 3 (train): the hidden grader's checks of the same names, on other inputs."""

import stage3_train as stage
import torch
from datasets import Dataset, DatasetDict
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

GOOD, BAD = ["great", "moving", "superb", "charming"], ["awful", "dull", "tedious", "clumsy"]


def _tokenized(path) -> DatasetDict:
    """Train 16 / validation 6 / test 10 rows: sizes differ so each split is recognisable."""
    tok = AutoTokenizer.from_pretrained(path)

    def rows(n, offset):
        words = [(GOOD if i % 2 else BAD)[(i + offset) % 4] for i in range(n)]
        return {"text": [f"a {w} film" for w in words], "label": [i % 2 for i in range(n)]}
    ds = DatasetDict({s: Dataset.from_dict(rows(n, o)) for s, n, o in (("train", 16, 0), ("validation", 6, 1),
                                                                         ("test", 10, 2))})
    out = ds.map(lambda b: tok(b["text"], truncation=True, max_length=32), batched=True, remove_columns=["text"])
    out.set_format("torch")
    return out


def _trainer(tmp_path, path, **kw):
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    args = stage.make_training_args(str(tmp_path / "run"), **{"seed": 7, **kw})
    return stage.build_trainer(model, AutoTokenizer.from_pretrained(path), _tokenized(path), args)


def test_training_arguments(tmp_path):
    a = stage.make_training_args(str(tmp_path), seed=7, learning_rate=3e-4, epochs=2, batch_size=8,
                                 weight_decay=0.05).to_dict()
    wanted = {"eval_strategy": "epoch", "save_strategy": "epoch", "load_best_model_at_end": True, "seed": 7,
              "learning_rate": 3e-4, "weight_decay": 0.05, "num_train_epochs": 2, "per_device_train_batch_size": 8}
    for name, value in wanted.items():
        got = a.get(name)
        assert got == value, (f"make_training_args(..., seed=7, learning_rate=3e-4, epochs=2, batch_size=8, "
                              f"weight_decay=0.05) set {name}={got!r}, expected {value!r}")
    assert a.get("report_to") in ([], None, "none", ["none"]), \
        f"report_to is {a.get('report_to')!r}: grading machines have no tracking service; use report_to='none'"
    assert a.get("lr_scheduler_type") in ("linear", "cosine"), \
        (f"lr_scheduler_type is {a.get('lr_scheduler_type')!r}: the learning rate should fall towards 0 as training "
         "ends; keep the default, lr_scheduler_type='linear' ('cosine' passes too)")


def test_trainer_uses_dynamic_padding(tmp_path, tiny_model_path):
    collator = _trainer(tmp_path, tiny_model_path).data_collator
    assert isinstance(collator, DataCollatorWithPadding), \
        f"the Trainer's data_collator is {type(collator).__name__}; use DataCollatorWithPadding(tokenizer)"
    assert collator.padding in (True, "longest") and collator.max_length is None, \
        "DataCollatorWithPadding should pad each batch to its longest example (padding=True, no max_length)"


def test_trainer_evaluates_on_validation(tmp_path, tiny_model_path):
    trainer = _trainer(tmp_path, tiny_model_path)
    n = None if trainer.eval_dataset is None else len(trainer.eval_dataset)
    assert n is not None, "the Trainer has no eval_dataset: evaluate on tokenized['validation'] each epoch"
    assert n != 10, ("the Trainer evaluates on the TEST split: use tokenized['validation']; "
                     "the test split is for the end only")
    assert n == 6, f"the eval_dataset has {n} rows but is not tokenized['validation'] (6 rows)"


def test_short_training_lowers_the_loss(tmp_path, tiny_model_path):
    trainer = _trainer(tmp_path, tiny_model_path, learning_rate=5e-3, epochs=6, batch_size=4)
    batch = DataCollatorWithPadding(trainer.processing_class)([dict(r) for r in trainer.train_dataset])

    def loss():
        with torch.no_grad():
            return float(trainer.model.eval()(**batch).loss)
    before = loss()
    trainer.train()
    after = loss()
    assert after < before - 0.005, (f"6 epochs at learning_rate=5e-3 on 16 easy examples left the training loss at "
                                    f"{after:.4f} (it was {before:.4f}): the model is not learning")
