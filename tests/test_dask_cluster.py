"""grade-batch on a real Dask cluster on 127.0.0.1 (issue 12): a ``dask scheduler`` and two ``dask worker``
processes started and stopped here. Six submissions graded through ``--scheduler`` give exactly what
local grading gives; the client killed mid-batch and run again grades only the rest; a worker killed
while it grades still lets every submission finish.

Kept short: the structural tier's ``tokenize`` stage only (about 10 s a submission on 2 cores).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import psutil
import pytest

from autograder import REPO_ROOT
from autograder.batch import local as batch
from autograder.sandbox.jail import detect

STAGE = "tokenize"
MODULE = "stage1_tokenize.py"
SOLUTION = (REPO_ROOT / "solutions" / MODULE).read_text()
STUB = (REPO_ROOT / "exercises" / MODULE).read_text()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_class(root: Path) -> Path:
    """Six small submissions: folders and zips, full marks, none and partial."""
    subs = root / "submissions"
    texts = {"a_solution": SOLUTION, "b_stubs": STUB,
             "c_padded": SOLUTION.replace("truncation=True, max_length=max_length)",
                                          "truncation=True, max_length=max_length, padding='max_length')"),
             "f_untruncated": SOLUTION.replace("truncation=True, max_length=max_length)", "max_length=max_length)")}
    for sid, text in texts.items():
        (subs / sid).mkdir(parents=True)
        (subs / sid / MODULE).write_text(text)
    for sid, text in (("d_syntax", "def load_tokenizer(:\n"), ("e_solution_zip", SOLUTION)):
        with zipfile.ZipFile(subs / f"{sid}.zip", "w") as zf:
            zf.writestr(f"{sid}/{MODULE}", text)
    return subs


def comparable(result: dict) -> dict:
    """What grading decided (scores, verdicts, messages, sandbox), without timings."""
    return {"score": result["score"], "sandbox": result["sandbox"], "warnings": result["warnings"],
            "stages": [(s["id"], s["score"], s["error"], [(c["name"], c["passed"], c["score"], c["message"])
                                                         for c in s["checks"]]) for s in result["stages"]]}


def read_results(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (out / "results").glob("*.json")}


@pytest.fixture
def cluster(tmp_path):
    """A scheduler and two workers (no nanny: killing a worker kills it), on free 127.0.0.1 ports."""
    port = free_port()
    scratch = tmp_path / "worker_tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "2"}
    dask = [sys.executable, "-m", "dask"]
    procs = {"scheduler": subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                            "--no-dashboard"], env=env, start_new_session=True,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)}
    address = f"tcp://127.0.0.1:{port}"
    for name in ("w1", "w2"):
        procs[name] = subprocess.Popen([*dask, "worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                                        "--no-nanny", "--no-dashboard", "--memory-limit", "0", "--name", name],
                                       env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
    from distributed import Client

    with Client(address, timeout="60s", set_as_default=False) as client:
        client.wait_for_workers(2, timeout=120)
    yield address, procs
    for proc in procs.values():
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def grading_children(proc: subprocess.Popen) -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process(proc.pid).children(recursive=True)
                if "autograder.batch.worker" in " ".join(p.cmdline())]
    except psutil.Error:
        return []


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def test_a_class_on_a_dask_cluster_matches_local_grading_and_survives_kills(tmp_path, cluster):
    address, procs = cluster
    subs = make_class(tmp_path)
    batch.grade_batch(subs, tmp_path / "local", workers=2, stages=[STAGE], progress=False, log=lambda m: None)
    local = read_results(tmp_path / "local")
    assert len(local) == 6 and local["a_solution"]["score"] == 10 and local["b_stubs"]["score"] == 0

    out = tmp_path / "cluster"
    cmd = [sys.executable, "-m", "autograder.cli", "grade-batch", str(subs), "--out", str(out),
           "--scheduler", address, "--stage", STAGE, *([] if detect().on else ["--no-require-sandbox"])]
    client = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: len(list((out / "results").glob("*.json"))) >= 2, 300, "two results")
    os.killpg(client.pid, signal.SIGKILL)  # the client dies: its tasks are left to the cluster
    client.wait()
    first = {p.name: (p.stat().st_mtime_ns, p.read_text()) for p in (out / "results").glob("*.json")}
    assert 2 <= len(first) < 6, "the kill should land half-way"
    workers = [p for n, p in procs.items() if n != "scheduler"]
    wait_for(lambda: not any(grading_children(p) for p in workers), 30, "the dead client's tasks to stop")

    rerun = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: len(list((out / "results").glob("*.json"))) > len(first), 300, "a result of the rerun")
    busy: list = []

    def a_worker_grades() -> bool:
        busy[:] = [(n, p, kids) for n, p in procs.items() if n != "scheduler" and (kids := grading_children(p))]
        return bool(busy) or rerun.poll() is not None

    wait_for(a_worker_grades, 120, "a worker grading")
    assert busy, "the rerun finished before a worker could be killed"
    name, victim, kids = busy[0]
    victim.kill()  # SIGKILL, mid-submission: Dask reschedules its task on the other worker
    victim.wait()
    stdout, stderr = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, stderr[-3000:]
    gone, alive = psutil.wait_procs(kids, timeout=20)  # the dead worker's grading child stopped too
    assert not alive, alive

    for filename, (mtime, text) in first.items():  # graded before the kill: not graded again
        path = out / "results" / filename
        assert path.stat().st_mtime_ns == mtime and path.read_text() == text
    remote = read_results(out)
    assert set(remote) == set(local)
    for sid in local:
        assert comparable(remote[sid]) == comparable(local[sid]), sid
    assert (out / "class_report.html").exists() and "gradebook" in stdout
