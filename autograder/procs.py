"""Child processes, in one place: their environment, thread counts, time limits and killing.

Every process the autograder starts (a stage's judge, a runner, a notebook's papermill) goes
through here, so offline variables, thread splitting and tree-killing are written once.
"""

from __future__ import annotations

import os
import signal
import subprocess

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "PYTHONDONTWRITEBYTECODE": "1"}
# Variables a jailed process may inherit (numerical-library settings that change results or
# crash on some processors); everything else is dropped.
PASS_THROUGH = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LANG", "LC_ALL", "TZ")


SPINCOUNT = "10000"

#: Every variable of the kit's own that it honours, and what it sets. The command lines map them to
#: options (``autograder --help`` lists them); where a process has no command line of ours (a
#: notebook's kernel in the jail, a judge, a batch worker) its parent builds its environment here,
#: and ``setting`` is the one place below the CLI that reads one back.
SETTINGS = {
    "COURSE_MANIFEST": "the course.toml to read (default: the repository's; the model tier points a notebook's "
                       "kernel at its copy without thresholds)",
    "COURSE_MODEL": "the course model, a Hub id or a folder (the CLI's --model)",
    "COURSE_ONLINE": "1: from_pretrained and evaluate.load may download from the Hub",
    "COURSE_TINY_CACHE": "where the tiny random models are built (default ~/.cache/llm-course-kit/tiny)",
    "COURSE_CACHE_DIR": "the kit's cache of references (default ~/.cache/llm-course-kit)",
    "AUTOGRADER_SANDBOX": "off: grade without the jail (the CLI; never for untrusted work)",
    "AUTOGRADER_CGROUPS": "off: no cgroups for jobs and judges (rlimits only)",
}


def setting(name: str) -> str:
    """The value of one of the kit's variables (``""`` when unset); a name not in SETTINGS is a bug."""
    if name not in SETTINGS:
        raise KeyError(f"{name} is not one of the kit's settings: {sorted(SETTINGS)}")
    return os.environ.get(name, "")


def setting_is_on(name: str) -> bool:
    return setting(name).strip().lower() not in ("", "0", "false", "off", "no")


def setting_is_off(name: str) -> bool:
    return setting(name).strip().lower() in ("0", "false", "off", "no")


def thread_env(threads: int | None) -> dict[str, str]:
    """Thread counts for the numerical libraries, and threads that stop spinning soon.

    OpenMP threads (torch's CPU wheels use GNU OpenMP) busy-wait at every barrier. Alone on its
    cores that is fast, but a second job on the same cores makes each job wait for threads the
    other one holds: two 2-thread trainings on 2 cores each ran 3-10x slower than alone (67-198 s
    instead of 20 s), enough to push correct work past a timeout. ``GOMP_SPINCOUNT=10000`` (spin
    briefly, then sleep) kept them at 48-54 s with no cost alone (21.4 s against 21.1 s); the
    passive policy (no spinning) was 33-37 s together but 15% slower alone, the usual case.
    ``python scripts/benchmark.py --busy`` prints the three.
    """
    env = {"GOMP_SPINCOUNT": SPINCOUNT}
    if threads:
        env.update({name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
    return env


# What a trusted child (a judge, a batch worker) inherits: the course's own settings, the Hugging
# Face caches, numerical-library and locale settings. Never a token, a CI secret or anything
# else the instructor's shell holds: a judge starts jails, and nothing of the grader's may reach
# one (grader-only values travel in a job file instead: grading/structural.py).
TRUSTED_NAMES = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "USER", "LOGNAME", "VIRTUAL_ENV", "PYTHONPATH",
                 "TRANSFORMERS_CACHE", "SENTENCE_TRANSFORMERS_HOME", "XDG_CACHE_HOME", "CUDA_VISIBLE_DEVICES",
                 "AUTOGRADER_SANDBOX", "AUTOGRADER_CGROUPS")
TRUSTED_PREFIXES = ("COURSE_", "HF_", "LC_", "OPENBLAS_", "OMP_", "MKL_", "GOMP_", "TOKENIZERS_", "TORCH_",
                    "PYTORCH_", "NVIDIA_", "DASK_")
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "_KEY", "AUTH")


def allowed(name: str) -> bool:
    """May a trusted child inherit this variable? An allow-list, minus anything named like a secret."""
    if any(word in name.upper() for word in SECRET_WORDS):
        return False
    return name in TRUSTED_NAMES or name.startswith(TRUSTED_PREFIXES)


def trusted_env(threads: int | None = None, **extra: str) -> dict[str, str]:
    """The environment of a trusted child (a judge): an allow-list of ours, offline, with the thread split."""
    return {**{k: v for k, v in os.environ.items() if allowed(k)}, **OFFLINE, **thread_env(threads), **extra}


def jail_env(home: str, threads: int | None = None, **extra: str) -> dict[str, str]:
    """An empty environment plus an allow-list: no instructor variable reaches student code."""
    env = {k: os.environ[k] for k in PASS_THROUGH if k in os.environ}
    env.update({
        "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "TMPDIR": "/tmp",
        "HF_HOME": f"{home}/.cache/huggingface", "XDG_CACHE_HOME": f"{home}/.cache",
        "MPLCONFIGDIR": f"{home}/.config/matplotlib", "PYTHONHASHSEED": "0", "LANG": env.get("LANG", "C.UTF-8"),
        "MALLOC_ARENA_MAX": "2",  # glibc reserves 64 MiB of address space per thread arena otherwise
        **OFFLINE, **thread_env(threads), **extra,
    })
    return env


def cores() -> int:
    """The CPU cores this process may use: its affinity (a Slurm or taskset allocation), not the
    machine's count. Every split of threads or workers starts here."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def kill_tree(proc: subprocess.Popen | int) -> None:
    """Kill a child started in a session of its own (a Popen, or a forked child's pid), its group
    and every descendant, then reap it.

    Jupyter starts kernels in sessions of their own, so the group alone is not enough.
    """
    pid = proc if isinstance(proc, int) else proc.pid
    try:
        import psutil

        kids = psutil.Process(pid).children(recursive=True)
    except Exception:  # noqa: BLE001 - the process is already gone
        kids = []
    for kill in (os.killpg, os.kill):  # the group; the process itself, should it lead none (just forked)
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for kid in kids:
        try:
            kid.kill()
        except Exception:  # noqa: BLE001
            pass
    if isinstance(proc, int):
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        return
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover
        pass


class LiveProcesses:
    """The children a piece of work has running now, owned by that work (a grade of several notebooks
    side by side), never by a module: an interrupted grade kills exactly its own."""

    def __init__(self) -> None:
        import threading

        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def adopt(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs.add(proc)

    def release(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs.discard(proc)

    def kill_all(self) -> None:
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            kill_tree(proc)

    def __len__(self) -> int:
        return len(self._procs)


def signal_of(returncode: int | None, jailed: bool) -> int | None:
    """The signal that ended a process: negative codes from Popen, 128+N through bwrap's init."""
    if returncode is None:
        return None
    if returncode < 0:
        return -returncode
    if jailed and 128 < returncode < 128 + 65:
        return returncode - 128
    return None


def exit_reason(returncode: int | None, jailed: bool = False) -> str:
    """A learner's words for how a process ended (a signal names the limit it hit)."""
    sig = signal_of(returncode, jailed)
    if sig is None:
        return f"exit code {returncode}"
    names = {signal.SIGXCPU: "it used up its CPU-time limit", signal.SIGXFSZ: "it wrote a file over the size limit",
             signal.SIGKILL: "it was killed (out of memory, or stopped from outside)",
             signal.SIGSEGV: "it crashed (segmentation fault)"}
    return names.get(sig, f"it was stopped by signal {signal.Signals(sig).name}")
