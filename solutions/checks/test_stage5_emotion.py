"""Public checks for stage 5 (emotion capstone). The hidden graders check more than this."""

import stage5_emotion as stage
import torch
import torch.nn.functional as F
from datasets import ClassLabel, Dataset, Features

NAMES = ["sadness", "joy", "love", "anger", "fear", "surprise"]


def test_label_counts_include_every_label():
    features = Features({"label": ClassLabel(names=NAMES)})
    ds = Dataset.from_dict({"label": [1, 1, 0]}, features=features)
    out = stage.label_counts(ds)
    assert list(out) == NAMES, f"one key per label name, in label order: got {list(out)}"
    assert out["joy"] == 2 and out["sadness"] == 1 and out["surprise"] == 0, f"got {out}"


def test_rare_classes_weigh_more():
    w = stage.class_weights([90, 10])
    assert isinstance(w, torch.Tensor) and w.dtype == torch.float32, f"expected a float32 tensor, got {w!r}"
    assert w[1] > 1 > w[0], f"the rare class should weigh more than 1, the frequent less: got {w.tolist()}"


def test_equal_weights_give_the_plain_loss():
    logits, labels = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]]), torch.tensor([0, 2])
    out = stage.weighted_cross_entropy(logits, labels, torch.ones(3))
    want = F.cross_entropy(logits, labels)
    assert torch.isclose(out, want), f"with weights of 1 the loss is the plain one ({want:.4f}), got {out}"


def test_most_confused_skips_correct_predictions():
    out = stage.most_confused([0, 0, 1, 2], [0, 1, 1, 2], ["a", "b", "c"])
    assert [tuple(x) for x in out] == [("a", "b", 1)], f"the only mistake is a predicted as b, got {out}"
