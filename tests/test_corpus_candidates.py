"""scripts/corpus_candidates.py: the candidates are split the same way every run, per label, and keep
only the texts a blind second reading agrees on (issue 22)."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter

import pytest

from autograder.course.manifest import REPO_ROOT

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("corpus_candidates", REPO_ROOT / "scripts" / "corpus_candidates.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_split_is_stratified_complete_and_repeatable(script):
    rows = [{"text": f"text {label} {i}", "label": label} for label in script.LABELS for i in range(50)]
    parts = script.split(rows)
    assert parts == script.split(rows) and parts != script.split(rows, seed=7)
    assert sorted(r["text"] for p in parts.values() for r in p) == sorted(r["text"] for r in rows)
    for name, share in script.FRACTIONS.items():
        assert Counter(r["label"] for r in parts[name]) == {label: round(50 * share) for label in script.LABELS} \
            or name == "train"


def test_texts_the_second_reading_disputes_are_left_out(script, tmp_path, monkeypatch):
    folder = tmp_path / "growth"
    folder.mkdir()
    (folder / "joy.jsonl").write_text("".join(json.dumps({"text": f"t{i}", "label": "joy"}) + "\n" for i in range(3)))
    (folder / "second_reading.jsonl").write_text("".join(
        json.dumps({"id": i, "sha256": "x", "original": "joy", "second": second}) + "\n"
        for i, second in enumerate(["joy", "surprise", "joy"])))
    monkeypatch.setattr(script, "EMOTION", tmp_path)
    assert [r["text"] for r in script.load_set("growth")] == ["t0", "t2"]
    assert script.load_set("growth3") == []  # a set not written yet
