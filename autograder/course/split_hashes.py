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
            "test": {"rows": 1683, "sha256": "e7578c7b172ad9d5d62384a248b194d4488315e973ca12b6a12a1d12dbbb35a0"},
            "train": {"rows": 2185, "sha256": "0cc34cf00b07cc06837164627d65803787dee54bc2f10632d6ef03e27268aa22"},
            "validation": {"rows": 336, "sha256": "095d51d2c30a8471007790e3b0f778d737d151c6ef7093ef5f734eb761f46a81"},
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
