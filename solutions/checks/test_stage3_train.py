"""Public checks for stage 3 (train). The hidden graders check more than this."""

import stage3_train as stage
from datasets import Dataset, DatasetDict
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding


def test_arguments_evaluate_every_epoch(tmp_path):
    args = stage.make_training_args(str(tmp_path), seed=3)
    assert args.eval_strategy == "epoch" and args.seed == 3
    assert args.load_best_model_at_end


def test_trainer_pads_dynamically_and_evaluates_on_validation(tmp_path, tiny_model_path):
    tok = AutoTokenizer.from_pretrained(tiny_model_path)
    ds = DatasetDict({s: Dataset.from_dict({"text": ["good", "bad"] * n, "label": [1, 0] * n})
                      for s, n in (("train", 4), ("validation", 2), ("test", 3))})
    ds = ds.map(lambda b: tok(b["text"]), batched=True, remove_columns=["text"])
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_path)
    trainer = stage.build_trainer(model, tok, ds, stage.make_training_args(str(tmp_path)))
    assert isinstance(trainer.data_collator, DataCollatorWithPadding)
    assert len(trainer.eval_dataset) == 4, "evaluate on the validation split"
