"""Print a dataset's figures and, for the emotion corpus, the verdict on its criteria.

    python scripts/corpus_report.py                      # the emotion corpus; exit 1 if a criterion fails
    python scripts/corpus_report.py --dataset sentiment  # counts, lengths, duplicates, baseline only

The figures in datasets_cache/emotion/DATA_CARD.md are copied from this output.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from autograder.course.corpus import (  # noqa: E402
    EMOTION_WORDS,
    LENGTH_RANGE,
    NEAR_DUPLICATE_JACCARD,
    TARGET_SHARES,
    CorpusReport,
    corpus_report,
    criteria_failures,
)


def label_table(report: CorpusReport) -> Table:
    table = Table(title=f"{report.dataset}: labels ({report.n_texts:,} texts)")
    for col in ("id", "label", "texts", "share", "target"):
        table.add_column(col, justify="left" if col == "label" else "right")
    emotion = report.dataset == "emotion"
    for i, name in enumerate(report.labels):
        target = f"{TARGET_SHARES[name]:.0%} +/- 2" if emotion and name in TARGET_SHARES else "-"
        table.add_row(str(i), name, f"{report.counts[name]:,}", f"{report.shares[name]:.1%}", target)
    return table


def figures_table(report: CorpusReport) -> Table:
    lo, hi = LENGTH_RANGE
    dup = report.duplicates
    table = Table(title=f"{report.dataset}: figures")
    table.add_column("figure")
    table.add_column("value", justify="right")
    if report.dataset == "emotion":
        table.add_row(f"texts without any of the {len(EMOTION_WORDS)} emotion words",
                      f"{report.no_emotion_word_share:.1%}")
    table.add_row("length in words: min / median / max",
                  f"{report.length_min} / {report.length_median:g} / {report.length_max}")
    table.add_row(f"texts with {lo}..{hi} words", f"{report.length_in_range_share:.1%}")
    table.add_row("exact duplicates (normalised text)", str(len(dup.exact)))
    table.add_row(f"pairs with word 3-gram Jaccard >= {NEAR_DUPLICATE_JACCARD}", str(len(dup.near)))
    table.add_row("max 3-gram Jaccard over all pairs", f"{dup.max_jaccard:.3f}")
    table.add_row("pairs covered / sharing a 3-gram", f"{dup.pairs_total:,} / {dup.pairs_compared:,}")
    for s, n in report.split_sizes.items():
        table.add_row(f"{s} split rows", f"{n:,}")
    table.add_row("TF-IDF + logistic regression: test accuracy", f"{report.baseline_accuracy:.3f}")
    table.add_row("TF-IDF + logistic regression: test macro-F1", f"{report.baseline_macro_f1:.3f}")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="emotion", choices=["emotion", "sentiment"])
    args = parser.parse_args(argv)
    console = Console()
    report = corpus_report(args.dataset)
    console.print(label_table(report))
    console.print(figures_table(report))
    dup = report.duplicates
    if dup.max_pair is not None:
        i, j = dup.max_pair
        console.print(f"most similar pair ({dup.max_jaccard:.3f}):\n  {report.texts[i]}\n  {report.texts[j]}",
                      markup=False, highlight=False)
    if args.dataset != "emotion":
        console.print("(the corpus criteria apply to the emotion corpus only)")
        return 0
    failures = criteria_failures(report)
    if failures:
        console.print(f"[bold red]FAIL[/]: {len(failures)} corpus criteria not met")
        for f in failures:
            console.print(f"  - {f}", markup=False, highlight=False)
        return 1
    console.print("[bold green]PASS[/]: every corpus criterion is met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
