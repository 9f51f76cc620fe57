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
    texts = [f"text number {i}" for i in range(3)]
    (folder / "joy.jsonl").write_text("".join(json.dumps({"text": t, "label": "joy"}) + "\n" for t in texts))
    record = folder / "second_reading.jsonl"
    record.write_text("".join(
        json.dumps({"id": i, "sha256": script.blind_relabel.text_sha(t), "original": "joy", "second": second}) + "\n"
        for i, (t, second) in enumerate(zip(texts, ["joy", "surprise", "joy"], strict=True))))
    monkeypatch.setitem(script.blind_relabel.SETS, "growth", (folder, record, tmp_path / "work"))
    monkeypatch.setitem(script.blind_relabel.SETS, "growth3", (tmp_path / "missing", tmp_path / "none", tmp_path))
    assert [r["text"] for r in script.load_set("growth")] == ["text number 0", "text number 2"]
    assert script.load_set("growth3") == []  # a set not written yet
