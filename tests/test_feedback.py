"""Per-student feedback: Markdown, a self-contained HTML page with plots, and its rendering in Chromium."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path

import pytest

from autograder.course.manifest import load_course
from autograder.grading import stage_result
from autograder.reports.feedback import feedback_html, feedback_markdown, learning_curve_png, plots, write_feedback
from autograder.reports.results import CheckResult, GradeResult, StageResult

CHROMIUM = Path("/usr/bin/chromium")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LONGREPR = (">       assert 'padding' not in kwargs\n"
            "E       AssertionError: tokenize_batch pads every text; leave padding to the collator\n"
            "E       assert False\n\nautograder/grading/graders/test_stage1_tokenize.py:41: AssertionError")
HINT = "Call the tokenizer on batch['text'] with truncation=True. Do not pad."
EMOTIONS = ["sadness", "joy", "love", "anger", "fear", "surprise"]


def write_history(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    history = [{"loss": round(1.8 * 0.85 ** i + 0.2, 4), "grad_norm": 3.0, "learning_rate": 1e-4,
                "epoch": (i + 1) / 4, "step": 10 * (i + 1)} for i in range(16)]
    history += [{"eval_loss": 1.0 - 0.1 * e, "eval_accuracy": 0.6 + 0.05 * e, "epoch": e + 1,
                 "step": 40 * (e + 1)} for e in range(4)]
    history.append({"train_runtime": 12.0, "train_loss": 0.7, "epoch": 4.0, "step": 160})
    (folder / "log_history.json").write_text(json.dumps(history))
    return folder


def model_stage(stage_id: str, labels: list[str], output_dir: Path | None, *, zero_shot: bool) -> StageResult:
    k = len(labels)
    confusion = [[40 if i == j else (i + 2 * j) % 5 for j in range(k)] for i in range(k)]
    per_class = {n: {"precision": 0.8, "recall": 0.7 + 0.02 * i, "f1": 0.75, "support": sum(confusion[i])}
                 for i, n in enumerate(labels)}
    details = {"evaluation": {"n": sum(map(sum, confusion)), "accuracy": 0.7123,
                              "accuracy_ci": [0.6712, 0.7501], "macro_f1": 0.4987,
                              "macro_f1_ci": [0.4512, 0.5433], "per_class": per_class,
                              "confusion": confusion, "labels": labels},
               "executed_notebook": "/grading/work/executed.ipynb"}
    if output_dir is not None:
        details["output_dir"] = str(output_dir)
    if stage_id in {n.id for n in load_course().notebooks}:  # the model tier records its thresholds
        details["thresholds"] = dict(load_course().notebook(stage_id).thresholds)
    if zero_shot:
        details["zero_shot"] = {"method": "embedding zero-shot (mean-pooled encoder, 'This example is {}.')",
                                "zero_shot_accuracy": 0.4102, "fine_tuned_accuracy": 0.7123,
                                "agreement": 0.45, "fine_tuned_only_right": 170, "zero_shot_only_right": 18,
                                "mcnemar_p": 1.2e-30}
    failed = [CheckResult("macro_f1", False, 0.0, 3.0, "macro_f1 0.499 (95% CI 0.451-0.543): the lower bound "
                          "must reach 0.50; train longer or check the training set-up", hidden=False)]
    return StageResult(stage_id, f"{stage_id} notebook", 7.0, 10.0, [
        CheckResult("notebook_runs", True, 2.0, 2.0, "the notebook ran from top to bottom", hidden=False),
        CheckResult("model_saved", True, 2.0, 2.0, "the trained model was saved and loads", hidden=False),
        CheckResult("accuracy", True, 3.0, 3.0, "accuracy 0.712 on 228 hidden test texts", hidden=False),
        *failed], tier="model", duration_s=200.0, details=details)


def make_result(tmp_path: Path, *, stage_id: str = "emotion_model", labels=EMOTIONS,
                zero_shot=True) -> GradeResult:
    return GradeResult(submission="submissions/alice", model="tiny-bert", duration_s=250.0, stages=[
        StageResult("tokenize", "Tokenize a dataset", 3.0, 5.0, [
            CheckResult("test_load_tokenizer_returns_fast_tokenizer", True, 1.0, 1.0),
            CheckResult("test_tokenize_batch_does_not_pad", False, 0.0, 2.0, LONGREPR),
            CheckResult("test_tokenize_dataset_keeps_splits_and_labels", True, 2.0, 2.0)],
            hint=HINT, duration_s=12.0),
        StageResult("model", "Load a pretrained encoder", 0.0, 2.0, [
            CheckResult("test_label_maps_are_inverse", False, 0.0, 2.0,
                        "not graded: <script>alert(1)</script> & the stage crashed")],
            error="the grader process stopped early (exit code 139): Segmentation fault", duration_s=3.0),
        model_stage(stage_id, labels, write_history(tmp_path / "output"), zero_shot=zero_shot),
    ])


# ----------------------------------------------------------------------------- content
def test_markdown_has_scores_failures_hints_and_the_model_tier(tmp_path):
    md = feedback_markdown(make_result(tmp_path))
    assert "**Score: 10 / 17**" in md
    assert "| tokenize | structural | 3/5 | 2/3 |" in md and "| emotion_model | model | 7/10 | 3/4 |" in md
    assert "`test_tokenize_batch_does_not_pad`: AssertionError: tokenize_batch pads every text" in md
    assert f"**Hint:** {HINT}" in md
    assert "assert 'padding'" not in md and "test_stage1_tokenize.py" not in md  # no grader code
    assert "**Error:** the grader process stopped early" in md
    # accuracies with their intervals and the manifest's thresholds (emotion: 0.60 and 0.50)
    limits = load_course().notebook("emotion_model").thresholds
    assert f"| accuracy | 0.712 | 0.671 - 0.750 | {limits['accuracy']:.2f} | yes |" in md
    assert f"| macro-F1 | 0.499 | 0.451 - 0.543 | {limits['macro_f1']:.2f} | no |" in md
    assert "| fine-tuned | 0.712 | 170 |" in md and "| zero-shot | 0.410 | 18 |" in md
    assert "| true \\ predicted | sadness | joy | love | anger | fear | surprise |" in md
    assert "![Confusion matrix (rows: true label)](emotion_model_confusion.png)" in md
    assert "(emotion_model_learning_curve.png)" in md


def test_html_is_self_contained_and_escaped(tmp_path):
    page = feedback_html(make_result(tmp_path))
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert not re.search(r"https?://|@import|url\(|<script|<link|<iframe", page, re.I)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; the stage crashed" in page
    srcs = re.findall(r'<img src="([^"]+)"', page)
    assert len(srcs) == 2 and all(s.startswith("data:image/png;base64,") for s in srcs)
    for src in srcs:
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)
    assert "AssertionError: tokenize_batch pads every text" in page
    assert "assert &#x27;padding&#x27;" not in page and "test_stage1_tokenize.py" not in page
    assert "0.671 - 0.750" in page and "McNemar exact p = 1.2e-30" in page


def test_learning_curve_comes_from_log_history(tmp_path):
    history = json.loads((write_history(tmp_path) / "log_history.json").read_text())
    png = learning_curve_png(history)
    assert png.startswith(PNG_MAGIC)
    assert learning_curve_png([{"train_runtime": 1.0, "step": 3}]) is None
    result = make_result(tmp_path)
    result.stages[-1].details["output_dir"] = str(tmp_path / "missing")
    assert set(plots(result)) == {"emotion_model_confusion.png"}
    assert "No learning curve" in feedback_html(result)


def test_write_feedback_puts_the_pngs_next_to_the_markdown(tmp_path):
    from PIL import Image

    written = write_feedback(make_result(tmp_path), tmp_path / "feedback")
    assert set(written) == {"feedback.md", "feedback.html", "emotion_model_confusion.png",
                            "emotion_model_learning_curve.png"}
    for name in ("emotion_model_confusion.png", "emotion_model_learning_curve.png"):
        with Image.open(written[name]) as img:
            assert img.width > 300 and img.height > 300
        assert f"]({name})" in written["feedback.md"].read_text()


def test_feedback_of_a_real_structural_result():
    """What grading exercises/ gives (each function raises NotImplementedError), via the grader's code."""
    message = "`f` is not written yet: it raises NotImplementedError (in stage1_tokenize.py, line 9, in f)."
    course = load_course()
    result = GradeResult("exercises", [
        stage_result(st, [{"name": n, "outcome": "failed", "message": message} for n in st.checks], "", 1.0)
        for st in course.stages])
    md, page = feedback_markdown(result), feedback_html(result)
    for st, sr in zip(course.stages, result.stages, strict=True):
        assert f"## {st.id}: {st.title} (0/{st.points:g})" in md
        assert all(f"`{name}`" in md for name in st.checks)
        assert sr.hint and f"**Hint:** {sr.hint}" in md
    assert "<img" not in page and md.count("❌") == sum(len(st.checks) for st in course.stages)


# ----------------------------------------------------------------------------- rendering
def chromium(*args: str, user_data: Path) -> subprocess.CompletedProcess:
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={user_data}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="headless Chromium is not installed (/usr/bin/chromium); "
                    "install it with: apt-get install -y chromium")
def test_html_renders_in_headless_chromium(tmp_path):
    from PIL import Image

    result = make_result(tmp_path, stage_id="sentiment_model", labels=["negative", "positive"],
                         zero_shot=False)
    html_path = write_feedback(result, tmp_path / "feedback")["feedback.html"]
    url = html_path.resolve().as_uri()
    shot = tmp_path / "shot.png"
    proc = chromium(f"--screenshot={shot}", "--window-size=1200,2000", url, user_data=tmp_path / "profile")
    assert shot.exists(), proc.stderr[-2000:]
    assert shot.stat().st_size > 20_000
    with Image.open(shot) as img:
        rgb = img.convert("RGB")
        assert rgb.size == (1200, 2000)
        colours = rgb.getcolors(maxcolors=1 << 20)
    assert len(colours) > 200  # text, score bars and plots, not a blank page
    # the confusion matrix's dark blue (matplotlib "Blues") is on the page: the data-URI PNGs decoded
    assert any(b > 90 and r < 40 and g < 90 for _, (r, g, b) in colours)

    dom = chromium("--dump-dom", url, user_data=tmp_path / "profile").stdout
    imgs = re.findall(r"<img\b[^>]*>", dom)
    assert len(imgs) == 2, dom[-2000:]
    assert all(re.search(r'src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}"', tag) for tag in imgs)
    assert "Feedback for alice" in dom and "sentiment_model" in dom


# ----------------------------------------------------------------------------- untrusted text
EVIL = "<script>alert(1)</script> [link](http://x) ![img](http://x/i.png) **bold** | cell `code <b>`"


def evil_result() -> GradeResult:
    result = GradeResult(submission="[me](javascript:alert(1))<img src=x>", model="m`x", stages=[
        StageResult("tokenize", "Tokenize a dataset", 0.0, 2.0, [
            CheckResult("test_load_tokenizer_returns_fast_tokenizer", False, 0.0, 2.0, EVIL)],
            error=f"the stage stopped: {EVIL}")])
    result.warnings = [f"- {EVIL}", "# heading? no"]
    return result


def test_markdown_escapes_messages_ids_and_notes():
    md = feedback_markdown(evil_result())
    assert "<script" not in md and "<img" not in md and "<b>" not in md.replace("`code <b>`", "")
    assert not re.search(r"(?<!\\)\]\(", md) and "**bold**" not in md  # no link, image or emphasis
    assert ("&lt;script&gt;alert(1)&lt;/script&gt; \\[link\\](http://x) !\\[img\\](http://x/i.png) "
            "\\*\\*bold\\*\\* \\| cell `code <b>`") in md  # a code span is kept: nothing in it is Markdown or HTML
    assert "# Feedback for \\[me\\](javascript:alert(1))&lt;img src=x&gt;" in md
    assert "- \\- &lt;script&gt;" in md and "- \\# heading? no" in md  # notes: no list or heading inside
    assert "> **Error:** the stage stopped: &lt;script&gt;" in md
    assert "(model: m\\`x)" in md


def test_html_escapes_messages_ids_and_notes():
    page = feedback_html(evil_result())
    assert "<script" not in page and "<img" not in page and "code &lt;b&gt;" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; [link](http://x)" in page
    assert "Feedback for [me](javascript:alert(1))&lt;img src=x&gt;" in page
    assert "<h2>Notes</h2>" in page and "- &lt;script&gt;" in page


def test_the_learning_curve_travels_in_the_result(tmp_path):
    """Reports render from the result alone: the model tier copies the curve into the stage's details,
    so the plot is drawn with the run's files gone (a result read on another machine)."""
    from autograder.grading.artifacts import learning_curve

    out = write_history(tmp_path / "output")
    history = json.loads((out / "log_history.json").read_text())
    history += [{"loss": float("nan"), "epoch": 9.0}, {"eval_accuracy": "high", "step": True}, "not a dict"]
    (out / "log_history.json").write_text(json.dumps(history))
    curve = learning_curve(out)
    assert len(curve) == 22 and all("grad_norm" not in p and "train_runtime" not in p for p in curve)
    assert {"epoch": 9.0} in curve and all(all(isinstance(v, float) for v in p.values()) for p in curve)
    result = make_result(tmp_path)
    result.stages[-1].details.update(output_dir=str(tmp_path / "gone"), learning_curve=curve)
    assert "emotion_model_learning_curve.png" in plots(result)
    assert learning_curve(tmp_path / "missing") == []
