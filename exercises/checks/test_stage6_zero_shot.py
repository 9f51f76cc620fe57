"""Public checks for stage 6 (zero-shot). The hidden graders check more than this."""

import stage6_zero_shot as stage
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

LABELS = ["joy", "anger", "fear"]


def test_hypotheses():
    got = stage.build_hypotheses(["joy", "anger"])
    assert got == ["This example is joy.", "This example is anger."], f"got {got}"


def test_nli_scores(tiny_nli_path):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_nli_path)
    tok = AutoTokenizer.from_pretrained(tiny_nli_path)
    assert stage.entailment_index(model) == 2, "the tiny model's labels are contradiction/neutral/entailment"
    out = stage.nli_zero_shot(["i am so happy", "leave me alone"], LABELS, model, tok)
    assert len(out) == 2 and all(list(d) == LABELS for d in out), f"one dict per text, labels in order: {out}"
    for d in out:
        assert abs(sum(d.values()) - 1) < 1e-5, f"single-label scores should sum to 1 over the labels: {d}"
    multi = stage.nli_zero_shot(["i am so happy"], LABELS, model, tok, multi_label=True)[0]
    assert all(0 < v < 1 for v in multi.values()), f"multi-label scores are probabilities: {multi}"


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    got = stage.mean_pool(hidden, torch.tensor([[1, 1, 0]]))
    assert torch.allclose(got, torch.tensor([[2.0, 3.0]])), f"the padding position must not count: got {got}"


def test_compare_predictions():
    out = stage.compare_predictions(["a", "b", "c", "a"], ["a", "b", "a", "b"], ["a", "c", "c", "b"])
    assert (out["b01"], out["b10"]) == (1, 1), f"a right/b wrong once, a wrong/b right once: {out}"
    assert out["agreement"] == 0.5 and out["disagreements"] == [1, 2], out
    assert abs(out["mcnemar_p"] - 1.0) < 1e-12, out
