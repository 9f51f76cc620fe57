"""Hidden grader, stage 1 (tokenize). Points per check: course.toml [stages.checks]."""

from __future__ import annotations

import pytest
from datasets import DatasetDict
from transformers import PreTrainedTokenizerBase

from autograder.grading.gradelib import (
    GraderFailure,
    R,
    attempt,
    call,
    describe,
    expect,
    expect_type,
    hidden_rng,
    method,
    tiny,
)
from autograder.grading.hidden_inputs import sentences, words

MODULE = "stage1_tokenize"


def _draw() -> tuple[list[str], list[int], list[int]]:
    """Texts of 3 to 24 words (one longer than 16 tokens) and their labels, drawn with the hidden
    seed: a table of answers for known inputs, or one constant output, cannot pass."""
    rng = hidden_rng(MODULE)
    texts = sentences(rng, rng.randint(3, 5), 3, 12) + [words(rng, 16, 24)]
    rng.shuffle(texts)
    labels = [rng.randint(0, 1) for _ in texts]
    if len(set(labels)) == 1:
        labels[0] = 1 - labels[0]
    validation = rng.sample(range(len(texts)), 2)
    return texts, labels, validation


TEXTS, LABELS, VALIDATION = _draw()
SPLITS = {"train": {"text": TEXTS, "label": LABELS},
          "validation": {"text": [TEXTS[i] for i in VALIDATION], "label": [LABELS[i] for i in VALIDATION]}}


@pytest.fixture(scope="module")
def sub(stage_module):
    return stage_module(MODULE)


@pytest.fixture(scope="module")
def small_dataset():
    """Built in the runner from these columns (ClassLabel negative/positive)."""
    return R.dataset_dict(SPLITS, ["negative", "positive"])


@pytest.fixture(scope="module")
def remote_tokenizer():
    return R.tokenizer(tiny.path("distilbert-classifier"))


def _ids(out, what: str) -> list[list[int]]:
    """The ``input_ids`` of a tokenizer-like output as lists of ints, or a learner message."""
    expect(hasattr(out, "keys") and "input_ids" in out,
           f"{what} should return the tokenizer's output with 'input_ids', got {describe(out)}")
    ids = out["input_ids"]
    try:
        return [[int(t) for t in row] for row in ids]
    except (TypeError, ValueError):
        raise GraderFailure(f"{what} returned input_ids that are not lists of token ids: {describe(ids)}") from None


def _splits(out, what: str) -> dict:
    """The splits of a DatasetDict the submission returned, described by the runner's probe."""
    expect_type(out, DatasetDict, what)
    return out.probe("dataset")["splits"]


def test_load_tokenizer_returns_fast_tokenizer(sub, tiny_paths, tiny_tokenizer):
    path = tiny_paths.path("distilbert-classifier")
    tok = call(sub, "load_tokenizer", path, call_desc=f"load_tokenizer({path!r})")
    expect_type(tok, PreTrainedTokenizerBase, "load_tokenizer")
    text = words(hidden_rng("test_load_tokenizer_returns_fast_tokenizer"), 3, 8).capitalize() + "!"
    got = attempt(method(tok, None), f"tokenizer({text!r})", text)
    want = tiny_tokenizer(text)["input_ids"]
    expect(hasattr(got, "keys") and "input_ids" in got,
           f"the loaded tokenizer, called on {text!r}, returned {describe(got)}: expected its input_ids")
    got_ids = _ids({"input_ids": [got["input_ids"]]}, "the loaded tokenizer")
    expect(got_ids == [want], f"the loaded tokenizer encodes {text!r} as {describe(got_ids[0])}, expected {want}: "
                              "load the checkpoint's own tokenizer with AutoTokenizer.from_pretrained")


def test_tokenize_batch_matches_tokenizer(sub, tiny_tokenizer, remote_tokenizer):
    max_length = hidden_rng("test_tokenize_batch_matches_tokenizer").randint(12, 32)
    desc = f"tokenize_batch({{'text': [{len(TEXTS)} reviews]}}, tokenizer, max_length={max_length})"
    out = call(sub, "tokenize_batch", {"text": list(TEXTS)}, remote_tokenizer, max_length=max_length, call_desc=desc)
    got = _ids(out, "tokenize_batch")
    want = tiny_tokenizer(TEXTS, truncation=True, max_length=max_length)
    expect(got == want["input_ids"],
           f"{desc} gave input_ids that differ from tokenizer(texts, truncation=True, max_length={max_length})")
    expect("attention_mask" in out, "tokenize_batch should keep the attention_mask the tokenizer returns")


def test_tokenize_batch_truncates(sub, tiny_tokenizer, remote_tokenizer):
    rng = hidden_rng("test_tokenize_batch_truncates")
    long_text, short = words(rng, 60, 90), words(rng, 1, 3)
    max_length = rng.randint(6, 12)
    n_words = len(long_text.split())
    out = call(sub, "tokenize_batch", {"text": [long_text, short]}, remote_tokenizer, max_length=max_length,
               call_desc=f"tokenize_batch({{'text': [a {n_words}-word text, {short!r}]}}, tokenizer, "
                         f"max_length={max_length})")
    got = _ids(out, "tokenize_batch")
    expect(len(got) == 2, f"2 texts gave {len(got)} rows of input_ids")
    expect(len(got[0]) == max_length,
           f"a {n_words}-word text with max_length={max_length} should give exactly {max_length} tokens, got "
           f"{len(got[0])}: pass truncation=True and max_length to the tokenizer")
    want = tiny_tokenizer([long_text, short], truncation=True, max_length=max_length)["input_ids"]
    expect(got[0] == want[0], "the truncated ids should end with [SEP], as the tokenizer's own truncation does")
    expect(got[1] == want[1], f"{short!r} should be tokenized as {want[1]}, got {describe(got[1])}")


def test_tokenize_batch_does_not_pad(sub, tiny_tokenizer, remote_tokenizer):
    rng = hidden_rng("test_tokenize_batch_does_not_pad")
    texts = [words(rng, 1, 2), words(rng, 12, 24), words(rng, 3, 8)]
    rng.shuffle(texts)
    max_length = rng.randint(48, 64)
    desc = f"tokenize_batch({{'text': {[f'a {len(t.split())}-word text' for t in texts]}}}, tokenizer, " \
           f"max_length={max_length})"
    out = call(sub, "tokenize_batch", {"text": texts}, remote_tokenizer, max_length=max_length, call_desc=desc)
    got = _ids(out, "tokenize_batch")
    want = tiny_tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    expect(len(got) == len(texts), f"{desc} gave {len(got)} rows of input_ids for {len(texts)} texts")
    lengths, wanted = [len(ids) for ids in got], [len(ids) for ids in want]
    expect(lengths == wanted, f"{desc} gave rows of {lengths} tokens, expected {wanted} (each text's own length): "
                              "do not pad here; DataCollatorWithPadding pads each batch later")
    pad = tiny_tokenizer.pad_token_id
    expect(all(pad not in ids for ids in got), "the output contains [PAD] tokens: do not pad")
    expect(got == want, f"{desc} gave input_ids that differ from tokenizer(texts, truncation=True, "
                        f"max_length={max_length})")


def test_tokenize_dataset_keeps_splits_and_labels(sub, remote_tokenizer, small_dataset):
    out = call(sub, "tokenize_dataset", small_dataset, remote_tokenizer,
               call_desc=f"tokenize_dataset(DatasetDict(train: {len(TEXTS)} rows, validation: {len(VALIDATION)} "
                         "rows), tokenizer)")
    splits = _splits(out, "tokenize_dataset")
    expect(sorted(splits) == ["train", "validation"],
           f"expected the splits ['train', 'validation'], got {describe(sorted(splits))}")
    for split, info in splits.items():
        want = SPLITS[split]["label"]
        expect(info.get("num_rows") == len(want),
               f"split {split!r} has {describe(info.get('num_rows'))} rows, expected {len(want)}")
        columns = info.get("column_names", [])
        expect("input_ids" in columns,
               f"split {split!r} has no 'input_ids' (columns: {describe(columns)}): map tokenize_batch over it")
        expect("label" in columns, f"split {split!r} lost its 'label' column")
        labels = [int(row["label"]) for row in info["rows"]]
        expect(labels == want, f"labels of {split!r} changed: {describe(labels)}")


def test_tokenize_dataset_drops_text_and_uses_torch(sub, tiny_tokenizer, remote_tokenizer, small_dataset):
    # one train text shorter than max_length (so padding to max_length shows) and one longer (so truncation
    # shows), whatever the hidden seed draws
    lengths = sorted(len(ids) for ids in tiny_tokenizer(TEXTS)["input_ids"])
    low, high = lengths[0] + 1, max(lengths[0] + 1, lengths[-1] - 1)
    if max(low, 8) <= min(high, 16):  # the course's usual range where the texts allow it
        low, high = max(low, 8), min(high, 16)
    max_length = hidden_rng("test_tokenize_dataset_drops_text_and_uses_torch").randint(low, high)
    out = call(sub, "tokenize_dataset", small_dataset, remote_tokenizer, max_length=max_length,
               call_desc=f"tokenize_dataset(DatasetDict(...), tokenizer, max_length={max_length})")
    splits = _splits(out, "tokenize_dataset")
    expect("train" in splits, f"the result has no 'train' split (splits: {describe(sorted(splits))})")
    train = splits["train"]
    columns = train.get("column_names", [])
    expect("text" not in columns, f"drop the 'text' column (columns now: {describe(columns)})")
    kind = (train.get("format") or {}).get("type")
    expect(kind == "torch", f"set the format to 'torch', it is {describe(kind)}")
    want = tiny_tokenizer(TEXTS, truncation=True, max_length=max_length)["input_ids"]
    got = [row["input_ids"].tolist() if hasattr(row["input_ids"], "tolist") else list(row["input_ids"])
           for row in train["rows"]]
    padded = [len(row) for row in got] == [max_length] * len(got) and any(len(w) < max_length for w in want)
    why = ("every row is padded to max_length: do not pad here (padding=False, the default); the data collator "
           "pads each batch later" if padded else "pass max_length through to tokenize_batch")
    expect(got == want, f"input_ids of the train split differ from the tokenizer's output with "
                        f"max_length={max_length}: {why}")
