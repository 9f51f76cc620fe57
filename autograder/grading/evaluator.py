"""The trusted evaluator: loads a saved model itself and scores it on the hidden test split.

It runs in the grading process, never in the notebook's jail, and imports nothing from solutions/
or the graders. Grades come from here, never from numbers a submission prints: the only things
taken from the submission are the weights (safetensors only: nothing is unpickled, no remote code
runs) and the config with its label names, from a folder the grader copied out of the job; the
tokenizer is the course's. Before anything is loaded, the config and the safetensors headers must
describe the course model with the task's head (:mod:`autograder.grading.architecture`), so what a
submission can make this process build and run is bounded by the course model; scoring then stops at
a time limit from the manifest. The test split is read from datasets_cache/ and used only if its sha256
is the one recorded inside this package (:mod:`autograder.course.split_hashes`).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from autograder.course.split_hashes import SplitIntegrityError, expected, labels, verified_bytes
from autograder.procs import setting
from autograder.stats import bootstrap_macro_f1, mcnemar_exact, wilson_interval

ZERO_SHOT_TEMPLATE = "This example is {}."


@dataclass(frozen=True)
class HiddenSplit:
    """A verified split as plain lists: texts, label indices and the label names."""

    texts: list[str]
    labels: list[int]
    label_names: list[str]


def load_hidden_split(name: str, split: str = "test", *, root: Path | None = None) -> HiddenSplit:
    """``datasets_cache/<name>/<split>.jsonl``, hash-checked against the package's record (raises
    :class:`~autograder.course.split_hashes.SplitIntegrityError` otherwise: never grade on a changed split)."""
    data = verified_bytes(name, split, root)
    names = labels(name)
    texts, ys = [], []
    for line in data.decode("utf-8").split("\n"):
        if line.strip():
            row = json.loads(line)
            texts.append(str(row["text"]))
            ys.append(int(row["label"]))
    if len(texts) != expected(name, split)["rows"] or any(not 0 <= y < len(names) for y in ys):
        raise SplitIntegrityError(f"{name}/{split} does not have the recorded rows and labels")
    return HiddenSplit(texts, ys, names)


def _quiet_loading() -> None:
    """No "Loading weights" progress bar from the judge: the grade's terminal is one line per stage
    (a bar per loaded model cluttered it, and CI logs with it)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


class ModelArtifactError(RuntimeError):
    """The saved model is missing, unloadable or does not fit the task (a learner message)."""


class ScoringTimeout(ModelArtifactError):
    """Scoring the hidden split passed its time limit (a learner message): the model loaded, its score is unknown."""


@dataclass
class Evaluation:
    n: int
    accuracy: float
    accuracy_ci: tuple[float, float]
    macro_f1: float
    macro_f1_ci: tuple[float, float]
    per_class: dict[str, dict[str, float]]
    confusion: list[list[int]]
    labels: list[str]
    predictions: list[int] = field(repr=False, default_factory=list)
    zero_shot: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("predictions")
        return data


def evaluation_device() -> torch.device:
    """Where the evaluator scores: the GPU when there is one (scoring 500-1,500 texts is then about a
    second), else the CPU. Predictions are argmaxes of fp32 logits on either."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_saved_model(model_dir: Path, label_names: list[str], *, course_model: str | Path | None = None):
    """Load ``model_dir`` and map its outputs to the dataset's label indices (by label name).

    Safetensors weights only: a ``pytorch_model.bin`` (a pickle, which can run code when loaded) is
    never opened, and ``trust_remote_code`` stays off, so a config cannot pull in code either. With
    ``course_model`` (the model tier always passes it), nothing is built before the saved config and
    weights are known to be that model's architecture with the task's head; without it (trusted callers
    scoring the course's own models) only the label count and loader keys are checked first. Weights are
    built in fp32 whatever the config says: fp16/bf16 on CPU is ~100x slower.
    """
    from transformers import AutoModelForSequenceClassification

    from autograder.grading.architecture import ArchitectureError, check_saved_model

    if not (model_dir / "config.json").is_file():
        raise ModelArtifactError(f"no saved model in {model_dir.name}/ (config.json missing): the notebook must end "
                                 "with trainer.save_model(...) - printed predictions are not graded")
    if not any(model_dir.glob("*.safetensors")):
        pickled = sorted(p.name for p in model_dir.glob("*.bin"))
        if pickled:
            raise ModelArtifactError(f"{model_dir.name}/ holds {', '.join(pickled)} but no .safetensors weights: "
                                     "pickled weights are never loaded; save with trainer.save_model(...) or "
                                     "save_pretrained(..., safe_serialization=True)")
        raise ModelArtifactError(f"{model_dir.name}/ has a config but no weights (model.safetensors)")
    try:
        config = check_saved_model(model_dir, len(label_names), course_model)
    except ArchitectureError as exc:
        raise ModelArtifactError(str(exc)) from None
    _quiet_loading()
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            model_dir, config=config, dtype=torch.float32, use_safetensors=True, trust_remote_code=False,
            local_files_only=True)
    except Exception as exc:  # noqa: BLE001
        raise ModelArtifactError(f"the saved model cannot be loaded: {type(exc).__name__}: {str(exc)[:300]}") from None
    try:
        id2label = {int(i): str(n) for i, n in model.config.id2label.items()}
    except (TypeError, ValueError, AttributeError):
        id2label = {}
    if not id2label or sorted(id2label) != list(range(len(id2label))):
        raise ModelArtifactError("the saved model's config has no id2label numbered 0, 1, ...: "
                                 "load the classifier with the task's label maps (stage 2)")
    if len(id2label) != len(label_names):
        raise ModelArtifactError(f"the saved model has {len(id2label)} outputs, the task has {len(label_names)} "
                                 f"labels {label_names}")
    if set(id2label.values()) == set(label_names):
        mapping = [label_names.index(id2label[i]) for i in range(len(id2label))]
    elif all(n == f"LABEL_{i}" for i, n in id2label.items()):
        mapping = list(range(len(id2label)))  # no names were set: assume dataset order
    else:
        raise ModelArtifactError(f"the saved model's labels {list(id2label.values())} are not the task's {label_names}")
    model.eval()
    return model.to(evaluation_device()), mapping


def predict_indices(model, tokenizer, texts: list[str], mapping: list[int], *, batch_size: int = 64,
                    max_length: int = 128, deadline: float | None = None) -> list[int]:
    """The task's label index for each text, in the texts' order.

    Texts are batched shortest first: a batch is padded to its longest text, so sorting by length
    keeps padding (wasted matmul work) small; each text's logits do not depend on its batch, since
    the attention mask hides the padding. ``deadline`` (a ``time.monotonic()`` value) is checked
    before each batch, never inside one: :class:`ScoringTimeout` once it has passed. That bounds the
    whole scoring because a batch's cost is bounded: the architecture check holds the model to the
    course model's size and the tokenizer (the course's) truncates every text to ``max_length``.
    """
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
    order = sorted(range(len(texts)), key=lambda i: lengths[i])
    out: list[int] = [0] * len(texts)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            if deadline is not None and time.monotonic() > deadline:
                raise ScoringTimeout(f"{start} of {len(texts)}")
            chunk = order[start:start + batch_size]
            batch = tokenizer([texts[i] for i in chunk], padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt").to(model.device)
            for i, k in zip(chunk, model(**batch).logits.argmax(-1).tolist()):
                out[i] = mapping[k]
    return out


def score_saved_model(model_dir: Path, test: HiddenSplit, tokenizer, *, seed: int,
                      course_model: str | Path | None = None, time_limit: float | None = None) -> Evaluation:
    """Load a saved model (safetensors only) and score it on a hidden split: what the model tier
    grades and what a calibration scores again. Raises :class:`ModelArtifactError` with a learner
    message when the model is not the course model's architecture (``course_model``: see
    :func:`load_saved_model`) or cannot be loaded or run, and :class:`ScoringTimeout` when loading and
    scoring together pass ``time_limit`` seconds (checked between batches: a stalled evaluation costs
    its own checks, never the grade)."""
    deadline = None if time_limit is None else time.monotonic() + time_limit
    model, mapping = load_saved_model(model_dir, test.label_names, course_model=course_model)
    try:
        preds = predict_indices(model, tokenizer, test.texts, mapping, deadline=deadline)
    except ScoringTimeout as exc:
        raise ScoringTimeout(f"scoring the hidden test texts took longer than the {time_limit:g} s limit and was "
                             f"stopped after {exc} texts; the course model scores them in a fraction of that, so the "
                             "machine was busy: ask your instructor to grade it again") from None
    except Exception as exc:  # noqa: BLE001 - its message could quote a test text: name the type only
        raise ModelArtifactError(f"the saved model loads but fails on the test texts ({type(exc).__name__}); "
                                 "does it still fit the course model's tokenizer?") from None
    return score(test.labels, preds, test.label_names, seed=seed)


def score(y_true: list[int], y_pred: list[int], label_names: list[str], *, seed: int = 0) -> Evaluation:
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    y_true_a, y_pred_a = np.asarray(y_true), np.asarray(y_pred)
    k = len(label_names)
    correct = int((y_true_a == y_pred_a).sum())
    f1, f1_lo, f1_hi = bootstrap_macro_f1(y_true_a, y_pred_a, labels=range(k), seed=seed)
    p, r, f, s = precision_recall_fscore_support(y_true_a, y_pred_a, labels=range(k), zero_division=0)
    per_class = {name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
                 for i, name in enumerate(label_names)}
    return Evaluation(
        n=len(y_true), accuracy=correct / len(y_true), accuracy_ci=wilson_interval(correct, len(y_true)),
        macro_f1=f1, macro_f1_ci=(f1_lo, f1_hi), per_class=per_class,
        confusion=confusion_matrix(y_true_a, y_pred_a, labels=range(k)).tolist(), labels=list(label_names),
        predictions=list(map(int, y_pred)),
    )


def embed(texts: list[str], encoder, tokenizer, *, batch_size: int = 32, max_length: int = 256) -> torch.Tensor:
    """Sentence embeddings: the encoder's last hidden state mean-pooled over the real tokens
    (attention mask), then L2-normalised; one row per text."""
    encoder.eval()
    chunks = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(list(texts[start:start + batch_size]), padding=True, truncation=True,
                            max_length=max_length, return_tensors="pt").to(encoder.device)
            hidden = encoder(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            chunks.append(torch.nn.functional.normalize(pooled, p=2, dim=-1).cpu())
    return torch.cat(chunks) if chunks else torch.empty(0, encoder.config.hidden_size)


def embedding_zero_shot_predictions(texts: list[str], label_names: list[str], encoder, tokenizer,
                                    template: str = ZERO_SHOT_TEMPLATE) -> list[int]:
    """For each text, the index of the label whose prompt ('This example is {label}.') is most
    similar (cosine similarity of unit embeddings, i.e. their dot product)."""
    sims = embed(texts, encoder, tokenizer) @ embed([template.format(n) for n in label_names], encoder, tokenizer).T
    return [int(i) for i in sims.argmax(dim=-1).tolist()]


def _zero_shot_cache_file(texts: list[str], label_names: list[str], encoder_path: str) -> Path:
    """Where the zero-shot predictions of these texts by this encoder are kept between processes.

    The key covers the texts, the labels, the prompt and the encoder's files (name, size, mtime),
    so another model or another split never reads them. The folder is the grader's own cache: a
    jailed submission cannot write there.
    """
    import hashlib

    root = Path(encoder_path)
    files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in root.iterdir() if p.is_file()) \
        if root.is_dir() else [encoder_path]
    key = hashlib.sha256(json.dumps([str(root.resolve()), files, texts, label_names, ZERO_SHOT_TEMPLATE])
                         .encode("utf-8")).hexdigest()[:32]
    base = Path(setting("COURSE_CACHE_DIR") or Path.home() / ".cache" / "llm-course-kit")
    return base / "zero_shot" / f"{key}.json"


def cached_zero_shot_predictions(texts: list[str], label_names: list[str], encoder_path: str, tokenizer) -> list[int]:
    """:func:`embedding_zero_shot_predictions` of the course encoder, computed once per split and
    encoder: they do not depend on the submission, and a class of 300 would otherwise embed the
    same hidden texts 300 times (seconds each)."""
    import os

    from transformers import AutoModel

    path = _zero_shot_cache_file(texts, label_names, encoder_path)
    try:
        preds = json.loads(path.read_text())
        if isinstance(preds, list) and len(preds) == len(texts) and all(type(i) is int for i in preds):
            return preds
    except (OSError, ValueError):
        pass
    _quiet_loading()
    encoder = AutoModel.from_pretrained(encoder_path).to(evaluation_device())
    preds = embedding_zero_shot_predictions(texts, label_names, encoder, tokenizer)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(preds))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home only costs the next grading the same seconds
    return preds


def embedding_zero_shot_comparison(texts: list[str], y_true: list[int], fine_tuned: list[int],
                                   label_names: list[str], encoder_path: str, tokenizer) -> dict:
    """Embedding zero-shot with the course encoder, against the fine-tuned predictions."""
    zs = np.asarray(cached_zero_shot_predictions(texts, label_names, encoder_path, tokenizer))
    truth, tuned = np.asarray(y_true), np.asarray(fine_tuned)
    b01, b10, p = mcnemar_exact(tuned == truth, zs == truth)
    return {
        "method": "embedding zero-shot (mean-pooled encoder, 'This example is {}.')",
        "zero_shot_accuracy": float((zs == truth).mean()),
        "fine_tuned_accuracy": float((tuned == truth).mean()),
        "agreement": float((zs == tuned).mean()),
        "fine_tuned_only_right": b01, "zero_shot_only_right": b10, "mcnemar_p": p,
    }
