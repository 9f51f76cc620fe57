"""The Dask task of one submission (issue 12): the course version it carries, a worker of another
version refusing it, the batch going on with a message for that submission, run files travelling
back to the client. No grading runs here: seconds."""

from __future__ import annotations

import io
import zipfile

import pytest

from autograder.batch import local as batch
from autograder.batch import store, task
from autograder.batch.validate import expected_stages
from autograder.course.manifest import SubmissionCaps
from autograder.reports.results import GradeResult, StageResult

STAGE = "tokenize"


def a_task(**over) -> dict:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("stage1_tokenize.py", "x = 1\n")
    base = {"id": "alice", "zip": buf.getvalue(), "course_version": task.course_version(), "tier": "structural",
            "stages": [STAGE], "limit_s": 60, "require_sandbox": False, "caps": SubmissionCaps().__dict__,
            "threads": 1, "expected": {k: v.__dict__ for k, v in expected_stages("structural", [STAGE]).items()}}
    return {**base, **over}


def test_the_course_version_covers_manifest_graders_and_splits():
    names = {p.name for p in task._course_files()}
    assert {"course.toml", "test_stage1_tokenize.py", "split_hashes.py", "manifest.json", "test.jsonl"} <= names
    assert len(task.course_version()) == 16 and task.course_version() == task.course_version()


def test_a_worker_of_another_course_version_refuses_the_task():
    with pytest.raises(task.CourseVersionMismatch, match="different course.toml, graders or data splits"):
        task.grade_task(a_task(course_version="0123456789abcdef"))


def test_a_refused_task_fails_only_its_submission_after_the_retries(tmp_path, monkeypatch):
    """Every worker refuses (the client runs another course version): each submission fails with a
    message, the batch finishes and records them."""
    task.warm()  # the worker side keeps its real version
    monkeypatch.setattr(task, "course_version", lambda: "0123456789abcdef")
    for sid in ("alice", "bob"):
        (tmp_path / "subs" / sid).mkdir(parents=True)
        (tmp_path / "subs" / sid / "stage1_tokenize.py").write_text("x = 1\n")
    logs: list[str] = []
    results = batch.grade_batch(tmp_path / "subs", tmp_path / "out", workers=2, stages=[STAGE], progress=False,
                                retries=1, log=logs.append)
    assert [r.submission for r in results] == ["alice", "bob"]
    for r in results:
        note = next(s for s in r.stages if s.id == "submission")
        assert r.score == 0 and "different version of the course" in note.error
        assert "install the same commit" in note.details["instructor"]
    assert len(list((tmp_path / "out" / "results").glob("*.json"))) == 2
    assert sum("different version" in m for m in logs) == 2
    # the cluster's fault, not the submissions': a rerun grades them again (here they fail again)
    logs.clear()
    batch.grade_batch(tmp_path / "subs", tmp_path / "out", workers=1, stages=[STAGE], progress=False, retries=0,
                      log=logs.append)
    assert sum("grading it again" in m for m in logs) == 2 and sum("different version" in m for m in logs) == 2


def test_run_files_travel_back_and_land_in_out(tmp_path):
    runs = tmp_path / "worker" / "runs"
    (runs / "sentiment_model" / "output").mkdir(parents=True)
    (runs / "sentiment_model" / "output" / "log_history.json").write_text("[]")
    (runs / "sentiment_model" / "executed_sentiment.ipynb").write_text("{}")
    (runs / "sentiment_model" / "output" / "model.safetensors").write_bytes(b"0" * 10)  # models stay behind
    details = {"output_dir": str(runs / "sentiment_model" / "output"), "executed_notebook": "/etc/passwd"}
    result = GradeResult("x", [StageResult("sentiment_model", "t", 0.0, 10.0, tier="model", details=details)])
    files = store.collect_run_files(runs, SubmissionCaps())
    store.relative_run_paths(runs, result)
    assert sorted(files) == ["sentiment_model/executed_sentiment.ipynb", "sentiment_model/output/log_history.json"]
    assert result.stages[0].details == {"output_dir": "sentiment_model/output"}
    dest = tmp_path / "out" / "runs" / "x"
    store.place_run_files({**files, "../../evil.txt": b"x", "/etc/evil": b"x"}, dest, result)
    assert (dest / "sentiment_model" / "output" / "log_history.json").read_text() == "[]"
    assert not (tmp_path / "out" / "evil.txt").exists()
    assert result.stages[0].details["output_dir"] == str(dest / "sentiment_model" / "output")


def test_cluster_slurm_starts_jobs_with_the_course_options(monkeypatch):
    """dask-jobqueue stood in for (no Slurm here): SLURMCluster gets [cluster.slurm] of course.toml and
    is scaled to --workers jobs."""
    import sys
    import types

    from distributed import LocalCluster

    from autograder.batch import engine
    from autograder.course.manifest import load_course

    seen: dict = {}

    class FakeSLURMCluster(LocalCluster):
        def __init__(self, **options):
            seen["options"] = options
            super().__init__(n_workers=0, processes=False, dashboard_address=":0")

        def scale(self, n=None, jobs=0, **kwargs):
            seen.setdefault("jobs", jobs)  # closing scales to 0 again
            return super().scale(jobs)

    monkeypatch.setitem(sys.modules, "dask_jobqueue", types.SimpleNamespace(SLURMCluster=FakeSLURMCluster))
    logs: list[str] = []
    with engine.open_client(cluster="slurm", workers=3, log=logs.append) as client:
        assert client.status == "running"
    assert seen == {"options": load_course().raw["cluster"]["slurm"], "jobs": 3}
    assert seen["options"]["cores"] >= 1 and "memory" in seen["options"]
    assert any("dashboard" in m for m in logs)
