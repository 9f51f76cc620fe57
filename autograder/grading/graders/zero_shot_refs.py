"""The stage-6 (zero-shot) grader's references and drawn inputs, kept apart so that the grader
reads as its checks.

References: transformers' own ``pipeline("zero-shot-classification")`` on a sharpened tiny NLI
model, sentence-transformers' embedding recipe, the exact McNemar test. Drawn inputs (hidden
seed, see ``autograder.grading.hidden_inputs``): hidden states and masks for mean pooling and the
label lists for comparing predictions, each drawn until it shows the mistake its check is for.
This module lives with the graders: it is neither released nor mounted in the jail.
"""

from __future__ import annotations

import math
import random
from functools import cache

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

from autograder.grading.gradelib import describe, expect, expect_type, hidden_rng


def sharpen(model, tokenizer, texts: list[str], labels: list[str], template: str):
    """Make a tiny random NLI model react to its input.

    Its random encoder maps every (text, hypothesis) pair to nearly the same vector, so a wrong
    axis or a wrong index would only show in the 4th decimal. Scaling the encoder's matrices makes
    the logits differ across hypotheses; centring the head's bias keeps every NLI class in play.
    """
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() == 2 and "embeddings" not in name and "classifier" not in name:
                param.mul_(10.0)
        pairs = [(t, template.format(label)) for t in texts for label in labels]
        enc = tokenizer([p for p, _ in pairs], [h for _, h in pairs], padding=True, truncation="only_first",
                        return_tensors="pt")
        model.eval()
        model.classifier.bias.sub_(model(**enc).logits.mean(0))
    return model.eval()


class Prepared:
    """A model the judge prepared: its folder under ``inputs`` (read-only in the runner) and the
    judge's own copy (model, tokenizer) loaded from that folder, for the references."""

    def __init__(self, folder, order: str):
        self.folder, self.order = str(folder), order
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder)
        self.model = AutoModelForSequenceClassification.from_pretrained(self.folder).eval()


def prepare_nli(source: str, target, order: str, texts: list[str], labels: list[str], template: str,
                **config) -> Prepared:
    """Load the tiny NLI model (``config`` overrides its labels), sharpen it, save it with its tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = sharpen(AutoModelForSequenceClassification.from_pretrained(source, **config), tokenizer, texts, labels,
                    template)
    model.save_pretrained(str(target), safe_serialization=True)
    tokenizer.save_pretrained(str(target))
    return Prepared(target, order)


def reference_embeddings(model, tokenizer, texts) -> torch.Tensor:
    """What ``SentenceTransformer(all-MiniLM-L6-v2).encode(texts, normalize_embeddings=True)`` returns.

    The same recipe as its modules.json (Transformer, max_seq_length 256; Pooling, mean; Normalize),
    written out because importing sentence-transformers alone costs seconds of the stage's grading
    time; tests/test_grader_references.py checks that the two agree.
    """
    enc = tokenizer(list(texts), padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = model.eval()(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)


@cache
def _pipeline(model, tokenizer):
    return pipeline("zero-shot-classification", model=model, tokenizer=tokenizer)


def pipeline_scores(model, tokenizer, texts, labels, template, multi_label=False) -> list[dict]:
    """The reference: transformers' zero-shot-classification pipeline, one dict label -> score per text."""
    model.eval()
    results = _pipeline(model, tokenizer)(list(texts), candidate_labels=labels, hypothesis_template=template,
                                          multi_label=multi_label, batch_size=len(labels))
    return [dict(zip(r["labels"], r["scores"], strict=True)) for r in results]  # the pipeline sorts by score


def _fmt(scores: dict) -> str:
    return "{" + ", ".join(f"{describe(k)}: {float(v):.4f}" for k, v in list(scores.items())[:8]) + "}"


def expect_score_dicts(got, want, texts, labels, fn: str, call_desc: str, fix: str, tol: float) -> None:
    """``got`` (the submission's) equals ``want`` (one dict per text) label by label, to ``tol``."""
    expect_type(got, list, fn)
    expect(len(got) == len(texts), f"called {call_desc}: got {len(got)} results for {len(texts)} texts, "
                                   "expected one dict per text")
    for text, g, w in zip(texts, got, want, strict=True):
        expect_type(g, dict, f"each result of {fn}")
        expect(list(g) == list(labels), f"called {call_desc}: the dict for {text!r} has the keys "
                                        f"{describe(list(g))}, expected the labels in their order {list(labels)}")
        expect(all(isinstance(v, float) for v in g.values()),
               f"called {call_desc}: the scores should be plain Python floats, got "
               f"{describe(list(g.values()))} (use tensor.tolist())")
        err = max(abs(g[k] - w[k]) for k in labels)
        # The fix before the numbers: a hidden check's message is capped, and drawn labels make the numbers long.
        expect(err <= tol, f"called {call_desc}: for the text {text!r} the scores are off by up to {err:.2g}. "
                           f"{fix} Got {_fmt(g)}, expected {_fmt(w)}.")


def padded_hidden_states(check: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(last_hidden_state, attention_mask, the masked mean): 3 or 4 sequences of 3 to 5 positions,
    at least one padded and one full; padding holds large values, so including it shows."""
    rng = hidden_rng(check)
    batch, length, dim = rng.randint(3, 4), rng.randint(3, 5), rng.randint(2, 4)
    lengths = [rng.randint(1, length - 1), length] + [rng.randint(1, length) for _ in range(batch - 2)]
    rng.shuffle(lengths)
    hidden = torch.tensor([[[float(rng.randint(-9, 9)) if t < n else rng.choice([-1.0, 1.0]) * rng.randint(50, 99)
                             for _ in range(dim)] for t in range(length)] for n in lengths])
    mask = torch.tensor([[1 if t < n else 0 for t in range(length)] for n in lengths])  # int64, as a tokenizer's
    want = torch.stack([hidden[i, :n].mean(0) for i, n in enumerate(lengths)])
    return hidden, mask, want


def mcnemar_exact(b01: int, b10: int) -> float:
    n, k = b01 + b10, min(b01, b10)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)


def _one_sided(b01: int, b10: int) -> float:
    n = b01 + b10
    return sum(math.comb(n, i) for i in range(b01 + 1)) / 2 ** n if n else 1.0


def comparison(y: list, a: list, b: list) -> dict:
    """The judge's reference for ``compare_predictions``."""
    right_a = [p == t for p, t in zip(a, y, strict=True)]
    right_b = [p == t for p, t in zip(b, y, strict=True)]
    b01 = sum(ra and not rb for ra, rb in zip(right_a, right_b, strict=True))
    b10 = sum(rb and not ra for ra, rb in zip(right_a, right_b, strict=True))
    n = len(y)
    return {"accuracy_a": sum(right_a) / n, "accuracy_b": sum(right_b) / n,
            "agreement": sum(p == q for p, q in zip(a, b, strict=True)) / n, "b01": b01, "b10": b10,
            "mcnemar_p": mcnemar_exact(b01, b10), "disagreements": [i for i in range(n) if a[i] != b[i]]}


def _other(rng: random.Random, names: list, not_this) -> str:
    return rng.choice([n for n in names if n != not_this])


def predictions(check: str, names: list[str]) -> tuple[list, list, list]:
    """(y, a, b): 10 to 14 texts where a and b also differ where both are wrong (so agreement is not
    'both right or both wrong'), and the one-sided McNemar p differs from the two-sided one."""
    rng = hidden_rng(check)
    while True:
        y = [rng.choice(names) for _ in range(rng.randint(10, 14))]
        a = [t if rng.random() < 0.7 else _other(rng, names, t) for t in y]
        b = [t if rng.random() < 0.45 else _other(rng, names, t) for t in y]
        ref = comparison(y, a, b)
        both_wrong_apart = any(p != t and q != t and p != q for t, p, q in zip(y, a, b, strict=True))
        if both_wrong_apart and abs(_one_sided(ref["b01"], ref["b10"]) - ref["mcnemar_p"]) > 1e-6:
            return y, a, b


def no_discordant(check: str) -> tuple[np.ndarray, list[int], list[int]]:
    """(y as an array, a, b): a and b differ only where both are wrong: no discordant pairs."""
    rng = hidden_rng(check)
    k, n = rng.randint(3, 4), rng.randint(4, 7)
    y = [rng.randrange(k) for _ in range(n)]
    a, b = list(y), list(y)
    for i in rng.sample(range(n), rng.randint(2, n - 1)):
        a[i], b[i] = rng.sample([c for c in range(k) if c != y[i]], 2)
    return np.array(y), a, b


def expect_comparison(got, want: dict, desc: str) -> None:
    expect_type(got, dict, "compare_predictions")
    missing = [k for k in want if k not in got]
    expect(not missing, f"called {desc}: the result has no {missing}; expected the keys {list(want)}")
    for key in ("b01", "b10"):
        expect(got[key] == want[key], f"called {desc}: {key} = {describe(got[key])}, expected {want[key]} "
                                      "(b01: a right and b wrong; b10: a wrong and b right)")
    for key in ("accuracy_a", "accuracy_b", "agreement", "mcnemar_p"):
        ok = isinstance(got[key], (float, int, np.floating)) and abs(float(got[key]) - want[key]) < 1e-9
        expect(ok, f"called {desc}: {key} = {describe(got[key])}, expected {want[key]:.6g}"
                   + (" (the exact two-sided binomial test on the b01 + b10 discordant texts; 1.0 when "
                      "there are none)" if key == "mcnemar_p" else "")
                   + (" (the share of texts where a and b predict the same label, right or wrong)"
                      if key == "agreement" else ""))
    dis = got["disagreements"]
    expect(isinstance(dis, list) and [int(i) for i in dis] == want["disagreements"],
           f"called {desc}: disagreements = {describe(dis)}, expected the list {want['disagreements']} "
           "(indices where a and b predict different labels)")
