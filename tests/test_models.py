"""Model resolution is local-only and fast; tiny models are deterministic and well-shaped."""

from __future__ import annotations

import time

from autograder.course.models import NLI_LABELS, packaged_encoder_path, resolve_model, tiny_model_dir


def test_default_resolves_offline_to_the_packaged_encoder_fast(monkeypatch, tmp_path):
    # No HF_HUB_OFFLINE, an empty cache: resolution must still never touch the network.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("COURSE_MODEL", raising=False)
    monkeypatch.delenv("COURSE_ONLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    start = time.monotonic()
    resolved = resolve_model()
    elapsed = time.monotonic() - start
    assert resolved.source == "packaged"
    assert resolved.path == str(packaged_encoder_path())
    assert "distilbert-base-uncased" in resolved.describe() and "all-MiniLM-L6-v2" in resolved.describe()
    assert elapsed < 5


def test_cached_hub_model_wins_over_the_packaged_one(monkeypatch, tmp_path):
    snap = tmp_path / "models--distilbert-base-uncased" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    (tmp_path / "models--distilbert-base-uncased" / "refs").mkdir()
    (tmp_path / "models--distilbert-base-uncased" / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    resolved = resolve_model("distilbert-base-uncased")
    assert resolved.source == "hf-cache" and resolved.path == str(snap)


def test_local_folder_and_online_mode(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    assert resolve_model(str(tmp_path)).source == "local-path"
    monkeypatch.setenv("COURSE_MODEL", "distilbert-base-uncased")
    online = resolve_model(online=True)
    assert online.source == "hub" and online.path == "distilbert-base-uncased"


def test_tiny_models_use_the_real_vocabulary_and_nli_labels():
    from transformers import AutoConfig, AutoTokenizer

    nli = AutoConfig.from_pretrained(tiny_model_dir("nli"))
    assert tuple(nli.id2label[i] for i in range(3)) == NLI_LABELS
    distil = AutoConfig.from_pretrained(tiny_model_dir("distilbert-classifier"))
    assert distil.model_type == "distilbert" and distil.num_labels == 2
    tok = AutoTokenizer.from_pretrained(tiny_model_dir("distilbert-classifier"))
    real = AutoTokenizer.from_pretrained(packaged_encoder_path())
    assert tok("Fine-tuning works.")["input_ids"] == real("Fine-tuning works.")["input_ids"]
