"""The trusted evaluator against a hostile saved model: what it builds is bounded by the course model.

The evaluator runs in the grading process, so whatever a saved ``config.json`` describes is built and
run there. Each attack below once made it build far more than the course model (a BERT-large shape
was 335 M parameters and about an hour of CPU on the hidden split) or load it in a way the course
never asked for; each is now refused before anything is built, with a message that says what differs.
``from_pretrained`` is replaced by a spy that fails the test if an attack reaches it. An honest model
still scores, and scoring stops at the manifest's ``score_timeout`` with a message that costs only the
notebook's thresholds.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import struct
import time
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import pytest

from autograder.course.manifest import load_course, manifest_path
from autograder.course.models import packaged_encoder_path, resolve_model, tiny_model_dir

if TYPE_CHECKING:
    from autograder.grading.evaluator import HiddenSplit

# torch, transformers and the evaluator are imported where they are used: collecting the suite costs
# nothing of them, and tiny_model_dir builds its models (once) when a test runs, not at collection.

LABELS = ["negative", "positive"]
NB = load_course().notebook("sentiment_model")
BERT_LARGE = {"model_type": "bert", "architectures": ["BertForSequenceClassification"], "hidden_size": 1024,
              "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096, "vocab_size": 30522,
              "max_position_embeddings": 512, "type_vocab_size": 2, "id2label": {"0": "negative", "1": "positive"},
              "label2id": {"negative": 0, "positive": 1}}


@pytest.fixture()
def built(monkeypatch) -> list:
    """Every call of from_pretrained on a classifier; the spy raises, so nothing is ever built by it."""
    from transformers import AutoModelForSequenceClassification

    calls: list = []

    def spy(*args, **kwargs):
        calls.append(args)
        raise AssertionError("from_pretrained was reached")

    monkeypatch.setattr(AutoModelForSequenceClassification, "from_pretrained", staticmethod(spy))
    return calls


def _header(path: Path) -> dict:
    data = path.read_bytes()
    return json.loads(data[8:8 + struct.unpack("<Q", data[:8])[0]])


def _write_safetensors(path: Path, tensors: dict[str, dict], data: bytes = b"") -> None:
    header = json.dumps(tensors).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)


def _honest_config() -> dict:
    return json.loads((tiny_model_dir("distilbert-classifier") / "config.json").read_text())


def _course() -> str:  # what tiny_model_dir("distilbert-classifier") was built like
    return str(tiny_model_dir("distilbert-base"))


TINY_WEIGHTS = {"classifier.bias": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}


def _saved(folder: Path, config: dict, tensors: dict | None = None) -> Path:
    """A saved-model folder with this config, and a fake safetensors file of these tensors (zero bytes of
    data) or, without them, the honest tiny classifier's weights."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    if tensors is None:
        shutil.copy(tiny_model_dir("distilbert-classifier") / "model.safetensors", folder / "model.safetensors")
    else:
        _write_safetensors(folder / "model.safetensors", tensors, bytes(8))
    return folder


def _grade_with_saved(tmp_path: Path, monkeypatch, plant, *, nb=NB, course: str | None = None):
    """grade_notebook with the notebook's run replaced by ``plant(model_folder)``: what a notebook saved."""
    import nbformat

    from autograder.grading import model_tier

    course = course or _course()
    sub = tmp_path / "submission"
    sub.mkdir()
    nbformat.write(nbformat.v4.new_notebook(), sub / nb.notebook)

    def run(nb, job, *args):
        plant(job.scratch / "output" / "model")
        return ""

    monkeypatch.setattr(model_tier, "_execute", run)
    start = time.perf_counter()
    result = model_tier.grade_notebook(nb, sub, tmp_path / "work", resolve_model(course), seed=0, threads=1)
    checks = {c.name: c for c in result.checks}
    assert checks["notebook_runs"].passed and time.perf_counter() - start < 60
    return result, checks


def _refused(tmp_path, monkeypatch, built, config: dict, tensors: dict | None = None, *,
             course: str | None = None) -> str:
    """model_saved's message for this saved model, which must fail it without anything being built."""
    result, checks = _grade_with_saved(tmp_path, monkeypatch, lambda folder: _saved(folder, config, tensors),
                                       course=course)
    assert built == [], "the saved model was built"
    assert not checks["model_saved"].passed and result.score == checks["notebook_runs"].score
    assert all("not scored" in checks[metric].message for metric in NB.thresholds)
    return checks["model_saved"].message


# ----------------------------------------------------------------------------- the architecture
def test_a_bert_large_config_is_refused_before_any_weights_are_built(tmp_path, monkeypatch, built):
    message = _refused(tmp_path, monkeypatch, built, BERT_LARGE, TINY_WEIGHTS, course=str(packaged_encoder_path()))
    assert "24 layers where the course model has 6" in message, message
    assert "hidden_size 1024 where the course model has 384" in message
    assert "trainer.save_model(...) or model.save_pretrained(...)" in message


def test_a_shape_hidden_behind_an_alias_is_refused(tmp_path, monkeypatch, built):
    """DistilBERT's hidden_size is an alias of dim, and the alias wins when a config has both: an honest
    dim next to hidden_size 4096 would build a 4096-wide model."""
    message = _refused(tmp_path, monkeypatch, built, {**_honest_config(), "hidden_size": 4096})
    assert "dim 4096 where the course model has 32" in message, message


def test_another_model_type_is_refused(tmp_path, monkeypatch, built):
    message = _refused(tmp_path, monkeypatch, built, BERT_LARGE, TINY_WEIGHTS)
    assert "model_type 'bert' where the course model is 'distilbert'" in message, message


@pytest.mark.parametrize("extra, why", [
    ({"auto_map": {"AutoModelForSequenceClassification": "evil.Model"}}, "auto_map"),
    ({"attn_implementation": "flash_attention_2"}, "attn_implementation"),  # transformers fetches kernels from the Hub
    ({"quantization_config": {"quant_method": "bitsandbytes", "load_in_4bit": True}}, "quantization_config"),
    ({"num_labels": 10_000_000}, "10000000 outputs, the task has 2 labels"),  # a minute of CPU to build the config
    ({"padding": "x" * (2 << 20)}, "over the 1048576 bytes"),  # a config is ~1 KB: never parsed beyond the cap
], ids=["auto_map", "attention-kernel", "quantization", "ten-million-labels", "oversized"])
def test_configs_that_change_how_a_model_is_loaded_are_refused(tmp_path, monkeypatch, built, extra, why):
    message = _refused(tmp_path, monkeypatch, built, {**_honest_config(), **extra})
    assert why in message, message


def test_honest_config_with_huge_declared_weights_is_refused(tmp_path, monkeypatch, built):
    """The config tells the truth; the safetensors header declares a 10^10-value tensor (the file holds none
    of it: only the header is read)."""
    tensors = _header(tiny_model_dir("distilbert-classifier") / "model.safetensors")
    tensors["distilbert.embeddings.extra.weight"] = {"dtype": "F32", "shape": [100_000, 100_000],
                                                     "data_offsets": [0, 8]}
    message = _refused(tmp_path, monkeypatch, built, _honest_config(), tensors)
    assert re.search(r"declare 1000\d\.\d M values where the course model with a 2-label head has 1\.\d M", message)


def test_a_half_precision_config_is_scored_in_fp32(tmp_path):
    """bf16 on CPU is ~100x slower than fp32: a config asking for it must not slow the evaluator down."""
    import torch

    from autograder.grading.evaluator import load_saved_model

    folder = _saved(tmp_path / "model", {**_honest_config(), "dtype": "bfloat16"})
    model, _ = load_saved_model(folder, LABELS)
    assert {p.dtype for p in model.parameters()} == {torch.float32}


# ----------------------------------------------------------------------------- honest models
def _split(n: int = 24) -> HiddenSplit:
    from autograder.grading.evaluator import HiddenSplit

    texts = [f"a {'good' if i % 2 else 'bad'} film, number {i}" for i in range(n)]
    return HiddenSplit(texts, [i % 2 for i in range(n)], LABELS)


def test_an_honest_tiny_model_still_scores():
    from transformers import AutoTokenizer

    from autograder.grading.evaluator import score_saved_model

    tok = AutoTokenizer.from_pretrained(_course())
    ev = score_saved_model(tiny_model_dir("distilbert-classifier"), _split(), tok, seed=0, course_model=_course(),
                           time_limit=NB.score_timeout)
    assert ev.n == 24 and 0 <= ev.accuracy <= 1


def test_a_model_saved_from_the_course_model_still_scores(tmp_path):
    """The packaged course model (BERT, 6 layers, 384 wide) with a fresh 2-label head, as stage 2 builds it
    and trainer.save_model writes it."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from autograder.grading.evaluator import score_saved_model

    course = str(packaged_encoder_path())
    config = AutoConfig.from_pretrained(course, num_labels=2, id2label=dict(enumerate(LABELS)),
                                        label2id={n: i for i, n in enumerate(LABELS)})
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(tmp_path / "model")
    tok = AutoTokenizer.from_pretrained(course)
    ev = score_saved_model(tmp_path / "model", _split(), tok, seed=0, course_model=course, time_limit=60)
    assert ev.n == 24


# ----------------------------------------------------------------------------- the time limit
def test_scoring_stops_between_batches_at_the_deadline(monkeypatch):
    """A model whose every batch takes 10 s (a fake clock): with a deadline at 25 s it scores 3 batches and stops."""
    import torch
    from transformers import AutoTokenizer

    from autograder.grading import evaluator
    from autograder.grading.evaluator import ScoringTimeout, predict_indices

    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr(evaluator, "time", SimpleNamespace(monotonic=lambda: clock.now))

    class SlowModel:
        device = torch.device("cpu")

        def __call__(self, input_ids, **_):
            clock.now += 10
            return SimpleNamespace(logits=torch.zeros(len(input_ids), 2))

    tok = AutoTokenizer.from_pretrained(_course())
    with pytest.raises(ScoringTimeout, match="^192 of 300$"):
        predict_indices(SlowModel(), tok, [f"text {i}" for i in range(300)], [0, 1], batch_size=64, deadline=25)
    assert clock.now == 30


def test_a_slow_scoring_stops_with_a_message():
    from transformers import AutoTokenizer

    from autograder.grading.evaluator import ScoringTimeout, score_saved_model

    tok = AutoTokenizer.from_pretrained(_course())
    with pytest.raises(ScoringTimeout, match=r"took longer than the 0 s limit and was stopped after 0 of 24 texts"):
        score_saved_model(tiny_model_dir("distilbert-classifier"), _split(), tok, seed=0, course_model=_course(),
                          time_limit=0)


def test_the_manifest_sets_the_scoring_limit_with_a_default(tmp_path):
    """course.toml's score_timeout is read per notebook; a manifest from before it still loads (600 s)."""
    assert all(nb.score_timeout > 0 for nb in load_course().notebooks)
    text = manifest_path().read_text(encoding="utf-8")
    older = tmp_path / "course.toml"
    older.write_text("\n".join(line for line in text.splitlines() if not line.startswith("score_timeout")))
    assert {nb.score_timeout for nb in load_course(older).notebooks} == {600.0}


# ----------------------------------------------------------------------------- through the model tier
def test_the_model_tier_stops_a_slow_scoring_at_the_manifests_limit(tmp_path, monkeypatch):
    def plant(folder: Path) -> None:
        shutil.copytree(tiny_model_dir("distilbert-classifier"), folder)

    _, checks = _grade_with_saved(tmp_path, monkeypatch, plant, nb=dataclasses.replace(NB, score_timeout=0))
    assert checks["model_saved"].passed  # it loaded; only its score is unknown
    assert not checks["accuracy"].passed
    assert "not scored: scoring the hidden test texts took longer than the 0 s limit" in checks["accuracy"].message
