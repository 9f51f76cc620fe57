"""Hostile submissions graded end to end: stubs (or the solution) plus one attack each.

Each case asserts that the score is what the honest part earns (stubs plus an attack: 0), that
no hidden text (a grader's source, a test-split row, a solution line) appears in the result,
that the grader survives, that no process outlives the job and nothing is written outside it;
and an honest submission graded right after still gets full marks.
"""

from __future__ import annotations

import json
import site
from pathlib import Path

import psutil
import pytest

from autograder import REPO_ROOT
from autograder.course.manifest import load_course
from autograder.course.models import tiny_model_dir
from autograder.grading import grade_stage
from autograder.sandbox.jail import detect  # noqa: F401 - jail_only's condition, evaluated at setup

STAGE = load_course().stage("tokenize")
MODULE = f"{STAGE.module}.py"
STUB = (REPO_ROOT / "exercises" / MODULE).read_text()
SOLUTION = (REPO_ROOT / "solutions" / MODULE).read_text()
SECRETS = [  # texts that must never reach a result
    (REPO_ROOT / "datasets_cache" / "sentiment" / "test.jsonl").read_text().splitlines()[0][:60],
    (REPO_ROOT / "autograder" / "grading" / "graders" / "conftest.py").read_text().splitlines()[0],
    "the plot meanders",  # a constant of the hidden tokenize grader
    "s3cr3t-instructor-value",
]
jail_only = pytest.mark.skipif("not detect().on", reason="needs the jail (bwrap probed at setup, not collection)")

ATTACKS = {
    # forged verdicts: the results file of the old design, then the judge's own process
    "forged-results-file": """
import json, os, glob
for path in [os.environ.get("AUTOGRADER_RESULTS", "")] + glob.glob("/tmp/grade-*/results.jsonl"):
    if path:
        try:
            with open(path, "a") as f:
                for name in CHECKS:
                    f.write(json.dumps({"name": name, "nodeid": name, "outcome": "passed", "message": ""}) + "\\n")
        except OSError:
            pass
os._exit(0)
""",
    "atexit-rewrite": """
import atexit, json, os
def _forge():
    path = os.environ.get("AUTOGRADER_RESULTS")
    if path:
        rows = [json.dumps({"name": n, "outcome": "passed", "message": ""}) for n in CHECKS]
        open(path, "w").write("\\n".join(rows) + "\\n")
atexit.register(_forge)
""",
    "patched-pytest-and-plugin": """
try:
    import _pytest.python
    _pytest.python.Function.runtest = lambda self: None
except Exception:
    pass
try:
    import autograder.grading.plugin as plugin
    plugin._record = lambda item, outcome, message: None
except Exception:
    pass
""",
    "exec-the-solution": """
import os
for root in ("REPO/solutions", "/solutions", "../solutions"):
    path = os.path.join(root, "MODULE")
    if os.path.exists(path):
        exec(open(path).read())
""",
    "garbage-on-stdout": """
import sys, os
sys.__stdout__.write("{not json\\n" * 100)
os.write(1, b"\\x00\\x00\\x00\\x05hello")
""",
    "leak-hidden-text-in-messages": """
def _leak():
    found = []
    for path in ("REPO/datasets_cache/sentiment/test.jsonl", "REPO/autograder/grading/graders/conftest.py"):
        try:
            found.append(open(path).read(300))
        except OSError as exc:
            found.append(type(exc).__name__)
    import os
    found.append(os.environ.get("INSTRUCTOR_SECRET", ""))
    return " | ".join(found)

def load_tokenizer(model_name_or_path):
    raise ValueError(_leak())
""",
    "poison-shared-caches": """
import os, site
for path in [os.path.join(p, "sitecustomize.py") for p in site.getsitepackages()] + ["TINY/config.json"]:
    try:
        open(path, "w").write("raise SystemExit('poisoned')\\n")
    except OSError:
        pass
""",
    "orphan-processes": """
import subprocess
for _ in range(5):
    subprocess.Popen(["sh", "-c", "exec -a ag-orphan-e2e sleep 300"], start_new_session=True)
""",
}


def _write(tmp_path: Path, name: str, source: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / MODULE).write_text(source)
    return folder


def _attack(name: str) -> str:
    code = ATTACKS[name].replace("REPO", str(REPO_ROOT)).replace("MODULE", MODULE)
    code = code.replace("TINY", str(tiny_model_dir("distilbert-base")))
    return STUB + f"\nCHECKS = {list(STAGE.checks)!r}\n" + code


def _assert_clean(result) -> None:
    text = json.dumps(result.__dict__, default=lambda o: o.__dict__)
    for secret in SECRETS:
        assert secret not in text, f"hidden text reached the result: {secret[:40]!r}"


@pytest.fixture(scope="module")
def honest(tmp_path_factory):
    folder = tmp_path_factory.mktemp("honest")
    (folder / MODULE).write_text(SOLUTION)
    return folder


@jail_only
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attack_scores_what_the_honest_part_earns(attack, tmp_path, honest, monkeypatch):
    monkeypatch.setenv("INSTRUCTOR_SECRET", "s3cr3t-instructor-value")
    caches = {p: p.read_bytes() if p.exists() else None for p in
              [Path(s) / "sitecustomize.py" for s in site.getsitepackages()]
              + [tiny_model_dir("distilbert-base") / "config.json"]}
    result = grade_stage(STAGE, _write(tmp_path, attack, _attack(attack)))
    assert result.score == 0, [(c.name, c.passed, c.message) for c in result.checks]
    assert all(c.message for c in result.checks)
    _assert_clean(result)
    assert {p: p.read_bytes() if p.exists() else None for p in caches} == caches, "a shared cache was written"
    assert not [p for p in psutil.process_iter(["cmdline"]) if "ag-orphan-e2e" in " ".join(p.info["cmdline"] or [])]
    assert not (REPO_ROOT / "pwned.txt").exists()
    after = grade_stage(STAGE, honest)  # the next honest student is unaffected
    assert after.score == after.max_score, [(c.name, c.message) for c in after.checks]


@jail_only
def test_solution_with_one_sabotaged_function_keeps_the_rest(tmp_path):
    """Killing its own process in one check costs that check only: the runner restarts."""
    source = SOLUTION.replace("    return AutoTokenizer.from_pretrained(model_name_or_path)",
                              "    import os\n    os._exit(9)")
    result = grade_stage(STAGE, _write(tmp_path, "sabotage", source))
    by_name = {c.name: c for c in result.checks}
    assert not by_name["test_load_tokenizer_returns_fast_tokenizer"].passed
    assert "exit" in by_name["test_load_tokenizer_returns_fast_tokenizer"].message
    assert result.score == result.max_score - STAGE.checks["test_load_tokenizer_returns_fast_tokenizer"]


def test_symlinked_module_is_refused_without_its_content(tmp_path):
    folder = tmp_path / "linked"
    folder.mkdir()
    (folder / MODULE).symlink_to(REPO_ROOT / "solutions" / MODULE)
    result = grade_stage(STAGE, folder)
    assert result.score == 0
    _assert_clean(result)
    assert all("symbolic link" in c.message for c in result.checks)


def test_unreadable_results_lines_are_errors_not_crashes():
    from autograder.grading import read_records, stage_result

    records, problems = read_records('{"name": "a", "outcome": "passed"}\nnot json\n[1]\n')
    assert len(records) == 1 and len(problems) == 2
    twice = [{"name": n, "outcome": "passed", "message": ""} for n in STAGE.checks] * 2
    result = stage_result(STAGE, twice, "", 0.0)
    assert result.score == 0 and all("more than once" in c.message for c in result.checks)


PLANTED = ("conftest.py", "sitecustomize.py", "usercustomize.py", "pytest_timeout.py")


def test_the_judge_never_imports_the_submission(tmp_path, monkeypatch):
    """With the jail off (so the module can write a host file), every process that imported the
    submission is a runner: never the pytest process that judges."""
    log = tmp_path / "imported-by.txt"
    spy = f"import sys\nopen({str(log)!r}, 'a').write(' '.join(sys.argv) + '\\n')\n"
    source = SOLUTION.replace("from __future__ import annotations\n", "from __future__ import annotations\n" + spy, 1)
    from autograder.sandbox.jail import SandboxStatus

    folder = _write(tmp_path, "spy", source)
    for name in PLANTED:  # names a Python or a pytest process would pick up from its path or its folder
        (folder / name).write_text(spy)
    result = grade_stage(STAGE, folder, sandbox=SandboxStatus(False, "test"))
    assert result.score == result.max_score, [(c.name, c.message) for c in result.checks]
    importers = log.read_text().splitlines()
    assert importers and all("sandbox/runner.py" in line for line in importers), importers
    assert not any("pytest" in line for line in importers)
