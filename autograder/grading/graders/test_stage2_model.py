"""Hidden grader, stage 2 (model). Points per check: course.toml [stages.checks].

The model stays in the submission's process: the runner saves it as safetensors (a probe), and
the judge reads the weights and the config itself, loads the saved model and runs it here.
"""

from __future__ import annotations

from functools import cache

import pytest
import torch
from transformers import AutoModel, AutoModelForSequenceClassification, PreTrainedModel

from autograder.grading.gradelib import (
    call,
    describe,
    expect,
    expect_type,
    hidden_rng,
    probed_model,
    tiny,
)
from autograder.grading.hidden_inputs import label_names, sentences
from autograder.grading.scratch_files import rebuild, saved_config

MODULE = "stage2_model"


@pytest.fixture(scope="module")
def sub(stage_module):
    return stage_module(MODULE)


class Saved:
    """A model the submission returned, as the judge sees it: weights and config read from what the
    runner saved (never by a path it could swap), the model rebuilt here from them."""

    def __init__(self, handle):
        self.handle = handle
        self.info, self.saved = probed_model(handle)
        self.state = self.saved.state
        self.config = saved_config(self.saved)

    @property
    def class_name(self) -> str:
        return self.handle.type

    def load(self) -> PreTrainedModel:
        """The saved model, rebuilt in the judge (with a sequence-classification head)."""
        return rebuild(self.saved, AutoModelForSequenceClassification,
                       f"the returned {self.class_name} (as a sequence classifier)")


def _labels(check: str, lo: int = 3, hi: int = 6) -> list[str]:
    """Class names drawn for ``check`` (hidden seed): a table of known answers cannot pass."""
    rng = hidden_rng(check)
    return label_names(rng, rng.randint(lo, hi))


def _load(sub, kind: str, labels: list[str], seed: int = 0) -> Saved:
    path = tiny.path(kind)
    model = call(sub, "load_classifier", path, labels, options={"seed": seed},
                 call_desc=f"load_classifier(<tiny {kind} checkpoint>, {labels})")
    expect_type(model, PreTrainedModel, "load_classifier")
    return Saved(model)


@cache
def _checkpoint(kind: str) -> tuple[str, dict]:
    """(base_model_prefix, encoder state dict) of the tiny checkpoint, loaded by the judge."""
    base = AutoModel.from_pretrained(tiny.path(kind))
    return base.base_model_prefix, {k: v.detach().clone() for k, v in base.state_dict().items()}


def _split(saved: Saved, kind: str) -> tuple[dict, dict]:
    """(encoder weights without the prefix, head weights) of a saved model, by the checkpoint's prefix."""
    prefix, _ = _checkpoint(kind)
    if not any(k.startswith(prefix + ".") for k in saved.state):  # a bare encoder (its own base model)
        return dict(saved.state), {}
    encoder = {k[len(prefix) + 1:]: v for k, v in saved.state.items() if k.startswith(prefix + ".")}
    head = {k: v for k, v in saved.state.items() if not k.startswith(prefix + ".")}
    return encoder, head


def _encoder_matches_checkpoint(saved: Saved, kind: str) -> str:
    """'' when every encoder weight equals the checkpoint's, else the first differing name."""
    _, base = _checkpoint(kind)
    mine, _ = _split(saved, kind)
    for name, tensor in base.items():
        if name not in mine:
            return f"{name} (missing)"
        if mine[name].shape != tensor.shape or not torch.equal(mine[name].to(tensor.dtype), tensor):
            return name
    return ""


def test_label_maps_are_inverse(sub):
    labels = _labels("test_label_maps_are_inverse")
    out = call(sub, "label_maps", list(labels), call_desc=f"label_maps({labels})")
    expect(isinstance(out, tuple) and len(out) == 2,
           f"label_maps should return (id2label, label2id), got {describe(out)}")
    id2label, label2id = out
    want_id2label, want_label2id = dict(enumerate(labels)), {name: i for i, name in enumerate(labels)}
    expect(id2label == want_id2label, f"id2label should be {want_id2label}, got {describe(id2label)}")
    expect(label2id == want_label2id, f"label2id should be {want_label2id}, got {describe(label2id)}")


def test_head_has_the_label_maps(sub):
    labels = _labels("test_head_has_the_label_maps")
    cfg = _load(sub, "distilbert-base", labels).config
    expect(cfg.num_labels == len(labels),
           f"the model has num_labels={describe(cfg.num_labels)}, expected {len(labels)} for {labels}")
    expect(cfg.id2label == dict(enumerate(labels)),
           f"model.config.id2label is {describe(cfg.id2label)}: pass id2label to from_pretrained")
    expect(cfg.label2id == {name: i for i, name in enumerate(labels)},
           f"model.config.label2id is {describe(cfg.label2id)}: pass label2id to from_pretrained")


def test_encoder_weights_come_from_the_checkpoint(sub):
    saved = _load(sub, "distilbert-base", _labels("test_encoder_weights_come_from_the_checkpoint"))
    bad = _encoder_matches_checkpoint(saved, "distilbert-base")
    expect(not bad, f"the encoder weight {bad} differs from the checkpoint: the pretrained weights were not "
                    "loaded (use from_pretrained, not from_config, and do not re-initialise the encoder)")


def test_head_is_new_and_sized_for_the_labels(sub):
    rng = hidden_rng("test_head_is_new_and_sized_for_the_labels")
    labels, texts = label_names(rng, rng.randint(3, 6)), sentences(rng, rng.randint(2, 4), 2, 9)
    seed = rng.randrange(1000)
    saved = _load(sub, "distilbert-base", labels, seed=seed)
    expect(saved.class_name.endswith("ForSequenceClassification"),
           f"load_classifier returned a {saved.class_name}; expected a *ForSequenceClassification model")
    model = saved.load()
    batch = tiny.tokenizer()(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    want = (len(texts), len(labels))
    expect(tuple(logits.shape) == want,
           f"{len(texts)} texts gave logits of shape {tuple(logits.shape)}, expected {want}")
    other = _load(sub, "distilbert-base", labels, seed=seed + 1 + rng.randrange(1000))
    _, heads = _split(saved, "distilbert-base")
    _, other_heads = _split(other, "distilbert-base")
    expect(any(n not in other_heads or other_heads[n].shape != p.shape or not torch.equal(p, other_heads[n])
               for n, p in heads.items()),
           "the classification head is identical for two different seeds: it should be freshly initialised")


def test_works_for_bert_and_distilbert(sub):
    labels = _labels("test_works_for_bert_and_distilbert", 2, 4)
    for kind in ("bert-base", "distilbert-base"):
        saved = _load(sub, kind, labels)
        model_type = saved.config.model_type
        expect(model_type == kind.split("-")[0], f"a {kind.split('-')[0]} checkpoint gave a {model_type} model")
        bad = _encoder_matches_checkpoint(saved, kind)
        expect(not bad, f"with a {kind.split('-')[0]} checkpoint the encoder weight {bad} differs from the checkpoint")
        expect(saved.config.num_labels == len(labels),
               f"with {len(labels)} labels the {kind} model has num_labels={saved.config.num_labels}")
