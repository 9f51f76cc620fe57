"""Is a saved model the course model with a classification head? Decided before anything is loaded.

Why: the evaluator runs in the trusted grading process, and what it builds is whatever the saved
``config.json`` describes. A 1 KB config asking for a BERT-large shape made it allocate 335 M
parameters and spend about an hour of CPU on the hidden split. So the config is read here as plain
JSON (size-capped, never through a link), compared with the course model's own config, and only a
config that describes the course model's architecture with the task's number of labels is handed to
``from_pretrained`` (as the config object itself, so what was checked is what is built). The
safetensors headers (only their JSON, size-capped) are then summed: the weights may declare no more
values than the course model with that head holds, so a config that tells the truth while the weights
are huge is refused too. Every refusal is a learner message that says what differs and what to do.
"""

from __future__ import annotations

import copy
import json
import os
import stat
import struct
from pathlib import Path

CONFIG_CAP = 1 << 20  # bytes of config.json (a BERT config is ~1 KB; the task's label names fit easily)
HEADER_CAP = 16 << 20  # bytes of one safetensors JSON header (BERT-base's is ~20 KB)
INDEX_CAP = 1 << 20
MAX_LABELS = 1000  # num_labels is checked against the task's before a config object is built: the config
#                    class builds an id2label entry per label (10 M labels took a minute of CPU)
# Config keys that change how the model is loaded rather than what it is: remote code, quantisation
# back-ends, attention/expert kernels (which transformers may fetch from the Hub). A saved fine-tuned
# model never has them.
REFUSED_KEYS = ("auto_map", "quantization_config", "attn_implementation", "_attn_implementation",
                "experts_implementation", "_experts_implementation", "per_layer_config")
# What decides the parameter count and the compute per token, under the names of BERT-like configs
# and DistilBERT's (dim, n_layers, n_heads, hidden_dim); compared wherever either config has the key.
SHAPE_KEYS = ("num_hidden_layers", "n_layers", "hidden_size", "dim", "num_attention_heads", "n_heads",
              "intermediate_size", "hidden_dim", "vocab_size", "max_position_embeddings", "type_vocab_size",
              "position_embedding_type", "embedding_size", "num_key_value_heads", "head_dim", "num_hidden_groups",
              "inner_group_num", "add_cross_attention", "is_decoder", "is_encoder_decoder")
NOUNS = {"num_hidden_layers": "layers", "n_layers": "layers", "num_attention_heads": "attention heads",
         "n_heads": "attention heads"}
SAVE_HINT = ("save the model you fine-tuned from the course model with trainer.save_model(...) or "
             "model.save_pretrained(...), without changing its config; it was not loaded")


class ArchitectureError(ValueError):
    """The saved model is not the course model with the task's head (a learner message)."""


def _shown(value: object) -> str:
    return ascii(value)[:40]


def _open_regular(path: Path):
    """A regular file opened for reading without following a link or blocking on a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise ArchitectureError(f"{path.name} cannot be opened ({exc.strerror})") from None
    f = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        f.close()
        raise ArchitectureError(f"{path.name} is not a regular file")
    return f


def read_capped(path: Path, cap: int) -> bytes:
    """A regular file's bytes, opened without following a link, refused over ``cap`` bytes."""
    with _open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size > cap:
            raise ArchitectureError(f"{path.name} is {size} bytes, over the {cap} bytes a saved model's "
                                    f"{path.name} may have; {SAVE_HINT}")
        return f.read(cap + 1)[:cap]


def _read_json(path: Path, cap: int) -> dict:
    text = read_capped(path, cap)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise ArchitectureError(f"{path.name} is not valid JSON; {SAVE_HINT}") from None
    if not isinstance(data, dict):
        raise ArchitectureError(f"{path.name} is not a JSON object; {SAVE_HINT}")
    return data


def _label_count(raw: dict) -> object:
    """How many outputs the raw config asks for, as transformers would read it (2 when it says nothing)."""
    if "num_labels" in raw:
        return raw["num_labels"]
    id2label = raw.get("id2label")
    return len(id2label) if isinstance(id2label, dict) and id2label else 2


def _differences(pairs) -> list[str]:
    """'24 layers where the course model has 6'-style phrases for each (key, saved, course) that differs."""
    out = []
    for key, mine, theirs in pairs:
        if mine != theirs:
            noun = NOUNS.get(key)
            out.append(f"{_shown(mine)} {noun} where the course model has {_shown(theirs)}" if noun else
                       f"{key} {_shown(mine)} where the course model has {_shown(theirs)}")
    return list(dict.fromkeys(out))


def _refuse_differences(diffs: list[str]) -> None:
    if diffs:
        more = f" (and {len(diffs) - 3} more differences)" if len(diffs) > 3 else ""
        raise ArchitectureError(f"the saved model is not the course model: its config.json says "
                                f"{', '.join(diffs[:3])}{more}; {SAVE_HINT}")


def _build(cls, raw: dict):
    """The config object ``cls`` makes of the (already checked) plain values."""
    try:
        return cls.from_dict(raw)
    except Exception as exc:  # noqa: BLE001 - the config class refused the saved values
        raise ArchitectureError(f"the saved config.json cannot be read: {type(exc).__name__}: {str(exc)[:200]}; "
                                f"{SAVE_HINT}") from None


def checked_config(model_dir: Path, num_labels: int, course_config=None):
    """The saved config as a config object, once it is known to describe the course model's architecture
    (``course_config``, a trusted ``PretrainedConfig``) with ``num_labels`` outputs.

    Plain JSON first: no ``auto_map`` or loader keys (:data:`REFUSED_KEYS`), the course model's
    ``model_type``, the task's label count, and every shape key it sets (read through the config class's
    aliases, so DistilBERT's ``hidden_size`` is its ``dim``) equal to the course model's. Only then does
    the course model's own config class build the object, whose shape attributes (defaults included) are
    compared again. Without ``course_config`` (a trusted caller scoring the course's own models) the
    model type and shapes are not compared; the loader keys and the label count still are.
    Raises :class:`ArchitectureError`.
    """
    raw = _read_json(model_dir / "config.json", CONFIG_CAP)
    refused = [k for k in REFUSED_KEYS if raw.get(k) is not None]
    if refused:
        raise ArchitectureError(f"the saved config.json sets {', '.join(refused)}, which changes how a model is "
                                f"loaded (custom code, quantisation or attention kernels); {SAVE_HINT}")
    count = _label_count(raw)
    if type(count) is not int or not 0 < count <= MAX_LABELS or count != num_labels:
        raise ArchitectureError(f"the saved model has {_shown(count)} outputs, the task has {num_labels} labels: "
                                "load the classifier with the task's label maps (stage 2)")
    if course_config is None:
        from transformers import AutoConfig

        try:
            cls = type(AutoConfig.for_model(str(raw.get("model_type"))))
        except (KeyError, ValueError):
            raise ArchitectureError(f"the saved config.json has an unknown model_type {_shown(raw.get('model_type'))}; "
                                    f"{SAVE_HINT}") from None
        return _build(cls, raw)
    if raw.get("model_type") != course_config.model_type:
        raise ArchitectureError(f"the saved model is not the course model: its config.json says model_type "
                                f"{_shown(raw.get('model_type'))} where the course model is "
                                f"{_shown(course_config.model_type)}; {SAVE_HINT}")
    aliases = getattr(type(course_config), "attribute_map", {}) or {}
    named = [(aliases.get(k, k), value) for k, value in raw.items() if aliases.get(k, k) in SHAPE_KEYS]
    named.sort(key=lambda pair: SHAPE_KEYS.index(pair[0]))  # DistilBERT's hidden_size is its dim
    _refuse_differences(_differences((k, value, getattr(course_config, k, None)) for k, value in named))
    config = _build(type(course_config), raw)
    _refuse_differences(_differences((k, getattr(config, k, None), getattr(course_config, k, None))
                                     for k in SHAPE_KEYS if hasattr(config, k) or hasattr(course_config, k)))
    return config


def declared_values(model_dir: Path) -> int:
    """How many values the safetensors files in ``model_dir`` declare, from their JSON headers alone.

    A safetensors file starts with the header's length (8 bytes, little-endian) and the header, a JSON
    object of tensor name -> dtype, shape and offsets. Every ``*.safetensors`` file counts (a sharded
    index may only name files of this folder). Raises :class:`ArchitectureError`.
    """
    total = 0
    for path in sorted(model_dir.glob("*.safetensors")):
        with _open_regular(path) as f:
            head = f.read(8)
            size = os.fstat(f.fileno()).st_size
            length = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
            if not 2 <= length <= min(HEADER_CAP, size - 8):
                raise ArchitectureError(f"{path.name} is not a safetensors file (its header length is "
                                        f"{length}); {SAVE_HINT}")
            try:
                header = json.loads(f.read(length))
            except (ValueError, RecursionError):
                header = None
        if not isinstance(header, dict):
            raise ArchitectureError(f"{path.name} has no readable safetensors header; {SAVE_HINT}")
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            shape = entry.get("shape") if isinstance(entry, dict) else None
            if not isinstance(shape, list) or any(type(d) is not int or d < 0 for d in shape):
                raise ArchitectureError(f"{path.name} declares a tensor without a valid shape; {SAVE_HINT}")
            values = 1
            for d in shape:
                values *= d
            total += values
    index = model_dir / "model.safetensors.index.json"
    if index.exists():
        weight_map = _read_json(index, INDEX_CAP).get("weight_map")
        names = set(weight_map.values()) if isinstance(weight_map, dict) else {None}
        if not all(isinstance(n, str) and "/" not in n and "\\" not in n and (model_dir / n).is_file()
                   for n in names):
            raise ArchitectureError(f"{index.name} names weight files that are not in the saved folder; {SAVE_HINT}")
    return total


def course_values(course_config, num_labels: int) -> int:
    """How many values the course model with a ``num_labels`` classification head holds (its state dict,
    tied weights counted twice: an upper bound). Built on the meta device: no memory, a few ms."""
    import torch
    from transformers import AutoModelForSequenceClassification

    config = copy.deepcopy(course_config)
    config.num_labels = num_labels
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config)
    return sum(t.numel() for t in model.state_dict().values())


def check_saved_model(model_dir: Path, num_labels: int, course_model: str | Path | None):
    """The checked config to load ``model_dir`` with (see :func:`checked_config`), once the safetensors
    headers also declare no more values than the course model with the task's head. Nothing of the
    weights is read. Raises :class:`ArchitectureError` with a learner message."""
    course_config = None
    if course_model is not None:
        from transformers import AutoConfig

        course_config = AutoConfig.from_pretrained(course_model)  # the course's own model: trusted
    config = checked_config(Path(model_dir), num_labels, course_config)
    if course_config is not None:
        declared, allowed = declared_values(Path(model_dir)), course_values(course_config, num_labels)
        if declared > allowed:
            raise ArchitectureError(f"the saved weights declare {declared / 1e6:.1f} M values where the course model "
                                    f"with a {num_labels}-label head has {allowed / 1e6:.1f} M; {SAVE_HINT}")
    return config
