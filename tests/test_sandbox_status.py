"""Every report says whether the sandbox was on; grading can be made to require it."""

from __future__ import annotations

import json
import shutil

from autograder import REPO_ROOT
from autograder.cli import main
from autograder.grading import grade_submission
from autograder.reports import write_reports
from autograder.sandbox.jail import SandboxStatus


def test_grade_refuses_to_run_without_the_sandbox_when_required(monkeypatch, capsys):
    monkeypatch.setenv("AUTOGRADER_SANDBOX", "off")  # the CLI maps it; nothing below reads it
    rc = main(["grade", str(REPO_ROOT / "exercises"), "--stage", "tokenize", "--require-sandbox"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "sandbox is required" in err and "AUTOGRADER_SANDBOX=off" in err
    assert "apt-get install bubblewrap" in err and "leave out --require-sandbox" in err and "--no-require" not in err


def test_every_report_states_the_sandbox(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    shutil.copy2(REPO_ROOT / "exercises" / "stage1_tokenize.py", sub)
    (sub / "notes.txt").symlink_to(REPO_ROOT / "course.toml")
    off = SandboxStatus(False, "no user namespaces here (test)")
    result = grade_submission(sub, stages=["tokenize"], sandbox=off)
    assert result.sandbox == "sandbox: off (no user namespaces here (test))"
    assert any("notes.txt is a symbolic link" in w for w in result.warnings)
    write_reports(result, tmp_path / "out")
    out = tmp_path / "out"
    assert json.loads((out / "result.json").read_text())["sandbox"] == result.sandbox
    assert result.sandbox in json.loads((out / "results.json").read_text())["output"]
    assert f'value="{result.sandbox}"' in (out / "junit.xml").read_text()
    assert "sandbox: off" in (out / "feedback.md").read_text()
    assert "sandbox: off" in (out / "feedback.html").read_text()
