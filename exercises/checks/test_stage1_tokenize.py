"""Public checks for stage 1 (tokenize): the hidden grader's checks of the same names, on other inputs.

Each check's message says what to fix; `autograder hint tokenize` shows the hint for it.
"""

import stage1_tokenize as stage
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from transformers import AutoTokenizer, PreTrainedTokenizerBase

TEXTS = ["a tender, funny film", "dull", "the cast is wonderful but the script goes nowhere for an hour"]
LONG = "the story drifts along " * 30
LABELS = [1, 0, 0]


def _reference(path):
    return AutoTokenizer.from_pretrained(path)


def _padded(rows: list[list[int]], tok) -> bool:
    """Whether a text came back with padding tokens (a cause to name before any other)."""
    return any(tok.pad_token_id in row for row in rows)


def _dataset() -> DatasetDict:
    features = Features({"text": Value("string"), "label": ClassLabel(names=["negative", "positive"])})
    return DatasetDict({"train": Dataset.from_dict({"text": TEXTS, "label": LABELS}, features=features),
                        "validation": Dataset.from_dict({"text": TEXTS[:2], "label": LABELS[:2]}, features=features)})


def test_load_tokenizer_returns_fast_tokenizer(tiny_model_path):
    tok = stage.load_tokenizer(tiny_model_path)
    assert isinstance(tok, PreTrainedTokenizerBase), \
        f"load_tokenizer should return a tokenizer, got {type(tok).__name__}"
    got, want = tok("Hello, world!")["input_ids"], _reference(tiny_model_path)("Hello, world!")["input_ids"]
    assert got == want, (f"the loaded tokenizer encodes 'Hello, world!' as {got}, expected {want}: "
                         "load the checkpoint's own tokenizer with AutoTokenizer.from_pretrained")


def test_tokenize_batch_matches_tokenizer(tiny_model_path):
    tok = _reference(tiny_model_path)
    out = stage.tokenize_batch({"text": TEXTS}, tok, max_length=32)
    assert hasattr(out, "keys") and "input_ids" in out, \
        f"tokenize_batch should return the tokenizer's output with 'input_ids', got {type(out).__name__}"
    got = [list(ids) for ids in out["input_ids"]]
    assert not _padded(got, tok), "do not pad here (no padding=...): DataCollatorWithPadding pads each batch later"
    assert got == tok(TEXTS, truncation=True, max_length=32)["input_ids"], \
        "tokenize_batch should give the input_ids of tokenizer(texts, truncation=True, max_length=32); it gave others"
    assert "attention_mask" in out, "tokenize_batch should keep the attention_mask the tokenizer returns"


def test_tokenize_batch_truncates(tiny_model_path):
    tok = _reference(tiny_model_path)
    out = stage.tokenize_batch({"text": [LONG, "short one"]}, tok, max_length=8)
    n = len(out["input_ids"][0])
    assert n == 8, (f"a 120-word text with max_length=8 should give exactly 8 tokens, got {n}: "
                    "pass truncation=True and max_length to the tokenizer")


def test_tokenize_batch_does_not_pad(tiny_model_path):
    tok = _reference(tiny_model_path)
    out = stage.tokenize_batch({"text": ["dull", TEXTS[2]]}, tok, max_length=64)
    n = len(out["input_ids"][0])
    assert n == 3, (f"'dull' should be 3 tokens ([CLS] dull [SEP]) but came back as {n}: "
                    "do not pad here; DataCollatorWithPadding pads each batch later")


def test_tokenize_dataset_keeps_splits_and_labels(tiny_model_path):
    out = stage.tokenize_dataset(_dataset(), _reference(tiny_model_path))
    assert isinstance(out, DatasetDict), f"tokenize_dataset should return a DatasetDict, got {type(out).__name__}"
    assert sorted(out) == ["train", "validation"], f"expected the splits ['train', 'validation'], got {sorted(out)}"
    for split in out:
        cols = out[split].column_names
        assert "input_ids" in cols, f"split {split!r} has no 'input_ids' (columns: {cols}): map tokenize_batch over it"
        assert "label" in cols, f"split {split!r} lost its 'label' column"
        assert [int(x) for x in out[split]["label"]] == LABELS[:out[split].num_rows], f"labels of {split!r} changed"


def test_tokenize_dataset_drops_text_and_uses_torch(tiny_model_path):
    tok = _reference(tiny_model_path)
    train = stage.tokenize_dataset(_dataset(), tok, max_length=16)["train"]
    assert "text" not in train.column_names, f"drop the 'text' column (columns now: {train.column_names})"
    kind = train.format.get("type")
    assert kind == "torch", f"set the format to 'torch', it is {kind!r}"
    got = [row["input_ids"].tolist() for row in train]
    assert not _padded(got, tok), "do not pad in tokenize_batch: DataCollatorWithPadding pads each batch later"
    assert got == tok(TEXTS, truncation=True, max_length=16)["input_ids"], \
        "pass max_length through to tokenize_batch: the input_ids of the train split differ from the tokenizer's " \
        "output with max_length=16"
