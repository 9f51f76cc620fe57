"""Hidden grader, stage 2 (model). Points per check: course.toml [stages.checks].

The model stays in the submission's process: the runner saves it as safetensors (a probe), and
the judge reads the weights and the config itself, loads the saved model and runs it here.
"""

from __future__ import annotations

from functools import cache

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, PreTrainedModel

from autograder.grading.gradelib import GraderFailure, call, describe, expect, expect_type, probed_model, tiny

MODULE = "stage2_model"
EMOTIONS = ["sadness", "joy", "love"]


@pytest.fixture(scope="module")
def sub(stage_module):
    return stage_module(MODULE)


class Saved:
    """A model the submission returned, as the judge sees it: saved files, weights and config."""

    def __init__(self, handle):
        from safetensors.torch import load_file

        self.handle = handle
        self.info, self.folder = probed_model(handle)
        self.state: dict = {}
        for path in sorted(self.folder.glob("*.safetensors")):
            self.state.update(load_file(str(path)))
        if not self.state:
            raise GraderFailure("the model was saved without weights (no .safetensors file)")
        try:
            self.config = AutoConfig.from_pretrained(str(self.folder))
        except Exception as exc:  # noqa: BLE001 - whatever the saved config holds becomes a message
            raise GraderFailure(f"the returned model's saved config could not be read: {type(exc).__name__}: "
                                f"{str(exc)[:200]}") from None

    @property
    def class_name(self) -> str:
        return self.handle.type

    def load(self) -> PreTrainedModel:
        """The saved model, loaded in the judge (with a sequence-classification head)."""
        try:
            return AutoModelForSequenceClassification.from_pretrained(str(self.folder), use_safetensors=True).eval()
        except Exception as exc:  # noqa: BLE001
            raise GraderFailure(f"the returned {self.class_name} could not be reloaded as a sequence classifier: "
                                f"{type(exc).__name__}: {str(exc)[:200]}") from None


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
    out = call(sub, "label_maps", EMOTIONS, call_desc=f"label_maps({EMOTIONS})")
    expect(isinstance(out, tuple) and len(out) == 2,
           f"label_maps should return (id2label, label2id), got {describe(out)}")
    id2label, label2id = out
    expect(id2label == {0: "sadness", 1: "joy", 2: "love"},
           f"id2label should be {{0: 'sadness', 1: 'joy', 2: 'love'}}, got {describe(id2label)}")
    expect(label2id == {"sadness": 0, "joy": 1, "love": 2},
           f"label2id should be {{'sadness': 0, 'joy': 1, 'love': 2}}, got {describe(label2id)}")


def test_head_has_the_label_maps(sub):
    cfg = _load(sub, "distilbert-base", EMOTIONS).config
    expect(cfg.num_labels == 3, f"the model has num_labels={cfg.num_labels}, expected 3 for {EMOTIONS}")
    expect(cfg.id2label == {0: "sadness", 1: "joy", 2: "love"},
           f"model.config.id2label is {describe(cfg.id2label)}: pass id2label to from_pretrained")
    expect(cfg.label2id == {"sadness": 0, "joy": 1, "love": 2},
           f"model.config.label2id is {describe(cfg.label2id)}: pass label2id to from_pretrained")


def test_encoder_weights_come_from_the_checkpoint(sub):
    saved = _load(sub, "distilbert-base", EMOTIONS)
    bad = _encoder_matches_checkpoint(saved, "distilbert-base")
    expect(not bad, f"the encoder weight {bad} differs from the checkpoint: the pretrained weights were not "
                    "loaded (use from_pretrained, not from_config, and do not re-initialise the encoder)")


def test_head_is_new_and_sized_for_the_labels(sub):
    saved = _load(sub, "distilbert-base", EMOTIONS, seed=0)
    expect(saved.class_name.endswith("ForSequenceClassification"),
           f"load_classifier returned a {saved.class_name}; expected a *ForSequenceClassification model")
    model = saved.load()
    batch = tiny.tokenizer()(["a quiet evening", "the bus never came"], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    expect(tuple(logits.shape) == (2, 3), f"two texts gave logits of shape {tuple(logits.shape)}, expected (2, 3)")
    other = _load(sub, "distilbert-base", EMOTIONS, seed=1)
    _, heads = _split(saved, "distilbert-base")
    _, other_heads = _split(other, "distilbert-base")
    expect(any(n not in other_heads or other_heads[n].shape != p.shape or not torch.equal(p, other_heads[n])
               for n, p in heads.items()),
           "the classification head is identical for two different seeds: it should be freshly initialised")


def test_works_for_bert_and_distilbert(sub):
    for kind in ("bert-base", "distilbert-base"):
        saved = _load(sub, kind, ["negative", "positive"])
        model_type = saved.config.model_type
        expect(model_type == kind.split("-")[0], f"a {kind.split('-')[0]} checkpoint gave a {model_type} model")
        bad = _encoder_matches_checkpoint(saved, kind)
        expect(not bad, f"with a {kind.split('-')[0]} checkpoint the encoder weight {bad} differs from the checkpoint")
        expect(saved.config.num_labels == 2, f"with 2 labels the {kind} model has num_labels={saved.config.num_labels}")
