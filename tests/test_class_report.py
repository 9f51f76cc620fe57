"""The class report (issue 12): distributions, most failed checks, model tier against thresholds,
missing and late submissions, sandbox status; self-contained, escaped, rendered in headless Chromium."""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime

import pytest
from test_feedback import CHROMIUM, chromium

from autograder.reports.class_report import class_report_html, failed_checks, message_form, write_class_report
from autograder.reports.results import CheckResult, GradeResult, StageResult

ON = "sandbox: on (bubblewrap: no network, uid 65534, own pid namespace, read-only system)"
EVIL = "<script>alert(1)</script>"


def a_class(n: int = 24) -> list[GradeResult]:
    results = []
    for i in range(n):
        pad_ok = i % 3 != 0
        tokenize = StageResult("tokenize", "Tokenize", 10.0 if pad_ok else 8.0, 10.0, [
            CheckResult("test_tokenize_batch_matches_tokenizer", True, 8.0, 8.0),
            CheckResult("test_tokenize_batch_does_not_pad", pad_ok, 2.0 if pad_ok else 0.0, 2.0,
                        "" if pad_ok else f"tokenize_batch pads {30 + i} texts to {64} tokens; leave padding")])
        model_ok = i % 4 != 0
        model = StageResult("model", "Model", 10.0 if model_ok else 0.0, 10.0, [
            CheckResult("test_head_has_the_label_maps", model_ok, 10.0 if model_ok else 0.0, 10.0,
                        "" if model_ok else ("id2label is missing" if i % 8 else f"crashed: {EVIL}"))])
        acc = 0.62 + 0.01 * i
        lo = acc - 0.04
        sentiment = StageResult("sentiment_model", "Sentiment notebook", 10.0 if lo >= 0.7 else 4.0, 10.0, [
            CheckResult("accuracy", lo >= 0.7, 6.0 if lo >= 0.7 else 0.0, 6.0,
                        f"accuracy {acc:.3f} (95% CI {lo:.3f}-{acc + 0.04:.3f})", hidden=False)],
            tier="model", details={"thresholds": {"accuracy": 0.70},
                                   "evaluation": {"accuracy": acc, "accuracy_ci": [lo, acc + 0.04],
                                                  "macro_f1": acc - 0.02, "macro_f1_ci": [lo - 0.02, acc]}})
        sandbox = ON if i != 5 else "sandbox: off (turned off by AUTOGRADER_SANDBOX=off)"
        results.append(GradeResult(f"student{i:02d}" if i != 7 else f"{EVIL}", [tokenize, model, sentiment],
                                   sandbox=sandbox, course="Fine-tuning transformers",
                                   course_stages=["tokenize", "model", "sentiment_model"]))
    results.append(GradeResult("zed", [StageResult("submission", "Submission", 0.0, 0.0,
                                                   error="The zip 'zed.zip' was refused: it is a symbolic link"),
                                       StageResult("tokenize", "Tokenize", 0.0, 10.0)], sandbox=ON))
    return results


def roster(folder):
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"student": "student01", "url": "u", "commit": "abc", "committed_at": "2026-03-01T10:00:00+00:00",
             "status": "ok", "message": ""},
            {"student": "student02", "url": "u", "commit": "def", "committed_at": "2026-03-03T10:00:00+00:00",
             "status": "ok", "message": ""},
            {"student": "quinn", "url": "u", "status": "error", "message": "git clone failed: not found"},
            {"student": "rita", "url": "u", "status": "error",
             "message": "no commit before the deadline 2026-03-02T00:00:00+00:00"}]
    with open(folder / "collect.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder


def test_message_forms_and_most_failed_checks():
    assert message_form("pads 31 texts to 64 tokens\nE  assert False") == "pads # texts to # tokens"
    top = failed_checks(a_class())
    assert (top[0]["stage"], top[0]["check"], top[0]["failed"]) == ("sentiment_model", "accuracy", 12)
    pad = next(r for r in top if r["check"] == "test_tokenize_batch_does_not_pad")
    assert pad["failed"] == 8 and pad["messages"][0] == ("tokenize_batch pads # texts to # tokens; leave padding", 8)


def test_page_has_every_section_and_escapes(tmp_path):
    page = class_report_html(a_class(), submissions=roster(tmp_path / "subs"),
                             deadline=datetime(2026, 3, 2, tzinfo=UTC))
    assert "default-src 'none'" in page and "<script>" not in page and "&lt;script&gt;" in page
    assert "src=" not in page and "href=" not in page  # loads nothing
    assert page.count("<svg") == 1 + 3 + 2  # total, three stages, accuracy and macro-F1
    assert page.count('class="threshold"') == 1  # macro-F1 has no threshold in this class
    for text in ("Checks failed most often", "quinn", "git clone failed", "rita", "late", "student02",
                 "after the deadline", "zed", "not graded", "1 job(s) ran without the sandbox"):
        assert text in page, text
    assert "student01</td><td><span class=\"bad\">late" not in page


@pytest.mark.skipif(not CHROMIUM.exists(), reason="headless Chromium is not installed (/usr/bin/chromium)")
def test_class_report_renders_in_headless_chromium(tmp_path):
    from PIL import Image

    path = write_class_report(a_class(), tmp_path / "class_report.html", submissions=roster(tmp_path / "subs"))
    url = path.resolve().as_uri()
    shot = tmp_path / "shot.png"
    proc = chromium(f"--screenshot={shot}", "--window-size=1200,2400", url, user_data=tmp_path / "profile")
    assert shot.exists(), proc.stderr[-2000:]
    with Image.open(shot) as img:
        colours = img.convert("RGB").getcolors(maxcolors=1 << 20)
    assert len(colours) > 200  # text and plots, not a blank page
    for r, g, b in ((0x09, 0x69, 0xDA), (0x1A, 0x7F, 0x37), (0xCF, 0x22, 0x2E)):  # bars: blue, pass, fail
        assert any(abs(c[0] - r) < 12 and abs(c[1] - g) < 12 and abs(c[2] - b) < 12 for _, c in colours), (r, g, b)
    dom = chromium("--dump-dom", url, user_data=tmp_path / "profile").stdout
    svgs = re.findall(r"<svg\b.*?</svg>", dom, flags=re.S)
    assert len(svgs) == 6 and all(len(re.findall(r'<rect class="col"', s)) >= 10 for s in svgs)
    assert "Missing and late submissions" in dom and "Sandbox status of every job" in dom


def test_grade_batch_passes_its_deadline_to_the_class_report(tmp_path, monkeypatch, capsys):
    from autograder import batch, cli

    seen = {}
    monkeypatch.setattr(batch, "grade_batch", lambda *a, **k: [])
    monkeypatch.setattr(batch, "write_class_reports", lambda results, out, **k: seen.update(k))
    argv = ["grade-batch", str(tmp_path), "--out", str(tmp_path / "out"), "--no-require-sandbox"]
    assert cli.main([*argv, "--deadline", "2026-03-01T23:59:00+01:00"]) == 0
    assert seen["deadline"] == datetime.fromisoformat("2026-03-01T23:59:00+01:00")
    assert cli.main([*argv, "--deadline", "next friday"]) == 2
    assert "not an ISO 8601 date" in capsys.readouterr().err


def test_late_work_is_found_from_the_results_alone(tmp_path):
    """A result records when its submission last changed; the report needs no submissions folder."""
    import os

    from autograder.reports.class_report import missing_and_late
    from autograder.sandbox.plain_files import last_change

    work = tmp_path / "alice"
    (work / ".git").mkdir(parents=True)
    (work / "stage1_tokenize.py").write_text("x = 1\n")
    (work / ".git" / "HEAD").write_text("ref\n")
    os.utime(work / "stage1_tokenize.py", (1772445600, 1772445600))  # 2026-03-02T10:00:00Z
    os.utime(work / ".git" / "HEAD", (1893456000, 1893456000))  # 2030: a folder the grader skips
    assert last_change(work) == "2026-03-02T10:00:00+00:00"
    on_time = GradeResult("bob", submitted="2026-03-01T09:00:00+00:00")
    late = GradeResult("alice", submitted=last_change(work))
    rows = missing_and_late([on_time, late], None, deadline=datetime(2026, 3, 2, tzinfo=UTC))
    assert [(sid, kind) for sid, kind, _ in rows] == [("alice", "late")]
    assert GradeResult.from_dict(late.to_dict()).submitted == late.submitted
