"""The trusted evaluator: loads a saved model itself and scores it on the hidden test split.

Grades come from here, never from numbers a submission prints: the model's weights and
label names are the only things taken from the submission; the tokenizer is the course's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from autograder.stats import bootstrap_macro_f1, mcnemar_exact, wilson_interval


class ModelArtifactError(RuntimeError):
    """The saved model is missing, unloadable or does not fit the task (a learner message)."""


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


def load_saved_model(model_dir: Path, label_names: list[str]):
    """Load ``model_dir`` and map its outputs to the dataset's label indices (by label name)."""
    from transformers import AutoModelForSequenceClassification

    if not (model_dir / "config.json").exists():
        raise ModelArtifactError(f"no saved model in {model_dir.name}/ (config.json missing): the notebook must end "
                                 "with trainer.save_model(...) - printed predictions are not graded")
    if not any(model_dir.glob("*.safetensors")) and not any(model_dir.glob("*.bin")):
        raise ModelArtifactError(f"{model_dir.name}/ has a config but no weights (model.safetensors)")
    try:
        model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    except Exception as exc:  # noqa: BLE001
        raise ModelArtifactError(f"the saved model cannot be loaded: {type(exc).__name__}: {exc}") from None
    id2label = {int(i): str(n) for i, n in model.config.id2label.items()}
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
    return model, mapping


def predict_indices(model, tokenizer, texts: list[str], mapping: list[int], *, batch_size: int = 64,
                    max_length: int = 128) -> list[int]:
    out: list[int] = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt")
            out.extend(mapping[i] for i in model(**batch).logits.argmax(-1).tolist())
    return out


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


def embedding_zero_shot_comparison(texts: list[str], y_true: list[int], fine_tuned: list[int],
                                   label_names: list[str], encoder_path: str, tokenizer) -> dict:
    """Embedding zero-shot with the course encoder (reference code), against the fine-tuned predictions."""
    from transformers import AutoModel

    from autograder import REPO_ROOT
    from autograder.gradelib import import_submission_module

    reference = import_submission_module(REPO_ROOT / "solutions", "stage6_zero_shot")
    encoder = AutoModel.from_pretrained(encoder_path)
    scores = reference.embedding_zero_shot(texts, label_names, encoder, tokenizer)
    zs = [label_names.index(max(s, key=s.get)) for s in scores]
    truth = np.asarray(y_true)
    b01, b10, p = mcnemar_exact(np.asarray(fine_tuned) == truth, np.asarray(zs) == truth)
    return {
        "method": "embedding zero-shot (mean-pooled encoder, 'This example is {}.')",
        "zero_shot_accuracy": float((np.asarray(zs) == truth).mean()),
        "fine_tuned_accuracy": float((np.asarray(fine_tuned) == truth).mean()),
        "agreement": float((np.asarray(zs) == np.asarray(fine_tuned)).mean()),
        "fine_tuned_only_right": b01, "zero_shot_only_right": b10, "mcnemar_p": p,
    }
