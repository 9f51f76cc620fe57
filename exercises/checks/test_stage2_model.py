"""Public checks for stage 2 (model): the hidden grader's checks of the same names, on other inputs."""

import stage2_model as stage
import torch
from transformers import AutoModel, AutoTokenizer

EMOTIONS = ["sadness", "joy", "love"]


def test_label_maps_are_inverse():
    out = stage.label_maps(EMOTIONS)
    assert isinstance(out, tuple) and len(out) == 2, f"label_maps should return (id2label, label2id), got {out!r}"
    id2label, label2id = out
    assert id2label == {0: "sadness", 1: "joy", 2: "love"}, \
        f"id2label should be {{0: 'sadness', 1: 'joy', 2: 'love'}}, got {id2label!r}"
    assert label2id == {"sadness": 0, "joy": 1, "love": 2}, \
        f"label2id should be {{'sadness': 0, 'joy': 1, 'love': 2}}, got {label2id!r}"


def test_head_has_the_label_maps(tiny_base_path):
    cfg = stage.load_classifier(tiny_base_path, EMOTIONS).config
    assert cfg.num_labels == 3, f"the model has num_labels={cfg.num_labels}, expected 3 for {EMOTIONS}"
    assert cfg.id2label == {0: "sadness", 1: "joy", 2: "love"}, \
        f"model.config.id2label is {cfg.id2label!r}: pass id2label to from_pretrained"
    assert cfg.label2id == {"sadness": 0, "joy": 1, "love": 2}, \
        f"model.config.label2id is {cfg.label2id!r}: pass label2id to from_pretrained"


def test_encoder_weights_come_from_the_checkpoint(tiny_base_path):
    model = stage.load_classifier(tiny_base_path, EMOTIONS)
    base = AutoModel.from_pretrained(tiny_base_path)
    mine = getattr(model, base.base_model_prefix, model).state_dict()
    for name, tensor in base.state_dict().items():
        same = name in mine and mine[name].shape == tensor.shape and torch.equal(mine[name], tensor)
        assert same, (f"the encoder weight {name} differs from the checkpoint: the pretrained weights were not "
                      "loaded (use from_pretrained, not from_config, and do not re-initialise the encoder)")


def test_head_is_new_and_sized_for_the_labels(tiny_base_path):
    model = stage.load_classifier(tiny_base_path, EMOTIONS)
    name = type(model).__name__
    assert name.endswith("ForSequenceClassification"), \
        f"load_classifier returned a {name}; expected a *ForSequenceClassification model"
    batch = AutoTokenizer.from_pretrained(tiny_base_path)(["a quiet evening", "the bus never came"],
                                                          padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model.eval()(**batch).logits
    assert tuple(logits.shape) == (2, 3), f"two texts gave logits of shape {tuple(logits.shape)}, expected (2, 3)"
