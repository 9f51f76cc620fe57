"""Batch grading: six prepared submissions, two workers, every export; resumable after a kill."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import pytest

from autograder import REPO_ROOT
from autograder.sandbox.jail import detect

STAGES = ["tokenize", "model"]
MODULES = {"tokenize": "stage1_tokenize.py", "model": "stage2_model.py"}
# student -> expected score over tokenize + model (10 points each)
EXPECTED = {"solution": 20, "stubs": 0, "partial_tokenize": 10, "partial_model": 10,
            "partial_padding": 3, "partial_syntax_zip": 10}  # padding: only loading (1) and the splits (2) pass


def _make(folder, tokenize: str, model: str):
    folder.mkdir(parents=True)
    for stage, src in (("tokenize", tokenize), ("model", model)):
        text = (REPO_ROOT / src / MODULES[stage]).read_text() if src in ("solutions", "exercises") else src
        (folder / MODULES[stage]).write_text(text)


@pytest.fixture(scope="module")
def submissions(tmp_path_factory):
    root = tmp_path_factory.mktemp("class") / "submissions"
    _make(root / "solution", "solutions", "solutions")
    _make(root / "stubs", "exercises", "exercises")
    _make(root / "partial_tokenize", "solutions", "exercises")
    _make(root / "partial_model", "exercises", "solutions")
    padded = (REPO_ROOT / "solutions" / MODULES["tokenize"]).read_text().replace(
        "truncation=True, max_length=max_length)", "truncation=True, max_length=max_length, padding='max_length')")
    _make(root / "partial_padding", padded, "exercises")
    staging = root.parent / "zipped"
    _make(staging / "partial_syntax_zip", "solutions", "def load_classifier(:\n")
    with zipfile.ZipFile(root / "partial_syntax_zip.zip", "w") as zf:
        for f in (staging / "partial_syntax_zip").iterdir():
            zf.write(f, f"partial_syntax_zip/{f.name}")
    return root


def _cli(submissions, out, *extra):
    args = [sys.executable, "-m", "autograder.cli", "grade-batch", str(submissions), "--out", str(out),
            "--workers", "2", *sum((["--stage", s] for s in STAGES), []), *extra]
    if not detect().on:  # grade-batch requires the sandbox unless told otherwise
        args.append("--no-require-sandbox")
    return args


def test_batch_grades_everyone_into_every_export_and_resumes(submissions, tmp_path):
    out = tmp_path / "batch"
    scratch = tmp_path / "tmp"  # the batch's fresh copies of the submissions go here, not in /tmp
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    proc = subprocess.Popen(_cli(submissions, out), start_new_session=True, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and len(list((out / "results").glob("*.json"))) < 2:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = {p.name: (p.stat().st_mtime_ns, p.read_text()) for p in (out / "results").glob("*.json")}
    assert 2 <= len(first) < len(EXPECTED), "the kill should land half-way"

    done = subprocess.run(_cli(submissions, out), capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    for name, (mtime, text) in first.items():  # graded before the kill: not graded again
        path = out / "results" / name
        assert path.stat().st_mtime_ns == mtime and path.read_text() == text
    scores = {p.stem: json.loads(p.read_text())["score"] for p in (out / "results").glob("*.json")}
    assert scores == EXPECTED

    with open(out / "gradebook.csv") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert {s: float(r["total"]) for s, r in rows.items()} == {s: float(v) for s, v in EXPECTED.items()}
    with open(out / "nbgrader_grades.csv") as f:
        assert len(list(csv.DictReader(f))) == len(EXPECTED)
    for student in EXPECTED:
        report = out / "reports" / student
        for name in ("result.json", "results.json", "junit.xml", "feedback.md", "feedback.html"):
            assert (report / name).exists(), f"{student}: {name}"
    syntax = json.loads((out / "results" / "partial_syntax_zip.json").read_text())
    model_stage = next(s for s in syntax["stages"] if s["id"] == "model")
    assert all("syntax error" in c["message"] for c in model_stage["checks"])
    shutil.rmtree(out / "extracted", ignore_errors=True)
