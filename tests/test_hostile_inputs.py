"""Hostile submissions aimed at the grader's inputs and reads, not at the jail.

- A runner thread swaps what it saved in /scratch for symlinks (or hard links) to host files while
  the judge reads it: the judge gets the honest file or a learner message, never the host file.
- A constant output, or a table of answers for the inputs the hidden graders used to fix, no longer
  passes: hidden inputs are drawn from a seed held on the grading side.
- That seed is stable (the same submission scores the same twice) and out of a student's reach:
  the student copy cannot compute it and nothing the runner is sent carries it.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from autograder import REPO_ROOT
from autograder.course.manifest import load_course
from autograder.course.models import tiny_model_dir
from autograder.grading import grade_stage
from autograder.messages import GraderFailure
from autograder.sandbox.jail import SandboxStatus

TOKENIZE = load_course().stage("tokenize")
EVALUATE = load_course().stage("evaluate")
SECRET = "s3cr3t-host-file"
TRIES = 1000

# --------------------------------------------------------------------------- the symlink race
HONEST_CONFIG = {"model_type": "distilbert", "saved_by": "the runner"}


def _honest_state() -> dict:  # torch and safetensors are imported where they are used, not at collection
    import torch

    return {"w": torch.zeros(4)}


class _Job:
    def __init__(self, scratch: Path):
        self.scratch = scratch


class _Runner:
    """What probed_model needs of a runner: its job's scratch folder."""

    def __init__(self, scratch: Path):
        self.job = _Job(scratch)


class _Handle:
    """A model handle whose probe reports the folder the (simulated) runner saved."""

    def __init__(self, scratch: Path):
        self.runner, self.type = _Runner(scratch), "DistilBertForSequenceClassification"

    def probe(self, kind: str) -> dict:
        return {"class": self.type, "dir": "probes/model1"}


def _host_files(tmp_path: Path) -> Path:
    """A host folder the submission would like the judge to read: a secret config, weights, a toml."""
    import torch
    from safetensors.torch import save

    host = tmp_path / "host"
    (host / "model1").mkdir(parents=True)
    (host / "config.json").write_text(json.dumps({"model_type": "distilbert", "secret": SECRET}))
    (host / "course.toml").write_text(f'[course]\nname = "{SECRET}"\n')
    (host / "model.safetensors").write_bytes(save({"w": torch.full((4,), 7.0)}))
    for name in ("config.json", "model.safetensors"):
        shutil.copy(host / name, host / "model1" / name)
    return host


def _swapper(scratch: Path, host: Path, stop: threading.Event, swaps: list) -> None:
    """The runner's thread: over and over, put a symlink (or a hard link) to a host file where a saved
    file or a parent folder is, then put the honest one back."""
    from safetensors.torch import save

    folder, staging = scratch / "probes" / "model1", scratch / "staging"
    config_bytes, state_bytes = json.dumps(HONEST_CONFIG).encode(), save(_honest_state())

    def put(name: str, data: bytes) -> None:
        (staging / name).write_bytes(data)
        os.replace(staging / name, folder / name)

    def link(target: Path, where: Path, hard: bool = False) -> None:
        temp = staging / "link"
        (os.link if hard else os.symlink)(target, temp)
        os.replace(temp, where)

    def swap_dir(where: Path, target: Path) -> None:
        os.rename(where, staging / "real")
        os.symlink(target, where)
        time.sleep(0)
        os.unlink(where)
        os.rename(staging / "real", where)

    moves = [
        lambda: (link(host / "config.json", folder / "config.json"), put("config.json", config_bytes)),
        lambda: (link(host / "course.toml", folder / "config.json"), put("config.json", config_bytes)),
        lambda: (link(host / "model.safetensors", folder / "model.safetensors"),
                 put("model.safetensors", state_bytes)),
        lambda: (link(host / "model.safetensors", folder / "model.safetensors", hard=True),
                 put("model.safetensors", state_bytes)),
        lambda: swap_dir(folder, host),
        lambda: swap_dir(scratch / "probes", host),
    ]
    while not stop.is_set():
        for move in moves:
            move()
            swaps.append(1)


def _race(tmp_path: Path, read) -> tuple[int, int, list[str]]:
    """(honest reads, host files read, failure messages) of ``TRIES`` reads against the swapper."""
    import torch
    from safetensors.torch import save

    scratch = tmp_path / "scratch"
    folder = scratch / "probes" / "model1"
    folder.mkdir(parents=True)
    (scratch / "staging").mkdir()
    (folder / "config.json").write_text(json.dumps(HONEST_CONFIG))
    (folder / "model.safetensors").write_bytes(save(_honest_state()))
    host = _host_files(tmp_path)
    stop, swaps = threading.Event(), []
    thread = threading.Thread(target=_swapper, args=(scratch, host, stop, swaps), daemon=True)
    honest, stolen, failures = 0, 0, []
    thread.start()
    try:
        while not swaps:
            time.sleep(0.001)
        for _ in range(TRIES):
            try:
                config, state = read(_Handle(scratch))
            except (GraderFailure, OSError, ValueError) as exc:  # OSError/ValueError: only a path-based read
                failures.append(str(exc))
                continue
            if config == HONEST_CONFIG and torch.equal(state["w"], _honest_state()["w"]):
                honest += 1
            else:
                stolen += 1
    finally:
        stop.set()
        thread.join()
    return honest, stolen, failures


def _judge_read(handle) -> tuple[dict, dict]:
    from autograder.grading.gradelib import probed_model

    _, saved = probed_model(handle)
    return saved.config, saved.state


def _path_read(handle) -> tuple[dict, dict]:
    """The old way: resolve the path, check it lies in the scratch and holds plain files, then open
    by name (a time-of-check/time-of-use race)."""
    import stat

    from safetensors.torch import load_file

    scratch = handle.runner.job.scratch.resolve()
    folder = (scratch / handle.probe("model")["dir"]).resolve()
    if scratch not in folder.parents or any(not stat.S_ISREG(os.lstat(e.path).st_mode) for e in os.scandir(folder)):
        raise GraderFailure("refused")
    return json.loads((folder / "config.json").read_text()), load_file(str(folder / "model.safetensors"))


def test_symlink_race_against_the_judges_read_never_wins(tmp_path):
    """1,000 reads of a saved model while a runner thread swaps its files and folders for links to
    host files: every read is the honest model or a learner message, never the host's bytes.

    The control first: the same swaps make a check-then-open-by-name read take the host's files."""
    import torch

    (tmp_path / "control").mkdir()
    _, stolen_by_path, _ = _race(tmp_path / "control", _path_read)
    assert stolen_by_path > 0, "the swapper never won against a read by path: the race is not exercised"
    honest, stolen, failures = _race(tmp_path, _judge_read)
    assert stolen == 0, f"the judge read a host file {stolen} times in {TRIES}"
    assert honest + len(failures) == TRIES
    config, state = _judge_read(_Handle(tmp_path / "scratch"))  # the race over, the same read succeeds
    assert config == HONEST_CONFIG and torch.equal(state["w"], _honest_state()["w"])
    assert not [m for m in failures if SECRET in m or str(tmp_path / "host") in m]
    assert all("could not be opened" in m or "not a plain file" in m or "hard link" in m or "linked" in m
               or "without" in m or "changed while" in m for m in failures), sorted(set(failures))[:5]


# --------------------------------------------------------------------------- constants and tables
def _submission(tmp_path: Path, name: str, module: str, source: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / f"{module}.py").write_text(source)
    return folder


def _solution(stage) -> str:
    return (REPO_ROOT / "solutions" / f"{stage.module}.py").read_text()


def _with_function(source: str, name: str, body: str) -> str:
    """The module with ``name`` rebound at its end (the rest of the solution stays honest)."""
    assert f"def {name}(" in body
    return source + f"\n\n{body.strip()}\n"


CONSTANT_TOKENIZE = '''
def tokenize_batch(batch, tokenizer, max_length=128):
    # well-formed, unpadded ids: "[CLS] bad [SEP]" and a 20-word review, whatever the input
    ids = [[101, 2919, 102], [101] + list(range(2000, 2020)) + [102]]
    return {"input_ids": ids, "attention_mask": [[1] * len(i) for i in ids]}
'''


@pytest.fixture(scope="module")
def constant_grades(tmp_path_factory) -> list:
    """The solution with a tokenize_batch that returns one well-formed constant, graded twice."""
    folder = _submission(tmp_path_factory.mktemp("constant"), "constant", TOKENIZE.module,
                         _with_function(_solution(TOKENIZE), "tokenize_batch", CONSTANT_TOKENIZE))
    return [grade_stage(TOKENIZE, folder) for _ in range(2)]


def test_a_constant_tokenize_batch_fails_does_not_pad(constant_grades):
    by_name = {c.name: c for c in constant_grades[0].checks}
    assert not by_name["test_tokenize_batch_does_not_pad"].passed
    assert by_name["test_tokenize_batch_does_not_pad"].message
    assert by_name["test_load_tokenizer_returns_fast_tokenizer"].passed  # the honest part still earns


# The inputs the hidden graders used before they were drawn: what a table would have been built from.
OLD_TEXTS = [
    "a gorgeous, witty, seductive movie.",
    "the film is strictly routine",
    "it's a charming and often affecting journey, though it overstays its welcome by twenty minutes or so.",
    "bad",
]
OLD_LONG = "the plot meanders " * 40
OLD_LOGITS = [[2.0, 0.1, 0.3], [0.2, 1.5, 0.1], [0.1, 0.2, 3.0], [1.0, 0.9, 0.1],
              [0.3, 2.2, 0.2], [0.5, 0.1, 0.4], [0.1, 0.2, 0.3], [1.2, 0.4, 1.1]]
OLD_LABELS = [0, 1, 2, 1, 1, 0, 0, 2]


def _tokenize_table() -> dict:
    """(texts, max_length) -> the tokenizer's input_ids, for every call the old grader made."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir("distilbert-classifier"))
    calls = [(OLD_TEXTS, 32), ([OLD_LONG, "short one"], 8), (["bad", OLD_TEXTS[2]], 64),
             (OLD_TEXTS, 128), (OLD_TEXTS, 16), (OLD_TEXTS[:2][::-1], 128), (OLD_TEXTS[:2][::-1], 16)]
    return {repr((tuple(texts), n)): tok(texts, truncation=True, max_length=n)["input_ids"] for texts, n in calls}


def _metrics_table() -> dict:
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    preds = [max(range(3), key=row.__getitem__) for row in OLD_LOGITS]
    return {"accuracy": float(accuracy_score(OLD_LABELS, preds)),
            **{name: float(fn(OLD_LABELS, preds, average="macro", zero_division=0))
               for name, fn in (("f1", f1_score), ("precision", precision_score), ("recall", recall_score))}}


def test_a_lookup_table_of_the_old_inputs_fails(tmp_path):
    """A submission that answers from a table of the grader's (formerly fixed) inputs, and returns
    something plausible otherwise, passed these checks before the inputs were drawn."""
    table = f'''
TABLE = {_tokenize_table()!r}

def tokenize_batch(batch, tokenizer, max_length=128):
    ids = TABLE.get(repr((tuple(batch["text"]), max_length))) or [[101, 102] for _ in batch["text"]]
    return {{"input_ids": ids, "attention_mask": [[1] * len(i) for i in ids]}}
'''
    folder = _submission(tmp_path, "table", TOKENIZE.module, _with_function(_solution(TOKENIZE), "tokenize_batch",
                                                                           table))
    result = grade_stage(TOKENIZE, folder)
    by_name = {c.name: c for c in result.checks}
    for check in ("test_tokenize_batch_matches_tokenizer", "test_tokenize_batch_truncates",
                  "test_tokenize_batch_does_not_pad", "test_tokenize_dataset_drops_text_and_uses_torch"):
        assert not by_name[check].passed, f"a table of the old inputs passes {check}"
    metrics = f'''
def compute_metrics(eval_pred):
    import numpy as np
    logits, labels = eval_pred
    if np.asarray(logits).round(2).tolist() == {OLD_LOGITS!r} and np.asarray(labels).tolist() == {OLD_LABELS!r}:
        return {_metrics_table()!r}
    return {{"accuracy": 0.5, "f1": 0.5, "precision": 0.5, "recall": 0.5}}
'''
    folder = _submission(tmp_path, "metrics-table", EVALUATE.module,
                         _with_function(_solution(EVALUATE), "compute_metrics", metrics))
    result = grade_stage(EVALUATE, folder)
    by_name = {c.name: c for c in result.checks}
    assert not by_name["test_compute_metrics_on_hand_made_logits"].passed
    assert by_name["test_predict_matches_reference"].passed  # the honest part still earns


# --------------------------------------------------------------------------- the seed out of reach
def _seed_forms() -> list[str]:
    """Every way the course seed, or a check's seed, could be written down."""
    import hashlib

    from autograder.grading.hidden_inputs import check_seed, course_seed

    seed = course_seed()
    forms = [seed.hex(), str(int.from_bytes(seed, "big")), hashlib.sha256(seed).hexdigest()]
    for stage in (TOKENIZE, EVALUATE):
        for name in [stage.module, *stage.checks]:
            forms += [str(check_seed(name)), f"{check_seed(name):x}"]
    return forms


def test_the_seed_is_stable_and_not_in_the_student_copy(constant_grades, tmp_path):
    """The same submission graded twice gets the same inputs, checks and score; the release (what
    students get) cannot compute the seed and holds no form of it."""
    from autograder.grading.hidden_inputs import course_seed, hidden_rng
    from autograder.release import build_release

    first, second = ([(c.name, c.passed, c.score, c.message) for c in r.checks] for r in constant_grades)
    assert first == second and constant_grades[0].score == constant_grades[1].score
    assert len(course_seed()) == 32
    assert [hidden_rng("a check").random() for _ in range(3)] == [hidden_rng("a check").random() for _ in range(3)]
    assert hidden_rng("a check").random() != hidden_rng("another check").random()
    release = tmp_path / "release"
    files = build_release(release, check=False, git=False)
    with pytest.raises(RuntimeError, match="no hidden graders"):
        course_seed(release)  # the student copy has neither the graders nor the hidden splits
    forms = _seed_forms()
    for rel in files:
        data = (release / rel).read_bytes()
        assert not [f for f in forms if f.encode() in data], f"{rel} holds the hidden seed"


SPY = '''
import json as _json, os as _os, sys as _sys
_LOG = LOGFILE

def _spy(what, *args, **kwargs):
    with open(_LOG, "a") as f:
        f.write(_json.dumps([what, repr(args)[:20000], repr(kwargs)[:20000]]) + "\\n")

_spy("argv", _sys.argv, dict(_os.environ))
for _name in ("load_tokenizer", "tokenize_batch", "tokenize_dataset"):
    def _wrap(fn, name=_name):
        def inner(*args, **kwargs):
            _spy(name, *args, **kwargs)
            return fn(*args, **kwargs)
        return inner
    globals()[_name] = _wrap(globals()[_name])
'''


def test_nothing_the_runner_is_sent_carries_the_seed(tmp_path):
    """The solution, logging its argv, environment and every argument it is called with (the sandbox
    off, so it can write the log where the test reads it): full marks, and no trace of the seed."""
    log = tmp_path / "seen.jsonl"
    folder = _submission(tmp_path, "spy", TOKENIZE.module,
                         _solution(TOKENIZE) + SPY.replace("LOGFILE", repr(str(log))))
    result = grade_stage(TOKENIZE, folder, sandbox=SandboxStatus(False, "test"))
    assert result.score == result.max_score, [(c.name, c.message) for c in result.checks]
    seen = log.read_text()
    assert '"tokenize_batch"' in seen and '"argv"' in seen
    assert not [f for f in _seed_forms() if f in seen], "the runner was sent the hidden seed"


class _NoWholeRepr(str):
    """A string from a reply that must be cut before repr (slicing gives a plain str)."""

    def __repr__(self) -> str:
        raise AssertionError("the whole string was repr'd")


def test_messages_cut_values_before_repr():
    """A 50 MB string, a huge list or an int of a million digits in a reply costs the message builder
    nothing: strings are cut before repr, containers show their first items, big ints their size."""
    from autograder.grading.gradelib import describe

    huge = _NoWholeRepr("x" * 50_000_000)
    for value in (huge, [huge, 1], {"input_ids": huge}, (huge,), list(range(10**6)), 10**100_000):
        shown = describe(value)
        assert len(shown) <= 120, shown[:200]
    assert describe(10**100_000).startswith("an int of")
    assert describe(["ab", 1, 2.5, None]) == "['ab', 1, 2.5, None]"


def test_a_saved_config_cannot_make_the_judge_build_something_else(tmp_path):
    """What the runner saved is rebuilt from its bytes; a config far larger than its weights, one that
    loads remote code or asks for ten million labels is refused before anything is allocated."""
    from safetensors.torch import save
    from transformers import AutoModelForSequenceClassification

    from autograder.grading.scratch_files import ScratchError, read_saved_model, rebuild

    folder = tmp_path / "scratch" / "probes" / "model1"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(save(_honest_state()))
    for config, words in (({"n_layers": 200, "dim": 4096, "n_heads": 16, "hidden_dim": 16384}, "MiB model"),
                          ({"auto_map": {"AutoModel": "evil.Model"}}, "auto_map"),
                          ({"num_labels": 10_000_000}, "labels")):
        (folder / "config.json").write_text(json.dumps({"model_type": "distilbert", **config}))
        saved = read_saved_model(tmp_path / "scratch", "probes/model1", 1 << 20)
        started = time.monotonic()
        with pytest.raises(ScratchError, match=words):
            rebuild(saved, AutoModelForSequenceClassification, "the returned model")
        assert time.monotonic() - started < 5
