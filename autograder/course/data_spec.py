"""What the course says about a dataset, and where its fixed splits live: the ground floor of data.

``data`` (loading the hash-checked splits) and ``external`` (outside data, checked for shape) both
stand on this module, so neither needs the other's import to know a dataset's labels or hashes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from autograder import REPO_ROOT
from autograder.course.manifest import load_course


class DataIntegrityError(RuntimeError):
    """The source or a stored split is not what the manifest says: never grade on it."""


def cache_dir() -> Path:
    return REPO_ROOT / "datasets_cache"


def spec(name: str) -> dict:
    try:
        return load_course().raw["datasets"][name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; course.toml lists {list(load_course().raw['datasets'])}") from None


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest() -> dict:
    path = cache_dir() / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}
