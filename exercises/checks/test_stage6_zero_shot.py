"""Public checks for stage 6 (zero-shot): the hidden grader's checks of the same names, on other inputs.

The NLI scores are compared with transformers' own zero-shot-classification pipeline on a tiny
random NLI model: any correct implementation agrees with it to 5 decimals.
"""

import math

import pytest
import stage6_zero_shot as stage
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

LABELS = ["joy", "anger", "fear"]
TEXTS = ["i got the job and cannot stop smiling", "he lied to me again", "ok"]


def _nli(path, permuted=False):
    kw = {}
    if permuted:
        order = {0: "entailment", 1: "neutral", 2: "contradiction"}
        kw = {"id2label": order, "label2id": {v: k for k, v in order.items()}}
    model = AutoModelForSequenceClassification.from_pretrained(path, **kw)
    with torch.no_grad():  # make the tiny random model react to its input, as the hidden grader does
        for name, param in model.named_parameters():
            if param.dim() == 2 and "embeddings" not in name and "classifier" not in name:
                param.mul_(10.0)
    return model.eval(), AutoTokenizer.from_pretrained(path)


def _pipeline_scores(model, tok, multi_label=False):
    pipe = pipeline("zero-shot-classification", model=model, tokenizer=tok)
    out = pipe(TEXTS, candidate_labels=LABELS, hypothesis_template="This example is {}.", multi_label=multi_label)
    return [dict(zip(r["labels"], r["scores"])) for r in out]


def _rounded(scores: dict) -> dict:
    """Scores as a message shows them: 4 decimals, so the fix words stay readable."""
    return {k: round(float(v), 4) for k, v in list(scores.items())[:8]}


def _same_scores(got, want, fix):
    assert isinstance(got, list) and len(got) == len(TEXTS), f"expected one dict per text, got {got!r}"
    for text, g, w in zip(TEXTS, got, want):
        assert isinstance(g, dict) and list(g) == LABELS, \
            f"the dict for {text!r} has the keys {list(g)}, expected the labels in their order {LABELS}"
        err = max(abs(float(g[k]) - w[k]) for k in LABELS)
        assert err <= 1e-5, (f"{fix} For the text {text!r} the scores are off by up to {err:.2g}: got "
                             f"{_rounded(g)}, expected {_rounded(w)}")


def test_build_hypotheses():
    got = stage.build_hypotheses(["joy", "anger"])
    want = ["This example is joy.", "This example is anger."]
    assert got == want, (f"build_hypotheses(['joy', 'anger']) returned {got!r}, expected {want!r} "
                         "(the default template is 'This example is {}.')")


def test_nli_single_label_matches_pipeline(tiny_nli_path):
    model, tok = _nli(tiny_nli_path)
    model.train()  # as a freshly loaded model might be: predictions need model.eval()
    got = stage.nli_zero_shot(TEXTS, LABELS, model, tok)
    _same_scores(got, _pipeline_scores(model.eval(), tok),
                 "These should equal pipeline('zero-shot-classification')'s scores: softmax of the entailment "
                 "logits across the labels (call model.eval() first).")


@pytest.mark.parametrize("permuted", [False, True], ids=["contradiction-first", "entailment-first"])
def test_nli_label_indices_found_by_name(tiny_nli_path, permuted):
    model, tok = _nli(tiny_nli_path, permuted)
    label2id = dict(model.config.label2id)
    for fn, name in (("entailment_index", "entailment"), ("contradiction_index", "contradiction")):
        got = getattr(stage, fn)(model)
        assert got == label2id[name], (f"{fn}(model) returned {got} for a model whose label2id is {label2id}; "
                                       f"expected {label2id[name]}: look the label up by name in "
                                       "model.config.label2id, never assume its index")
    _same_scores(stage.nli_zero_shot(TEXTS, LABELS, model, tok), _pipeline_scores(model, tok),
                 "Use entailment_index(model), not a fixed column.")


@pytest.mark.parametrize("permuted", [False, True], ids=["contradiction-first", "entailment-first"])
def test_nli_multi_label_matches_pipeline(tiny_nli_path, permuted):
    model, tok = _nli(tiny_nli_path, permuted)
    got = stage.nli_zero_shot(TEXTS, LABELS, model, tok, multi_label=True)
    _same_scores(got, _pipeline_scores(model, tok, multi_label=True),
                 "With multi_label=True: for each label on its own, softmax over its [contradiction, entailment] "
                 "logits (found by name) and keep the entailment probability.")


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]], [[4.0, 0.0], [8.0, 8.0], [9.0, 9.0]]])
    got = stage.mean_pool(hidden, torch.tensor([[1, 1, 0], [1, 0, 0]]))
    want = torch.tensor([[2.0, 3.0], [4.0, 0.0]])
    assert isinstance(got, torch.Tensor) and tuple(got.shape) == (2, 2), \
        f"expected one vector per sequence, shape (2, 2), got {got!r}"
    assert torch.allclose(got.float(), want), \
        f"multiply by the mask and divide by the number of real tokens (padding must not count): got " \
        f"{got.tolist()}, expected {want.tolist()}"


def test_compare_predictions_counts_and_mcnemar():
    y, a, b = ["a", "b", "c", "a", "b", "c"], ["a", "b", "a", "b", "b", "a"], ["a", "c", "c", "b", "a", "b"]
    out = stage.compare_predictions(y, a, b)
    want = {"b01": 2, "b10": 1, "accuracy_a": 0.5, "accuracy_b": 2 / 6, "agreement": 2 / 6,
            "mcnemar_p": min(1.0, 2 * sum(math.comb(3, i) for i in range(2)) / 8), "disagreements": [1, 2, 4, 5]}
    missing = [k for k in want if k not in out]
    assert not missing, f"the result has no {missing}; expected the keys {list(want)}"
    for key, value in want.items():
        got = [int(i) for i in out[key]] if key == "disagreements" else out[key]
        ok = got == value if key in ("b01", "b10", "disagreements") else abs(float(got) - value) < 1e-9
        assert ok, (f"{key} = {out[key]!r}, expected {value} (b01: a right and b wrong; b10: a wrong and b right; "
                    "agreement: the share of texts where a and b predict the same label, right or wrong)")
