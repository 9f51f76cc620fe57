"""The warm parent of a grade's runners: imports the libraries once, never a submission.

Measured on 2 cores: a stage's runner spent 2-5 s importing torch, transformers and datasets
before its first check, and every stage (and every restart after a crash) paid it again. The
zygote pays it once per grade, inside the same jail, and forks a fresh runner for each stage
(``runner.main`` in the child, which then imports the submission). The zygote itself never
imports a submission module, so no stage can leave state for another in it; a stage's whole
process tree is killed before the next stage forks (the jail's pid namespace lists it).

Control protocol (a Unix socket from the judge, ``--zygote FD``): one JSON object per message.
``{"op": "fork", "args": [...]}`` carries three descriptors (the runner's stdin, its reply
channel and its log) and answers ``{"pid": N}``; ``{"op": "status", "pid": N}`` answers
``{"code": C}`` (None while alive; negative: the signal); ``{"op": "kill"}`` kills every
process of the jail but pid 1 (bwrap) and the zygote, reaps, and answers ``{}``.
This file imports nothing from the ``autograder`` package (which is not mounted in the jail).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import time

PR_SET_DUMPABLE = 4
WARM = ("numpy", "torch", "safetensors.torch", "transformers", "datasets", "sklearn.metrics",
        "transformers.modeling_utils", "transformers.trainer", "transformers.models.bert.modeling_bert",
        "transformers.models.distilbert.modeling_distilbert", "transformers.pipelines")


def warm() -> None:
    """Import what every stage imports (libraries only: never a submission module)."""
    import importlib

    for name in WARM:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a library that does not import here is imported later, or fails there
            pass


def _dumpable(flag: int) -> None:
    """A stage may not write the zygote's memory through /proc/PID/mem (ptrace is filtered too)."""
    try:
        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, flag, 0, 0, 0)
    except Exception:  # noqa: BLE001
        pass


def _code(status: int) -> int:
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _kill_all_but_us() -> None:
    me = os.getpid()
    for _ in range(3):
        others = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, me)]
        if not others:
            return
        for pid in others:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.02)


def serve(control_fd: int, runner_main) -> int:
    """Answer the judge until it closes the socket; ``runner_main(argv)`` runs in each child."""
    warm()
    _dumpable(0)
    sock = socket.socket(fileno=control_fd)
    codes: dict[int, int] = {}
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
            pid = os.fork()
            if pid == 0:
                _child(sock, fds, req.get("args", []), runner_main)
            for fd in fds:
                os.close(fd)
            reply = {"pid": pid}
        elif op == "status":
            reply = {"code": _status(int(req.get("pid", 0)), codes)}
        elif op == "kill":
            _kill_all_but_us()
            _reap(codes)
            reply = {}
        else:
            for fd in fds:
                os.close(fd)
            reply = {"error": f"unknown op {op!r}"}
        sock.sendall(json.dumps(reply).encode())
    _kill_all_but_us()
    return 0


def _reap(codes: dict[int, int]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        codes[pid] = _code(status)


def _status(pid: int, codes: dict[int, int]) -> int | None:
    _reap(codes)
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
