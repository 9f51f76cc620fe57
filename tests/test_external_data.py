"""Outside data: a Hub-style emotion folder or JSONL files go through the notebooks' ``data_dir``,
checked for shape and labels (never against the course's hashes) and sampled to the course's sizes."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest
from test_data import EMOTION_LABELS, _emotion_folder, hub_cache  # noqa: F401 - hub_cache is a fixture

from autograder import REPO_ROOT
from autograder.course.data import DataIntegrityError, load_splits
from autograder.course.external import ExternalDataError, course_sizes
from autograder.course.sources import load_hub_splits


def test_a_hub_style_folder_loads_through_data_dir(tmp_path, hub_cache, capsys):  # noqa: F811
    folder = _emotion_folder(tmp_path / "emotion", EMOTION_LABELS)
    out = load_splits("emotion", ("train", "validation"), data_dir=folder)
    assert {s: len(d) for s, d in out.items()} == {"train": 600, "validation": 120}  # under the course's sizes
    assert out["train"].features["label"].names == EMOTION_LABELS
    assert all(row["text"].endswith(EMOTION_LABELS[row["label"]]) for row in out["train"].select(range(30)))
    said = capsys.readouterr().out
    assert "outside data" in said and "Hub-style" in said and "not against the course's hashes" in said


def test_dair_ai_emotion_is_sampled_to_the_course_sizes_unless_full(tmp_path, hub_cache):  # noqa: F811
    folder = _emotion_folder(tmp_path / "big", EMOTION_LABELS)
    sizes = course_sizes("emotion")
    small = {"train": 300, "validation": 60, "test": 90}
    from autograder.course import external

    original = external.course_sizes
    try:
        external.course_sizes = lambda name: small
        out = load_hub_splits("emotion", hub_id=str(folder))
    finally:
        external.course_sizes = original
    assert {s: len(d) for s, d in out.items()} == small
    assert set(Counter(out["train"]["label"]).values()) == {50}, "each label keeps its share"
    again = load_hub_splits("emotion", hub_id=str(folder), full=True)
    assert len(again["train"]) == 600
    from autograder.course.split_hashes import SPLITS

    # the course's own emotion splits are what dair-ai/emotion is cut to
    assert sizes == {s: v["rows"] for s, v in SPLITS["emotion"]["splits"].items()}


def test_jsonl_with_label_names_in_another_order(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    rows = [{"text": f"i feel {name} today {i}", "label": name} for i in range(3) for name in EMOTION_LABELS[::-1]]
    for split in ("train", "validation"):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = load_splits("emotion", data_dir=folder)
    assert len(out["train"]) == 18
    assert all(row["text"].split()[2] == EMOTION_LABELS[row["label"]] for row in out["validation"])


@pytest.mark.parametrize("problem, expected", [
    ("no_validation", "has no 'validation' split; it has ['train']"),
    ("unknown_label", "not the course's"),
    ("no_text", "has no text column"),
    ("label_out_of_range", "expected the names"),
])
def test_bad_outside_data_gets_a_clear_message(tmp_path, problem, expected):
    folder = tmp_path / problem
    folder.mkdir()
    row = {"text": "i am fine", "label": "joy"}
    if problem == "unknown_label":
        row["label"] = "boredom"
    if problem == "no_text":
        row = {"post": "i am fine", "label": "joy"}
    if problem == "label_out_of_range":
        row["label"] = 9
    for split in ("train",) if problem == "no_validation" else ("train", "validation"):
        (folder / f"{split}.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(ExternalDataError) as err:
        load_splits("emotion", data_dir=folder)
    assert expected in str(err.value)


def test_a_course_copy_that_was_changed_is_still_refused_with_useful_advice(tmp_path):
    copy = tmp_path / "cache"
    shutil.copytree(REPO_ROOT / "datasets_cache", copy, ignore=shutil.ignore_patterns("*corpus*"))
    path = copy / "emotion" / "train.jsonl"
    path.write_text(path.read_text().replace("i ", "I ", 1))
    with pytest.raises(DataIntegrityError) as err:
        load_splits("emotion", data_dir=copy)
    assert "without a manifest.json" in str(err.value) and "git checkout" not in str(err.value)


def test_the_capstone_notebook_trains_on_a_hub_style_folder(tmp_path, hub_cache, monkeypatch):  # noqa: F811
    """The real-data path end to end: the emotion notebook with data_dir = a dair-ai/emotion-shaped folder."""
    import papermill as pm

    from autograder.course.models import tiny_model_dir
    from autograder.grading.nbrun import KERNEL_NAME, write_kernelspec

    folder = _emotion_folder(tmp_path / "dair-ai-emotion", EMOTION_LABELS)
    work = tmp_path / "work"
    shutil.copytree(REPO_ROOT / "solutions", work, ignore=shutil.ignore_patterns("__pycache__", "checks"))
    monkeypatch.setenv("JUPYTER_PATH", str(write_kernelspec(tmp_path / "jupyter")))
    monkeypatch.setenv("COURSE_MODEL", str(tiny_model_dir("distilbert-base")))
    out = tmp_path / "out"
    pm.execute_notebook(str(work / "emotion.ipynb"), str(tmp_path / "executed.ipynb"), kernel_name=KERNEL_NAME,
                        cwd=str(work), progress_bar=False,
                        parameters={"model_name": str(tiny_model_dir("distilbert-base")), "data_dir": str(folder),
                                    "output_dir": str(out), "epochs": 1, "max_length": 32, "num_threads": 1})
    executed = (tmp_path / "executed.ipynb").read_text()
    assert "outside data from" in executed and "train 600, validation 120 rows" in executed
    assert (out / "model" / "model.safetensors").is_file()
    predictions = (out / "validation_predictions.jsonl").read_text().splitlines()
    assert len(predictions) == 120
