"""The capstone's online NLI path (issue 13), with the tiny NLI model standing in for
facebook/bart-large-mnli: ``nli_model`` set adds "fine-tuned vs NLI zero-shot" beside the
embedding comparison; empty (offline, the default and the grader's run) it is skipped.

One papermill run of the reference emotion notebook on a tiny random encoder, 1 epoch (~30 s).
"""

from __future__ import annotations

import shutil

from autograder import REPO_ROOT
from autograder.course.models import tiny_model_dir
from autograder.course.notebook import comparison_table
from autograder.grading.nbrun import KERNEL_NAME, write_kernelspec


def _read(path):
    import nbformat  # nbformat and papermill (~2 s) are imported when a test runs, not at collection

    return nbformat.read(path, as_version=4)


def _stdout(nb) -> str:
    return "".join(o.text for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                   if o.output_type == "stream" and o.name == "stdout")


def test_the_emotion_notebook_compares_with_nli_zero_shot(tmp_path, monkeypatch):
    import papermill

    sub = tmp_path / "submission"
    shutil.copytree(REPO_ROOT / "solutions", sub, ignore=shutil.ignore_patterns("__pycache__", "checks"))
    monkeypatch.setenv("JUPYTER_PATH", str(write_kernelspec(tmp_path / "jupyter")))
    nli = tiny_model_dir("nli")
    papermill.execute_notebook(
        str(sub / "emotion.ipynb"), str(tmp_path / "executed.ipynb"), kernel_name=KERNEL_NAME, cwd=str(sub),
        progress_bar=False,
        parameters={"model_name": str(tiny_model_dir("distilbert-base")), "epochs": 1, "num_threads": 1,
                    "output_dir": str(tmp_path / "outputs"), "nli_model": str(nli), "nli_max_seconds": 120})
    out = _stdout(_read(tmp_path / "executed.ipynb"))

    n = len((REPO_ROOT / "datasets_cache" / "emotion" / "validation.jsonl").read_text().splitlines())
    assert f"fine-tuned vs NLI zero-shot, {n} validation texts:" in out, out[-3000:]
    rows = [line for line in out.splitlines() if line.startswith(("embedding zero-shot", "NLI zero-shot"))]
    assert any(r.startswith(f"NLI zero-shot ({nli.name})") for r in rows), rows
    assert any(r.startswith("embedding zero-shot") for r in rows), rows  # beside the embedding comparison
    assert "NLI zero-shot: skipped" not in out


def test_the_comparison_table_reads_stage6_compare_predictions():
    """The table's columns come from stage 6's compare_predictions (fine-tuned = a, zero-shot = b)."""
    comparison = {"accuracy_a": 0.7, "accuracy_b": 0.4, "agreement": 0.5, "b01": 30, "b10": 5, "mcnemar_p": 1.2e-5}
    table = comparison_table({"NLI zero-shot (bart-large-mnli)": (comparison, 40)}).splitlines()
    assert "McNemar p" in table[0]
    assert table[1].split() == ["NLI", "zero-shot", "(bart-large-mnli)", "40", "0.700", "0.400", "0.50", "30", "5",
                                "1.2e-05"]


def test_the_keyword_model_knows_only_the_words_it_met_in_training():
    """The capstone's keyword row: seen feeling words decide, unseen ones give it nothing to go on."""
    from autograder.course.notebook import keyword_predictions

    train, labels = ["i feel gloomy today", "so gloomy and low", "i feel cheerful today", "so cheerful and bright"], \
        [0, 0, 1, 1]
    assert keyword_predictions(train, labels, ["gloomy again", "cheerful again"]) == [0, 1]
    forlorn, elated = keyword_predictions(train, labels, ["forlorn again", "elated again"])
    assert forlorn == elated  # both words unseen: the same guess, whatever they mean


def test_the_nli_parameter_is_empty_in_the_released_notebook():
    """Offline (and in the grader's run) the NLI comparison is skipped, never attempted."""
    for tree in ("solutions", "exercises"):
        nb = _read(REPO_ROOT / tree / "emotion.ipynb")
        params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        assert 'nli_model = ""' in params.source and "nli_max_seconds = " in params.source


def test_the_time_cap_compares_on_the_texts_scored_so_far(capsys):
    """The NLI cell, run on its own: each call of nli_zero_shot takes longer than the cap, so only
    the first batch (8 texts) is scored and compared."""
    import importlib.util
    import time
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("reference_stage6", REPO_ROOT / "solutions" / "stage6_zero_shot.py")
    stage6 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage6)

    class SlowStage6:
        compare_predictions = staticmethod(stage6.compare_predictions)

        @staticmethod
        def nli_zero_shot(texts, labels, model, tokenizer):
            time.sleep(0.2)
            return [{label: float(label == "joy") for label in labels} for _ in texts]

    nb = _read(REPO_ROOT / "solutions" / "emotion.ipynb")
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and "nli_max_seconds" in c.source and "tqdm" in c.source]
    labels = ["sadness", "joy", "love", "anger", "fear", "surprise"]
    texts = [f"text {i}" for i in range(40)]
    namespace = {"nli_model": str(tiny_model_dir("nli")), "nli_max_seconds": 0.1, "Path": Path,
                 "dataset": {"validation": {"text": texts}}, "label_names": labels, "stage6_zero_shot": SlowStage6,
                 "y_true": [1] * 40, "y_pred": [0] * 40, "comparisons": {}, "comparison_table": comparison_table}
    exec(compile(cell.source, "nli cell", "exec"), namespace)  # noqa: S102 - the notebook's own cell
    out = capsys.readouterr().out

    assert "time cap: NLI zero-shot scored the first 8 of 40 texts" in out, out
    (row,) = namespace["comparisons"].values()
    assert row[1] == 8 and row[0]["accuracy_b"] == 1.0 and row[0]["accuracy_a"] == 0.0
    assert "fine-tuned vs NLI zero-shot, 8 validation texts:" in out
