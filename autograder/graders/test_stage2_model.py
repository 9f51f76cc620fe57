"""Hidden grader, stage 2 (model). Points per check: course.toml [stages.checks]."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModel, PreTrainedModel

from autograder.gradelib import call, describe, expect, expect_type, tiny

MODULE = "stage2_model"
EMOTIONS = ["sadness", "joy", "love"]


@pytest.fixture(scope="module")
def sub(stage_module):
    return stage_module(MODULE)


def _load(sub, kind: str, labels: list[str], seed: int = 0) -> PreTrainedModel:
    path = tiny.path(kind)
    torch.manual_seed(seed)
    model = call(sub, "load_classifier", path, labels,
                 call_desc=f"load_classifier(<tiny {kind} checkpoint>, {labels})")
    expect_type(model, PreTrainedModel, "load_classifier")
    return model


def _encoder_matches_checkpoint(model: PreTrainedModel, kind: str) -> str:
    """'' when every encoder weight equals the checkpoint's, else the first differing name."""
    base = AutoModel.from_pretrained(tiny.path(kind))
    mine = model.base_model.state_dict()
    for name, tensor in base.state_dict().items():
        if name not in mine:
            return f"{name} (missing)"
        if mine[name].shape != tensor.shape or not torch.equal(mine[name], tensor):
            return name
    return ""


def test_label_maps_are_inverse(sub):
    out = call(sub, "label_maps", EMOTIONS, call_desc=f"label_maps({EMOTIONS})")
    expect(isinstance(out, tuple) and len(out) == 2, f"label_maps should return (id2label, label2id), got {describe(out)}")
    id2label, label2id = out
    expect(id2label == {0: "sadness", 1: "joy", 2: "love"},
           f"id2label should be {{0: 'sadness', 1: 'joy', 2: 'love'}}, got {describe(id2label)}")
    expect(label2id == {"sadness": 0, "joy": 1, "love": 2},
           f"label2id should be {{'sadness': 0, 'joy': 1, 'love': 2}}, got {describe(label2id)}")


def test_head_has_the_label_maps(sub):
    model = _load(sub, "distilbert-base", EMOTIONS)
    cfg = model.config
    expect(cfg.num_labels == 3, f"the model has num_labels={cfg.num_labels}, expected 3 for {EMOTIONS}")
    expect(cfg.id2label == {0: "sadness", 1: "joy", 2: "love"},
           f"model.config.id2label is {describe(cfg.id2label)}: pass id2label to from_pretrained")
    expect(cfg.label2id == {"sadness": 0, "joy": 1, "love": 2},
           f"model.config.label2id is {describe(cfg.label2id)}: pass label2id to from_pretrained")


def test_encoder_weights_come_from_the_checkpoint(sub):
    model = _load(sub, "distilbert-base", EMOTIONS)
    bad = _encoder_matches_checkpoint(model, "distilbert-base")
    expect(not bad, f"the encoder weight {bad} differs from the checkpoint: the pretrained weights were not "
                    "loaded (use from_pretrained, not from_config, and do not re-initialise the encoder)")


def test_head_is_new_and_sized_for_the_labels(sub):
    model = _load(sub, "distilbert-base", EMOTIONS)
    expect(type(model).__name__.endswith("ForSequenceClassification"),
           f"load_classifier returned a {type(model).__name__}; expected a *ForSequenceClassification model")
    batch = tiny.tokenizer()(["a quiet evening", "the bus never came"], padding=True, return_tensors="pt")
    model.eval()
    with torch.no_grad():
        logits = model(**batch).logits
    expect(tuple(logits.shape) == (2, 3), f"two texts gave logits of shape {tuple(logits.shape)}, expected (2, 3)")
    other = _load(sub, "distilbert-base", EMOTIONS, seed=1)
    heads = [(n, p) for n, p in model.named_parameters() if not n.startswith(model.base_model_prefix)]
    other_params = dict(other.named_parameters())
    expect(any(not torch.equal(p, other_params[n]) for n, p in heads),
           "the classification head is identical for two different seeds: it should be freshly initialised")


def test_works_for_bert_and_distilbert(sub):
    for kind in ("bert-base", "distilbert-base"):
        model = _load(sub, kind, ["negative", "positive"])
        expect(model.config.model_type == kind.split("-")[0],
               f"a {kind.split('-')[0]} checkpoint gave a {model.config.model_type} model")
        bad = _encoder_matches_checkpoint(model, kind)
        expect(not bad, f"with a {kind.split('-')[0]} checkpoint the encoder weight {bad} differs from the checkpoint")
        expect(model.config.num_labels == 2, f"with 2 labels the {kind} model has num_labels={model.config.num_labels}")
