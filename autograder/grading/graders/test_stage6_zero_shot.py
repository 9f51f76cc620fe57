"""Hidden grader, stage 6 (zero-shot). Points per check: course.toml [stages.checks].

NLI scores are checked against transformers' own ``pipeline("zero-shot-classification")`` on a
tiny NLI model, embeddings against sentence-transformers' recipe on the real all-MiniLM-L6-v2
(see ``zero_shot_refs``).

The judge never imports the submission: it prepares the sharpened NLI models here, saves them
(with their tokenizer) into the ``inputs`` folder the runner sees read-only, and passes recipes
that load them there, so both sides use identical weights. The references run in this process
on its own loaded copies. Texts, labels, templates, hidden states and predictions are drawn with
the hidden seed: a table of known answers cannot pass.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from autograder.course.models import packaged_encoder_path
from autograder.grading.gradelib import (
    GraderFailure,
    R,
    call,
    describe,
    expect,
    expect_raises,
    expect_type,
    function,
    hidden_rng,
)
from autograder.grading.graders.zero_shot_refs import (
    comparison,
    expect_comparison,
    expect_score_dicts,
    no_discordant,
    padded_hidden_states,
    pipeline_scores,
    predictions,
    prepare_nli,
    reference_embeddings,
)
from autograder.grading.hidden_inputs import TEMPLATES, label_names, sentences, template, words
from autograder.grading.judge import Handle, RemoteError, RunnerFailure

MODULE = "stage6_zero_shot"
TEMPLATE = "This example is {}."  # nli_zero_shot's default template
LONG_TEMPLATE = "In this text the writer feels {}."  # 8 tokens: half of the 16-token tokenizer's
PERMUTED = {0: "entailment", 1: "neutral", 2: "contradiction"}
TOL = 1e-5
_RNG = hidden_rng(MODULE)
LABELS = label_names(_RNG, _RNG.randint(3, 5))
TEXTS = [words(_RNG, 1, 2), *sentences(_RNG, _RNG.randint(2, 4), 5, 14)]
_RNG.shuffle(TEXTS)
# longer than the 16-token tokenizer used to check that only the text is truncated, never the hypothesis
LONG_TEXT = words(_RNG, 20, 30)
SENTENCES = sentences(_RNG, 3, 3, 12)  # embedded with batch_size=2
while len(SENTENCES[0].split()) == len(SENTENCES[1].split()):  # the first batch of 2 must be padded
    SENTENCES[1] = words(_RNG, 3, 12)


@pytest.fixture(scope="module")
def sub(stage_module):
    return stage_module(MODULE)


@pytest.fixture(scope="module")
def nli(tiny_paths, inputs):
    """The sharpened tiny NLI model, labels contradiction/neutral/entailment."""
    return prepare_nli(tiny_paths.path("nli"), inputs / "nli-sharp", "contradiction/neutral/entailment", TEXTS,
                       LABELS, TEMPLATE)


@pytest.fixture(scope="module")
def nli_permuted(tiny_paths, inputs):
    """A copy of the tiny NLI model whose labels are ordered entailment/neutral/contradiction."""
    return prepare_nli(tiny_paths.path("nli"), inputs / "nli-permuted", "entailment/neutral/contradiction", TEXTS,
                       LABELS, TEMPLATE, id2label=dict(PERMUTED), label2id={name: i for i, name in PERMUTED.items()})


@pytest.fixture(scope="module")
def encoder():
    """The real all-MiniLM-L6-v2 as a bare encoder (AutoModel), and its tokenizer (the judge's copy)."""
    path = packaged_encoder_path()
    return AutoModel.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


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


def _expect_score_dicts(got, want, texts, labels, fn: str, call_desc: str, fix: str, tol: float = TOL) -> None:
    expect_score_dicts(got, want, texts, labels, fn, call_desc, fix, tol)


def _still_training(model: Handle) -> str:
    """The hint for a model (built in training mode) that the submission's call left in training mode."""
    try:
        training = model.attr("training")
    except (RemoteError, RunnerFailure):
        return ""
    return (" The model is still in training mode, so dropout changes the scores on every call: "
            "call model.eval() first." if training is True else "")


def test_build_hypotheses(sub):
    rng = hidden_rng("test_build_hypotheses")
    labels = label_names(rng, rng.randint(2, 3))
    got = call(sub, "build_hypotheses", list(labels), call_desc=f"build_hypotheses({labels})")
    expect_type(got, list, "build_hypotheses")
    want = [TEMPLATE.format(label) for label in labels]
    expect(got == want, f"build_hypotheses({labels}) returned {describe(got)}, expected {want!r} "
                        f"(the default template is {TEMPLATE!r})")
    labels, other = label_names(rng, rng.randint(3, 5)), template(rng, exclude=(TEMPLATE,))
    got = call(sub, "build_hypotheses", list(labels), other, call_desc=f"build_hypotheses({labels}, {other!r})")
    want = [other.format(label) for label in labels]
    expect(got == want, f"build_hypotheses({labels}, {other!r}) returned {describe(got)}, "
                        f"expected {want!r}: use template.format(label), one per label, in order")


def test_nli_single_label_matches_pipeline(sub, runner, nli):
    desc = f"nli_zero_shot({len(TEXTS)} texts, {LABELS}, model, tokenizer)"
    model = _build(runner, R.model(nli.folder, mode="train"))
    got = call(sub, "nli_zero_shot", TEXTS, LABELS, model, R.tokenizer(nli.folder), call_desc=desc)
    training = _still_training(model)
    want = pipeline_scores(nli.model, nli.tokenizer, TEXTS, LABELS, TEMPLATE)
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
    long_template = LONG_TEMPLATE
    desc = (f"nli_zero_shot([a {len(LONG_TEXT.split())}-word text], {LABELS}, model, tokenizer with "
            f"model_max_length=16, template={long_template!r})")
    got = call(sub, "nli_zero_shot", [LONG_TEXT], LABELS, model, R.tokenizer(nli.folder, model_max_length=16),
               template=long_template, call_desc=desc)
    want = pipeline_scores(nli.model, short_tok, [LONG_TEXT], LABELS, long_template)
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
                   f"{fn}(model) returned {describe(got)} for a model whose labels are {prepared.order} "
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
    want = pipeline_scores(nli_permuted.model, nli_permuted.tokenizer, TEXTS, LABELS, TEMPLATE)
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
        want = pipeline_scores(prepared.model, prepared.tokenizer, TEXTS, LABELS, TEMPLATE, multi_label=True)
        _expect_score_dicts(got, want, TEXTS, LABELS, "nli_zero_shot", desc,
                            "These should equal pipeline('zero-shot-classification', ...)(..., "
                            "multi_label=True): for each label on its own, softmax over its "
                            "[contradiction, entailment] logits (found by name) and keep the entailment "
                            f"probability.{training}")


def test_mean_pool_ignores_padding(sub):
    hidden, mask, want = padded_hidden_states("test_mean_pool_ignores_padding")
    desc = f"mean_pool(last_hidden_state of shape {tuple(hidden.shape)}, attention_mask {mask.tolist()})"
    got = call(sub, "mean_pool", hidden.clone(), mask.clone(), call_desc=desc)
    expect_type(got, torch.Tensor, "mean_pool")
    shape = (hidden.shape[0], hidden.shape[2])
    expect(tuple(got.shape) == shape, f"called {desc}: got a tensor of shape {tuple(got.shape)}, "
                                      f"expected {shape}: one vector per sequence (average over dim=1)")
    if torch.allclose(got.float(), hidden.mean(dim=1), atol=1e-5):
        raise GraderFailure(f"called {desc}: got {describe(got.tolist())}, the plain mean over all tokens, padding "
                            f"included; expected {want.tolist()}: multiply by the mask and divide by the "
                            "number of real tokens")
    expect(torch.allclose(got.float(), want, atol=1e-5),
           f"called {desc}: got {describe(got.tolist())}, expected {want.tolist()} (the mean of the real tokens "
           "only, not normalised)")


def test_embed_matches_sentence_transformers(sub, runner, reference_embed):
    path = packaged_encoder_path()
    n = len(SENTENCES)
    desc = f"embed([{n} sentences], all-MiniLM-L6-v2 (AutoModel), its tokenizer, batch_size=2)"
    model = _build(runner, R.model(path, head="base", mode="train"))
    got = call(sub, "embed", list(SENTENCES), model, R.tokenizer(path), batch_size=2, call_desc=desc)
    training = _still_training(model)
    expect_type(got, torch.Tensor, "embed")
    expect(tuple(got.shape) == (n, 384), f"called {desc}: got a tensor of shape {tuple(got.shape)}, "
                                         f"expected ({n}, 384): one 384-dim vector per sentence, all batches "
                                         "concatenated")
    got = got.detach().float().cpu()
    norms = got.norm(dim=-1)
    expect(torch.allclose(norms, torch.ones(n), atol=1e-4),
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
    rng = hidden_rng("test_embedding_zero_shot_scores_are_cosine_similarities")
    labels, hypothesis = label_names(rng, rng.randint(2, 4)), rng.choice(TEMPLATES)
    desc = (f"embedding_zero_shot([{len(SENTENCES)} sentences], {labels}, all-MiniLM-L6-v2, tokenizer, "
            f"template={hypothesis!r})")
    got = call(sub, "embedding_zero_shot", list(SENTENCES), list(labels), R.model(path, head="base", mode="eval"),
               R.tokenizer(path), template=hypothesis, call_desc=desc)
    sims = reference_embed(SENTENCES) @ reference_embed([hypothesis.format(lab) for lab in labels]).T
    want = [dict(zip(labels, row, strict=True)) for row in sims.tolist()]
    _expect_score_dicts(got, want, SENTENCES, labels, "embedding_zero_shot", desc,
                        "Each score should be the cosine similarity of the text's embedding and the "
                        "embedding of template.format(label) (not of the bare label): a dot product of unit "
                        "vectors.", tol=1e-4)


def test_compare_predictions_counts_and_mcnemar(sub):
    rng = hidden_rng("test_compare_predictions_counts_and_mcnemar")
    y, a, b = predictions("test_compare_predictions_counts_and_mcnemar", label_names(rng, rng.randint(4, 6)))
    desc = f"compare_predictions({len(y)} true labels, pred_a, pred_b)"
    got = call(sub, "compare_predictions", list(y), list(a), list(b), call_desc=desc)
    expect_comparison(got, comparison(y, a, b), desc)
    # a and b differ only where both are wrong: no discordant pairs
    y2, a2, b2 = no_discordant("compare_predictions without discordant pairs")
    desc = f"compare_predictions(np.array({y2.tolist()}), {a2}, {b2})"
    got = call(sub, "compare_predictions", y2, list(a2), list(b2), call_desc=desc)
    expect_comparison(got, comparison(y2.tolist(), a2, b2), desc)
    fn = function(sub, "compare_predictions")
    for args, what in (((y, a, b[:-1]), "pred_b one shorter than y_true"),
                       (([], [], []), "three empty lists")):
        expect_raises(fn, ValueError, f"compare_predictions(...) with {what}", *args)
