"""Hidden grader, stage 6 (zero-shot). Points per check: course.toml [stages.checks].

NLI scores are checked against transformers' own ``pipeline("zero-shot-classification")`` on a
tiny NLI model, embeddings against sentence-transformers' recipe on the real all-MiniLM-L6-v2
(see reference_embeddings).

The judge never imports the submission: it prepares the sharpened NLI models here, saves them
(with their tokenizer) into the ``inputs`` folder the runner sees read-only, and passes recipes
that load them there, so both sides use identical weights. The references run in this process
on its own loaded copies.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer, pipeline

from autograder.course.models import packaged_encoder_path
from autograder.grading.gradelib import GraderFailure, R, call, describe, expect, expect_raises, expect_type, function
from autograder.grading.judge import Handle, RemoteError, RunnerFailure

MODULE = "stage6_zero_shot"
TEMPLATE = "This example is {}."
LABELS = ["joy", "anger", "fear", "surprise"]
TEXTS = [
    "i finally got the job and i cannot stop smiling",
    "he lied to me again and i am absolutely furious about it",
    "the house is dark and something is moving upstairs",
    "ok",
]
# longer than the 16-token tokenizer used to check that only the text is truncated, never the hypothesis
LONG_TEXT = ("we waited for hours in the rain, and when the doors finally opened "
             "the whole crowd cheered and sang")
SENTENCES = [  # the first two (one batch of 2) differ in length, so that batch is padded
    "Stocks fell sharply today.",
    "A man is playing a guitar on the street.",
    "i feel so lonely since my best friend moved away",
]
LONG_TEMPLATE = "In this text the writer feels {}."  # 8 tokens: half the 16 would cut it
PERMUTED = {0: "entailment", 1: "neutral", 2: "contradiction"}
TOL = 1e-5


@pytest.fixture(scope="module")
def sub(stage_module):
    return stage_module(MODULE)


def _sharpen(model, tokenizer):
    """Make a tiny random NLI model react to its input.

    Its random encoder maps every (text, hypothesis) pair to nearly the same vector, so a wrong
    axis or a wrong index would only show in the 4th decimal. Scaling the encoder's matrices makes
    the logits differ across hypotheses; centring the head's bias keeps every NLI class in play.
    """
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() == 2 and "embeddings" not in name and "classifier" not in name:
                param.mul_(10.0)
        pairs = [(t, TEMPLATE.format(label)) for t in TEXTS for label in LABELS]
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


def _prepare_nli(source: str, target, order: str, **config) -> Prepared:
    """Load the tiny NLI model (``config`` overrides its labels), sharpen it, save it with its tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = _sharpen(AutoModelForSequenceClassification.from_pretrained(source, **config), tokenizer)
    model.save_pretrained(str(target), safe_serialization=True)
    tokenizer.save_pretrained(str(target))
    return Prepared(target, order)


@pytest.fixture(scope="module")
def nli(tiny_paths, inputs):
    """The sharpened tiny NLI model, labels contradiction/neutral/entailment."""
    return _prepare_nli(tiny_paths.path("nli"), inputs / "nli-sharp", "contradiction/neutral/entailment")


@pytest.fixture(scope="module")
def nli_permuted(tiny_paths, inputs):
    """A copy of the tiny NLI model whose labels are ordered entailment/neutral/contradiction."""
    return _prepare_nli(tiny_paths.path("nli"), inputs / "nli-permuted", "entailment/neutral/contradiction",
                        id2label=dict(PERMUTED), label2id={name: i for i, name in PERMUTED.items()})


@pytest.fixture(scope="module")
def encoder():
    """The real all-MiniLM-L6-v2 as a bare encoder (AutoModel), and its tokenizer (the judge's copy)."""
    path = packaged_encoder_path()
    return AutoModel.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


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


@pytest.fixture(scope="module")
def reference_embed(encoder):
    model, tokenizer = encoder
    cache: dict = {}

    def encode(texts):
        key = tuple(texts)
        if key not in cache:
            cache[key] = reference_embeddings(model, tokenizer, key)
        return cache[key]
    return encode


def _build(runner, recipe) -> Handle:
    """An argument built in the submission's process (a model to call with, then to ask its mode)."""
    try:
        return runner.build(recipe)
    except (RemoteError, RunnerFailure) as exc:
        raise GraderFailure(f"the grader could not prepare {recipe!r} in the submission's process: {exc}") from None


@cache
def _pipeline(model, tokenizer):
    return pipeline("zero-shot-classification", model=model, tokenizer=tokenizer)


def _pipeline_scores(model, tokenizer, texts, labels, template, multi_label=False):
    """The reference: transformers' zero-shot-classification pipeline, one dict label -> score per text."""
    model.eval()
    results = _pipeline(model, tokenizer)(list(texts), candidate_labels=labels, hypothesis_template=template,
                                          multi_label=multi_label, batch_size=len(labels))
    return [dict(zip(r["labels"], r["scores"], strict=True)) for r in results]  # the pipeline sorts by score


def _fmt(scores: dict) -> str:
    return "{" + ", ".join(f"{k!r}: {float(v):.4f}" for k, v in scores.items()) + "}"


def _expect_score_dicts(got, want, texts, labels, fn: str, call_desc: str, fix: str,
                        tol: float = TOL) -> None:
    """``got`` (the submission's) equals ``want`` (one dict per text) label by label, to ``tol``."""
    expect_type(got, list, fn)
    expect(len(got) == len(texts), f"called {call_desc}: got {len(got)} results for {len(texts)} texts, "
                                   "expected one dict per text")
    for text, g, w in zip(texts, got, want, strict=True):
        expect_type(g, dict, f"each result of {fn}")
        expect(list(g) == list(labels), f"called {call_desc}: the dict for {text!r} has the keys {list(g)}, "
                                        f"expected the labels in their order {list(labels)}")
        expect(all(isinstance(v, float) for v in g.values()),
               f"called {call_desc}: the scores should be plain Python floats, got "
               f"{describe(list(g.values()))} (use tensor.tolist())")
        err = max(abs(g[k] - w[k]) for k in labels)
        expect(err <= tol, f"called {call_desc}: for the text {text!r} got {_fmt(g)}, expected {_fmt(w)} "
                           f"(off by up to {err:.2g}). {fix}")


def _still_training(model: Handle) -> str:
    """The hint for a model (built in training mode) that the submission's call left in training mode."""
    try:
        training = model.attr("training")
    except (RemoteError, RunnerFailure):
        return ""
    return (" The model is still in training mode, so dropout changes the scores on every call: "
            "call model.eval() first." if training is True else "")


def test_build_hypotheses(sub):
    got = call(sub, "build_hypotheses", ["joy", "anger"], call_desc="build_hypotheses(['joy', 'anger'])")
    expect_type(got, list, "build_hypotheses")
    want = ["This example is joy.", "This example is anger."]
    expect(got == want, f"build_hypotheses(['joy', 'anger']) returned {got!r}, expected {want!r} "
                        "(the default template is 'This example is {}.')")
    got = call(sub, "build_hypotheses", LABELS, "The mood here is {}!",
               call_desc=f"build_hypotheses({LABELS}, 'The mood here is {{}}!')")
    want = [f"The mood here is {label}!" for label in LABELS]
    expect(got == want, f"build_hypotheses({LABELS}, 'The mood here is {{}}!') returned {got!r}, "
                        f"expected {want!r}: use template.format(label), one per label, in order")


def test_nli_single_label_matches_pipeline(sub, runner, nli):
    desc = f"nli_zero_shot({len(TEXTS)} texts, {LABELS}, model, tokenizer)"
    model = _build(runner, R.model(nli.folder, mode="train"))
    got = call(sub, "nli_zero_shot", TEXTS, LABELS, model, R.tokenizer(nli.folder), call_desc=desc)
    training = _still_training(model)
    want = _pipeline_scores(nli.model, nli.tokenizer, TEXTS, LABELS, TEMPLATE)
    expect_type(got, list, "nli_zero_shot")
    sums = [sum(d.values()) for d in got if isinstance(d, dict) and d]
    expect(all(abs(s - 1) < 1e-4 for s in sums),
           f"called {desc}: single-label scores of one text should sum to 1 over the labels, got sums "
           f"{[round(float(s), 4) for s in sums]}: take the entailment logit of each hypothesis and softmax "
           f"those across the labels (not across the NLI classes).{training}")
    _expect_score_dicts(got, want, TEXTS, LABELS, "nli_zero_shot", desc,
                        "These should equal pipeline('zero-shot-classification')'s scores: softmax of the "
                        f"entailment logits across the labels.{training}")
    short_tok = AutoTokenizer.from_pretrained(nli.folder, model_max_length=16)
    template = LONG_TEMPLATE
    desc = (f"nli_zero_shot([a 20-word text], {LABELS}, model, tokenizer with model_max_length=16, "
            f"template={template!r})")
    got = call(sub, "nli_zero_shot", [LONG_TEXT], LABELS, model, R.tokenizer(nli.folder, model_max_length=16),
               template=template, call_desc=desc)
    want = _pipeline_scores(nli.model, short_tok, [LONG_TEXT], LABELS, template)
    _expect_score_dicts(got, want, [LONG_TEXT], LABELS, "nli_zero_shot", desc,
                        "A text too long for the tokenizer must be cut, but never the hypothesis: "
                        "tokenize the pairs with truncation='only_first'.")


def test_nli_label_indices_found_by_name(sub, runner, nli, nli_permuted, tiny_paths):
    for prepared in (nli, nli_permuted):
        label2id = dict(prepared.model.config.label2id)
        model = _build(runner, R.model(prepared.folder))
        for fn, name in (("entailment_index", "entailment"), ("contradiction_index", "contradiction")):
            got = call(sub, fn, model, call_desc=f"{fn}(model with labels {prepared.order})")
            simple = isinstance(got, (int, float, str, type(None)))
            shown = describe(got) if simple else f"a {got.type if isinstance(got, Handle) else type(got).__name__}"
            expect(isinstance(got, (int, np.integer)) and not isinstance(got, bool),
                   f"{fn} should return an int, it returned {shown}")
            expect(got == label2id[name],
                   f"{fn}(model) returned {got} for a model whose labels are {prepared.order} "
                   f"(label2id = {label2id}); expected {label2id[name]}: look the label up by name in "
                   "model.config.label2id, never assume its index")
    no_nli = R.config_only(tiny_paths.path("distilbert-classifier"))
    for fn in ("entailment_index", "contradiction_index"):
        expect_raises(function(sub, fn), ValueError, f"{fn}(model with labels negative/positive)", no_nli,
                      why="the model has no such label")
    desc = (f"nli_zero_shot({len(TEXTS)} texts, {LABELS}, "
            "model with labels entailment/neutral/contradiction, tokenizer)")
    got = call(sub, "nli_zero_shot", TEXTS, LABELS, R.model(nli_permuted.folder, mode="eval"),
               R.tokenizer(nli_permuted.folder), call_desc=desc)
    want = _pipeline_scores(nli_permuted.model, nli_permuted.tokenizer, TEXTS, LABELS, TEMPLATE)
    _expect_score_dicts(got, want, TEXTS, LABELS, "nli_zero_shot", desc,
                        "Here the entailment logit is column 0: use entailment_index(model), not a fixed 2.")


def test_nli_multi_label_matches_pipeline(sub, runner, nli, nli_permuted):
    for prepared in (nli, nli_permuted):
        desc = (f"nli_zero_shot({len(TEXTS)} texts, {LABELS}, model with labels {prepared.order}, tokenizer, "
                "multi_label=True)")
        model = _build(runner, R.model(prepared.folder, mode="train"))
        got = call(sub, "nli_zero_shot", TEXTS, LABELS, model, R.tokenizer(prepared.folder), multi_label=True,
                   call_desc=desc)
        training = _still_training(model)
        want = _pipeline_scores(prepared.model, prepared.tokenizer, TEXTS, LABELS, TEMPLATE, multi_label=True)
        _expect_score_dicts(got, want, TEXTS, LABELS, "nli_zero_shot", desc,
                            "These should equal pipeline('zero-shot-classification', ...)(..., "
                            "multi_label=True): for each label on its own, softmax over its "
                            "[contradiction, entailment] logits (found by name) and keep the entailment "
                            f"probability.{training}")


def test_mean_pool_ignores_padding(sub):
    hidden = torch.tensor([
        [[1.0, 2.0], [3.0, 4.0], [100.0, -100.0]],
        [[5.0, -1.0], [50.0, 50.0], [70.0, 70.0]],
        [[0.0, 0.0], [3.0, 3.0], [6.0, 6.0]],
    ])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1]])  # int64, as the tokenizer returns it
    desc = "mean_pool(last_hidden_state of shape (3, 3, 2), attention_mask [[1, 1, 0], [1, 0, 0], [1, 1, 1]])"
    got = call(sub, "mean_pool", hidden, mask, call_desc=desc)
    expect_type(got, torch.Tensor, "mean_pool")
    want = torch.tensor([[2.0, 3.0], [5.0, -1.0], [3.0, 3.0]])
    expect(tuple(got.shape) == (3, 2), f"called {desc}: got a tensor of shape {tuple(got.shape)}, "
                                       "expected (3, 2): one vector per sequence (average over dim=1)")
    if torch.allclose(got.float(), hidden.mean(dim=1), atol=1e-5):
        raise GraderFailure(f"called {desc}: got {got.tolist()}, the plain mean over all tokens, padding "
                            f"included; expected {want.tolist()}: multiply by the mask and divide by the "
                            "number of real tokens")
    expect(torch.allclose(got.float(), want, atol=1e-5),
           f"called {desc}: got {got.tolist()}, expected {want.tolist()} (the mean of the real tokens only, "
           "not normalised)")


def test_embed_matches_sentence_transformers(sub, runner, reference_embed):
    path = packaged_encoder_path()
    desc = "embed([3 sentences], all-MiniLM-L6-v2 (AutoModel), its tokenizer, batch_size=2)"
    model = _build(runner, R.model(path, head="base", mode="train"))
    got = call(sub, "embed", SENTENCES, model, R.tokenizer(path), batch_size=2, call_desc=desc)
    training = _still_training(model)
    expect_type(got, torch.Tensor, "embed")
    expect(tuple(got.shape) == (3, 384), f"called {desc}: got a tensor of shape {tuple(got.shape)}, "
                                         "expected (3, 384): one 384-dim vector per sentence, all batches "
                                         "concatenated")
    got = got.detach().float().cpu()
    norms = got.norm(dim=-1)
    expect(torch.allclose(norms, torch.ones(3), atol=1e-4),
           f"called {desc}: the vectors have lengths {[round(float(n), 4) for n in norms]}, expected 1: "
           f"L2-normalise each mean-pooled vector.{training}")
    want = reference_embed(SENTENCES)
    err = float((got - want).abs().max())
    expect(err <= 1e-4, f"called {desc}: the embeddings differ from SentenceTransformer('all-MiniLM-L6-v2')"
                        f".encode(..., normalize_embeddings=True) by up to {err:.3g}: mean-pool the "
                        "last_hidden_state with the attention mask (padding excluded), then L2-normalise."
                        f"{training}")


def test_embedding_zero_shot_scores_are_cosine_similarities(sub, reference_embed):
    path = packaged_encoder_path()
    labels, template = ["music", "sadness", "finance"], "This text is about {}."
    desc = f"embedding_zero_shot([3 sentences], {labels}, all-MiniLM-L6-v2, tokenizer, template={template!r})"
    got = call(sub, "embedding_zero_shot", SENTENCES, labels, R.model(path, head="base", mode="eval"),
               R.tokenizer(path), template=template, call_desc=desc)
    sims = reference_embed(SENTENCES) @ reference_embed([template.format(lab) for lab in labels]).T
    want = [dict(zip(labels, row, strict=True)) for row in sims.tolist()]
    _expect_score_dicts(got, want, SENTENCES, labels, "embedding_zero_shot", desc,
                        "Each score should be the cosine similarity of the text's embedding and the "
                        "embedding of template.format(label) (not of the bare label): a dot product of unit "
                        "vectors.", tol=1e-4)


def _mcnemar_exact(b01: int, b10: int) -> float:
    n, k = b01 + b10, min(b01, b10)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)


def _expect_comparison(got, want: dict, desc: str) -> None:
    expect_type(got, dict, "compare_predictions")
    missing = [k for k in want if k not in got]
    expect(not missing, f"called {desc}: the result has no {missing}; expected the keys {list(want)}")
    for key in ("b01", "b10"):
        expect(got[key] == want[key], f"called {desc}: {key} = {got[key]!r}, expected {want[key]} "
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


def test_compare_predictions_counts_and_mcnemar(sub):
    y = ["joy", "anger", "fear", "joy", "sadness", "fear", "joy", "anger", "love", "joy"]
    a = ["joy", "anger", "fear", "joy", "joy", "anger", "joy", "fear", "love", "joy"]
    b = ["joy", "fear", "sadness", "love", "joy", "surprise", "joy", "anger", "fear", "joy"]
    desc = "compare_predictions(10 true labels, pred_a, pred_b)"
    got = call(sub, "compare_predictions", y, a, b, call_desc=desc)
    _expect_comparison(got, {"accuracy_a": 0.7, "accuracy_b": 0.4, "agreement": 0.4, "b01": 4, "b10": 1,
                             "mcnemar_p": _mcnemar_exact(4, 1), "disagreements": [1, 2, 3, 5, 7, 8]}, desc)
    # a and b differ at 1, 2, 3, but both are wrong there: no discordant pairs
    y2, a2, b2 = np.array([0, 1, 2, 2]), [0, 2, 1, 0], [0, 0, 0, 1]
    desc = "compare_predictions(np.array([0, 1, 2, 2]), [0, 2, 1, 0], [0, 0, 0, 1])"
    got = call(sub, "compare_predictions", y2, a2, b2, call_desc=desc)
    _expect_comparison(got, {"accuracy_a": 0.25, "accuracy_b": 0.25, "agreement": 0.25, "b01": 0, "b10": 0,
                             "mcnemar_p": 1.0, "disagreements": [1, 2, 3]}, desc)
    fn = function(sub, "compare_predictions")
    for args, what in (((y, a, b[:-1]), "pred_b one shorter than y_true"),
                       (([], [], []), "three empty lists")):
        expect_raises(fn, ValueError, f"compare_predictions(...) with {what}", *args)
