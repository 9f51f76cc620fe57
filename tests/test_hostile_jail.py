"""Hostile submissions, round 2: what an attacker tried against the jail itself.

The grader's environment read through ``/proc/1/environ`` (bwrap is pid 1 in the jail) and
printed into the student's own report; uid 65534 inside mapped to root outside (``/etc/shadow``
read, a setuid-root shell planted); nested namespaces, ``mount`` and ``ptrace`` allowed; tmpfs
and scratch writes walking around an address-space limit; a stage held for the call timeout
times the number of checks. Each test asserts the attack got nothing, and that an honest call
right after it still works. Limits are set low here: nothing fills this machine for real.
"""

from __future__ import annotations

import os
import platform
import shutil
import stat
import textwrap
import time

import pytest

from autograder import REPO_ROOT
from autograder.course.manifest import load_course
from autograder.course.models import tiny_model_dir
from autograder.grading.judge import RemoteError, Runner, RunnerFailure
from autograder.sandbox import seccomp
from autograder.sandbox.jail import detect

SECRET = "FAKE_INSTRUCTOR_TOKEN_9f27c1d"
ROOT_GRADER = os.getuid() == 0


@pytest.fixture(autouse=True, scope="module")
def _needs_the_jail():
    """bwrap is probed when the module's first test runs, not when the suite is collected."""
    status = detect()
    if not status.on:
        pytest.skip(f"needs the jail: {status.describe()}")


ATTACKS = '''
import ctypes, errno, glob, os, subprocess, time

def proc_dump():
    """Everything under /proc this process can open: environ, cmdline, status, maps of every pid."""
    found = {}
    for pattern in ("/proc/*/environ", "/proc/*/cmdline", "/proc/self/*", "/proc/*/task/*/environ"):
        for path in glob.glob(pattern):
            try:
                with open(path, "rb") as f:
                    found[path] = f.read(1 << 20).decode(errors="replace")
            except OSError:
                pass
    return found

def leak_in_exception():
    found = [kv for kv in open("/proc/1/environ").read().split(chr(0)) if "TOKEN" in kv or "AUTOGRADER" in kv]
    raise ValueError(" ".join(found) or "nothing found")

def read(path):
    try:
        with open(path, "rb") as f:
            return f.read(100).decode(errors="replace")
    except OSError as exc:
        return f"blocked: {type(exc).__name__}"

def setuid_copy():
    import shutil
    shutil.copy("/bin/sh", "/scratch/rootshell")
    try:
        os.chmod("/scratch/rootshell", 0o4755)
        return "chmod allowed"
    except OSError as exc:
        return f"blocked: {errno.errorcode[exc.errno]}"

def owner_probe():
    with open("/scratch/owned-by", "w") as f:
        f.write("x")
    return os.getuid()

NUMBERS = {  # x86_64
    "ptrace": 101, "mount": 165, "umount2": 166, "unshare": 272, "setns": 308, "keyctl": 250, "add_key": 248,
    "request_key": 249, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "kexec_load": 246,
    "init_module": 175, "pivot_root": 155, "ioctl": 16, "personality": 135,
}
ARGS = {"ptrace": (0x4206, 1, 0, 0), "unshare": (0x10000000,), "ioctl": (0, 0x5412, 0),
        "personality": (0x0040000,), "setns": (0, 0)}

def denied_calls():
    libc = ctypes.CDLL(None, use_errno=True)
    out = {}
    for name, number in NUMBERS.items():
        args = ARGS.get(name, (0, 0, 0, 0))
        ctypes.set_errno(0)
        rc = libc.syscall(number, *[ctypes.c_long(a) for a in args])
        out[name] = [rc, errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))]
    return out

def nested_namespace():
    done = subprocess.run(["unshare", "-Urm", "sh", "-c", "mount -t tmpfs none /mnt && echo mounted"],
                          capture_output=True, text=True)
    return [done.returncode, done.stdout + done.stderr]

def fill(path, mb):
    try:
        with open(path, "wb") as f:
            for _ in range(mb):
                f.write(b"0" * (1 << 20))
                f.flush()
        return "written"
    finally:
        try:
            os.remove(path)
        except OSError:
            pass

def many_files(folder, n):
    os.makedirs(folder, exist_ok=True)
    for i in range(n):
        open(f"{folder}/{i}", "w").close()
    return "written"

def resident(mb):
    blocks = []
    for _ in range(mb):
        block = bytearray(1 << 20)
        block[::4096] = b"1" * len(block[::4096])
        blocks.append(block)
    return len(blocks)

def stall(seconds):
    time.sleep(seconds)
    return "late"

def echo(x):
    return x
'''


@pytest.fixture(scope="module")
def submission(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile-jail") / "sub"
    folder.mkdir()
    (folder / "attacks.py").write_text(textwrap.dedent(ATTACKS))
    return folder


def _runner(submission, budget: float | None = None, **limits) -> Runner:
    course = load_course()
    return Runner(submission, limits=course.limits.scaled(**limits), caps=course.caps, status=detect(), timeout=60,
                  threads=1, ro=(tiny_model_dir("distilbert-base").parent,), budget=budget)


@pytest.fixture(scope="module")
def attacks(submission):
    os.environ["GITHUB_TOKEN"] = SECRET  # what an instructor's CI holds while it grades
    os.environ["AUTOGRADER_FAKE_SETTING"] = SECRET
    runner = _runner(submission)
    try:
        yield runner, runner.module("attacks")
    finally:
        os.environ.pop("GITHUB_TOKEN", None)
        os.environ.pop("AUTOGRADER_FAKE_SETTING", None)
        runner.close()


def test_no_grader_variable_anywhere_under_proc(attacks):
    _, mod = attacks
    dump = mod.call("proc_dump")
    assert any(p.endswith("/environ") for p in dump), "the probe read no environ file at all"
    leaked = [path for path, text in dump.items() if SECRET in text]
    assert leaked == [], f"the grader's secret is readable in the jail at {leaked}"
    assert "AUTOGRADER_" not in dump.get("/proc/1/environ", "")


def test_an_exception_carrying_proc_1_environ_leaks_nothing(attacks):
    _, mod = attacks
    with pytest.raises(RemoteError) as info:
        mod.call("leak_in_exception")
    assert SECRET not in info.value.message and "GITHUB_TOKEN" not in info.value.message


def test_the_judge_starts_from_an_allow_list(monkeypatch):
    from autograder.procs import trusted_env

    monkeypatch.setenv("GITHUB_TOKEN", SECRET)
    monkeypatch.setenv("GRADESCOPE_API_KEY", SECRET)
    monkeypatch.setenv("COURSE_MODEL", "distilbert-base-uncased")
    env = trusted_env(2)
    assert SECRET not in repr(env) and env["COURSE_MODEL"] == "distilbert-base-uncased"


def test_a_full_grade_report_never_holds_the_graders_environment(tmp_path, monkeypatch):
    """The attack end to end: stage 1 raises with /proc/1/environ; every report file is clean."""
    from autograder.grading.structural import grade
    from autograder.reports import write_reports

    sub = tmp_path / "sub"
    shutil.copytree(REPO_ROOT / "solutions", sub, ignore=shutil.ignore_patterns("*.ipynb", "checks"))
    source = (sub / "stage1_tokenize.py").read_text()
    (sub / "stage1_tokenize.py").write_text(
        source + "\n\ndef tokenize_batch(*args, **kwargs):\n    found = [kv for kv in open('/proc/1/environ').read()"
                 ".split(chr(0)) if 'TOKEN' in kv]\n    raise ValueError(' '.join(found) or 'nothing found')\n")
    monkeypatch.setenv("GITHUB_TOKEN", SECRET)
    result = grade(sub, stages=["tokenize"], jobs=1)
    write_reports(result, tmp_path / "out")
    texts = {p.name: p.read_text(errors="replace") for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert texts and not [name for name, text in texts.items() if SECRET in text or "GITHUB_TOKEN" in text]


def test_shadow_is_unreadable(attacks):
    _, mod = attacks
    assert mod.call("read", "/etc/shadow").startswith("blocked")


def test_no_setuid_bit_reaches_the_host(attacks):
    runner, mod = attacks
    out = mod.call("setuid_copy")
    assert out.startswith("blocked"), out
    planted = runner.job.scratch / "rootshell"
    assert planted.exists() and not os.lstat(planted).st_mode & (stat.S_ISUID | stat.S_ISGID)


@pytest.mark.skipif(not ROOT_GRADER, reason="a grader that is not root runs the jail as its own uid")
def test_files_written_inside_belong_to_an_unprivileged_uid_outside(attacks):
    runner, mod = attacks
    assert detect().two_step, detect().describe()
    assert mod.call("owner_probe") == 65534
    owner = os.lstat(runner.job.scratch / "owned-by").st_uid
    assert owner not in (0, os.getuid()) and owner == runner.job.uid


@pytest.mark.skipif(platform.machine() != "x86_64" or seccomp.bpf() is None,
                    reason="syscall numbers of x86_64; needs libseccomp")
def test_each_denied_call_is_refused(attacks):
    _, mod = attacks
    results = mod.call("denied_calls")
    allowed = {name: rc for name, rc in results.items() if rc[0] != -1 or rc[1] != "EPERM"}
    assert allowed == {}, f"calls the filter let through: {allowed}"
    assert mod.call("echo", 1) == 1


def test_no_nested_namespace_and_no_mount(attacks):
    _, mod = attacks
    code, out = mod.call("nested_namespace")
    assert code != 0 and "mounted" not in out


@pytest.mark.parametrize("where", ["/tmp/fill.bin", "/dev/shm/fill.bin", "/scratch/fill.bin"])
def test_disk_writes_stop_at_the_cap(submission, where):
    """64 MiB of disk for the job: 200 MiB into /tmp, /dev/shm or /scratch stops with a named limit."""
    runner = _runner(submission, disk_mb=64, file_size_mb=1024)
    try:
        mod = runner.module("attacks")
        with pytest.raises((RemoteError, RunnerFailure)) as info:
            mod.call("fill", where, 200)
        exc = info.value
        assert getattr(exc, "limit", None) == "disk" or "memory limit" in str(exc), exc
        assert mod.call("echo", "honest") == "honest"
    finally:
        runner.close()


@pytest.mark.skipif("not detect().disk_tmpfs", reason="the scratch is a capped tmpfs only where the grader may mount")
def test_many_small_files_stop_at_the_cap(submission):
    runner = _runner(submission, disk_files=500)
    try:
        mod = runner.module("attacks")
        with pytest.raises(RemoteError) as info:
            mod.call("many_files", "/scratch/many", 2000)
        assert info.value.limit == "disk"
        assert mod.call("echo", "honest") == "honest"
    finally:
        runner.close()


@pytest.mark.skipif("not detect().on or 'memory cgroup' not in detect().reason", reason="needs a memory cgroup")
def test_tmpfs_counts_against_the_memory_limit(submission):
    """Files in /tmp are memory: with 256 MiB resident allowed and a 2 GiB disk, 600 MiB in /tmp stops."""
    runner = _runner(submission, resident_mb=256, disk_mb=2048, file_size_mb=2048)
    try:
        mod = runner.module("attacks")
        with pytest.raises((RunnerFailure, RemoteError)) as info:
            mod.call("fill", "/tmp/fill.bin", 600)
        assert "memory limit" in str(info.value) or getattr(info.value, "limit", None) == "memory"
        assert mod.call("echo", "honest") == "honest"
    finally:
        runner.close()


@pytest.mark.skipif("not detect().on or 'memory cgroup' not in detect().reason", reason="needs a memory cgroup")
def test_resident_memory_over_the_cgroup_names_the_limit(submission):
    runner = _runner(submission, resident_mb=256)
    try:
        mod = runner.module("attacks")
        with pytest.raises((RunnerFailure, RemoteError)) as info:
            mod.call("resident", 600)
        assert "memory limit" in str(info.value) or getattr(info.value, "limit", None) == "memory"
        assert mod.call("echo", "honest") == "honest"
    finally:
        runner.close()


def test_a_stage_that_stalls_every_call_is_held_to_its_budget(submission):
    """Each call may take 60 s; the stage's budget of 8 s ends every call after it."""
    runner = _runner(submission, budget=8)
    start = time.monotonic()
    try:
        mod = runner.module("attacks")
        outcomes = []
        for _ in range(5):
            try:
                outcomes.append(mod.call("stall", 5))
            except RunnerFailure as exc:
                outcomes.append(str(exc))
        assert time.monotonic() - start < 30
        assert any("time limit" in str(o) for o in outcomes), outcomes
    finally:
        runner.close()


def test_an_honest_stage_right_after_is_still_full(tmp_path):
    from autograder.grading.structural import grade

    result = grade(REPO_ROOT / "solutions", stages=["tokenize"], jobs=1)
    assert result.score == result.max_score, [c for s in result.stages for c in s.checks if not c.passed]


@pytest.mark.skipif("not detect().on or 'memory cgroup' not in detect().reason", reason="needs a memory cgroup")
def test_the_judges_memory_cgroup_stops_it():
    """The judge runs in a memory cgroup of its own: a judge that a reply blows up is stopped, and said so."""
    import subprocess
    import sys

    from autograder.sandbox.limits import judge_preexec, new_cgroups

    groups = new_cgroups(memory_mb=128, tag="judge")
    try:
        proc = subprocess.run([sys.executable, "-c", "x = bytearray(400 << 20); x[::4096] = b'1' * len(x[::4096])"],
                              preexec_fn=judge_preexec(groups), capture_output=True, timeout=60)
        assert proc.returncode != 0 and groups.oom_killed()
    finally:
        groups.release()
