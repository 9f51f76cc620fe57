"""The judge's side of the boundary: a client for one stage's runner.

The hidden graders never import a submission. They ask the runner (``sandbox/runner.py``, in
the jail) to import a module, call a function, build an argument from a recipe or probe an
object, and get plain data back. Every comparison, verdict and message is made here, in the
judge's process. A runner that crashes, hangs or is killed fails the call that was running
(with the reason) and is started afresh for the next check.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from autograder.course.manifest import Limits, SubmissionCaps
from autograder.messages import stopped_after
from autograder.procs import exit_reason, kill_tree, signal_of
from autograder.sandbox import wire
from autograder.sandbox.jail import Job, SandboxStatus, inside, oom_killed, release, spawn

RUNNER = Path(__file__).resolve().parent.parent / "sandbox" / "runner.py"


class RemoteError(Exception):
    """An exception the submission raised, as data: type name, its classes, message, frames."""

    def __init__(self, info: dict):
        self.type = str(info.get("type", "Exception"))[:200]  # a forged reply may carry anything: cut it here
        self.mro = [str(m)[:300] for m in info.get("mro", [])[:64]]
        self.message = str(info.get("message", ""))[:4000]
        self.frames = [[p[:200] if isinstance(p, str) else p for p in f] for f in info.get("frames", [])[:8]
                       if isinstance(f, list) and len(f) == 3]
        self.limit = info.get("limit")
        super().__init__(f"{self.type}: {self.message}")

    def is_a(self, exc_type: type[BaseException]) -> bool:
        return wire.qualname(exc_type) in self.mro

    def where(self) -> str:
        if not self.frames:
            return ""
        name, line, func = self.frames[-1]
        return f" (in {name}, line {line}, in {func})"


class RunnerFailure(Exception):
    """The runner stopped, hung or broke the protocol: the message is for the learner."""


class Handle:
    """An object that stays in the runner; pass it back as an argument, call it or probe it."""

    def __init__(self, runner: Runner, info: dict):
        self.runner, self.id = runner, int(info["__handle__"])
        self.type = str(info.get("type", "object"))
        self.mro = [str(m) for m in info.get("mro", [])]
        self.repr = str(info.get("repr", ""))
        self.generation = runner.generation

    def to_wire(self) -> dict:
        if self.generation != self.runner.generation:
            raise RunnerFailure("an object from before the submission's process restarted was used again")
        return {"__handle__": self.id}

    def is_a(self, cls: type) -> bool:
        return wire.qualname(cls) in self.mro

    def call(self, method: str | None, *args, options: dict | None = None, **kwargs) -> Any:
        return self.runner.call({"handle": self.id, "name": method}, args, kwargs, options)[0]

    def call_traced(self, method: str | None, *args, options: dict | None = None, **kwargs):
        return self.runner.call({"handle": self.id, "name": method}, args, kwargs, options)

    def attr(self, name: str) -> Any:
        return self.runner.request("getattr", handle=self.to_wire()["__handle__"], name=name)

    def probe(self, kind: str) -> dict:
        return self.runner.request("probe", handle=self.to_wire()["__handle__"], kind=kind)

    def __repr__(self) -> str:
        return f"<{self.type} in the submission's process>"


class Recipe:
    """Instructions to build an argument in the runner (a tokenizer from a path, a dataset, ...)."""

    def __init__(self, kind: str, **spec):
        self.kind, self.spec = kind, spec

    def to_wire(self) -> dict:
        codec = wire.Codec()
        return {"__build__": self.kind, **{k: codec.encode(v) for k, v in self.spec.items()}}

    def __repr__(self) -> str:
        return f"<{self.kind}>"


class Runner:
    """One runner process per stage, restarted on demand; ``timeout`` limits each call and
    ``budget`` (seconds) every call of the stage together, so a submission that stalls each call
    holds the grader for the budget at most, not the timeout times the number of checks."""

    def __init__(self, submission: Path, *, limits: Limits, caps: SubmissionCaps, status: SandboxStatus,
                 timeout: float, threads: int | None = None, ro: tuple[Path, ...] = (), budget: float | None = None,
                 zygote=None, name: str = "runner"):
        # with a zygote (grading/warm.py) the runner is forked warm, in the grade's shared jail
        self.zygote, self.name = zygote, name
        self.job = zygote.stage_job(name) if zygote is not None else Job.create(Path(submission), caps)
        self.log_path = self.job.root / f"{name}.log"
        self.limits, self.status, self.timeout, self.threads, self.ro = limits, status, timeout, threads, ro
        self.budget = budget
        self.stage_deadline = time.monotonic() + budget if budget else None
        self.proc: subprocess.Popen | None = None
        self.generation = 0
        self.sequence = 0
        self.imported: list[str] = []
        self.codec = wire.Codec(on_tag=self._tag)

    # --------------------------------------------------------------- process
    def _start(self) -> None:
        if self.zygote is not None:
            from autograder.grading.warm import ZygoteGone

            try:
                self.proc = self.zygote.fork(self.name, self.log_path)
            except ZygoteGone:  # a stage killed it: one fresh zygote, then give up
                self.proc = self.zygote.fork(self.name, self.log_path)
            self._started()
            return
        sub, scratch = inside(self.job, self.status)
        argv = [sys.executable, "-I", str(RUNNER), "--submission", sub, "--scratch", scratch,
                "--threads", str(self.threads or 1)]
        for attempt in range(4):
            log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
            self.proc = spawn(argv, self.job, self.limits, self.status, ro=self.ro, threads=self.threads,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
            log.close()
            # The tasks of a job killed a moment ago still count against RLIMIT_NPROC until the kernel
            # has reaped them: bwrap then cannot create its namespaces. Wait and try again.
            time.sleep(0.05)
            if self.proc.poll() is None or b"Creating new namespace failed" not in self._log_tail().encode():
                break
            self._stop()
            time.sleep(0.5 * (attempt + 1))
        self._started()

    def _started(self) -> None:
        self.generation += 1
        for module in list(self.imported):
            self.request("import", module=module)

    def _stop(self) -> None:
        if self.proc is not None:
            if self.zygote is not None:
                self.proc.kill()
            else:
                kill_tree(self.proc)
                release(self.proc)
            for stream in (self.proc.stdin, self.proc.stdout):
                try:
                    stream.close()
                except Exception:  # noqa: BLE001
                    pass
        self.proc = None

    def close(self) -> None:
        self._stop()
        if self.zygote is None:
            self.job.cleanup()

    def _tag(self, tag: str, obj: dict) -> Any:
        if tag == "__handle__":
            return Handle(self, obj)
        raise wire.WireError("the runner sent a recipe")

    # --------------------------------------------------------------- requests
    def request(self, op: str, timeout: float | None = None, **fields) -> Any:
        if self.stage_deadline is not None and time.monotonic() >= self.stage_deadline:
            self._stop()
            raise RunnerFailure(f"Timeout: the stage's time limit ({self.budget:.0f} s for all its checks together) "
                                "ran out before this check (earlier calls were slow or never answered)")
        if self.proc is None or self.proc.poll() is not None:
            self._stop()
            self._start()
        self.job.publish_inputs(self.status)
        deadline = time.monotonic() + (timeout or self.timeout)
        if self.stage_deadline is not None and self.stage_deadline < deadline:
            deadline = self.stage_deadline
            timeout = max(1.0, deadline - time.monotonic())
        self.sequence += 1
        try:
            wire.send(self.proc.stdin.fileno(), {"op": op, "id": self.sequence, **fields})
            fd = self.proc.stdout.fileno()
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RunnerFailure(stopped_after(timeout or self.timeout,
                                                      "an endless loop, or code far slower than it needs to be?"))
                ready, _, _ = select.select([fd], [], [], min(left, 1.0))
                if ready:
                    break
            reply = wire.receive(fd, deadline)
        except TimeoutError:
            self._stop()
            raise RunnerFailure(stopped_after(timeout or self.timeout,
                                              "the submission's process stopped answering half-way")) from None
        except wire.WireError as exc:
            self._stop()
            raise RunnerFailure(f"the submission's process sent a broken answer ({exc})") from None
        except (EOFError, BrokenPipeError, OSError) as exc:
            code = self.proc.wait(timeout=10) if self.proc else None
            oom = oom_killed(self.proc)
            self._stop()
            raise RunnerFailure(self._death_message(code, exc, oom)) from None
        except BaseException:
            self._stop()  # a timeout (ours or pytest-timeout's) leaves the runner busy: never reuse it
            raise
        if reply.get("id") != self.sequence:
            self._stop()  # something else wrote on the reply channel: never trust what follows
            raise RunnerFailure("the submission's process answered out of turn "
                                "(something wrote on the grader's channel)")
        if not reply.get("ok"):
            error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
            raise RemoteError(error)
        try:
            return self.codec.decode(reply.get("value"))
        except wire.WireError as exc:
            raise RunnerFailure(f"the submission sent back something that is not plain data ({exc})") from None

    def _log_tail(self) -> str:
        log = self.log_path
        try:
            with open(log, "rb") as f:
                f.seek(max(0, os.path.getsize(log) - 2000))
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        return text.strip().splitlines()[-1][:200] if text.strip() else ""

    def _death_message(self, code: int | None, exc: BaseException, oom: bool = False) -> str:
        tail = self._log_tail()
        if oom:
            why = (f"it went over the memory limit of the grading sandbox ({self.limits.resident_mb} MiB, "
                   "files written to /tmp, /dev/shm and /scratch included)")
        elif signal_of(code, self.status.on) is not None:
            why = exit_reason(code, self.status.on)
        elif code is None:
            why = f"it stopped answering ({type(exc).__name__})"
        else:
            why = f"it exited with code {code} (sys.exit or os._exit in the submission?)"
        return f"the submission's process stopped: {why}" + (f"; its last output: {tail}" if tail else "")

    def module(self, name: str) -> RemoteModule:
        reply = self.request("import", module=name)
        if name not in self.imported:
            self.imported.append(name)
        return RemoteModule(self, name, reply)

    def call(self, target: dict, args, kwargs, options: dict | None = None) -> tuple[Any, list]:
        out = self.request("call", **target, args=[self.codec.encode(a) for a in args],
                           kwargs={k: self.codec.encode(v) for k, v in kwargs.items()}, options=options or {})
        if not isinstance(out, dict) or "value" not in out:
            raise RunnerFailure("the submission's process answered out of turn")
        return out["value"], out.get("trace") or []

    def build(self, recipe: Recipe) -> Handle:
        handle = self.request("build", recipe=recipe.to_wire())
        if not isinstance(handle, Handle):
            raise RunnerFailure("the submission's process did not build the argument it was asked for")
        return handle


class RemoteModule:
    """A submission module as the judge sees it: names to call, never code to run here."""

    def __init__(self, runner: Runner, name: str, info: dict):
        self.runner, self.name = runner, name
        self.__name__ = f"submission_{name}"
        self.info = info if isinstance(info, dict) else {}

    def describe(self, attr: str) -> dict:
        return self.runner.request("describe", module=self.name, name=attr)

    def call(self, fn: str, *args, options: dict | None = None, **kwargs) -> Any:
        return self.runner.call({"module": self.name, "name": fn}, args, kwargs, options)[0]

    def call_traced(self, fn: str, *args, options: dict | None = None, **kwargs):
        return self.runner.call({"module": self.name, "name": fn}, args, kwargs, options)
