"""Public checks for stage 1 (tokenize). The hidden graders check more than this."""

import stage1_tokenize as stage
from datasets import Dataset, DatasetDict


def test_tokenizer_loads(tiny_model_path):
    tok = stage.load_tokenizer(tiny_model_path)
    assert tok("hello world")["input_ids"][0] == tok.cls_token_id, "the tokenizer should add [CLS] first"


def test_batch_is_truncated_not_padded(tiny_model_path):
    tok = stage.load_tokenizer(tiny_model_path)
    out = stage.tokenize_batch({"text": ["short", "a much longer sentence than the first one"]}, tok, max_length=6)
    lengths = [len(ids) for ids in out["input_ids"]]
    assert lengths[0] < lengths[1], f"texts of different lengths should give different lengths (no padding), got {lengths}"
    assert max(lengths) <= 6, f"max_length=6 should truncate to at most 6 tokens, got {lengths}"


def test_dataset_is_tokenized(tiny_model_path):
    tok = stage.load_tokenizer(tiny_model_path)
    ds = DatasetDict({"train": Dataset.from_dict({"text": ["good film", "bad film"], "label": [1, 0]})})
    out = stage.tokenize_dataset(ds, tok)
    assert "text" not in out["train"].column_names, "drop the text column"
    assert "label" in out["train"].column_names, "keep the label column"
