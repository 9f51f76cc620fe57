"""The bubblewrap command line of a job, in its two shapes.

**Grader running as root** (CI, Gradescope, Docker): a single bwrap would map uid 65534 inside to
root outside, so a file the jail can reach is as good as root's (``/etc/shadow`` was read, a
setuid-root shell planted). So the jail is built in two steps:

1. an *outer* bwrap, as root, builds the file system view only (no user namespace): system
   folders, the virtualenv and the Python it links to (often under ``/root``, which no other
   user may enter), the read-only inputs, the submission and the job's scratch. It keeps just
   CAP_SETUID/CAP_SETGID, which ``setpriv`` spends at once to become the job's own unprivileged
   host uid (:attr:`Job.uid`) with no capabilities left;
2. an *inner* bwrap, started by that uid, unshares everything (user, pid, network, ipc, uts,
   cgroup), maps uid 65534 inside to that host uid, forbids further user namespaces
   (``--disable-userns``), loads the seccomp filter and mounts a fresh ``/proc``.

bwrap is pid 1 of the job's pid namespace and its ``/proc/1/environ`` is readable there, so both
bwraps start from an explicit environment (``PATH`` only): the grader's variables never enter.

**Grader not root** (a student's laptop): one bwrap, as before, plus ``--disable-userns``, the
filter and size-capped tmpfs; uid 65534 maps to the student's own uid.
"""

from __future__ import annotations

import shutil
from pathlib import Path

SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc")
INSIDE_SUBMISSION, INSIDE_SCRATCH = "/submission", "/scratch"
OUTER_PATH = "/usr/local/bin:/usr/bin:/bin"


def setpriv_path() -> str | None:
    return shutil.which("setpriv", path="/usr/bin:/bin:/usr/sbin:/sbin")


def _dirs_for(paths: list[Path]) -> list[str]:
    """``--dir`` for every parent of a bind target, world-traversable (bwrap makes them 0700)."""
    args: list[str] = []
    made: set[Path] = set()
    for path in paths:
        for parent in reversed(path.parents):
            if parent != Path("/") and parent not in made:
                made.add(parent)
                args += ["--perms", "0755", "--dir", str(parent)]
    return args


def view(binds: list[tuple[str, Path, str]], *, scratch: Path, disk_tmpfs: bool, tmp_size: int) -> list[str]:
    """The mounts of the job's file system view: ``binds`` are (flag, host path, inside path).

    With ``disk_tmpfs`` the job's scratch is a size- and inode-capped tmpfs that also holds
    ``/tmp`` and ``/dev/shm`` (one cap for all three); else each of those is a ``--size`` tmpfs.
    ``/tmp`` is mounted first, so a read-only path under ``/tmp`` (a checkout there) lies on top.
    """
    args: list[str] = []
    if disk_tmpfs:
        args += ["--bind", str(scratch / "tmp"), "/tmp"]
    else:
        args += ["--perms", "1777", "--size", str(tmp_size), "--tmpfs", "/tmp"]
    args += _dirs_for([Path(inside) for _, _, inside in binds if inside.count("/") > 1])
    for flag, host, inside in binds:
        args += [flag, str(host), inside]
    return args


def shm(*, scratch: Path | None, tmp_size: int) -> list[str]:
    """``/dev/shm`` after ``--dev``: bwrap's own is a folder on an uncapped tmpfs."""
    if scratch is not None:
        return ["--bind", str(scratch / "shm"), "/dev/shm"]
    return ["--perms", "1777", "--size", str(tmp_size), "--tmpfs", "/dev/shm"]


def single(bwrap: str, mounts: list[str], env: dict[str, str], argv: list[str], *, seccomp_fd: int | None,
           tmp_size: int) -> list[str]:
    """One bwrap (the grader is not root): uid 65534 inside is the grader's own uid outside."""
    cmd = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--uid", "65534", "--gid", "65534",
           "--die-with-parent", "--new-session", "--clearenv", "--proc", "/proc", "--dev", "/dev",
           *shm(scratch=None, tmp_size=tmp_size), *mounts]
    if seccomp_fd is not None:
        cmd += ["--seccomp", str(seccomp_fd)]
    for key, value in env.items():
        cmd += ["--setenv", key, value]
    return [*cmd, "--remount-ro", "/", "--chdir", INSIDE_SCRATCH, "--", *argv]


def two_step(bwrap: str, mounts: list[str], env: dict[str, str], argv: list[str], *, uid: int,
             seccomp_fd: int | None, scratch: Path | None, tmp_size: int, chdir: str = INSIDE_SCRATCH) -> list[str]:
    """Outer bwrap (root: the view) -> setpriv (the job's uid, no capabilities) -> inner bwrap."""
    setpriv = setpriv_path() or "setpriv"
    outer = [bwrap, "--die-with-parent", "--clearenv", "--setenv", "PATH", OUTER_PATH,
             "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
             "--tmpfs", "/", "--bind", "/proc", "/proc", "--dev", "/dev", *shm(scratch=scratch, tmp_size=tmp_size),
             *mounts, "--remount-ro", "/", "--",
             setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
             "--bounding-set=-all", "--"]
    # the host /proc the outer step bound is covered by the inner step's own /proc
    inner = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--uid", "65534", "--gid", "65534",
             "--die-with-parent", "--new-session", "--clearenv", "--bind", "/", "/", "--proc", "/proc",
             "--dev", "/dev", "--bind", "/dev/shm", "/dev/shm"]  # a plain bind would leave /dev/null nodev
    if seccomp_fd is not None:
        inner += ["--seccomp", str(seccomp_fd)]
    for key, value in env.items():
        inner += ["--setenv", key, value]
    return [*outer, *inner, "--chdir", chdir, "--", *argv]
