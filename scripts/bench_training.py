"""Where an epoch's time goes: each lever of the model tier's training, measured on its own.

Trains the course model on the emotion train split with the reference stages (tokenize, model,
train) for ``steps`` optimisation steps per configuration, and prints seconds per epoch (scaled
from the steps), useful tokens per second (tokens that are not padding) and the share of the
machine's measured matmul peak those tokens reach (about 6 x parameters FLOPs per token for a
forward and backward pass). Called by ``python scripts/benchmark.py --training``.
"""

from __future__ import annotations

import sys
import tempfile
import time

from autograder import REPO_ROOT

LEVERS = {  # name: (make_training_args overrides, tokenize max_length, pad to max_length)
    "reference (group_by_length, dynamic padding, save each epoch)": ({}, 64, False),
    "random batches (no group_by_length)": ({"train_sampling_strategy": "random"}, 64, False),
    "padding every text to max_length=64": ({}, 64, True),
    "no checkpoint writes (save_strategy='no')": ({"save_strategy": "no", "load_best_model_at_end": False}, 64,
                                                  False),
    "batch size 32": ({"per_device_train_batch_size": 32}, 64, False),
}


def matmul_peak_gflops(n: int = 1024, repeat: int = 10) -> float:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeat):
        a @ b
    return 2 * n ** 3 * repeat / (time.perf_counter() - start) / 1e9


def _one(name: str, overrides: dict, max_length: int, pad: bool, steps: int, model_path: str, dataset) -> str:
    sys.path.insert(0, str(REPO_ROOT / "solutions"))
    import stage1_tokenize
    import stage2_model
    import stage3_train

    tok = stage1_tokenize.load_tokenizer(model_path)
    if pad:
        tokenized = dataset.map(lambda b: tok(b["text"], truncation=True, max_length=max_length,
                                               padding="max_length"), batched=True, remove_columns=["text"])
        tokenized.set_format("torch")
    else:
        tokenized = stage1_tokenize.tokenize_dataset(dataset, tok, max_length=max_length)
    model = stage2_model.load_classifier(model_path, dataset["train"].features["label"].names)
    with tempfile.TemporaryDirectory() as tmp:
        args = stage3_train.make_training_args(tmp, seed=42, learning_rate=2e-4, epochs=3, batch_size=16)
        for key, value in {**overrides, "max_steps": steps}.items():
            setattr(args, key, value)
        trainer = stage3_train.build_trainer(model, tok, tokenized, args)
        useful = [0]
        collate = trainer.data_collator

        def counting(features):
            batch = collate(features)
            useful[0] += int(batch["attention_mask"].sum())
            return batch
        trainer.data_collator = counting
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    rows = steps * args.per_device_train_batch_size
    per_epoch = seconds * len(tokenized["train"]) / rows
    params = sum(p.numel() for p in model.parameters())
    achieved = 6 * params * useful[0] / seconds / 1e9
    return f"{name:<62} {per_epoch:7.1f} s/epoch  {useful[0] / seconds:8.0f} useful tokens/s  {achieved:6.1f} GFLOP/s"


def training_benchmark(steps: int = 30) -> None:
    from autograder.course.data import load_splits
    from autograder.course.models import resolve_model

    model = resolve_model()
    dataset = load_splits("emotion", ("train", "validation"))
    peak = matmul_peak_gflops()
    print(f"training levers ({steps} steps each, emotion train split, {model.path}); matmul peak {peak:.1f} GFLOP/s")
    for name, (overrides, max_length, pad) in LEVERS.items():
        print(" ", _one(name, overrides, max_length, pad, steps, model.path, dataset), flush=True)
