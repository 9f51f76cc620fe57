"""The emotion corpus meets its criteria, splits cleanly, and the checks can actually fail."""

from __future__ import annotations

import dataclasses
import itertools
import math
import random

import pytest

from autograder.course.corpus import (
    EMOTION_WORDS,
    corpus_report,
    criteria_failures,
    scan_duplicates,
    trigrams,
)
from autograder.course.data import SPLITS, load_splits
from autograder.course.sources import verify_rebuild

EMOTION_LABELS = ["sadness", "joy", "love", "anger", "fear", "surprise"]


@pytest.fixture(scope="module")
def report():
    return corpus_report("emotion")


@pytest.fixture(scope="module")
def emotion():
    return load_splits("emotion", SPLITS)


def test_committed_corpus_meets_every_criterion(report):
    assert criteria_failures(report) == []


def test_report_counts_every_text_in_course_label_order(report):
    assert report.labels == EMOTION_LABELS
    assert sum(report.counts.values()) == report.n_texts == sum(report.split_sizes.values())
    assert math.isclose(sum(report.shares.values()), 1.0)


def test_emotion_words_cover_the_obvious_forms():
    for word in ("sad", "sadness", "happy", "happiness", "joy", "joyful", "love", "loved", "angry", "anger",
                 "afraid", "scared", "fear", "surprised", "surprise"):
        assert word in EMOTION_WORDS


def test_split_loads_offline_with_the_course_labels(emotion):
    assert set(emotion) == set(SPLITS)
    for s in SPLITS:
        assert emotion[s].features["label"].names == EMOTION_LABELS


def test_no_text_is_shared_between_splits(emotion):
    texts = {s: set(emotion[s]["text"]) for s in SPLITS}
    for a, b in itertools.combinations(SPLITS, 2):
        assert not texts[a] & texts[b], f"{a} and {b} share texts"


def test_committed_splits_equal_a_rebuild_from_the_corpus():
    verify_rebuild("emotion")


def test_bag_of_words_baseline_is_computed(report):
    for value in (report.baseline_accuracy, report.baseline_macro_f1):
        assert isinstance(value, float) and math.isfinite(value)
        assert 0.0 < value < 1.0


# ----------------------------------------------------------------------------- the checks can fail
PLANTED = [
    "the bus driver waited for me even though i was a full minute late this morning",
    "the bus driver waited for me even though i was a full minute late this afternoon",  # near
    "my sister finally called back after three weeks and we talked until midnight",
    "My sister finally called back after three weeks, and we talked until midnight!",  # exact
    "the printer jammed again right before the meeting and nobody else knows how to fix it",
]


def test_scan_flags_a_planted_near_duplicate_and_exact_duplicate():
    scan = scan_duplicates(PLANTED)
    assert scan.exact == [(2, 3)]
    assert (0, 1) in [(i, j) for i, j, _ in scan.near]
    assert scan.max_jaccard == 1.0
    near = dict(((i, j), jac) for i, j, jac in scan.near)
    assert 0.6 <= near[(0, 1)] < 1.0


def test_criteria_fail_on_a_corpus_with_planted_duplicates(report):
    texts = report.texts + PLANTED[:4]
    bad = dataclasses.replace(report, texts=texts, duplicates=scan_duplicates(texts))
    failures = criteria_failures(bad)
    assert any(f.startswith("exact duplicate") for f in failures)
    assert any(f.startswith("near-duplicate") for f in failures)


def test_criteria_fail_on_shares_lengths_and_sizes(report):
    counts = dict(report.counts, surprise=10)
    sizes = {"train": 500, "validation": 100, "test": 50}
    bad = dataclasses.replace(report, counts=counts, length_max=55, length_median=25.0,
                              no_emotion_word_share=0.3, split_sizes=sizes)
    text = "\n".join(criteria_failures(bad))
    for needle in ("'surprise'", "surprise texts", "emotion words", "median", "train split", "test split"):
        assert needle in text


def test_inverted_index_scan_equals_brute_force(report):
    """Skipping pairs that share no 3-gram must not change the maximum or the flagged pairs."""
    texts = random.Random(0).sample(report.texts, 300) + PLANTED
    scan = scan_duplicates(texts)
    grams = [trigrams(t) for t in texts]
    brute = {
        (i, j): len(grams[i] & grams[j]) / len(grams[i] | grams[j])
        for i, j in itertools.combinations(range(len(texts)), 2)
    }
    assert scan.max_jaccard == max(brute.values())
    assert sorted((i, j) for i, j, _ in scan.near) == sorted(p for p, v in brute.items() if v >= 0.6)
