"""Calibrate the model tier: the reference and its variants over many seeds, graded as submissions.

The variants and the run plan are :mod:`autograder.grading.calibration_variants`'s. Every run is
appended to docs/calibration_runs.jsonl (resumable: a run already recorded is not repeated);
``--report`` writes docs/calibration.md from those records with the rule of
:mod:`autograder.grading.calibration`. Usage:

    python scripts/calibrate_model_tier.py --seeds 20 [--broken-seeds 3] [--notebook emotion_model] \
        [--variant reference --variant pad8] [--threads 2]
    python scripts/calibrate_model_tier.py --report
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("GOMP_SPINCOUNT", "10000")  # the evaluator scores beside a training job: see procs.thread_env

from autograder import REPO_ROOT  # noqa: E402
from autograder.course.manifest import load_course  # noqa: E402
from autograder.grading import calibration as cal  # noqa: E402
from autograder.grading import calibration_variants as cv  # noqa: E402

RUNS = cal.RUNS
REPORT = REPO_ROOT / "docs" / "calibration.md"
NOTE = REPO_ROOT / "docs" / "calibration_note.md"  # how the runs were made: kept with them, in every report


def device() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def run_one(nb, v: cv.Variant, seed: int, threads: int, model, tmp: Path, keep: Path | None = None) -> dict:
    import dataclasses

    from autograder.grading.model_tier import grade_notebook

    sub = tmp / f"{nb.id}-{v.id}-{seed}"
    shutil.copytree(REPO_ROOT / "solutions", sub, ignore=shutil.ignore_patterns("__pycache__", "checks"))
    why = cv.apply(v, sub)
    record = {"notebook": nb.id, "variant": v.id, "correct": v.correct, "seed": seed, "threads": threads,
              "device": device(), "model": model.record(), "value": {}, "lower": {}, "upper": {}}
    if why:
        return {**record, "error": why, "duration_s": 0.0}
    nb = dataclasses.replace(nb, parameters={**nb.parameters, **v.params})
    work = tmp / f"work-{nb.id}-{v.id}-{seed}"
    try:
        result = grade_notebook(nb, sub, work, model, seed=seed, threads=threads)
        if keep and (work / "output" / "model").is_dir():  # to score again on another split, without training
            shutil.rmtree(keep / sub.name, ignore_errors=True)
            shutil.move(str(work / "output" / "model"), str(keep / sub.name))
    finally:  # a saved model is ~90 MB: a long calibration keeps none
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(sub, ignore_errors=True)
    ev = result.details.get("evaluation") or {}
    if ev:
        record["test_rows"], record["test_sha256"] = ev["n"], split_sha256(nb.dataset)
    for metric in nb.thresholds:
        if metric in ev:
            record["value"][metric] = ev[metric]
            record["lower"][metric], record["upper"][metric] = ev[f"{metric}_ci"]
    return {**record, "error": result.error, "duration_s": result.duration_s}


def split_sha256(dataset: str) -> str:
    """The hidden test split a run was scored on, by the package's record of its hash: a split
    replaced by another of the same size still counts as a different split."""
    from autograder.course.split_hashes import expected

    return expected(dataset, "test")["sha256"]


def rescore(runs_path: Path, keep: Path, notebook_ids: list[str], course) -> None:
    """Score the kept models of these notebooks again on the current hidden test split (after it grew).

    A run whose model was not kept cannot be scored again: its record is dropped, so the next
    calibration run trains it anew. Runs that saved no model (errors) do not depend on the split.
    The runs file is rewritten: run this while no calibration appends to it.
    """
    from transformers import AutoTokenizer

    from autograder.course.models import resolve_model
    from autograder.grading.evaluator import load_hidden_split, score_saved_model

    course_model = resolve_model().path
    tok = AutoTokenizer.from_pretrained(course_model)
    tests = {nb.dataset: load_hidden_split(nb.dataset) for nb in course.notebooks if nb.id in notebook_ids}
    kept, dropped = [], 0
    for r in cal.read_runs(runs_path):
        if r["notebook"] not in notebook_ids or not r.get("value"):
            kept.append(r)
            continue
        nb = course.notebook(r["notebook"])
        test = tests[nb.dataset]
        folder = keep / f"{r['notebook']}-{r['variant']}-{r['seed']}"
        if r.get("test_sha256") == split_sha256(nb.dataset):
            kept.append(r)
        elif not folder.is_dir():
            dropped += 1
            print(f"dropped {folder.name}: no kept model to score on the {len(test.texts)} test texts")
        else:
            ev = score_saved_model(folder, test, tok, seed=r["seed"], course_model=course_model).to_dict()
            for metric in nb.thresholds:
                r["value"][metric] = ev[metric]
                r["lower"][metric], r["upper"][metric] = ev[f"{metric}_ci"]
            r["test_rows"], r["test_sha256"] = ev["n"], split_sha256(nb.dataset)
            kept.append(r)
            shown = "  ".join(f"{m} {r['value'][m]:.3f} (lower {r['lower'][m]:.3f})" for m in r["value"])
            print(f"{folder.name}: {shown}")
    runs_path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in kept), encoding="utf-8")
    print(f"{len(kept)} runs kept, {dropped} dropped (run the calibration again to redo them)")


def report_text(runs: list[dict], course) -> str:
    """docs/calibration.md for these runs, with the kept note on how they were made."""
    note = NOTE.read_text(encoding="utf-8").strip() if NOTE.is_file() else ""
    header = "Runs: " + "; ".join(sorted({f"{r['device']}, {r['threads']} threads, {r['model'].split(' (')[0]}"
                                         for r in runs})) + (f"\n\n{note}" if note else "")
    thresholds = {nb.id: dict(nb.thresholds) for nb in course.notebooks}
    timeouts = {nb.id: nb.timeout for nb in course.notebooks}
    return cal.markdown(runs, thresholds, header=header, timeouts=timeouts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds per correct variant (0, 1, ...)")
    parser.add_argument("--broken-seeds", type=int, default=3, help="seeds per broken variant")
    parser.add_argument("--notebook", action="append", help="notebook id (default: all)")
    parser.add_argument("--variant", action="append", help="variant id (default: all)")
    parser.add_argument("--spread", action="store_true", help="one correct variant per seed, in turn (N seeds: N "
                        "correct runs per notebook) instead of every correct variant on every seed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=Path, default=RUNS)
    parser.add_argument("--keep-models", type=Path, metavar="DIR", help="keep each run's saved model in "
                        "DIR/<notebook>-<variant>-<seed>/ (about 90 MB each), to score them again later")
    parser.add_argument("--report", action="store_true", help="only write docs/calibration.md from the runs")
    parser.add_argument("--rescore", action="store_true", help="only: score the models kept in --keep-models "
                        "again on the current test split (of --notebook), then write the report")
    parser.add_argument("--note", help=f"how the runs were made, for the report's header (kept in "
                        f"{NOTE.relative_to(REPO_ROOT)} for later reports)")
    args = parser.parse_args()
    course = load_course()
    if args.rescore:
        if not args.keep_models:
            parser.error("--rescore needs --keep-models DIR")
        rescore(args.runs, args.keep_models, args.notebook or [nb.id for nb in course.notebooks], course)
    elif not args.report:
        from autograder.course.models import resolve_model

        model = resolve_model()
        print(model.describe(), "|", device(), flush=True)
        done = {(r["notebook"], r["variant"], r["seed"]) for r in cal.read_runs(args.runs)}
        notebooks = [course.notebook(n) for n in args.notebook] if args.notebook else list(course.notebooks)
        variants = [cv.variant(v) for v in args.variant] if args.variant else list(cv.VARIANTS)
        todo = cv.plan([nb.id for nb in notebooks], variants, seeds=args.seeds, broken_seeds=args.broken_seeds,
                        spread=args.spread, done=done)
        print(f"{len(todo)} runs to do", flush=True)
        if args.keep_models:
            args.keep_models.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            for seed, nb_id, v in todo:
                nb = course.notebook(nb_id)
                run = run_one(nb, v, seed, args.threads, model, Path(tmp), args.keep_models)
                cal.append_run(args.runs, run)
                shown = "  ".join(f"{m} {run['value'][m]:.3f} (lower {run['lower'][m]:.3f})" for m in run["value"])
                print(f"{nb.id} {v.id} seed {seed}: {shown or run['error']} ({run['duration_s']:.0f} s)", flush=True)
    if args.note is not None:
        NOTE.write_text(args.note.strip() + "\n", encoding="utf-8")
    runs = cal.read_runs(args.runs)
    REPORT.write_text(report_text(runs, course), encoding="utf-8")
    print(f"wrote {REPORT.relative_to(REPO_ROOT)} from {len(runs)} runs")


if __name__ == "__main__":
    main()
