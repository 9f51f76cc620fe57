"""Runner-side helpers: build the judge's recipes, call with options, and probe objects.

A probe runs after the student's code and turns an object that cannot cross the boundary into
plain data: a model is saved as safetensors in the scratch folder (the judge loads and checks
the weights itself), a Trainer is described by its arguments, collator and datasets, a dataset
by its columns, format and first rows. Probes run in the submission's process, so a
submission that patches torch or transformers could make them lie: docs/security.md says why
that is no easier than writing the code.
"""

from __future__ import annotations

import json
from pathlib import Path

import wire

ROWS_SHOWN = 64


class Recipes:
    """``{"__build__": kind, ...}`` -> a fresh object, built here from paths and plain data."""

    def __init__(self, server):
        self.server = server

    def build(self, obj: dict):
        kind = str(obj["__build__"])
        fn = getattr(self, f"_{kind}", None)
        if fn is None:
            raise wire.WireError(f"unknown recipe {kind!r}")
        spec = {k: self.server.codec.decode(v) for k, v in obj.items() if k != "__build__"}
        return fn(**spec)

    def _tokenizer(self, path: str, **kwargs):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(path, **kwargs)

    def _model(self, path: str, head: str = "seq_cls", mode: str = "eval", seed: int | None = None, **kwargs):
        import torch
        from transformers import AutoModel, AutoModelForSequenceClassification

        if seed is not None:
            torch.manual_seed(seed)
        auto = AutoModelForSequenceClassification if head == "seq_cls" else AutoModel
        model = auto.from_pretrained(path, **kwargs)
        return model.train() if mode == "train" else model.eval()

    def _config_only(self, path: str):
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(path)
        return type("Model", (), {"config": config})()

    def _dataset(self, columns: dict, label_names: list | None = None):
        from datasets import ClassLabel, Dataset, Features, Value

        if label_names is None:
            return Dataset.from_dict(columns)
        features = Features({"text": Value("string"), "label": ClassLabel(names=list(label_names))})
        return Dataset.from_dict(columns, features=features)

    def _dataset_dict(self, splits: dict, label_names: list | None = None, tokenizer=None,
                      max_length: int | None = None):
        from datasets import DatasetDict

        ds = DatasetDict({name: self._dataset(cols, label_names) for name, cols in splits.items()})
        if tokenizer is None:
            return ds
        out = ds.map(lambda b: tokenizer(b["text"], truncation=True, max_length=max_length), batched=True,
                     remove_columns=["text"])
        out.set_format("torch")
        return out

    def _training_args(self, **kwargs):
        from transformers import TrainingArguments

        return TrainingArguments(**kwargs)

    def _eval_prediction(self, predictions, label_ids):
        from transformers import EvalPrediction

        return EvalPrediction(predictions=predictions, label_ids=label_ids)

    def _item(self, of, key):
        return of[key]


def call_with_options(server, fn, args: list, kwargs: dict, options: dict):
    """Call ``fn``; ``options``: seed (torch.manual_seed first), no_grad, trace (a model handle whose
    forward passes are recorded as [training, grad_enabled]). Returns (value, trace)."""
    import contextlib

    import torch

    if options.get("seed") is not None:
        torch.manual_seed(int(options["seed"]))
    trace: list = []
    hook = None
    if options.get("trace"):
        model = server.handles[int(options["trace"])]
        hook = model.register_forward_pre_hook(lambda mod, a: trace.append([mod.training, torch.is_grad_enabled()]))
    ctx = torch.no_grad() if options.get("no_grad") else contextlib.nullcontext()
    try:
        with ctx:
            value = fn(*args, **kwargs)
    finally:
        if hook is not None:
            hook.remove()
    return value, trace


def _scratch_dir(server, prefix: str) -> Path:
    root = server.scratch / "probes"
    root.mkdir(exist_ok=True)
    n = len(list(root.iterdir())) + 1
    target = root / f"{prefix}{n}"
    target.mkdir()
    return target


def probe_model(server, model) -> dict:
    """Save the model (safetensors + config) for the judge; report its class and mode."""
    info = {"class": type(model).__name__, "mro": wire.mro_names(model),
            "training": bool(getattr(model, "training", False))}
    if not hasattr(model, "save_pretrained"):
        return {**info, "dir": None}
    target = _scratch_dir(server, "model")
    model.save_pretrained(str(target), safe_serialization=True)
    info["base_model_prefix"] = getattr(model, "base_model_prefix", "")
    return {**info, "dir": str(target.relative_to(server.scratch))}


def _json_safe(value):
    return json.loads(json.dumps(value, default=lambda v: getattr(v, "value", str(v))))


def probe_dataset(server, ds) -> dict:
    from datasets import Dataset, DatasetDict

    if isinstance(ds, DatasetDict):
        return {"kind": "DatasetDict", "splits": {name: probe_dataset(server, d) for name, d in ds.items()}}
    if not isinstance(ds, Dataset):
        return {"kind": type(ds).__name__, "mro": wire.mro_names(ds),
                "num_rows": len(ds) if hasattr(ds, "__len__") else None}
    features = {}
    for name, feat in ds.features.items():
        features[name] = {"type": type(feat).__name__, "names": list(getattr(feat, "names", []) or [])}
    rows = [ds[i] for i in range(min(ROWS_SHOWN, len(ds)))]
    return {"kind": "Dataset", "num_rows": ds.num_rows, "column_names": list(ds.column_names),
            "format": _json_safe(dict(ds.format)), "features": features, "rows": rows}


def probe_training_args(server, args) -> dict:
    """TrainingArguments (or anything with ``to_dict``) as data: enums as their values."""
    return {"class": type(args).__name__, "mro": wire.mro_names(args),
            "args": _json_safe(args.to_dict()) if hasattr(args, "to_dict") else None}


def probe_trainer(server, trainer) -> dict:
    """The Trainer's arguments, collator, tokenizer and datasets, as data."""
    collator = getattr(trainer, "data_collator", None)
    proc = getattr(trainer, "processing_class", None)
    args = getattr(trainer, "args", None)
    out = {
        "class": type(trainer).__name__, "mro": wire.mro_names(trainer),
        "args": _json_safe(args.to_dict()) if hasattr(args, "to_dict") else None,
        "collator": None if collator is None else {
            "class": type(collator).__name__, "mro": wire.mro_names(collator),
            "padding": _json_safe(getattr(collator, "padding", None)),
            "max_length": getattr(collator, "max_length", None),
            "pad_to_multiple_of": getattr(collator, "pad_to_multiple_of", None)},
        "processing_class": None if proc is None else {
            "class": type(proc).__name__, "vocab_size": getattr(proc, "vocab_size", None)},
    }
    for name in ("train_dataset", "eval_dataset"):
        ds = getattr(trainer, name, None)
        out[name] = None if ds is None else probe_dataset(server, ds)
    return out
