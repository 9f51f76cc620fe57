"""Resource limits of a job: rlimits, and a pids cgroup for the number of tasks.

Memory (address space), CPU seconds, file size and open files are rlimits, set in the child
before bwrap starts and inherited by everything in the jail. The number of tasks needs more:
RLIMIT_NPROC counts every task of the *real* user machine-wide, and the kernel does not apply
it to root at all, while bubblewrap started by root runs the jail as root outside (uid 65534
inside). So, where the grader may create cgroups (root with a writable pids controller, v1 or
v2), each job gets its own pids cgroup with ``pids.max`` = the limit: exact, per job, whatever
else the machine runs. Elsewhere RLIMIT_NPROC is set on top of what the user already runs
(exact for an unprivileged grader). :func:`process_cap` says which one a job got.
"""

from __future__ import annotations

import os
import resource
import time
import uuid
from functools import lru_cache
from pathlib import Path

from autograder.course.manifest import Limits

CGROUP_PARENT = "autograder-jobs"


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


@lru_cache(maxsize=1)
def _pids_root() -> Path | None:
    """The folder under which job cgroups with a pids controller can be made, or None."""
    if os.getuid() != 0 or os.environ.get("AUTOGRADER_CGROUPS", "").lower() in ("off", "0"):
        return None
    v1 = Path("/sys/fs/cgroup/pids")
    candidates = [v1] if (v1 / "cgroup.procs").exists() else []
    v2 = Path("/sys/fs/cgroup")
    if (v2 / "cgroup.controllers").exists() and "pids" in (v2 / "cgroup.controllers").read_text().split():
        candidates.append(v2)
    for base in candidates:
        parent = base / CGROUP_PARENT
        try:
            parent.mkdir(exist_ok=True)
            if base == v2:  # v2: the controller must be handed down to the children
                (base / "cgroup.subtree_control").write_text("+pids")
                (parent / "cgroup.subtree_control").write_text("+pids")
            probe = parent / f"probe-{os.getpid()}"
            probe.mkdir()
            ok = (probe / "pids.max").exists()
            probe.rmdir()
            if ok:
                return parent
        except OSError:
            continue
    return None


def new_pids_cgroup(limit: int) -> Path | None:
    root = _pids_root()
    if root is None:
        return None
    group = root / f"job-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        group.mkdir()
        (group / "pids.max").write_text(str(limit))
    except OSError:
        return None
    return group


def release_cgroup(group: Path | None) -> None:
    """Remove a job's cgroup once its tasks are gone (they are being killed: wait a moment)."""
    if group is None:
        return
    for _ in range(50):
        try:
            group.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)


def process_cap() -> str:
    return "pids cgroup" if _pids_root() is not None else "RLIMIT_NPROC"


def preexec(limits: Limits, cgroup: Path | None):
    """rlimits (and the cgroup) for the child; inherited by bwrap and everything it starts."""
    nproc = limits.processes + (0 if cgroup else _process_count(os.getuid()))

    def apply() -> None:
        if cgroup is not None:
            with open(cgroup / "cgroup.procs", "w") as f:
                f.write(str(os.getpid()))
        mb = 1 << 20
        for res, value in ((resource.RLIMIT_AS, limits.memory_mb * mb), (resource.RLIMIT_NPROC, nproc),
                           (resource.RLIMIT_FSIZE, limits.file_size_mb * mb),
                           (resource.RLIMIT_NOFILE, limits.open_files), (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(res, (value, value))
        # SIGXCPU at the soft limit (a message can name it), SIGKILL 5 s later
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
    return apply
