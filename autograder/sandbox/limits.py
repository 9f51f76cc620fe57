"""Resource limits of a job: rlimits, and cgroups for tasks and memory.

Address space, CPU seconds, file size and open files are rlimits, set in the child before
bwrap starts and inherited by everything in the jail. Two limits need more:

- **Tasks.** RLIMIT_NPROC counts every task of the *real* user machine-wide, and the kernel does
  not apply it to root at all. So, where the grader may create cgroups (root with a writable
  pids controller, v1 or v2), each job gets its own pids cgroup with ``pids.max``: exact, per
  job, whatever else the machine runs. Elsewhere RLIMIT_NPROC is set on top of what the user
  already runs (exact for an unprivileged grader, and for the jail's own host uid).
- **Memory.** RLIMIT_AS counts mappings, not files: 3 GiB written into a tmpfs went through a
  2 GiB address-space limit. A memory cgroup counts resident memory, tmpfs pages and page
  cache together (``memory.max`` with ``memory.swap.max = 0``, or v1's ``limit_in_bytes`` and
  ``memsw.limit_in_bytes``), and the kernel's OOM killer stops the job when it goes over.

:func:`describe_caps` says which of these a job gets here; the sandbox status repeats it.
"""

from __future__ import annotations

import os
import resource
import time
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from autograder.course.manifest import Limits
from autograder.procs import setting_is_off

CGROUP_PARENT = "autograder-jobs"
CGROUP_ROOT = Path("/sys/fs/cgroup")  # v1: one folder per controller below it; v2: the unified tree itself


def _process_count(uid: int) -> int:
    """Tasks (threads included) of ``uid`` now."""
    n = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    n += len(os.listdir(f"/proc/{entry}/task"))
            except OSError:
                pass
    return n


def _probe(parent: Path, marker: str) -> bool:
    probe = parent / f"probe-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    try:
        probe.mkdir()
        ok = (probe / marker).exists()
        probe.rmdir()
        return ok
    except OSError:
        return False


@lru_cache(maxsize=2)
def _root(controller: str) -> Path | None:
    """The folder under which job cgroups with ``controller`` (pids, memory) can be made, or None."""
    if os.getuid() != 0 or setting_is_off("AUTOGRADER_CGROUPS"):
        return None
    marker = "pids.max" if controller == "pids" else None
    candidates: list[tuple[Path, str]] = []
    v1 = CGROUP_ROOT / controller
    if (v1 / "cgroup.procs").exists():
        candidates.append((v1, marker or "memory.limit_in_bytes"))
    controllers = CGROUP_ROOT / "cgroup.controllers"
    if controllers.exists() and controller in controllers.read_text().split():
        candidates.append((CGROUP_ROOT, marker or "memory.max"))
    for base, wanted in candidates:
        parent = base / CGROUP_PARENT
        try:
            parent.mkdir(exist_ok=True)
            if base == CGROUP_ROOT:  # v2: the controller must be handed down to the children
                (base / "cgroup.subtree_control").write_text(f"+{controller}")
                (parent / "cgroup.subtree_control").write_text(f"+{controller}")
        except OSError:
            continue
        if _probe(parent, wanted):
            return parent
    return None


@dataclass
class JobCgroups:
    """A job's cgroups (one folder per hierarchy; v2 may share one folder for both)."""

    pids: Path | None = None
    memory: Path | None = None
    made: list[Path] = field(default_factory=list)

    @property
    def folders(self) -> list[Path]:
        return list(dict.fromkeys(p for p in (self.pids, self.memory) if p is not None))

    def oom_killed(self) -> bool:
        """Did the kernel kill a task of this job for going over its memory cgroup?"""
        if self.memory is None:
            return False
        for name in ("memory.events", "memory.oom_control"):
            try:
                for line in (self.memory / name).read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and int(value or 0) > 0:
                        return True
            except (OSError, ValueError):
                continue
        return False

    def release(self) -> None:
        """Remove the cgroups once their tasks are gone (they are being killed: wait a moment)."""
        for group in reversed(self.made):
            for _ in range(50):
                try:
                    group.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)
        self.made.clear()


def _make(controller: str, tag: str) -> Path | None:
    root = _root(controller)
    if root is None:
        return None
    group = root / f"{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        group.mkdir()
    except OSError:
        return None
    return group


def _set_memory(group: Path, megabytes: int) -> bool:
    limit = str(megabytes << 20)
    try:
        if (group / "memory.max").exists():
            (group / "memory.max").write_text(limit)
            if (group / "memory.swap.max").exists():
                (group / "memory.swap.max").write_text("0")
        else:
            (group / "memory.limit_in_bytes").write_text(limit)
            if (group / "memory.memsw.limit_in_bytes").exists():  # only with swap accounting
                (group / "memory.memsw.limit_in_bytes").write_text(limit)
        return True
    except OSError:
        return False


def new_cgroups(*, processes: int | None = None, memory_mb: int | None = None, tag: str = "job") -> JobCgroups:
    """Cgroups for one job (or a judge): ``pids.max`` = ``processes``, memory = ``memory_mb``.

    Each is made only where the machine allows it; what could not be made is simply absent.
    """
    groups = JobCgroups()
    if processes:
        group = _make("pids", tag)
        if group is not None:
            groups.made.append(group)
            try:
                (group / "pids.max").write_text(str(processes))
                groups.pids = group
            except OSError:
                pass
    if memory_mb:
        same = groups.pids if groups.pids is not None and (groups.pids / "memory.max").exists() else None
        group = same or _make("memory", tag)
        if group is not None:
            if group is not same:
                groups.made.append(group)
            if _set_memory(group, memory_mb):
                groups.memory = group
    return groups


def process_cap() -> str:
    return "pids cgroup" if _root("pids") is not None else "RLIMIT_NPROC"


def memory_cap() -> str:
    return "memory cgroup" if _root("memory") is not None else "address-space limit only"


def preexec(limits: Limits, cgroups: JobCgroups | None, *, as_uid: int | None = None):
    """rlimits and cgroups for the child; inherited by bwrap and everything it starts.

    ``as_uid`` is the host uid the jail will run as: RLIMIT_NPROC then counts that uid's tasks.
    """
    have_pids = cgroups is not None and cgroups.pids is not None
    owner = os.getuid() if as_uid is None else as_uid
    nproc = limits.processes + (0 if have_pids else _process_count(owner))
    folders = cgroups.folders if cgroups is not None else []

    def apply() -> None:
        for group in folders:
            with open(group / "cgroup.procs", "w") as f:
                f.write(str(os.getpid()))
        mb = 1 << 20
        for res, value in ((resource.RLIMIT_AS, limits.memory_mb * mb), (resource.RLIMIT_NPROC, nproc),
                           (resource.RLIMIT_FSIZE, limits.file_size_mb * mb),
                           (resource.RLIMIT_NOFILE, limits.open_files), (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(res, (value, value))
        # SIGXCPU at the soft limit (a message can name it), SIGKILL 5 s later
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
    return apply


def judge_preexec(cgroups: JobCgroups):
    """Put a judge into its own cgroups (memory) before it starts; no rlimits (torch reserves much)."""
    folders = cgroups.folders

    def apply() -> None:
        for group in folders:
            with open(group / "cgroup.procs", "w") as f:
                f.write(str(os.getpid()))
    return apply
