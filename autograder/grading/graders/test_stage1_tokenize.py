"""Hidden grader, stage 1 (tokenize). Points per check: course.toml [stages.checks]."""

from __future__ import annotations

import pytest
from datasets import DatasetDict
from transformers import PreTrainedTokenizerBase

from autograder.grading.gradelib import R, call, describe, expect, expect_type, method, tiny

MODULE = "stage1_tokenize"
TEXTS = [
    "a gorgeous, witty, seductive movie.",
    "the film is strictly routine",
    "it's a charming and often affecting journey, though it overstays its welcome by twenty minutes or so.",
    "bad",
]
LONG = "the plot meanders " * 40


@pytest.fixture(scope="module")
def sub(stage_module):
    return stage_module(MODULE)


SPLITS = {"train": {"text": TEXTS, "label": [1, 0, 1, 0]}, "validation": {"text": TEXTS[:2][::-1], "label": [0, 1]}}


@pytest.fixture(scope="module")
def small_dataset():
    """Built in the runner from these columns (ClassLabel negative/positive)."""
    return R.dataset_dict(SPLITS, ["negative", "positive"])


@pytest.fixture(scope="module")
def remote_tokenizer():
    return R.tokenizer(tiny.path("distilbert-classifier"))


def _splits(out, what: str) -> dict:
    """The splits of a DatasetDict the submission returned, described by the runner's probe."""
    expect_type(out, DatasetDict, what)
    return out.probe("dataset")["splits"]


def test_load_tokenizer_returns_fast_tokenizer(sub, tiny_paths, tiny_tokenizer):
    path = tiny_paths.path("distilbert-classifier")
    tok = call(sub, "load_tokenizer", path, call_desc=f"load_tokenizer({path!r})")
    expect_type(tok, PreTrainedTokenizerBase, "load_tokenizer")
    got = list(method(tok, None)("Hello, world!")["input_ids"])
    want = tiny_tokenizer("Hello, world!")["input_ids"]
    expect(got == want, f"the loaded tokenizer encodes 'Hello, world!' as {got}, expected {want}: "
                        "load the checkpoint's own tokenizer with AutoTokenizer.from_pretrained")


def test_tokenize_batch_matches_tokenizer(sub, tiny_tokenizer, remote_tokenizer):
    out = call(sub, "tokenize_batch", {"text": TEXTS}, remote_tokenizer, max_length=32,
               call_desc="tokenize_batch({'text': [4 reviews]}, tokenizer, max_length=32)")
    expect(hasattr(out, "keys") and "input_ids" in out,
           f"tokenize_batch should return the tokenizer's output with 'input_ids', got {describe(out)}")
    want = tiny_tokenizer(TEXTS, truncation=True, max_length=32)
    expect(list(out["input_ids"]) == want["input_ids"],
           "tokenize_batch(4 reviews, max_length=32) gave input_ids that differ from "
           "tokenizer(texts, truncation=True, max_length=32)")
    expect("attention_mask" in out, "tokenize_batch should keep the attention_mask the tokenizer returns")


def test_tokenize_batch_truncates(sub, tiny_tokenizer, remote_tokenizer):
    out = call(sub, "tokenize_batch", {"text": [LONG, "short one"]}, remote_tokenizer, max_length=8,
               call_desc="tokenize_batch({'text': [a 120-word text, 'short one']}, tokenizer, max_length=8)")
    lengths = [len(ids) for ids in out["input_ids"]]
    expect(lengths[0] == 8, f"a 120-word text with max_length=8 should give exactly 8 tokens, got {lengths[0]}: "
                            "pass truncation=True and max_length to the tokenizer")
    expect(list(out["input_ids"][0]) == tiny_tokenizer(LONG, truncation=True, max_length=8)["input_ids"],
           "the truncated ids should end with [SEP], as the tokenizer's own truncation does")


def test_tokenize_batch_does_not_pad(sub, tiny_tokenizer, remote_tokenizer):
    out = call(sub, "tokenize_batch", {"text": ["bad", TEXTS[2]]}, remote_tokenizer, max_length=64,
               call_desc="tokenize_batch({'text': ['bad', a 20-word review]}, tokenizer, max_length=64)")
    lengths = [len(ids) for ids in out["input_ids"]]
    expect(lengths[0] == 3, f"'bad' should be 3 tokens ([CLS] bad [SEP]) but came back as {lengths[0]}: "
                            "do not pad here; DataCollatorWithPadding pads each batch later")
    pad = tiny_tokenizer.pad_token_id
    expect(all(pad not in list(ids) for ids in out["input_ids"]), "the output contains [PAD] tokens: do not pad")


def test_tokenize_dataset_keeps_splits_and_labels(sub, remote_tokenizer, small_dataset):
    out = call(sub, "tokenize_dataset", small_dataset, remote_tokenizer,
               call_desc="tokenize_dataset(DatasetDict(train: 4 rows, validation: 2 rows), tokenizer)")
    splits = _splits(out, "tokenize_dataset")
    expect(sorted(splits) == ["train", "validation"],
           f"expected the splits ['train', 'validation'], got {sorted(splits)}")
    for split, info in splits.items():
        want = SPLITS[split]["label"]
        expect(info.get("num_rows") == len(want),
               f"split {split!r} has {info.get('num_rows')} rows, expected {len(want)}")
        columns = info.get("column_names", [])
        expect("input_ids" in columns,
               f"split {split!r} has no 'input_ids' (columns: {columns}): map tokenize_batch over it")
        expect("label" in columns, f"split {split!r} lost its 'label' column")
        labels = [int(row["label"]) for row in info["rows"]]
        expect(labels == want, f"labels of {split!r} changed: {labels}")


def test_tokenize_dataset_drops_text_and_uses_torch(sub, tiny_tokenizer, remote_tokenizer, small_dataset):
    out = call(sub, "tokenize_dataset", small_dataset, remote_tokenizer, max_length=16,
               call_desc="tokenize_dataset(DatasetDict(...), tokenizer, max_length=16)")
    splits = _splits(out, "tokenize_dataset")
    expect("train" in splits, f"the result has no 'train' split (splits: {sorted(splits)})")
    train = splits["train"]
    columns = train.get("column_names", [])
    expect("text" not in columns, f"drop the 'text' column (columns now: {columns})")
    kind = (train.get("format") or {}).get("type")
    expect(kind == "torch", f"set the format to 'torch', it is {kind!r}")
    want = tiny_tokenizer(TEXTS, truncation=True, max_length=16)["input_ids"]
    got = [row["input_ids"].tolist() if hasattr(row["input_ids"], "tolist") else list(row["input_ids"])
           for row in train["rows"]]
    expect(got == want, "input_ids of the train split differ from the tokenizer's output with max_length=16: "
                        "pass max_length through to tokenize_batch")
