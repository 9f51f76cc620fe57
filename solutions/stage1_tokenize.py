"""Stage 1: tokenize a dataset.

A transformer never sees text: it sees token ids from its own tokenizer. Here you load that
tokenizer and turn every split of a ``DatasetDict`` into ``input_ids`` and ``attention_mask``.

Why no padding here? Padding every example to one fixed length wastes most of the compute on
pad tokens. ``DataCollatorWithPadding`` (stage 3) pads each batch only to its own longest
example, so this stage only truncates.
"""

from __future__ import annotations

from datasets import DatasetDict
from transformers import AutoTokenizer, PreTrainedTokenizerBase

MAX_LENGTH = 128


def load_tokenizer(model_name_or_path: str) -> PreTrainedTokenizerBase:
    """Load the tokenizer that belongs to a checkpoint (a Hub id or a local folder).

    Reach for ``AutoTokenizer.from_pretrained``: it reads the checkpoint's config and picks the
    right (fast) tokenizer class for you.
    """
    ### BEGIN SOLUTION
    return AutoTokenizer.from_pretrained(model_name_or_path)
    ### END SOLUTION


def tokenize_batch(batch: dict, tokenizer: PreTrainedTokenizerBase, max_length: int = MAX_LENGTH) -> dict:
    """Tokenize ``batch["text"]`` (a list of strings), truncating to ``max_length`` tokens.

    Return what the tokenizer returns (``input_ids``, ``attention_mask``, ...), one list per
    text, of varying lengths: truncate, but do not pad.
    """
    ### BEGIN SOLUTION
    return tokenizer(batch["text"], truncation=True, max_length=max_length)
    ### END SOLUTION


def tokenize_dataset(dataset: DatasetDict, tokenizer: PreTrainedTokenizerBase,
                     max_length: int = MAX_LENGTH) -> DatasetDict:
    """Tokenize every split of ``dataset`` with :func:`tokenize_batch`.

    Use ``dataset.map(..., batched=True)`` (fast: the tokenizer handles whole batches), drop the
    ``text`` column (the model cannot use strings), keep ``label``, and set the format to
    ``"torch"`` so rows come out as tensors.
    """
    ### BEGIN SOLUTION
    tokenized = dataset.map(
        tokenize_batch,
        batched=True,
        fn_kwargs={"tokenizer": tokenizer, "max_length": max_length},
        remove_columns=["text"],
    )
    tokenized.set_format("torch")
    return tokenized
    ### END SOLUTION
