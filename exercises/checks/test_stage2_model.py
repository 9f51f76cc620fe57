"""Public checks for stage 2 (model). The hidden graders check more than this."""

import stage2_model as stage


def test_label_maps():
    id2label, label2id = stage.label_maps(["negative", "positive"])
    assert id2label == {0: "negative", 1: "positive"}
    assert label2id == {"negative": 0, "positive": 1}


def test_classifier_has_one_output_per_label(tiny_base_path):
    model = stage.load_classifier(tiny_base_path, ["sadness", "joy", "love"])
    assert model.config.num_labels == 3
    assert model.config.id2label[2] == "love"
