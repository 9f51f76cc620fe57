"""The warm parent of a grade's runners: imports the libraries once, never a submission.

Measured on 2 cores: a stage's runner spent 2-5 s importing torch, transformers and datasets
before its first check, and every stage (and every restart after a crash) paid it again. The
zygote pays it once per grade, inside the same jail, and forks a fresh runner for each stage
(``runner.main`` in the child, which then imports the submission). The zygote itself never
imports a submission module, so no stage can leave state for another in it; a stage's whole
process tree is killed before the next stage forks.

Control protocol (a Unix socket from the judge, ``--zygote FD``): one JSON object per message.
``{"op": "fork", "args": [...]}`` carries three descriptors (the runner's stdin, its reply
channel and its log) and answers ``{"pid": N}``; ``{"op": "status", "pid": N}`` answers
``{"code": C}`` (None while alive; negative: the signal); ``{"op": "kill"}`` kills every
descendant of the zygote (a child subreaper: orphans stay below it), reaps, and answers ``{}``.
This file imports nothing from the ``autograder`` package (which is not mounted in the jail).
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import signal
import socket
import time

PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 4, 36
WARM = ("numpy", "torch", "safetensors.torch", "transformers", "datasets", "sklearn.metrics",
        "transformers.modeling_utils", "transformers.trainer", "transformers.models.bert.modeling_bert",
        "transformers.models.distilbert.modeling_distilbert", "transformers.pipelines")


def warm() -> None:
    """Import what every stage imports (libraries only: never a submission module).

    With the collector off: importing torch and transformers allocates a million objects and none of
    them is garbage, yet each allocation burst triggers a collection that walks them all again
    (3.8 s of imports become 3.1 s). ``serve`` freezes them right after."""
    import importlib

    gc.disable()
    try:
        for name in WARM:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - a library that does not import here is imported later, or fails there
                pass
    finally:
        gc.enable()


def _dumpable(flag: int) -> None:
    """A stage may not write the zygote's memory through /proc/PID/mem (ptrace is filtered too)."""
    try:
        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, flag, 0, 0, 0)
    except Exception:  # noqa: BLE001
        pass


def _subreaper() -> None:
    """Orphans of a runner come to the zygote (not to the jail's init), so they can be found and killed."""
    try:
        ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except Exception:  # noqa: BLE001
        pass


def _code(status: int) -> int:
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _descendants(root: int) -> list[int]:
    """Every process below ``root``, from /proc's parent links (the zygote is a subreaper, so a
    runner's orphans, daemonised or not, are re-parented to it and stay below it)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for kid in children.get(todo.pop(), []):
            found.append(kid)
            todo.append(kid)
    return found


def _kill_descendants() -> None:
    """Kill the runners and everything they started; never anything else (with the jail off,
    /proc lists the whole machine)."""
    me = os.getpid()
    for _ in range(5):
        below = _descendants(me)
        if not below:
            return
        for pid in below:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.02)


def serve(control_fd: int, runner_main) -> int:
    """Answer the judge until it closes the socket; ``runner_main(argv)`` runs in each child."""
    warm()
    gc.freeze()  # the libraries' objects stay out of every collection: a fork's pages stay shared
    _dumpable(0)
    _subreaper()
    sock = socket.socket(fileno=control_fd)
    codes: dict[int, int] = {}
    supervisors: dict[int, int] = {}  # supervisor pid -> its runner's pid
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 1 << 16, 3)
        except OSError:
            break
        if not msg:
            break
        req = json.loads(msg)
        op = req.get("op")
        if op == "fork" and len(fds) == 3:
            reply = {"pid": _fork(sock, fds, req.get("args", []), runner_main, supervisors)}
        elif op == "status":
            reply = {"code": _status(int(req.get("pid", 0)), codes, supervisors)}
        elif op == "kill":
            _kill_descendants()
            _reap(codes, supervisors)
            reply = {}
        else:
            for fd in fds:
                os.close(fd)
            reply = {"error": f"unknown op {op!r}"}
        sock.sendall(json.dumps(reply).encode())
    _kill_descendants()
    return 0


def _fork(sock: socket.socket, fds: list[int], args: list[str], runner_main, supervisors: dict[int, int]) -> int:
    """A runner whose parent is a small supervisor, not the zygote: a submission that kills its
    parent (``os.kill(os.getppid(), SIGKILL)``) kills the supervisor only; the runner, re-parented
    to the zygote (a subreaper), goes on answering. The supervisor exits with the runner's status."""
    read, write = os.pipe()
    supervisor = os.fork()
    if supervisor == 0:
        code = 1
        try:
            os.close(read)
            runner = os.fork()
            if runner == 0:
                os.close(write)
                _child(sock, fds, args, runner_main)
            sock.close()
            for fd in fds:
                os.close(fd)
            os.write(write, str(runner).encode())
            os.close(write)
            status = _code(os.waitpid(runner, 0)[1])
            code = 128 - status if status < 0 else min(status, 127)
        finally:
            os._exit(code)
    os.close(write)
    runner = int(os.read(read, 32) or b"0")
    os.close(read)
    for fd in fds:
        os.close(fd)
    supervisors[supervisor] = runner
    return runner


def _reap(codes: dict[int, int], supervisors: dict[int, int]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid in supervisors:
            runner = supervisors.pop(pid)
            if os.WIFEXITED(status) and runner not in codes:  # killed by its runner: the runner lives on
                code = os.WEXITSTATUS(status)
                codes[runner] = -(code - 128) if code > 128 else code
        else:
            codes[pid] = _code(status)


def _status(pid: int, codes: dict[int, int], supervisors: dict[int, int]) -> int | None:
    _reap(codes, supervisors)
    return codes.get(pid)


def _child(sock: socket.socket, fds: list[int], args: list[str], runner_main) -> None:
    """In the fork: become a plain runner on the three descriptors, then exit (never return)."""
    code = 1
    try:
        sock.close()
        _dumpable(1)
        os.setpgid(0, 0)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        code = runner_main(args) or 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - the judge sees the broken channel and says so
        code = 1
    finally:
        os._exit(code)
