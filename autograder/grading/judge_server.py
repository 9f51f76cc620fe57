"""The judge of one grade: a warm process that runs every stage's hidden graders.

Why (measured on 2 cores, ``docs/performance.md``): a judge per stage, then a judge per core,
each imported torch and transformers cold before its first check, and each started its jailed
zygote only after that, so the two imports never overlapped: 16.6 s for six stages whose checks
take about 6 s. Here one process per grade:

1. starts one jailed zygote per slot (a slot: one stage at a time; as many slots as cores, at
   most 2) *first*, so the zygotes import the libraries while this process does;
2. imports pytest, torch, transformers and the graders' libraries once;
3. forks a judge child per stage, at most one per slot, each running pytest on that stage's
   grader file with the slot's zygote lent to it (``warm.Zygote.lend``). The child is a fresh
   process: no stage's judge state reaches another; its memory cgroup, its time budget and its
   records file are its own, and what it recorded stays recorded if it is killed.

A child over its budget is killed with its runners, and its slot's zygote is started again, so
the next stage never meets what that stage left. Run as ``python -m autograder.grading.judge_server
JOB``; ``judge_process`` writes the job file and reads ``stages.jsonl`` (one line per stage:
its error, if any, and its seconds).

No process here imports or runs submission code: the server and its children import libraries
and the graders' own files (pytest on ``stage.file``, a grader of the course); the submission is
imported only by the jailed runners the zygotes fork, and its results come back as data through
the wire codec. ``tests/test_hostile_grading.py::test_the_judge_never_imports_the_submission``
plants a module, a ``conftest.py``, a ``sitecustomize.py`` and a ``pytest_timeout.py`` in a
submission and checks that only runners ever imported them.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from autograder.grading.job_config import JudgeJob, StageSpec

#: ``transformers`` resolves its names lazily; these are the ones the graders import.
TRANSFORMERS_NAMES = ("AutoModel", "AutoModelForSequenceClassification", "AutoTokenizer", "DataCollatorWithPadding",
                      "PreTrainedModel", "PreTrainedTokenizerBase", "Trainer", "TrainingArguments", "pipeline")
POLL_SECONDS = 0.01


def warm_imports() -> None:
    """Import, once, the libraries every judge child needs, so that each forked child starts warm.

    A fixed list of libraries written out here: never a grader file (pytest imports those itself,
    rewriting their asserts) and never anything of a submission (only the jailed runner imports
    that). A library that fails to import here fails again in the child, which reports it. The
    collector is off meanwhile (none of the imports' million objects is garbage; the collections they
    trigger cost a fifth of the import time) and ``main`` freezes them after."""
    gc.disable()
    try:
        import datasets  # noqa: F401
        import numpy  # noqa: F401
        import pytest  # noqa: F401
        import pytest_timeout  # noqa: F401
        import safetensors.torch  # noqa: F401
        import sklearn.metrics  # noqa: F401
        import torch
        import torch.nn.functional  # noqa: F401
        import transformers

        import autograder.grading.architecture  # noqa: F401
        import autograder.grading.gradelib  # noqa: F401
        import autograder.grading.graders.emotion_draws  # noqa: F401
        import autograder.grading.graders.zero_shot_refs  # noqa: F401
        import autograder.grading.hidden_inputs  # noqa: F401
        import autograder.grading.judge  # noqa: F401
        import autograder.grading.scratch_files  # noqa: F401
        import autograder.messages  # noqa: F401

        for name in TRANSFORMERS_NAMES:
            getattr(transformers, name)
        del torch
    except Exception:  # noqa: BLE001 - the child imports it again and reports the failure
        pass
    finally:
        gc.enable()


def start_slots(job: JudgeJob) -> list:
    """One jailed zygote per slot, started before this process imports anything heavy."""
    if not job.warm:
        return [None] * job.slots
    from autograder.course.models import packaged_encoder_path, tiny_root
    from autograder.grading.warm import Zygote

    root = tiny_root()
    root.mkdir(parents=True, exist_ok=True)  # bound read-only now; the tiny models may be built into it later
    slots = []
    for _ in range(job.slots):
        zygote = Zygote(Path(job.submission), limits=job.limits, caps=job.caps, status=job.sandbox,
                        threads=job.threads or None, ro=(root, packaged_encoder_path()), parent=Path(job.work))
        zygote.restart()
        slots.append(zygote)
    return slots


def _pytest_args(job: JudgeJob, stage: StageSpec, job_file: Path) -> list[str]:
    """pytest for one grader file: our plugin and pytest-timeout only (no scan of installed plugins:
    0.4 s a child), and no unraisable-exception plugin (its two full collections at exit cost 0.45 s
    with torch's heap; the judge child exits right after)."""
    return [stage.file, "-p", "autograder.grading.plugin", "-p", "pytest_timeout", f"--autograder-job={job_file}",
            "-q", "-p", "no:cacheprovider", "-p", "no:unraisableexception", "-o", "addopts=",
            f"--timeout={int(stage.timeout) + 30}", "-W", "ignore"]


def _child(job: JudgeJob, stage: StageSpec, zygote, cgroups, job_file: Path) -> None:
    """In the fork: become the stage's judge (pytest on its grader file), then exit; never returns."""
    code = 3
    try:
        os.setsid()
        if cgroups is not None:
            from autograder.sandbox.limits import judge_preexec

            judge_preexec(cgroups)()
        log = os.open(Path(job.work) / f"{stage.name}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.chdir(job.work)
        os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        import pytest

        from autograder.grading.plugin import LentZygote

        code = int(pytest.main(_pytest_args(job, stage, job_file),
                               plugins=[LentZygote(zygote.lend() if zygote is not None else None)]))
    except BaseException:  # noqa: BLE001 - told to the server through the exit code and the log
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


@dataclass
class Running:
    stage: StageSpec
    slot: int
    started: float
    cgroups: object


def _fork(job: JudgeJob, stage: StageSpec, zygote, slot: int) -> tuple[int, Running]:
    from autograder.sandbox.limits import new_cgroups

    cgroups = new_cgroups(memory_mb=job.limits.judge_memory_mb, tag="judge")
    job_file = job.for_stage(stage).write(Path(job.work) / f"{stage.name}.job.json")
    pid = os.fork()
    if pid == 0:
        _child(job, stage, zygote, cgroups, job_file)
    return pid, Running(stage, slot, time.monotonic(), cgroups)


def _error(job: JudgeJob, run: Running, status: int | None) -> str:
    """What went wrong with a judge child, in the words the learner sees (``""`` when nothing)."""
    from autograder.messages import stopped_after

    if status is None:
        return stopped_after(run.stage.budget + 30)
    if run.cgroups.oom_killed():
        return ("the grader ran out of memory reading what the submission sent back "
                f"(its limit is {job.limits.judge_memory_mb} MiB): return smaller values")
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    if code in (0, 1):
        return ""
    log = Path(job.work) / f"{run.stage.name}.log"
    tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-3:]) if log.exists() else ""
    return f"the grader process stopped early (exit code {code}): {tail}"


def run_stages(job: JudgeJob, slots: list) -> None:
    """Each stage in its own judge child, one per free slot, in the order given."""
    from autograder.procs import kill_tree

    queue, free = list(job.stages), list(range(len(slots)))
    running: dict[int, Running] = {}
    done = Path(job.work) / "stages.jsonl"
    while queue or running:
        while queue and free:
            slot = free.pop(0)
            pid, run = _fork(job, queue.pop(0), slots[slot], slot)
            running[pid] = run
        time.sleep(POLL_SECONDS)
        for pid, run in list(running.items()):
            over = time.monotonic() - run.started > run.stage.budget + 30
            finished, status = os.waitpid(pid, os.WNOHANG)
            if not finished and not over:
                continue
            if not finished:
                kill_tree(pid)
                status = None
            error = _error(job, run, status)
            run.cgroups.release()
            zygote = slots[run.slot]
            if zygote is not None and (error or not zygote.alive()):
                zygote.restart()  # what the stage left in its slot goes with the old zygote
            with open(done, "a", encoding="utf-8") as f:
                f.write(json.dumps({"name": run.stage.name, "error": error,
                                    "seconds": round(time.monotonic() - run.started, 3)}) + "\n")
            del running[pid]
            free.append(run.slot)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    job = JudgeJob.read(args[0])
    slots = start_slots(job)
    try:
        warm_imports()
        gc.freeze()  # the libraries' objects stay out of the children's collections (and their pages shared)
        if job.warm:
            from autograder.grading.gradelib import TINY_KINDS, tiny

            for kind in TINY_KINDS:
                tiny.path(kind)  # built once, before any stage needs one
        run_stages(job, slots)
    finally:
        close_slots(slots)
    return 0


def close_slots(slots: list) -> None:
    """Stop the slots' zygotes side by side: each stop waits for a jail to die and unmounts its scratch."""
    from concurrent.futures import ThreadPoolExecutor

    live = [z for z in slots if z is not None]
    if live:
        with ThreadPoolExecutor(len(live)) as pool:
            list(pool.map(lambda z: z.close(), live))


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # no interpreter teardown of torch's modules (0.3 s): everything is closed and written
