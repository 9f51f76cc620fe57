"""scripts/corpus_candidates.py: the candidates are split the same way every run, per label, and keep
only the texts a blind second reading agrees on (issue 22)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from script_modules import load_script

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def script():
    return load_script("corpus_candidates")


def test_a_split_is_stratified_complete_and_repeatable(script):
    rows = [{"text": f"text {label} {i}", "label": label} for label in script.LABELS for i in range(50)]
    parts = script.split(rows)
    assert parts == script.split(rows) and parts != script.split(rows, seed=7)
    assert sorted(r["text"] for p in parts.values() for r in p) == sorted(r["text"] for r in rows)
    for name, share in script.FRACTIONS.items():
        assert Counter(r["label"] for r in parts[name]) == {label: round(50 * share) for label in script.LABELS} \
            or name == "train"


def _growth_set(script, tmp_path, monkeypatch, texts: list[str], seconds: list[str]) -> None:
    """A set "growth" of joy texts in tmp_path, with its blind reading (``seconds``), in the script's SETS."""
    folder = tmp_path / "growth"
    folder.mkdir()
    (folder / "joy.jsonl").write_text("".join(json.dumps({"text": t, "label": "joy"}) + "\n" for t in texts))
    record = folder / "second_reading.jsonl"
    record.write_text("".join(
        json.dumps({"id": i, "sha256": script.blind_relabel.text_sha(t), "original": "joy", "second": second}) + "\n"
        for i, (t, second) in enumerate(zip(texts, seconds, strict=True))))
    monkeypatch.setitem(script.blind_relabel.SETS, "growth", (folder, record, tmp_path / "work"))


def test_texts_the_second_reading_disputes_are_left_out(script, tmp_path, monkeypatch):
    _growth_set(script, tmp_path, monkeypatch, [f"text number {i}" for i in range(3)], ["joy", "surprise", "joy"])
    monkeypatch.setitem(script.blind_relabel.SETS, "growth3", (tmp_path / "missing", tmp_path / "none", tmp_path))
    assert [r["text"] for r in script.load_set("growth")] == ["text number 0", "text number 2"]
    assert script.load_set("growth3") == []  # a set not written yet


def test_the_committed_corpus_is_what_its_source_sets_give(script):
    """corpus.jsonl is built, never edited: the agreed texts of course.toml's source_sets, in order."""
    from autograder.course.data import spec

    names = spec("emotion")["source_sets"]
    committed = [json.loads(line) for line in script.blind_relabel.CORPUS.read_text(encoding="utf-8").splitlines()]
    assert committed == script.adopted_rows(names), \
        "datasets_cache/emotion/corpus.jsonl is stale: run `python scripts/corpus_candidates.py --adopt`"


def test_the_course_split_of_the_source_sets_is_the_committed_split(script):
    """--course-split measures a mix the way the course splits it: for the source sets, the very splits."""
    from autograder.course.data import spec

    parts = script.course_split(script.adopted_rows(spec("emotion")["source_sets"]))
    folder = script.blind_relabel.EMOTION_DIR
    for name, rows in parts.items():
        committed = [json.loads(line) for line in (folder / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]
        assert [r["text"] for r in rows] == [r["text"] for r in committed], name


def test_adopting_writes_only_the_agreed_texts_numbered_in_order(script, tmp_path, monkeypatch):
    _growth_set(script, tmp_path, monkeypatch, ["first text here", "second text here", "third text here"],
                ["joy", "fear", "joy"])
    out = tmp_path / "corpus.jsonl"
    assert script.write_corpus(["growth"], out) == 2
    assert [json.loads(line) for line in out.read_text().splitlines()] == [
        {"id": 0, "text": "first text here", "label": "joy"}, {"id": 1, "text": "third text here", "label": "joy"}]
