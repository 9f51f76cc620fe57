"""The judge's side of the warm runner: one jailed zygote per judge process, a fork per stage.

``sandbox/zygote.py`` explains why (each stage's runner paid 2-5 s of imports). Here the judge
starts the zygote in the jail once, over a Unix socket, and asks it for a fresh runner per
stage and per restart. Each runner gets its own pipes (passed as descriptors: nothing else
connects them) and its own folder under the job's scratch. The walls do not move: the zygote
runs in exactly the jail and limits a runner ran in before, and a runner is a child of it.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from autograder.course.manifest import Limits, SubmissionCaps
from autograder.sandbox.jail import Job, SandboxStatus, inside, release, spawn

RUNNER = Path(__file__).resolve().parent.parent / "sandbox" / "runner.py"
ANSWER_SECONDS = 30.0  # the zygote answers at once; a silent one is dead or stuck


class ZygoteGone(RuntimeError):
    """The zygote stopped (a stage killed it): the next fork starts a fresh one."""


@dataclass
class StageJob:
    """What a stage's runner sees of the grade's shared job: its own scratch folder."""

    shared: Job
    scratch: Path

    @property
    def root(self) -> Path:
        return self.shared.root

    @property
    def submission(self) -> Path:
        return self.shared.submission

    @property
    def inputs(self) -> Path:
        return self.shared.inputs

    @property
    def refused(self) -> list[str]:
        return self.shared.refused

    def publish_inputs(self, status: SandboxStatus) -> None:
        self.shared.publish_inputs(status)


class Zygote:
    """One warm jailed parent for every stage a judge process grades."""

    def __init__(self, submission: Path, *, limits: Limits, caps: SubmissionCaps, status: SandboxStatus,
                 threads: int | None = None, ro: tuple[Path, ...] = (), parent: Path | None = None):
        self.job = Job.create(Path(submission), caps, parent=parent)  # under ``parent``: found if we are killed
        self.limits, self.status, self.threads, self.ro = limits, status, threads, ro
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.lent = False  # a judge child's copy (``lend``): the socket is ours, the process is not
        self.cgroups = None

    def lend(self) -> Zygote:
        """This object as a forked judge child sees it: it may ask the zygote (the judge server
        lends one slot to one child at a time) but does not own its process; if the zygote
        dies, the child starts a private one (``_start``) and stops it when it closes."""
        self.lent, self.proc = True, None
        return self

    def stage_job(self, name: str) -> StageJob:
        return StageJob(self.job, self.job.scratch / f"stage-{name}")

    def inside_scratch(self, name: str) -> str:
        return f"{inside(self.job, self.status)[1]}/stage-{name}"

    # ------------------------------------------------------------------ process
    def alive(self) -> bool:
        if self.lent and self.proc is None:
            return self.sock is not None
        return self.proc is not None and self.proc.poll() is None

    def _start(self) -> None:
        self.stop()
        ours, theirs = socket.socketpair()
        argv = [sys.executable, "-I", str(RUNNER), "--zygote", str(theirs.fileno()),
                "--threads", str(self.threads or 1)]
        log = open(self.job.root / "zygote.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = spawn(argv, self.job, self.limits, self.status, ro=self.ro, threads=self.threads,
                              pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        finally:
            log.close()
            theirs.close()
        self.sock, self.cgroups = ours, getattr(self.proc, "cgroups", None)

    def restart(self) -> None:
        """A fresh zygote in a fresh jail (the old one, and everything below it, killed)."""
        self._start()

    def ask(self, message: dict, fds: list[int] | None = None) -> dict:
        """One request and its answer; a dead or silent zygote raises :class:`ZygoteGone`."""
        if not self.alive() or self.sock is None:
            raise ZygoteGone("the warm runner is not running")
        try:
            socket.send_fds(self.sock, [json.dumps(message).encode()], fds or [])
            ready, _, _ = select.select([self.sock], [], [], ANSWER_SECONDS)
            data = self.sock.recv(1 << 16) if ready else b""
            reply = json.loads(data) if data else None
        except (OSError, ValueError):
            reply = None
        if not isinstance(reply, dict):
            if self.lent and self.proc is None:
                self.stop()  # the lent zygote is gone: the next fork starts a private one
            raise ZygoteGone("the warm runner stopped answering")
        return reply

    def fork(self, stage: str, log_path: Path) -> ForkedChild:
        """A fresh runner for ``stage``: imports of the libraries already done, none of the submission."""
        if not self.alive():
            self._start()
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        sub, _ = inside(self.job, self.status)
        args = ["--submission", sub, "--scratch", self.inside_scratch(stage), "--threads", str(self.threads or 1)]
        try:
            reply = self.ask({"op": "fork", "args": args}, [in_r, out_w, log_fd])
        except ZygoteGone:
            for fd in (in_w, out_r):
                os.close(fd)
            raise
        finally:
            for fd in (in_r, out_w, log_fd):
                os.close(fd)
        return ForkedChild(self, int(reply["pid"]), os.fdopen(in_w, "wb", buffering=0), os.fdopen(out_r, "rb"))

    def stop(self) -> None:
        from autograder.procs import kill_tree

        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc is not None:
            kill_tree(self.proc)
            release(self.proc)
            self.proc = None

    def close(self) -> None:
        self.stop()
        if not self.lent:  # a lent copy's job belongs to the judge server
            self.job.cleanup()


class ForkedChild:
    """A runner forked by the zygote, with the part of Popen's interface the judge uses."""

    def __init__(self, zygote: Zygote, pid: int, stdin, stdout):
        self.zygote, self.pid, self.stdin, self.stdout = zygote, pid, stdin, stdout
        self.returncode: int | None = None
        self.cgroups = zygote.cgroups  # the jail's: for the out-of-memory message

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                self.returncode = self.zygote.ask({"op": "status", "pid": self.pid}).get("code")
            except ZygoteGone:
                self.returncode = self.zygote.proc.returncode if self.zygote.proc else -9
                self.returncode = -9 if self.returncode is None else self.returncode
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        end = time.monotonic() + (timeout or 0)
        while self.poll() is None and time.monotonic() < end:
            time.sleep(0.02)
        return self.returncode

    def kill(self) -> None:
        """The runner and everything it started (the zygote and the jail's init excepted)."""
        try:
            self.zygote.ask({"op": "kill"})
        except ZygoteGone:
            self.zygote.stop()
        self.poll()
