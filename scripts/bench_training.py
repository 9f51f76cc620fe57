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


BUSY = '''
import os, sys, time
import torch
from transformers import AutoModelForSequenceClassification
torch.set_num_threads(2)
m = AutoModelForSequenceClassification.from_pretrained(sys.argv[1], num_labels=6)
opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
x, y = torch.randint(1000, 20000, (16, 48)), torch.randint(0, 6, (16,))
t = time.perf_counter()
for _ in range(30):
    m(input_ids=x, labels=y).loss.backward(); opt.step(); opt.zero_grad()
print(f"{time.perf_counter() - t:.1f}")
'''


def busy_machine_benchmark() -> None:
    """30 training steps of the course model at 2 threads: alone, then two at once on the same cores,
    with OpenMP's default spinning, a short spin and passive waiting: why procs.thread_env sets
    GOMP_SPINCOUNT."""
    import os
    import subprocess

    from autograder.course.models import resolve_model

    path = resolve_model().path

    def run(n: int, extra: dict) -> list[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
        env.update({"OMP_NUM_THREADS": "2", **extra})
        procs = [subprocess.Popen([sys.executable, "-c", BUSY, path], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True) for _ in range(n)]
        return [p.communicate()[0].strip() + " s" for p in procs]
    print("busy machine: 30 training steps at 2 threads (the course model, batch 16 x 48 tokens)")
    for name, extra in (("default (spinning)", {}), ("GOMP_SPINCOUNT=10000", {"GOMP_SPINCOUNT": "10000"}),
                        ("OMP_WAIT_POLICY=PASSIVE", {"OMP_WAIT_POLICY": "PASSIVE"})):
        print(f"  {name:<24} alone {run(1, extra)[0]:>7}   two at once {', '.join(run(2, extra))}", flush=True)
