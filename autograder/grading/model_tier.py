"""The model tier: run a submission's notebooks in the jail, copy out the models they saved, score them.

One fresh job (``autograder.sandbox.jail``) per notebook:

1. The notebook file is looked at without following links: a symbolic link, a non-regular file or
   one over the submission's size cap is refused with a message and never read. The submission is
   copied into the job (plain files only) and the copy must be a valid notebook.
2. The grader fills the job's inputs: the train and validation splits, checked against the hashes
   held in the package (:mod:`autograder.course.split_hashes`), with their own manifest.json, and the
   course manifest without its thresholds. The test split, datasets_cache/, grading_runs/, the
   graders, solutions/ and other jobs are never inside.
3. papermill and its Jupyter kernel (a kernelspec in the scratch that runs the venv's Python) run
   in the jail with ``course.model_limits``: no network, the submission copy read-only as the
   notebook's working directory, the resolved model and the ``autograder`` package read-only, and
   the scratch as the only writable place (``output_dir`` is ``<scratch>/output``). On timeout the
   whole tree is killed.
4. The grader copies out of the scratch only what it grades or shows: ``output/model/`` (regular
   safetensors, config and tokenizer files, size-capped), the learning curve and the validation
   predictions (size-capped, for feedback) and the executed notebook. Everything else is refused
   with a learner message; no link is followed.
5. The trusted evaluator loads that copy (safetensors only, once its config and weights' headers are
   the course model's architecture) in this process and scores it on the test split, which it read
   and hash-checked before the notebook started, within the notebook's ``score_timeout``.

Each notebook costs only its own points: a notebook that is refused, is not valid JSON, raises or
never finishes is reported with its error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import autograder
from autograder import procs
from autograder.course.manifest import Course, Notebook, load_course, manifest_path
from autograder.course.models import ResolvedModel, resolve_model
from autograder.course.split_hashes import expected, labels, verified_bytes
from autograder.grading import diagnose
from autograder.grading.artifacts import (
    CopyOut,
    check_notebook_file,
    copy_out,
    learning_curve,
    model_mounts,
    valid_notebook,
)
from autograder.grading.calibration import review_flags
from autograder.grading.evaluator import (
    HiddenSplit,
    ModelArtifactError,
    ScoringTimeout,
    embedding_zero_shot_comparison,
    load_hidden_split,
    score_saved_model,
)
from autograder.grading.nbrun import write_kernelspec
from autograder.procs import exit_reason, kill_tree
from autograder.reports.results import CheckResult, StageResult
from autograder.sandbox.jail import Job, SandboxStatus, detect, inside, release, spawn

MESSAGES = {
    "notebook_runs": "the notebook ran from top to bottom",
    "model_saved": "the trained model was saved and loads",
}
TRAINING_SPLITS = ("train", "validation")  # the only splits a job ever sees
MESSAGE_CAP = 400
OUTPUT_TAIL_BYTES = 64 << 10

# ----------------------------------------------------------------------------- the job


def prepare_inputs(job: Job, nb: Notebook) -> Path:
    """The job's read-only inputs: the train and validation splits (hash-checked), their manifest,
    and the course manifest without thresholds. Returns the ``data_dir`` to pass to the notebook."""
    from autograder.course.manifest import strip_thresholds

    data = job.inputs / "data"
    (data / nb.dataset).mkdir(parents=True, exist_ok=True)
    entry: dict = {"labels": labels(nb.dataset), "splits": {}}
    for split in TRAINING_SPLITS:
        (data / nb.dataset / f"{split}.jsonl").write_bytes(verified_bytes(nb.dataset, split))
        entry["splits"][split] = dict(expected(nb.dataset, split))
    (data / "manifest.json").write_text(json.dumps({nb.dataset: entry}, indent=2, sort_keys=True) + "\n")
    (job.inputs / "course.toml").write_text(strip_thresholds(manifest_path().read_text(encoding="utf-8")))
    return data


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - OUTPUT_TAIL_BYTES))
            return f.read(OUTPUT_TAIL_BYTES).decode("utf-8", "replace")
    except OSError:
        return ""


def _failure_message(nb: Notebook, returncode: int, out: str, err: str, course: Course) -> str:
    """A learner message for a papermill run that failed (from text the jailed side wrote: capped)."""
    for line in reversed(out.strip().splitlines()):
        if not line.startswith("{"):
            continue
        try:
            info = json.loads(line)
        except ValueError:
            continue
        if not isinstance(info, dict):
            continue
        ename, evalue = str(info.get("ename", ""))[:100], str(info.get("evalue", ""))[:MESSAGE_CAP]
        if info.get("error") == "cell":
            return f"{nb.notebook}: cell [{info.get('cell')}] raised {ename}: {evalue}"
        if info.get("error") == "run":
            if ename == "DeadKernelError":
                return (f"{nb.notebook}: the kernel died ({evalue}); a job may use at most "
                        f"{course.model_limits.memory_mb} MiB of memory")
            return f"{nb.notebook} could not be executed: {ename}: {evalue}"
    if returncode < 0 or returncode > 128:
        return f"{nb.notebook} stopped: {exit_reason(returncode, jailed=True)}"
    last = (err.strip().splitlines() or ["no output"])[-1][:MESSAGE_CAP]
    return f"{nb.notebook} could not be executed: {last}"


def _execute(nb: Notebook, job: Job, params: dict, status: SandboxStatus, course: Course,
             ro: tuple[Path, ...], threads: int | None, extra_env: dict[str, str],
             live: procs.LiveProcesses | None = None) -> str:
    """Run papermill (and so its kernel) in the jail; '' on success, else a learner message."""
    sub, scratch = inside(job, status)
    write_kernelspec(job.scratch / "jupyter", sys.executable)
    argv = [sys.executable, "-m", "autograder.grading.nbrun", f"{sub}/{nb.notebook}",
            f"{scratch}/executed_{nb.notebook}", json.dumps(params), sub]
    env = {"JUPYTER_PATH": f"{scratch}/jupyter", "JUPYTER_RUNTIME_DIR": f"{scratch}/home/.jupyter-runtime",
           **extra_env}
    out_path, err_path = job.root / "nbrun.out", job.root / "nbrun.err"  # outside the jail's view
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = spawn(argv, job, course.model_limits, status, ro=ro, threads=threads, env_extra=env,
                     stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    if live is not None:
        live.adopt(proc)  # an interrupted grade kills it
    try:
        returncode = proc.wait(timeout=nb.timeout)
    except subprocess.TimeoutExpired:
        progress = diagnose.training_progress(job.scratch / "output", params.get("epochs"))
        return (f"{nb.notebook} did not finish within {nb.timeout:.0f} s and was stopped; {progress}. The limit "
                "leaves a wide margin over the reference's slowest run: check the epochs, max_length and batch size")
    finally:
        kill_tree(proc)  # the whole tree, also after a normal end: nothing of the job outlives it
        release(proc)
        if live is not None:
            live.release(proc)
    if returncode == 0:
        return ""
    return _failure_message(nb, returncode, _tail(out_path), _tail(err_path), course)


# ----------------------------------------------------------------------------- grading
def grade_notebook(nb: Notebook, submission: Path, work: Path, model: ResolvedModel, *,
                   seed: int, threads: int | None = None, sandbox: SandboxStatus | None = None,
                   live: procs.LiveProcesses | None = None, course: Course | None = None) -> StageResult:
    """Run the notebook in the jail, copy its saved model out, score it on the hidden split; its jailed
    processes are adopted by ``live`` while they run (the grade of several notebooks owns it)."""
    start = time.monotonic()
    status = sandbox or detect()
    course = course or load_course()
    work = Path(work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    test: HiddenSplit = load_hidden_split(nb.dataset)  # read and verified before any submission code runs
    details: dict = {"sandbox": status.describe(), "executed_notebook": str(work / f"executed_{nb.notebook}"),
                     "output_dir": str(work / "output"), "thresholds": dict(nb.thresholds)}
    error, copied = _run_notebook(nb, Path(submission), work, model, status, course, seed, threads, details, live)
    if copied.refused:
        details["refused"] = copied.refused
    details["learning_curve"] = learning_curve(work / "output")
    passed: dict[str, str] = {"notebook_runs": error}  # check -> failure message ('' = passed)
    evaluation, tok = _score(nb, work, test, model, seed, error, copied, passed)
    if evaluation is not None:
        _judge_thresholds(nb, evaluation, test, model, tok, details, passed)
    else:
        for metric in nb.thresholds:
            passed.setdefault(metric, "not scored: there is no saved model to score (see model_saved)")
    checks = _checks(nb, passed, details)
    return StageResult(id=nb.id, title=nb.title, score=sum(c.score for c in checks), max_score=nb.points,
                       checks=checks, error=error, duration_s=round(time.monotonic() - start, 1), tier="model",
                       details=details)


def _run_notebook(nb: Notebook, submission: Path, work: Path, model: ResolvedModel, status: SandboxStatus,
                  course: Course, seed: int, threads: int | None, details: dict,
                  live: procs.LiveProcesses | None) -> tuple[str, CopyOut]:
    """The notebook executed in a fresh jail, and what it saved copied out; returns (error, copied)."""
    copied = CopyOut()
    error = check_notebook_file(submission / nb.notebook, course.caps.max_file_mb)
    job = None
    try:
        if not error:
            job = Job.create(submission, course.caps)
            if job.refused:
                details["submission_refused"] = job.refused
            error = valid_notebook(job.submission / nb.notebook)
        if not error:
            data_dir = prepare_inputs(job, nb)
            params = {**nb.parameters, "model_name": model.path, "data_dir": str(data_dir),
                      "output_dir": f"{inside(job, status)[1]}/output", "seed": seed, "num_threads": threads or 0}
            extra_env = {"COURSE_MANIFEST": str(job.inputs / "course.toml"), "COURSE_MODEL": model.path}
            ro = (Path(autograder.__file__).resolve().parent, *model_mounts(model))
            error = _execute(nb, job, params, status, course, ro, threads, extra_env, live)
            copied = copy_out(job, nb, work, course)
            details["parameters"] = {k: v for k, v in params.items() if k not in diagnose.JOB_PARAMETERS}
            overridden = diagnose.overridden_parameters(job.submission / nb.notebook, params)
            if overridden:
                details["parameters_overridden"] = overridden
    finally:
        if job is not None:
            job.cleanup()
    return error, copied


def _score(nb: Notebook, work: Path, test: HiddenSplit, model: ResolvedModel, seed: int, error: str,
           copied: CopyOut, passed: dict[str, str]):
    """(evaluation or None, the course tokenizer); ``passed["model_saved"]`` says whether it loaded."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model.path)
    try:
        evaluation = score_saved_model(work / "output" / "model", test, tok, seed=seed, course_model=model.path,
                                       time_limit=nb.score_timeout)  # the saved architecture must be the course's
        passed["model_saved"] = ""
        return evaluation, tok
    except ScoringTimeout as exc:  # it loaded; only its score is unknown
        passed.update({"model_saved": "", **{metric: f"not scored: {exc}" for metric in nb.thresholds}})
    except ModelArtifactError as exc:
        if error and not copied.model_folder:
            passed["model_saved"] = f"no saved model: the notebook stopped before saving it ({error})"
        else:
            refusals = [r for r in copied.refused if r.startswith("output_dir/model")]
            passed["model_saved"] = str(exc) + (f" (refused: {'; '.join(refusals)})" if refusals else "")
    return None, tok


def _judge_thresholds(nb: Notebook, evaluation, test: HiddenSplit, model: ResolvedModel, tok, details: dict,
                      passed: dict[str, str]) -> None:
    """Each threshold against its metric's lower confidence bound, with the reason when it fails."""
    details["evaluation"] = evaluation.to_dict()
    flags = review_flags(nb.review_above, details["evaluation"])  # no points change: for the instructor
    if flags:
        details["needs_review"] = flags
    for metric, threshold in nb.thresholds.items():
        value, (lo, hi) = ((evaluation.accuracy, evaluation.accuracy_ci) if metric == "accuracy"
                           else (evaluation.macro_f1, evaluation.macro_f1_ci))
        shown = f"{metric} {value:.3f} on {evaluation.n} hidden test texts (95% CI {lo:.3f}-{hi:.3f})"
        used = details.get("parameters", {})  # the run's own record first: steps and loss against the course's
        why = diagnose.failure_reason(evaluation.to_dict(), dataset=nb.dataset, learning_rate=used.get("learning_rate"),
                                      curve=details.get("learning_curve"),
                                      plan=diagnose.course_plan(used, expected(nb.dataset, "train")["rows"]))
        note = f" (note: {details['parameters_overridden']})" if "parameters_overridden" in details else ""
        passed[metric] = "" if lo >= threshold else f"{shown}: the lower bound must reach {threshold:.2f}; {why}{note}"
        details[metric] = shown
    if nb.dataset == "emotion":
        details["zero_shot"] = embedding_zero_shot_comparison(test.texts, test.labels, evaluation.predictions,
                                                              test.label_names, model.path, tok)


def _checks(nb: Notebook, passed: dict[str, str], details: dict) -> list[CheckResult]:
    checks = []
    for name, points in nb.checks.items():
        msg = passed.get(name, "not graded")
        ok = msg == ""
        note = details.get(name, MESSAGES.get(name, "")) if ok else msg
        if ok and name == "notebook_runs" and "parameters_overridden" in details:
            note = f"{note}; {details['parameters_overridden']}"
        checks.append(CheckResult(name, ok, points if ok else 0.0, points, note, hidden=False))
    return checks


def grade_notebooks(submission: Path, work_root: Path, *, notebooks: list[str] | None = None,
                    threads: int | None = None, progress=None, sandbox: SandboxStatus | None = None,
                    model: ResolvedModel | None = None, course: Course | None = None) -> list[StageResult]:
    """Grade the submission's notebooks; results in the manifest's order.

    Always an explicit thread count: torch's default (every core) oversubscribes a machine that runs
    other jobs, and spinning threads then slow training many times over. A batch passes ``threads``
    (cores / concurrent submissions) and the notebooks run one after the other. A single grade
    (``threads`` None) runs the notebooks side by side with the cores shared out: a training step
    on 1 thread is less than half as fast as on 2, so two 1-thread jobs finish sooner than two 2-thread
    jobs in a row, and the parts of a job that use one core (imports, saving, scoring) overlap.
    """
    from concurrent.futures import ThreadPoolExecutor

    course = course or load_course()
    model = model or resolve_model()
    status = sandbox or detect()
    chosen = [course.notebook(n) for n in notebooks] if notebooks else list(course.notebooks)
    together = 1
    if not threads:
        cores = procs.cores()
        together = max(1, min(len(chosen), cores))
        threads = max(1, cores // together)

    live = procs.LiveProcesses()

    def one(nb: Notebook) -> StageResult:
        return grade_notebook(nb, submission, Path(work_root) / nb.id, model, seed=course.seed, threads=threads,
                              sandbox=status, live=live, course=course)

    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)  # the evaluator's share too: it scores beside the other notebook's training
    try:
        with ThreadPoolExecutor(max_workers=together) as pool:
            futures = []
            try:
                for nb in chosen:
                    if progress:
                        progress(nb)
                    futures.append(pool.submit(one, nb))
                return [f.result() for f in futures]
            except BaseException:  # Ctrl-C or an error: stop every job now (the pool waits for its threads)
                for f in futures:
                    f.cancel()
                live.kill_all()
                raise
    finally:
        torch.set_num_threads(before)
