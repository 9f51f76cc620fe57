"""The sha256 of every fixed split, held inside the package: the trusted side's own record.

The model tier scores on ``datasets_cache/<name>/test.jsonl`` only if it has exactly these bytes, and
copies the train and validation splits into a job only if they match too. It never trusts
``datasets_cache/manifest.json`` for that: a job (or anything else that can write the cache) could
have rewritten both a split and its hash there. The values are copied from that manifest whenever the
splits are rebuilt (``autograder data build``); ``tests/test_model_tier_sandbox.py`` checks that the
two agree, so a rebuild that forgets this file fails the project's tests.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from autograder.course.data import DataIntegrityError

SPLITS: dict[str, dict] = {
    "emotion": {
        "labels": ["sadness", "joy", "love", "anger", "fear", "surprise"],
        "splits": {
            "test": {"rows": 4167, "sha256": "589ac84f48bf7c651686cd02e7cd03962dcbac4ee96854464fd1c8c29abcc730"},
            "train": {"rows": 2118, "sha256": "28dfdd99ace8777543d81ecf7bc759b434f492862fbc02ffaf3af2e5213d1426"},
            "validation": {"rows": 331, "sha256": "e849b950e9303bee114b2cb38dd0f4ea42350082e42d375016efea6e4d910181"},
        },
    },
    "sentiment": {
        "labels": ["negative", "positive"],
        "splits": {
            "test": {"rows": 2000, "sha256": "fa3b3c54240cd23210b300d5aa43afafe570f348f6b305f7b8b55599d810550b"},
            "train": {"rows": 1000, "sha256": "4659a552f0f76b042f8dd6a651787ae2e3ba179ca082760d41cee0850feb6e9f"},
            "validation": {"rows": 200, "sha256": "5f9a03770072cac5359fcdc5b0ae763dcfaf68d55921522b8856b46a14bef4aa"},
        },
    },
}

MAX_SPLIT_BYTES = 64 << 20  # the splits are a few hundred KiB; anything this large is not one of them


class SplitIntegrityError(DataIntegrityError):
    """A split on disk is not the one this package records: never train or grade on it (instructor error)."""


def labels(name: str) -> list[str]:
    return list(SPLITS[name]["labels"])


def expected(name: str, split: str) -> dict:
    try:
        return SPLITS[name]["splits"][split]
    except KeyError:
        raise SplitIntegrityError(f"autograder/split_hashes.py records no {name}/{split} split") from None


def verified_bytes(name: str, split: str, root: Path | None = None) -> bytes:
    """The bytes of ``<root>/<name>/<split>.jsonl`` (default root: datasets_cache/), checked against
    :data:`SPLITS`. Read once through a descriptor that refuses symbolic links, so what is hashed is
    what is used."""
    from autograder import REPO_ROOT

    path = Path(root or REPO_ROOT / "datasets_cache") / name / f"{split}.jsonl"
    want = expected(name, split)["sha256"]
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise SplitIntegrityError(f"{path} cannot be read ({exc.strerror}); restore it with "
                                  f"`git checkout {name}/{split}.jsonl` in datasets_cache/") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_SPLIT_BYTES:
            raise SplitIntegrityError(f"{path} is not a regular split file of at most {MAX_SPLIT_BYTES >> 20} MiB")
        data = f.read(MAX_SPLIT_BYTES + 1)
    digest = hashlib.sha256(data).hexdigest()
    if digest != want:
        raise SplitIntegrityError(f"{path} has sha256 {digest[:12]}..., but autograder/split_hashes.py records "
                                  f"{want[:12]}...: the file was changed. Restore it from git (or rebuild it with "
                                  "`autograder data build` and copy the new hashes into autograder/split_hashes.py)")
    return data
