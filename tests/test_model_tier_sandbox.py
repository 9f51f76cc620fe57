"""The model tier's trust boundary: attacks that once worked from a notebook must fail now.

One hostile notebook (module fixture, a tiny model, no training) tries, each in its own cell:
loading and reading the hidden test split, reading a grader and a solution, writing the split and
its manifest, copying a model out of an earlier run's work folder, connecting to a listener on
127.0.0.1, and saving a model/ whose weights are a symbolic link next to a pickle that would run
code if it were ever loaded. Each cell records what happened; the tests below check one attack
each, that no line of the test split reaches the result, and that nothing outside the job changed.
The jail-specific ones are skipped where bubblewrap cannot run (the notebook then runs as a plain
child with no such protection).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import REPO_ROOT
from autograder.course.manifest import load_course
from autograder.course.models import resolve_model, tiny_model_dir
from autograder.course.split_hashes import SPLITS, SplitIntegrityError
from autograder.sandbox.jail import SandboxStatus, detect

# nbformat, the evaluator and the model tier (torch, scikit-learn) are imported where they are used:
# collecting the suite costs none of them.

NB = load_course().notebook("sentiment_model")
CACHE = REPO_ROOT / "datasets_cache"
TEST_SPLIT = CACHE / "sentiment" / "test.jsonl"
# bwrap is probed when a test runs, not when the suite is collected (a string condition is evaluated at setup)
needs_jail = pytest.mark.skipif("not detect().on", reason="needs the bubblewrap jail: without it a notebook runs as "
                                                          "a plain child with no such protection")


def _hidden_texts() -> list[str]:
    rows = [json.loads(line) for line in TEST_SPLIT.read_text(encoding="utf-8").split("\n") if line.strip()]
    return [r["text"] for r in rows if len(r["text"]) >= 25]


def _assert_no_hidden_text(*blobs: str) -> None:
    text = "\n".join(blobs)
    first_line = TEST_SPLIT.read_text(encoding="utf-8").split("\n")[0]
    assert first_line not in text
    leaked = [t for t in _hidden_texts() if t in text]
    assert not leaked, f"hidden test texts reached the result: {leaked[:2]}"


def _hashes(*roots: Path) -> dict[str, str]:
    out = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _result_text(result) -> str:
    return json.dumps(dataclasses.asdict(result), default=str)


def _submission(tmp: Path) -> Path:
    sub = tmp / "submission"
    shutil.copytree(REPO_ROOT / "solutions", sub, ignore=shutil.ignore_patterns("__pycache__", "checks"))
    return sub


# ----------------------------------------------------------------------------- the hostile notebook
ATTACKS = r'''
import builtins, glob, json, os, pickle, shutil, socket
from pathlib import Path

from autograder.course.data import load_splits

outcomes = {}

def attempt(name, fn):
    try:
        value = fn()
        outcomes[name] = "SUCCEEDED" + (f" {value!r}"[:60] if value is not None else "")
    except Exception as exc:
        outcomes[name] = type(exc).__name__

def write(path, text):
    with open(path, "w") as f:
        f.write(text)

def connect():
    with socket.create_connection(("127.0.0.1", PORT), timeout=5) as s:
        s.sendall(b"stolen")

attempt("train_and_validation", lambda: len(load_splits("sentiment", ("train", "validation"), data_dir=data_dir)))
attempt("load_test", lambda: load_splits("sentiment", ("test",)))
attempt("load_test_from_data_dir", lambda: load_splits("sentiment", ("test",), data_dir=data_dir))
attempt("read_test_by_path", lambda: open(TEST_SPLIT).read(200))
attempt("read_a_grader", lambda: open(GRADER).read(200))
attempt("read_a_solution", lambda: open(SOLUTION).read(200))
attempt("write_manifest", lambda: write(MANIFEST, "{}"))
attempt("write_test_split", lambda: write(TEST_SPLIT, "poison\n"))
attempt("write_repo_root", lambda: write(PLANTED, "planted"))
attempt("copy_previous_model", lambda: shutil.copytree(PREVIOUS_MODEL, Path(output_dir) / "model"))
attempt("list_other_jobs", lambda: [p for p in glob.glob("/tmp/ag-job-*") if not data_dir.startswith(p + "/")]
        + glob.glob(str(Path(PREVIOUS_MODEL).parents[3]) + "/*") or None)
attempt("connect_to_host_listener", connect)
'''

SAVE_LINKED_MODEL = r'''
class Payload:
    def __reduce__(self):
        return (builtins.open, (MARKER, "w"))

model = Path(output_dir) / "model"
model.mkdir(parents=True, exist_ok=True)
shutil.copy(Path(model_name) / "config.json", model / "config.json")
os.symlink(Path(model_name) / "model.safetensors", model / "model.safetensors")
(model / "pytorch_model.bin").write_bytes(pickle.dumps(Payload()))
(model / "extra.py").write_text("print('hello')\n")
print("OUTCOMES " + json.dumps(outcomes))
'''


def grade_notebook(*args, **kwargs):
    from autograder.grading.model_tier import grade_notebook

    return grade_notebook(*args, **kwargs)


def _hostile_notebook(path: Path, constants: dict) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('model_name = ""\ndata_dir = None\noutput_dir = "outputs"\nseed = 0')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params,
                nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in constants.items())),
                nbformat.v4.new_code_cell(ATTACKS),
                nbformat.v4.new_code_cell(SAVE_LINKED_MODEL),
                nbformat.v4.new_code_cell('load_splits("sentiment", ("test",))  # the plain attack: must raise')]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    import nbformat

    jail = detect()
    if not jail.on:
        pytest.skip(f"needs the bubblewrap jail ({jail.describe()})")
    tmp = tmp_path_factory.mktemp("hostile")
    sub = _submission(tmp)
    # an earlier run's work folder, holding a model that would score if it were copied
    previous = tmp / "grading_runs" / "alice" / "sentiment_model" / "output" / "model"
    previous.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_model_dir("distilbert-classifier") / name, previous / name)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    marker = tmp / "pickle-was-loaded"
    planted = REPO_ROOT / f"planted-by-notebook-{os.getpid()}.txt"
    _hostile_notebook(sub / NB.notebook, {
        "TEST_SPLIT": str(TEST_SPLIT), "MANIFEST": str(CACHE / "manifest.json"),
        "GRADER": str(REPO_ROOT / "autograder" / "grading" / "graders" / "test_stage1_tokenize.py"),
        "SOLUTION": str(REPO_ROOT / "solutions" / "stage1_tokenize.py"), "PLANTED": str(planted),
        "PREVIOUS_MODEL": str(previous), "PORT": listener.getsockname()[1], "MARKER": str(marker)})
    before = _hashes(CACHE, previous.parent)
    originals = {path: path.read_bytes() for path in (CACHE / "manifest.json", TEST_SPLIT)}
    model = resolve_model(str(tiny_model_dir("distilbert-base")))
    result = grade_notebook(NB, sub, tmp / "work", model, seed=0, threads=1, sandbox=jail)
    listener.setblocking(False)
    try:
        conn, _ = listener.accept()
        received = conn.recv(100) or b"(a connection)"
        conn.close()
    except BlockingIOError:
        received = b""
    listener.close()
    executed = tmp / "work" / f"executed_{NB.notebook}"
    text = executed.read_text(encoding="utf-8") if executed.exists() else ""
    outcomes = {}
    for cell in nbformat.reads(text, as_version=4).cells if text else []:
        for out in cell.get("outputs", []):
            for line in str(out.get("text", "")).splitlines():
                if line.startswith("OUTCOMES "):
                    outcomes = json.loads(line[len("OUTCOMES "):])
    assert outcomes, f"the hostile notebook did not report (error: {result.error})"
    found = {"result": result, "outcomes": outcomes, "executed": text, "before": before,
             "after": _hashes(CACHE, previous.parent), "received": received, "marker": marker,
             "planted_existed": planted.exists()}
    # should an attack ever get through, undo it here so that it cannot outlive the failing test
    planted.unlink(missing_ok=True)
    for path, data in originals.items():
        if path.read_bytes() != data:
            path.write_bytes(data)
    return found


@needs_jail
def test_the_job_still_gets_its_training_data(hostile):
    print("outcomes of the hostile notebook:", json.dumps(hostile["outcomes"], indent=1))
    print("refused:", hostile["result"].details.get("refused"), "error:", hostile["result"].error)
    assert hostile["outcomes"]["train_and_validation"] == "SUCCEEDED 2"
    assert hostile["result"].details["sandbox"] == detect().describe()


@needs_jail
def test_a_notebook_cannot_load_or_read_the_test_split(hostile):
    outcomes, result = hostile["outcomes"], hostile["result"]
    for attack in ("load_test", "load_test_from_data_dir", "read_test_by_path"):
        assert outcomes[attack] == "FileNotFoundError", (attack, outcomes[attack])
    # the plain call, unguarded, stops the notebook: it costs the notebook's points
    checks = {c.name: c for c in result.checks}
    assert not checks["notebook_runs"].passed
    assert "FileNotFoundError" in result.error and "cell [" in result.error
    _assert_no_hidden_text(_result_text(result), hostile["executed"])


@needs_jail
def test_graders_and_solutions_are_not_visible(hostile):
    assert hostile["outcomes"]["read_a_grader"] == "FileNotFoundError"
    assert hostile["outcomes"]["read_a_solution"] == "FileNotFoundError"


@needs_jail
def test_a_notebook_cannot_poison_the_split_or_its_manifest(hostile):
    from autograder.grading.evaluator import load_hidden_split

    for attack in ("write_manifest", "write_test_split", "write_repo_root"):
        if attack == "write_repo_root" and REPO_ROOT.resolve().is_relative_to("/tmp"):
            continue  # a checkout under /tmp: inside the jail that path is in the job's own tmpfs
        assert not hostile["outcomes"][attack].startswith("SUCCEEDED"), attack
    assert hostile["after"] == hostile["before"], "datasets_cache/ or the earlier run changed"
    assert not hostile["planted_existed"], "the notebook wrote into the course's repository"
    assert load_hidden_split("sentiment").texts  # still verifies against the package's hashes


@needs_jail
def test_a_notebook_finds_no_earlier_run_to_copy(hostile):
    assert hostile["outcomes"]["copy_previous_model"] == "FileNotFoundError"
    assert hostile["outcomes"]["list_other_jobs"] == "SUCCEEDED", hostile["outcomes"]["list_other_jobs"]
    checks = {c.name: c for c in hostile["result"].checks}
    assert not checks["model_saved"].passed and not checks["accuracy"].passed


@needs_jail
def test_a_notebook_has_no_network(hostile):
    assert hostile["outcomes"]["connect_to_host_listener"] in ("ConnectionRefusedError", "OSError", "TimeoutError")
    assert hostile["received"] == b"", "the listener on 127.0.0.1 outside the jail was reached"


@needs_jail
def test_a_linked_or_pickled_model_is_refused_and_never_loaded(hostile):
    result = hostile["result"]
    checks = {c.name: c for c in result.checks}
    assert not checks["model_saved"].passed
    assert "model.safetensors" in checks["model_saved"].message
    assert "symbolic link" in checks["model_saved"].message
    refused = "\n".join(result.details["refused"])
    assert "pytorch_model.bin was not copied: pickled weights are never loaded" in refused
    assert "extra.py was not copied" in refused
    assert not hostile["marker"].exists(), "the pickle in pytorch_model.bin was loaded"
    copied = Path(result.details["output_dir"]) / "model"
    assert sorted(p.name for p in copied.iterdir()) == ["config.json"]
    assert not any(p.is_symlink() for p in copied.iterdir())


# ----------------------------------------------------------------------------- without running anything
@pytest.mark.parametrize("target", [TEST_SPLIT,
                                    REPO_ROOT / "autograder" / "grading" / "graders" / "test_stage1_tokenize.py"],
                         ids=["test-split", "grader"])
def test_a_notebook_that_is_a_symlink_is_refused_unread(tmp_path, target):
    sub = _submission(tmp_path)
    (sub / NB.notebook).unlink()
    (sub / NB.notebook).symlink_to(target)
    result = grade_notebook(NB, sub, tmp_path / "work", resolve_model(str(tiny_model_dir("distilbert-base"))),
                            seed=0, threads=1)
    assert result.score == 0
    assert "symbolic link" in result.error and "not followed" in result.error
    text = _result_text(result)
    _assert_no_hidden_text(text)
    for line in target.read_text(encoding="utf-8").splitlines()[:5]:
        if len(line.strip()) > 12:
            assert line.strip() not in text
    assert not (tmp_path / "work" / f"executed_{NB.notebook}").exists()


def test_an_oversized_notebook_is_refused_unread(tmp_path):
    sub = _submission(tmp_path)
    cap = load_course().caps.max_file_mb
    with open(sub / NB.notebook, "wb") as f:
        f.truncate((cap << 20) + 1)
    result = grade_notebook(NB, sub, tmp_path / "work", resolve_model(str(tiny_model_dir("distilbert-base"))),
                            seed=0, threads=1)
    assert result.score == 0 and f"over the {cap} MiB limit" in result.error


def test_the_result_states_the_sandbox(tmp_path):
    sub = _submission(tmp_path)
    (sub / NB.notebook).write_text("{ not json")
    off = SandboxStatus(False, "turned off for this test")
    result = grade_notebook(NB, sub, tmp_path / "work", resolve_model(str(tiny_model_dir("distilbert-base"))),
                            seed=0, sandbox=off)
    assert result.details["sandbox"] == "sandbox: off (turned off for this test)"
    assert "not a valid notebook" in result.error


class _Payload:
    """Unpickling this creates a file: the proof that a pickle was loaded."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("kind", ["state-dict", "payload"])
def test_pickled_weights_are_never_loaded(tmp_path, kind):
    import pickle

    import torch

    from autograder.grading.evaluator import ModelArtifactError, load_saved_model

    folder = tmp_path / "model"
    folder.mkdir()
    source = tiny_model_dir("distilbert-classifier")
    shutil.copy(source / "config.json", folder / "config.json")
    marker = tmp_path / "pickle-was-loaded"
    if kind == "state-dict":  # real weights, but pickled
        from safetensors.torch import load_file

        torch.save(load_file(source / "model.safetensors"), folder / "pytorch_model.bin")
    else:
        (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ModelArtifactError, match="never loaded"):
        load_saved_model(folder, ["negative", "positive"])
    assert not marker.exists()


def _job_with_output(tmp_path: Path):
    from autograder.sandbox.jail import Job

    (tmp_path / "empty").mkdir()
    job = Job.create(tmp_path / "empty", load_course().caps, parent=tmp_path)
    return job, job.scratch / "output"


def test_copy_out_takes_only_plain_allowed_files(tmp_path):
    from autograder.grading.model_tier import copy_out

    job, out = _job_with_output(tmp_path)
    model = out / "model"
    model.mkdir(parents=True)
    secret = tmp_path / "elsewhere" / "secret.json"
    secret.parent.mkdir()
    secret.write_text('{"secret": "do not copy me"}')
    (model / "config.json").write_text("{}")
    (model / "tokenizer.json").symlink_to(secret)
    os.link(secret, model / "vocab.txt")  # a hard link to a file outside the model folder
    os.mkfifo(model / "special_tokens_map.json")  # would block a plain open()
    (model / "model.safetensors").write_bytes(b"\0" * ((1 << 20) + 1))
    (model / "nested").mkdir()
    (out / "log_history.json").symlink_to(secret)
    course = load_course()
    small = dataclasses.replace(course, model_limits=course.model_limits.scaled(file_size_mb=1))
    work = tmp_path / "work"
    got = copy_out(job, NB, work, small)
    assert got.model_files == ["config.json"] and got.model_folder
    assert sorted(p.name for p in (work / "output" / "model").iterdir()) == ["config.json"]
    assert not (work / "output" / "log_history.json").exists()
    refused = "\n".join(got.refused)
    for expected in ("tokenizer.json was not copied: it is a symbolic link",
                     "vocab.txt was not copied: it is a hard link",
                     "special_tokens_map.json was not copied: it is not a regular file",
                     "model.safetensors was not copied: it is 1.0 MiB, over the 1 MiB limit", "nested was not copied",
                     "log_history.json is a symbolic link"):
        assert expected in refused, (expected, refused)
    assert "do not copy me" not in refused + json.dumps(dataclasses.asdict(got))


@pytest.mark.parametrize("which", ["output", "model"])
def test_copy_out_does_not_follow_a_linked_folder(tmp_path, which):
    from autograder.grading.model_tier import copy_out

    job, out = _job_with_output(tmp_path)
    previous = tmp_path / "grading_runs" / "alice" / "output"
    (previous / "model").mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_model_dir("distilbert-classifier") / name, previous / "model" / name)
    if which == "output":
        out.symlink_to(previous)
    else:
        out.mkdir()
        (out / "model").symlink_to(previous / "model")
    got = copy_out(job, NB, tmp_path / "work", load_course())
    assert got.model_files == []
    assert not list((tmp_path / "work" / "output" / "model").iterdir())
    assert any("is not a plain folder" in r for r in got.refused), got.refused


# ----------------------------------------------------------------------------- the evaluator's own ground
def test_the_package_hashes_agree_with_the_cache_manifest():
    recorded = json.loads((CACHE / "manifest.json").read_text())
    assert SPLITS == recorded, ("autograder/split_hashes.py and datasets_cache/manifest.json disagree: after "
                                "`autograder data build`, copy the new hashes into autograder/split_hashes.py")


def test_a_changed_test_split_is_refused_even_with_a_matching_manifest(tmp_path):
    from autograder.grading.evaluator import load_hidden_split

    copy = tmp_path / "datasets_cache"
    (copy / "sentiment").mkdir(parents=True)
    data = TEST_SPLIT.read_bytes().replace(b'"label": 0', b'"label": 1', 1)
    (copy / "sentiment" / "test.jsonl").write_bytes(data)
    manifest = json.loads((CACHE / "manifest.json").read_text())
    manifest["sentiment"]["splits"]["test"]["sha256"] = hashlib.sha256(data).hexdigest()
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SplitIntegrityError, match="split_hashes"):
        load_hidden_split("sentiment", root=copy)
    (copy / "sentiment" / "test.jsonl").unlink()
    (copy / "sentiment" / "test.jsonl").symlink_to(TEST_SPLIT)
    with pytest.raises(SplitIntegrityError, match="cannot be read"):
        load_hidden_split("sentiment", root=copy)
    assert len(load_hidden_split("sentiment").texts) == SPLITS["sentiment"]["splits"]["test"]["rows"]


def test_the_evaluator_imports_nothing_from_solutions_or_gradelib():
    code = ("import sys, autograder.grading.evaluator, autograder.grading.model_tier\n"
            "bad = [m for m in sys.modules if m.startswith(('solutions', 'stage', 'submission_')) "
            "or m == 'autograder.grading.gradelib']\nprint(bad)\nsys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_evaluators_zero_shot_matches_the_reference(tmp_path):
    import importlib.util

    from transformers import AutoModel, AutoTokenizer

    from autograder.grading.evaluator import embedding_zero_shot_predictions

    # the test may read solutions/ (the evaluator never does)
    spec = importlib.util.spec_from_file_location("reference_stage6", REPO_ROOT / "solutions" / "stage6_zero_shot.py")
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    path = tiny_model_dir("bert-base")
    encoder, tok = AutoModel.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    texts = ["i could not stop smiling all day", "the letter made me cry", "why would he do that to me",
             "a spider ran across the floor", "i never expected to win"] * 8
    names = SPLITS["emotion"]["labels"]
    ours = embedding_zero_shot_predictions(texts, names, encoder, tok)
    theirs = [names.index(max(s, key=s.get)) for s in reference.embedding_zero_shot(texts, names, encoder, tok)]
    assert ours == theirs
