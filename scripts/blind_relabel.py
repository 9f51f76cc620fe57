"""Blind second reading of the emotion corpus (issue 22, item 1).

    python scripts/blind_relabel.py prepare     # relabel/batches/*.tsv: opaque id + text, shuffled
    python scripts/blind_relabel.py record      # relabel/readings/*.tsv + corpus -> second_reading.jsonl
    python scripts/blind_relabel.py agreement   # agreement, per-class agreement, kappa, confusions
    python scripts/blind_relabel.py --set growth prepare   # the same for the growth files (item 2)

Why: every corpus label is its writer's intended emotion. A second reader who sees only the
text tells us which labels a reader can recover; where the two readings differ, a model is
graded against a label the text does not carry. The reader must not see the label, the split
or the corpus order (the corpus is grouped by label, so even a row number gives the label
away), hence the shuffle and ids derived from a salted hash of the text. The working files
under relabel/ are ignored by git; only the record of both readings is committed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "datasets_cache" / "emotion" / "corpus.jsonl"
RECORD = REPO / "datasets_cache" / "emotion" / "second_reading.jsonl"
WORK = REPO / "relabel"
#: Item 2's new texts, read blind before they join the corpus: (texts, record, work). ``growth``: one
#: file per label, written label by label; ``growth2``: one file per writer, each situation written in
#: every emotion, so that what a text is about says nothing of its label; ``growth3``: each feeling
#: word or phrase used once, so that a bag of words meets most of them first in the test split;
#: ``growth4``: a second pass of the same, whose cues differ from growth3's too; ``growth5``: a second
#: pass of ``growth``'s style, the one the measurements favour (DATA_CARD.md, "Growing the corpus");
#: ``growth6``: eight writers, each writing all six labels over one shared pool of scenes, in real
#: posts' style (rambling, a broad everyday feeling vocabulary, no cue but the feeling tied to a label);
#: ``growth7``: dair-ai's shape, the feeling in one word or phrase ("i feel ...") and everything else
#: ordinary detail that fits any emotion.
#: ``corpus``: a new reading of the assembled corpus (none is on record: the corpus is built from the
#: agreed texts of sets already read blind, course.toml's ``source_sets``; see :func:`source_record`).
EMOTION_DIR = REPO / "datasets_cache" / "emotion"
SETS = {"corpus": (CORPUS, RECORD, WORK)} | {
    name: (EMOTION_DIR / name, EMOTION_DIR / name / "second_reading.jsonl", WORK / name)
    for name in ("growth", "growth2", "growth3", "growth4", "growth5", "growth6", "growth7")}
SEED = 22                       # the shuffle: fixed so that the batches can be rebuilt
SALT = "issue-22-blind"         # the opaque ids: a salted hash, so they say nothing of the row
BATCH_SIZE = 100
TARGET_OVERALL, TARGET_PER_CLASS = 0.90, 0.85   # the bar for blind agreement

#: The reader's guide: the six dair-ai/emotion labels, defined as in DATA_CARD.md.
LABELS: dict[str, str] = {
    "sadness": "loss, grief, loneliness, disappointment, being let down",
    "joy": "happiness, relief, pride, fun, satisfaction with how something went",
    "love": "affection, tenderness, longing or care directed at a person or a pet",
    "anger": "irritation, outrage, resentment at being wronged or obstructed",
    "fear": "worry, dread, nervousness, panic about what might happen",
    "surprise": "the unexpected, pleasant or unpleasant, where astonishment dominates",
}


def load_corpus(path: Path = CORPUS) -> list[dict]:
    """The corpus rows in id order (ids are 0..n-1, checked: the record relies on it).

    A folder is a growth set: its text files (``*.jsonl`` of text and label, no ids; not its record)
    in name order, numbered 0..n-1 in that order, so that the numbering is the same on every run."""
    if path.is_dir():
        files = sorted(p for p in path.glob("*.jsonl") if p.name != "second_reading.jsonl")
        rows = [json.loads(line) for f in files for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [{"id": i, "text": r["text"], "label": r["label"]} for i, r in enumerate(rows)]
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if [r["id"] for r in rows] != list(range(len(rows))):
        raise SystemExit(f"{path}: ids are not 0..{len(rows) - 1} in order")
    return rows


def text_sha(text: str) -> str:
    """A short content hash: the record names its text without copying it."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def opaque_id(text: str) -> str:
    """The id a reader sees: derived from the text alone, so it carries no label, split or row."""
    return hashlib.sha256(f"{SALT}:{text}".encode()).hexdigest()[:8]


def opaque_ids(rows: list[dict]) -> dict[str, int]:
    """opaque id -> corpus id, for every row; a collision would merge two readings, so it stops."""
    ids = {opaque_id(r["text"]): r["id"] for r in rows}
    if len(ids) != len(rows):
        raise SystemExit("two texts share an opaque id: change SALT")
    return ids


def prepare(work: Path = WORK, corpus: Path = CORPUS) -> list[Path]:
    """Write the shuffled batches (id TAB text, nothing else) and the reader's label guide."""
    rows = load_corpus(corpus)
    opaque_ids(rows)
    order = list(range(len(rows)))
    random.Random(SEED).shuffle(order)
    n_batches = math.ceil(len(order) / BATCH_SIZE)
    (work / "batches").mkdir(parents=True, exist_ok=True)
    (work / "readings").mkdir(parents=True, exist_ok=True)
    paths = []
    for b in range(n_batches):
        part = order[b * len(order) // n_batches:(b + 1) * len(order) // n_batches]
        path = work / "batches" / f"batch_{b + 1:02d}.tsv"
        path.write_text("".join(f"{opaque_id(rows[i]['text'])}\t{rows[i]['text']}\n" for i in part), encoding="utf-8")
        paths.append(path)
    guide = ["# Labels for the blind second reading", "",
             "Give each text the one emotion that dominates it, judging from the text alone.",
             "Write one line per text, `<id> <label>`, to readings/batch_NN.tsv.", ""]
    guide += [f"- **{name}**: {meaning}" for name, meaning in LABELS.items()]
    (work / "labels.md").write_text("\n".join(guide) + "\n", encoding="utf-8")
    return paths


def read_readings(paths: list[Path]) -> dict[str, str]:
    """opaque id -> second label, from lines `<id> <label>` ('#' comments and blanks skipped)."""
    readings: dict[str, str] = {}
    for path in paths:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            oid, label = line.split()
            if label not in LABELS:
                raise SystemExit(f"{path}:{n}: unknown label {label!r}")
            if oid in readings:
                raise SystemExit(f"{path}:{n}: {oid} was already read")
            readings[oid] = label
    return readings


def record(readings: dict[str, str], corpus: Path = CORPUS, out: Path = RECORD) -> int:
    """Merge the second reading with the original labels into the committed record, by corpus id."""
    rows = load_corpus(corpus)
    ids = opaque_ids(rows)
    unknown = sorted(set(readings) - set(ids))
    missing = [oid for oid in ids if oid not in readings]
    if unknown or missing:
        raise SystemExit(f"{len(unknown)} readings name no corpus text (e.g. {unknown[:3]}), "
                         f"{len(missing)} texts are unread (e.g. {missing[:3]})")
    by_row = {row: oid for oid, row in ids.items()}
    lines = [json.dumps({"id": r["id"], "sha256": text_sha(r["text"]), "original": r["label"],
                         "second": readings[by_row[r["id"]]]}, separators=(",", ":")) for r in rows]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def load_record(path: Path = RECORD, corpus: Path = CORPUS) -> list[dict]:
    """The record, checked against the corpus: a record of other texts says nothing about these."""
    rows = load_corpus(corpus)
    rec = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    stale = [r["id"] for r in rec if r["id"] >= len(rows) or r["sha256"] != text_sha(rows[r["id"]]["text"])
             or r["original"] != rows[r["id"]]["label"]]
    if stale or len(rec) != len(rows):
        raise SystemExit(f"{path} does not match {corpus.name} ({len(rec)} records for {len(rows)} texts; "
                         f"{len(stale)} stale, e.g. ids {stale[:5]}): read the changed texts again")
    return rec


def source_record(names: list[str] | None = None) -> list[dict]:
    """The blind readings of the sets the corpus is built from (course.toml's ``source_sets``), each
    checked against its texts, before the disputed texts were left out: what the data card states."""
    if names is None:
        from autograder.course.data import spec

        names = list(spec("emotion").get("source_sets", []))
    rec = []
    for name in names:
        texts, record, _ = SETS[name]
        rec += [{**r, "set": name} for r in load_record(record, texts)]
    return rec


@dataclass
class Figures:
    """Agreement of the second reading with the original labels."""

    n: int
    agree: int
    per_class: dict[str, tuple[int, int]]          # label -> (texts the original gives it, of them agreed)
    kappa: float
    confusions: list[tuple[tuple[str, str], int]]  # (original, second) -> count, most frequent first

    @property
    def overall(self) -> float:
        return self.agree / self.n

    def share(self, label: str) -> float:
        n, a = self.per_class[label]
        return a / n if n else 1.0

    def to_fix(self, label: str) -> int:
        """Fewest of the label's disagreements to rewrite (until readers agree) to reach 85% for it."""
        n, a = self.per_class[label]
        return max(0, math.ceil(TARGET_PER_CLASS * n - a - 1e-9))

    def to_fix_overall(self) -> int:
        """Fewest rewrites for both targets: each class's own, and 90% overall on top."""
        return max(sum(self.to_fix(c) for c in self.per_class), math.ceil(TARGET_OVERALL * self.n - self.agree - 1e-9))


def figures(rec: list[dict]) -> Figures:
    """Overall and per-class agreement, Cohen's kappa and the confusion pairs."""
    n = len(rec)
    agree = sum(r["original"] == r["second"] for r in rec)
    orig, second = Counter(r["original"] for r in rec), Counter(r["second"] for r in rec)
    per_class = {c: (orig[c], sum(r["original"] == r["second"] == c for r in rec)) for c in LABELS}
    expected = sum(orig[c] * second[c] for c in LABELS) / (n * n)
    kappa = (agree / n - expected) / (1 - expected)
    confusions = Counter((r["original"], r["second"]) for r in rec if r["original"] != r["second"])
    return Figures(n, agree, per_class, kappa, sorted(confusions.items(), key=lambda kv: (-kv[1], kv[0])))


def markdown(f: Figures) -> str:
    """The per-class table and the headline figures as the data card states them."""
    lines = [f"Overall agreement: **{f.agree:,} of {f.n:,} ({f.overall:.1%})**; Cohen's kappa **{f.kappa:.3f}**.", "",
             "| original label | texts | second reading agrees | agreement | disagreeing "
             "| fewest to rewrite for 85% | share if the disagreeing are dropped |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for c in LABELS:
        n, a = f.per_class[c]
        lines.append(f"| {c} | {n:,} | {a:,} | {f.share(c):.1%} | {n - a:,} | {f.to_fix(c):,} "
                     f"| {a / f.agree:.1%} |")
    lines.append(f"| **all** | {f.n:,} | {f.agree:,} | {f.overall:.1%} | {f.n - f.agree:,} "
                 f"| {f.to_fix_overall():,} | {f.agree:,} texts |")
    return "\n".join(lines)


def agreement(rec: list[dict], corpus: Path = CORPUS, show_texts: bool = True) -> Figures:
    """Print the figures, the confusion pairs and, grouped by pair, the texts the readings differ on."""
    f = figures(rec)
    print(markdown(f))
    print(f"\n(the last column's total is the fewest rewrites for {TARGET_OVERALL:.0%} overall "
          f"and {TARGET_PER_CLASS:.0%} per class together)\n\nconfusion pairs (original -> second):")
    for (o, s), k in f.confusions:
        print(f"  {o:>8} -> {s:<8} {k:4d}")
    if show_texts:
        texts = {r["id"]: r["text"] for r in load_corpus(corpus)}
        for (o, s), k in f.confusions:
            print(f"\n## {o} -> {s} ({k})")
            for r in rec:
                if (r["original"], r["second"]) == (o, s):
                    print(f"  [{r['id']}] {texts[r['id']]}")
    return f


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=sorted(SETS), default="corpus",
                        help="the texts to read: the corpus, or the growth files not yet in it")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("prepare", help="write the shuffled, label-free batches under relabel/")
    rec_p = sub.add_parser("record", help="merge the readings with the original labels")
    rec_p.add_argument("readings", nargs="*", type=Path,
                       help="files of `<id> <label>` lines (default: relabel/readings/*.tsv)")
    agr = sub.add_parser("agreement", help="print agreement, kappa, confusions and the disagreeing texts")
    agr.add_argument("--no-texts", action="store_true", help="figures only")
    args = parser.parse_args(argv)
    corpus, record_path, work = SETS[args.set]
    if args.command == "prepare":
        paths = prepare(work, corpus)
        print(f"{len(paths)} batches in {paths[0].parent}; the guide is {work / 'labels.md'}")
    elif args.command == "record":
        files = args.readings or sorted((work / "readings").glob("*.tsv"))
        print(f"{record(read_readings(files), corpus, record_path)} texts recorded in {record_path}")
    elif args.set == "corpus" and not record_path.exists():  # built from read sets: their readings
        rec = source_record()
        print(f"corpus.jsonl holds the agreed texts of {', '.join(sorted({r['set'] for r in rec}))}; "
              "their blind readings (`--set NAME agreement` lists each set's disputed texts):\n")
        agreement(rec, corpus, show_texts=False)
    else:
        agreement(load_record(record_path, corpus), corpus, show_texts=not args.no_texts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
