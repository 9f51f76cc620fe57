"""Stage 6: zero-shot classification, with an NLI model and with sentence embeddings.

Zero-shot means no training at all: the label names themselves become part of the input.

NLI zero-shot. A natural language inference (NLI) model reads a *premise* and a *hypothesis*
and says whether the premise contradicts it, is neutral, or entails it. Turn every label into
a hypothesis ("This example is joy.") and ask, for each one, how strongly the text entails it.
That is exactly what ``transformers.pipeline("zero-shot-classification")`` does; here you write
it yourself, so you know what its scores mean.

Embedding zero-shot. A sentence encoder (all-MiniLM-L6-v2) maps any text to a unit vector.
Embed the text and one prompt per label; the closest prompt (cosine similarity) wins.

Finally, compare two classifiers (say zero-shot vs your fine-tuned stage-5 model) on the same
texts: their accuracies, how often they agree, and McNemar's exact test on the texts where
exactly one of them is right.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import binomtest

TEMPLATE = "This example is {}."


def build_hypotheses(labels: list[str], template: str = TEMPLATE) -> list[str]:
    """One hypothesis per label, in label order: ``template.format(label)``.

    ``build_hypotheses(["joy", "anger"])`` is ``["This example is joy.", "This example is anger."]``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("not written yet: see the docstring, then run `autograder check`")


def entailment_index(model) -> int:
    """The index of the *entailment* logit of an NLI model.

    NLI checkpoints do not agree on the order of their labels (contradiction/neutral/entailment
    is common, entailment/neutral/contradiction exists too), so never assume it is 2: look in
    ``model.config.label2id`` for the label whose name starts with ``"entail"`` (ignore case).
    Raise ``ValueError`` if there is none.
    """
    # YOUR CODE HERE
    raise NotImplementedError("not written yet: see the docstring, then run `autograder check`")


def contradiction_index(model) -> int:
    """The index of the *contradiction* logit: the label whose name starts with ``"contra"``
    (ignore case) in ``model.config.label2id``. Raise ``ValueError`` if there is none.
    """
    # YOUR CODE HERE
    raise NotImplementedError("not written yet: see the docstring, then run `autograder check`")


def nli_zero_shot(texts: list[str], labels: list[str], model, tokenizer, template: str = TEMPLATE,
                  multi_label: bool = False) -> list[dict[str, float]]:
    """Score every label for every text with an NLI model (a ``...ForSequenceClassification``).

    For each text:

    1. tokenize the pairs (text, hypothesis), one per label, premise first:
       ``tokenizer([text] * n, hypotheses, truncation="only_first", padding=True, return_tensors="pt")``
       (``only_first`` shortens the text, never the hypothesis);
    2. run the model in eval mode (``model.eval()``) under ``torch.no_grad()``; its ``logits`` have
       shape ``(n_labels, n_nli_classes)``, one row per hypothesis;
    3. single-label (the labels compete, the scores sum to 1): take the entailment column and
       softmax it *across the labels*;
       multi-label (each label on its own): for each row, softmax over just the two logits
       [contradiction, entailment] and keep the entailment probability.

    Return one dict per text, ``{label: score}`` in label order, with plain Python floats
    (``tensor.tolist()``).
    """
    # YOUR CODE HERE
    raise NotImplementedError("not written yet: see the docstring, then run `autograder check`")


def mean_pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token vectors of each sequence, counting real tokens only.

    ``last_hidden_state`` is ``(batch, seq_len, hidden)``, ``attention_mask`` is ``(batch, seq_len)``
    with 1 for real tokens and 0 for padding. A plain ``.mean(dim=1)`` would average the padding
    in too, so a sentence's vector would depend on the longest sentence of its batch. Instead:
    multiply by the mask (``attention_mask.unsqueeze(-1)``, as floats), sum over the tokens, and
    divide by the number of real tokens. Returns ``(batch, hidden)``; do not normalise here.
    """
    # YOUR CODE HERE
    raise NotImplementedError("not written yet: see the docstring, then run `autograder check`")


def embed(texts: list[str], model, tokenizer, batch_size: int = 32) -> torch.Tensor:
    """Sentence embeddings, as sentence-transformers' all-MiniLM-L6-v2 makes them.

    ``model`` and ``tokenizer`` arrive loaded: the bare encoder (``AutoModel``, no classification head)
    and its tokenizer, as the emotion notebook passes them; do not load anything here. For each batch
    of ``batch_size`` texts: tokenize with ``padding=True, truncation=True,
    max_length=256`` (the length sentence-transformers uses for this model), run the model (eval
    mode, ``torch.no_grad()``), :func:`mean_pool` its ``last_hidden_state`` with
    the attention mask, then L2-normalise each vector (``torch.nn.functional.normalize``, dim=-1).
    Returns a ``(len(texts), hidden)`` tensor of unit vectors.
    """
    # YOUR CODE HERE
    raise NotImplementedError("not written yet: see the docstring, then run `autograder check`")


def embedding_zero_shot(texts: list[str], labels: list[str], model, tokenizer,
                        template: str = TEMPLATE) -> list[dict[str, float]]:
    """Score every label for every text by cosine similarity of embeddings.

    Embed the texts and the label prompts (``template.format(label)``) with :func:`embed`. The
    embeddings are unit vectors, so the cosine similarity is a dot product: ``texts_emb @ prompts_emb.T``.
    Return one dict per text, ``{label: similarity}`` in label order, with plain Python floats.
    """
    # YOUR CODE HERE
    raise NotImplementedError("not written yet: see the docstring, then run `autograder check`")


def compare_predictions(y_true, pred_a, pred_b) -> dict:
    """Compare two classifiers, a and b, on the same texts.

    Returns a dict with:

    - ``accuracy_a``, ``accuracy_b``: the share of texts each one gets right (floats);
    - ``agreement``: the share of texts where a and b predict the same label, right or wrong;
    - ``b01``: how many texts a gets right and b gets wrong; ``b10``: a wrong and b right (ints);
    - ``mcnemar_p``: McNemar's exact test. Only the discordant texts (b01 + b10 of them) say
      anything about which classifier is better; if both are equally good, each discordant text
      is a fair coin flip. So the p-value is a two-sided binomial test:
      ``scipy.stats.binomtest(min(b01, b10), b01 + b10, 0.5).pvalue``, and 1.0 when there are no
      discordant texts;
    - ``disagreements``: the indices where a and b predict different labels (a list of ints).

    Raise ``ValueError`` if the three sequences differ in length or are empty.
    """
    # YOUR CODE HERE
    raise NotImplementedError("not written yet: see the docstring, then run `autograder check`")
