"""The blind second reading of the emotion corpus: the records of the sets it is built from cover
their texts, no disputed text is in it, and the data card states what scripts/blind_relabel.py
computes from them (issue 22, item 1)."""

from __future__ import annotations

import json
import re

import pytest
from script_modules import load_script

from autograder import REPO_ROOT

CARD = REPO_ROOT / "datasets_cache" / "emotion" / "DATA_CARD.md"


@pytest.fixture(scope="module")
def script():
    return load_script("blind_relabel")


@pytest.fixture(scope="module")
def section() -> str:
    text = CARD.read_text(encoding="utf-8")
    return text.split("## Second reading", 1)[1].split("\n## ", 1)[0]


def test_each_source_sets_record_covers_its_texts_exactly_once(script):
    from autograder.course.data import spec

    names = spec("emotion")["source_sets"]
    assert names, "course.toml names the sets the corpus is built from"
    for name in names:
        texts, record, _ = script.SETS[name]
        rows = script.load_corpus(texts)
        rec = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines() if line.strip()]
        assert sorted(r["id"] for r in rec) == list(range(len(rows))), name
        assert all(r["second"] in script.LABELS for r in rec)
        assert script.load_record(record, texts) == rec                   # its own staleness check passes too
    assert not script.RECORD.exists(), "a reading of the assembled corpus: state it in the data card"


def test_card_states_the_figures_agreement_prints(script, section):
    f = script.figures(script.source_record())
    assert script.markdown(f) in section, "DATA_CARD.md is stale: copy `blind_relabel.py agreement`'s table"
    stated = {(o, s): int(k) for o, s, k in re.findall(r"^- (\w+) -> (\w+): (\d+)", section, re.M)}
    assert stated == dict(f.confusions)


def test_no_disputed_text_is_in_the_corpus(script):
    corpus = {r["text"] for r in script.load_corpus()}
    for name in {r["set"] for r in script.source_record()}:
        texts, record, _ = script.SETS[name]
        rows = script.load_corpus(texts)
        disputed = [rows[r["id"]]["text"] for r in script.load_record(record, texts) if r["original"] != r["second"]]
        assert disputed and not corpus & set(disputed), name


def test_kappa_matches_sklearn(script):
    from sklearn.metrics import cohen_kappa_score

    rec = script.source_record()
    ours = script.figures(rec).kappa
    assert ours == pytest.approx(cohen_kappa_score([r["original"] for r in rec], [r["second"] for r in rec]))


def test_prepare_hides_label_split_and_order(script, tmp_path):
    paths = script.prepare(work=tmp_path)
    corpus = script.load_corpus()
    lines = [line.split("\t") for p in paths for line in p.read_text(encoding="utf-8").splitlines()]
    assert all(len(parts) == 2 for parts in lines)                           # id and text, nothing else
    assert sorted(t for _, t in lines) == sorted(r["text"] for r in corpus)  # every text once
    assert {oid for oid, _ in lines} == set(script.opaque_ids(corpus))
    assert [t for _, t in lines[:50]] != [r["text"] for r in corpus[:50]]    # shuffled
    assert max(len(p.read_text().splitlines()) for p in paths) <= script.BATCH_SIZE


def test_figures_on_a_small_record(script):
    rec = [{"original": "joy", "second": "joy"}, {"original": "joy", "second": "surprise"},
           {"original": "fear", "second": "fear"}, {"original": "fear", "second": "fear"}]
    f = script.figures(rec)
    assert (f.agree, f.overall, f.share("joy"), f.share("fear")) == (3, 0.75, 0.5, 1.0)
    assert f.confusions == [(("joy", "surprise"), 1)]
    assert f.to_fix("joy") == 1 and f.to_fix("fear") == 0    # 2 joy texts: 85% needs both
