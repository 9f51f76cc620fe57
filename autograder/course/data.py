"""The course's fixed splits, loaded: JSONL files in datasets_cache/, verified against
datasets_cache/manifest.json on every load.

This module loads splits and never builds them: the student release ships it (the notebooks load
their train and validation rows through it) with those two splits as files. How the splits are
cut from their sources, the hidden test split included, is :mod:`autograder.course.sources`, on
the instructor's side only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from autograder.course.data_spec import (  # noqa: F401 - where callers look
    DataIntegrityError,
    cache_dir,
    manifest,
    sha256_file,
    spec,
)

SPLITS = ("train", "validation", "test")


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
            digest = sha256_file(path)
            want = recorded.get(s, {}).get("sha256")
            if want is None or digest != want:
                here = data_dir == cache_dir()
                fix = (f"restore it with `git checkout {path.relative_to(data_dir.parent)}`" if here else
                       f"{data_dir / 'manifest.json'} records other files. To train on your own data, point "
                       "data_dir at a folder without a manifest.json (checked for shape and labels, not hashes)")
                raise DataIntegrityError(f"{path} does not match its manifest.json (sha256 {digest[:12]}..., "
                                         f"expected {(want or 'none')[:12]}...): {fix}.")
        files[s] = str(path)
    features = Features({"label": ClassLabel(names=names), "text": Value("string")})
    return load_dataset("json", data_files=files, features=features)
