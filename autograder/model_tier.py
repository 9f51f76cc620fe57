"""The model tier: execute a submission's notebooks with papermill, then score the models they saved.

Each notebook costs only its own points: a notebook that is not valid JSON, raises, or never
finishes is reported with its error, and the executed copy is kept for feedback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from autograder.evaluator import ModelArtifactError, embedding_zero_shot_comparison, load_saved_model, predict_indices
from autograder.evaluator import score as score_predictions
from autograder.manifest import Notebook, load_course
from autograder.models import ResolvedModel, resolve_model
from autograder.nbrun import write_kernelspec
from autograder.results import CheckResult, StageResult

MESSAGES = {
    "notebook_runs": "the notebook ran from top to bottom",
    "model_saved": "the trained model was saved and loads",
}


def _kill_tree(proc: subprocess.Popen) -> None:
    """Kill papermill and its kernel: jupyter starts kernels in a session of their own."""
    import psutil

    try:
        kids = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        kids = []
    os.killpg(proc.pid, signal.SIGKILL)
    for kid in kids:
        try:
            kid.kill()
        except psutil.Error:
            pass
    proc.communicate()


def _execute(nb: Notebook, source: Path, work: Path, params: dict, cwd: Path, threads: int | None) -> str:
    """Run papermill in a killable child; '' on success, else a learner message."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               JUPYTER_PATH=os.pathsep.join([str(write_kernelspec(work / "jupyter")), os.environ.get("JUPYTER_PATH", "")]))
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, "-m", "autograder.nbrun", str(source), str(work / f"executed_{nb.notebook}"),
           json.dumps(params), str(cwd)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=nb.timeout)
    except subprocess.TimeoutExpired:
        _kill_tree(proc)
        return f"{nb.notebook} did not finish within {nb.timeout:.0f} s and was stopped"
    if proc.returncode == 0:
        return ""
    for line in reversed(out.strip().splitlines()):
        if line.startswith("{"):
            info = json.loads(line)
            return f"{nb.notebook}: cell [{info['cell']}] raised {info['ename']}: {info['evalue']}"
    last = (err.strip().splitlines() or ["no output"])[-1]
    return f"{nb.notebook} could not be executed: {last}"


def _valid_notebook(path: Path) -> str:
    import nbformat

    if not path.exists():
        return f"{path.name} is missing from the submission"
    try:
        nbformat.validate(nbformat.read(path, as_version=4))
    except Exception as exc:  # noqa: BLE001
        return f"{path.name} is not a valid notebook ({type(exc).__name__}: {str(exc)[:160]})"
    return ""


def grade_notebook(nb: Notebook, submission: Path, work: Path, model: ResolvedModel, *,
                   seed: int, threads: int | None = None) -> StageResult:
    from transformers import AutoTokenizer

    from autograder.data import load_splits

    start = time.monotonic()
    work = work.resolve()  # papermill, jupyter and the kernel each resolve paths from their own cwd
    submission = submission.resolve()
    work.mkdir(parents=True, exist_ok=True)
    output_dir = work / "output"
    passed: dict[str, str] = {}  # check -> failure message ('' = passed)
    error = _valid_notebook(submission / nb.notebook)
    if not error:
        params = {**nb.parameters, "model_name": model.path, "output_dir": str(output_dir), "seed": seed,
                  "num_threads": threads or 0}
        error = _execute(nb, submission / nb.notebook, work, params, submission, threads)
    passed["notebook_runs"] = error
    details: dict = {"executed_notebook": str(work / f"executed_{nb.notebook}"), "output_dir": str(output_dir)}
    evaluation = None
    try:
        test = load_splits(nb.dataset, ("test",))["test"]
        names = test.features["label"].names
        model_obj, mapping = load_saved_model(output_dir / "model", names)
        tok = AutoTokenizer.from_pretrained(model.path)
        preds = predict_indices(model_obj, tok, test["text"], mapping)
        evaluation = score_predictions(test["label"], preds, names, seed=seed)
        passed["model_saved"] = ""
    except (ModelArtifactError, FileNotFoundError) as exc:
        passed["model_saved"] = (f"no saved model: the notebook stopped before saving it ({error})" if error
                                 and not (output_dir / "model").exists() else str(exc))
    if evaluation is not None:
        details["evaluation"] = evaluation.to_dict()
        for metric, threshold in nb.thresholds.items():
            value, (lo, hi) = ((evaluation.accuracy, evaluation.accuracy_ci) if metric == "accuracy"
                               else (evaluation.macro_f1, evaluation.macro_f1_ci))
            shown = f"{metric} {value:.3f} on {evaluation.n} hidden test texts (95% CI {lo:.3f}-{hi:.3f})"
            passed[metric] = "" if lo >= threshold else (
                f"{shown}: the lower bound must reach {threshold:.2f}; train longer or check the training set-up")
            details[metric] = shown
        if nb.dataset == "emotion" and (Path(__file__).parent.parent / "solutions").is_dir():
            details["zero_shot"] = embedding_zero_shot_comparison(test["text"], test["label"], evaluation.predictions,
                                                                  names, model.path, tok)
    else:
        for metric in nb.thresholds:
            passed[metric] = "not scored: there is no saved model to score (see model_saved)"
    checks = []
    for name, points in nb.checks.items():
        msg = passed.get(name, "not graded")
        ok = msg == ""
        note = details.get(name, MESSAGES.get(name, "")) if ok else msg
        checks.append(CheckResult(name, ok, points if ok else 0.0, points, note, hidden=False))
    return StageResult(id=nb.id, title=nb.title, score=sum(c.score for c in checks), max_score=nb.points,
                       checks=checks, error=error, duration_s=round(time.monotonic() - start, 1), tier="model",
                       details=details)


def grade_notebooks(submission: Path, work_root: Path, *, notebooks: list[str] | None = None,
                    threads: int | None = None, progress=None) -> list[StageResult]:
    course = load_course()
    model = resolve_model()
    chosen = [course.notebook(n) for n in notebooks] if notebooks else list(course.notebooks)
    results = []
    for nb in chosen:
        if progress:
            progress(nb)
        results.append(grade_notebook(nb, submission, work_root / nb.id, model, seed=course.seed, threads=threads))
    return results
