"""The warm runner: one zygote per judge forks each stage's runner; nothing of a stage outlives it.

Its kill reaches exactly the zygote's descendants. With the jail off, /proc lists the whole
machine: a zygote that killed "everything but itself" there took the grader's own shell with it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import psutil

from autograder import REPO_ROOT
from autograder.course.manifest import load_course
from autograder.grading.structural import grade_stages
from autograder.sandbox.jail import SandboxStatus, detect

ORPHAN = textwrap.dedent('''
    import subprocess
    subprocess.Popen(["sh", "-c", "exec -a {marker} sleep 300"], start_new_session=True)
''')


def _submission(tmp_path, marker: str):
    sub = tmp_path / "sub"
    shutil.copytree(REPO_ROOT / "solutions", sub, ignore=shutil.ignore_patterns("*.ipynb", "checks"))
    source = (sub / "stage1_tokenize.py").read_text()
    (sub / "stage1_tokenize.py").write_text(source + ORPHAN.format(marker=marker))
    return sub


def _alive(marker: str) -> list:
    return [p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]


def test_without_the_jail_the_zygote_kills_nothing_but_its_own(tmp_path):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    marker = "ag-warm-orphan-off-5d1"
    try:
        course = load_course()
        results = grade_stages([course.stage("tokenize"), course.stage("model")], _submission(tmp_path, marker),
                               sandbox=SandboxStatus(False, "test"))
        assert bystander.poll() is None, "grading killed a process that was not its own"
        assert [r.score for r in results] == [r.max_score for r in results], [r.checks for r in results]
        assert _alive(marker) == [], "a stage's orphan outlived the grade"
    finally:
        bystander.kill()


def test_a_stages_orphans_are_gone_and_the_next_stage_is_full(tmp_path):
    marker = "ag-warm-orphan-on-7c2"
    course = load_course()
    results = grade_stages([course.stage("tokenize"), course.stage("model")], _submission(tmp_path, marker),
                           sandbox=detect())
    assert [r.score for r in results] == [r.max_score for r in results]
    assert _alive(marker) == []


def test_warm_and_cold_runners_give_the_same_verdicts():
    course = load_course()
    stages = [course.stage("tokenize"), course.stage("evaluate")]
    warm = grade_stages(stages, REPO_ROOT / "exercises", warm=True)
    cold = grade_stages(stages, REPO_ROOT / "exercises", warm=False)
    shown = [[(c.name, c.passed, c.message) for c in r.checks] for r in warm]
    assert shown == [[(c.name, c.passed, c.message) for c in r.checks] for r in cold]
