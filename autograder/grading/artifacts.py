"""What the model tier lets into a job (the notebook file, vetted unread; the course model's folders,
read-only) and takes out of a finished one: ``output/model/`` and a few feedback files.

Only regular files with allowed names (safetensors, config and tokenizer files) are copied, each
under the job's file-size limit and all under a total cap; no link is followed (every open is
relative to a directory descriptor, with ``O_NOFOLLOW``), hard links and FIFOs are refused, and
every refusal gets a learner message. Nothing pickled and no code ever leaves the jail.
"""

from __future__ import annotations

import errno
import fnmatch
import json
import math
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from autograder.course.manifest import Course, Notebook
from autograder.course.models import ResolvedModel
from autograder.sandbox.jail import Job

# What the grader copies out of <scratch>/output/model/: weights as safetensors, and the small JSON
# and text files that describe the model and its tokenizer. Nothing pickled, no code.
MODEL_FILES = ("*.safetensors", "model.safetensors.index.json", "config.json", "generation_config.json",
               "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
               "vocab.txt", "vocab.json", "merges.txt")
# Trainer.save_model always writes its pickled arguments next to the model; never copied, never read,
# and not worth a message on every correct submission.
SILENTLY_LEFT = ("training_args.bin",)
FEEDBACK_FILES = ("log_history.json", "validation_predictions.jsonl")
MODEL_TOTAL_MB = 2048  # all of model/ together (each file is also capped by the job's file-size limit)
MAX_MODEL_ENTRIES = 100


def check_notebook_file(path: Path, cap_mb: int) -> str:
    """'' when ``path`` is a regular file within the cap; else why it is refused. Never reads it."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return f"{path.name} is missing from the submission"
    if stat.S_ISLNK(st.st_mode):
        return (f"{path.name} is a symbolic link: submit the notebook itself as a plain file "
                "(the link was not followed)")
    if not stat.S_ISREG(st.st_mode):
        return f"{path.name} is not a regular file: submit the notebook itself"
    if st.st_size > cap_mb << 20:
        return f"{path.name} is {st.st_size >> 20} MiB, over the {cap_mb} MiB limit per file; it was not read"
    return ""


def model_mounts(model: ResolvedModel) -> tuple[Path, ...]:
    """The folders the kernel needs to read the resolved model: the model folder and, for a Hugging
    Face cache snapshot (whose files are links into ../../blobs), the folders its links point into."""
    root = Path(model.path)
    if not root.is_dir():
        return ()
    mounts = {root.resolve()}
    for path in root.rglob("*"):
        if path.is_symlink():
            mounts.add(path.resolve().parent)
    return tuple(sorted(mounts))


def valid_notebook(path: Path) -> str:
    import nbformat

    if not path.is_file():
        return f"{path.name} is missing from the submission"
    try:
        nbformat.validate(nbformat.read(path, as_version=4))
    except Exception as exc:  # noqa: BLE001
        return f"{path.name} is not a valid notebook ({type(exc).__name__}: {str(exc)[:160]})"
    return ""


# ----------------------------------------------------------------------------- copying out
@dataclass
class CopyOut:
    """What the grader took out of a job's scratch, and learner messages for what it refused."""

    refused: list[str] = field(default_factory=list)
    model_files: list[str] = field(default_factory=list)
    model_folder: bool = False  # the notebook left an output/model/ folder (copied or not)


def _shown(name: str) -> str:
    return ascii(name)[1:-1][:80]


def _open_dir(name: str, dir_fd: int | None) -> int:
    """A directory's descriptor, never through a symbolic link (OSError otherwise)."""
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)


def _why_not_dir(exc: OSError) -> str:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return "is not a plain folder (a symbolic link or a file): nothing in it was copied"
    return f"cannot be opened ({exc.strerror}): nothing in it was copied"


def _copy_regular(name: str, dir_fd: int, dest: Path, cap_bytes: int) -> str:
    """Copy one regular file (opened without following links) to ``dest``; '' or why it was refused.
    Raises FileNotFoundError when there is no such entry."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except FileNotFoundError:
        raise
    except OSError as exc:
        return "is a symbolic link: links are never followed" if exc.errno == errno.ELOOP else \
            f"cannot be opened ({exc.strerror})"
    with os.fdopen(fd, "rb") as src:
        st = os.fstat(src.fileno())
        if stat.S_ISDIR(st.st_mode):
            return "is a folder"
        if not stat.S_ISREG(st.st_mode):
            return "is not a regular file"
        if st.st_nlink > 1:
            return "is a hard link to another file"
        if st.st_size > cap_bytes:
            return f"is {st.st_size / (1 << 20):.1f} MiB, over the {cap_bytes >> 20} MiB limit"
        copied = 0
        with open(dest, "wb") as out:
            while chunk := src.read(min(1 << 20, cap_bytes + 1 - copied)):
                out.write(chunk)
                copied += len(chunk)
                if copied > cap_bytes:
                    break
    if copied > cap_bytes:  # it grew after fstat
        dest.unlink()
        return f"is over the {cap_bytes >> 20} MiB limit"
    return ""


def _copy_if_there(name: str, dir_fd: int, dest: Path, cap_bytes: int) -> str:
    try:
        return _copy_regular(name, dir_fd, dest, cap_bytes)
    except FileNotFoundError:
        return ""


def _copy_model_files(model_fd: int, target: Path, file_cap: int, result: CopyOut) -> None:
    """The allowed files of output_dir/model/ (safetensors, config, tokenizer), each capped, all of
    them together at most MODEL_TOTAL_MB; every file left behind is said in ``result.refused``."""
    names = sorted(os.listdir(model_fd))
    if len(names) > MAX_MODEL_ENTRIES:
        result.refused.append(f"output_dir/model/ holds {len(names)} entries; only the first "
                              f"{MAX_MODEL_ENTRIES} were looked at")
    total = 0
    for name in names[:MAX_MODEL_ENTRIES]:
        shown = f"output_dir/model/{_shown(name)}"
        if name in SILENTLY_LEFT:
            continue
        if not any(fnmatch.fnmatchcase(name, pattern) for pattern in MODEL_FILES):
            why = ("pickled weights are never loaded; trainer.save_model(...) writes model.safetensors"
                   if name.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt")) else
                   "only safetensors weights, config.json and tokenizer files are graded")
            result.refused.append(f"{shown} was not copied: {why}")
            continue
        left = min(file_cap, (MODEL_TOTAL_MB << 20) - total)
        why = _copy_if_there(name, model_fd, target / name, left)
        if why:
            result.refused.append(f"{shown} was not copied: it {why}")
            continue
        if (target / name).exists():
            total += (target / name).stat().st_size
            result.model_files.append(name)


def copy_out(job: Job, nb: Notebook, work: Path, course: Course) -> CopyOut:
    """Copy what is graded or shown out of ``job``'s scratch into ``work`` (grader-owned).

    ``work/executed_<notebook>``, ``work/output/{log_history.json,validation_predictions.jsonl}``
    and ``work/output/model/`` (allowed names only). Run only after every process of the job is gone.
    """
    result = CopyOut()
    out = work / "output"
    shutil.rmtree(out, ignore_errors=True)
    (out / "model").mkdir(parents=True)
    feedback_cap = course.caps.max_file_mb << 20
    file_cap = course.model_limits.file_size_mb << 20
    scratch_fd = os.open(job.scratch, os.O_RDONLY | os.O_DIRECTORY)
    fds = [scratch_fd]
    try:
        executed = f"executed_{nb.notebook}"
        (work / executed).unlink(missing_ok=True)
        why = _copy_if_there(executed, scratch_fd, work / executed, feedback_cap)
        if why:
            result.refused.append(f"the executed notebook {why}, so it was not kept for feedback")
        try:
            out_fd = _open_dir("output", scratch_fd)
        except FileNotFoundError:
            return result
        except OSError as exc:
            result.refused.append(f"output_dir {_why_not_dir(exc)}")
            return result
        fds.append(out_fd)
        for name in FEEDBACK_FILES:
            why = _copy_if_there(name, out_fd, out / name, feedback_cap)
            if why:
                result.refused.append(f"output_dir/{name} {why}: not kept for feedback")
        try:
            model_fd = _open_dir("model", out_fd)
        except FileNotFoundError:
            return result
        except OSError as exc:
            result.model_folder = True
            result.refused.append(f"output_dir/model {_why_not_dir(exc)}")
            return result
        fds.append(model_fd)
        result.model_folder = True
        _copy_model_files(model_fd, out / "model", file_cap, result)
    finally:
        for fd in fds:
            os.close(fd)
    return result


LEARNING_KEYS = ("epoch", "step", "loss", "eval_loss", "eval_accuracy", "eval_f1", "eval_macro_f1", "learning_rate")
MAX_CURVE_POINTS = 500


def learning_curve(output: Path) -> list[dict]:
    """The Trainer's log history (output_dir/log_history.json, copied out of the jail and size-capped),
    numbers only, so that reports draw the learning curve from the result alone."""
    try:
        data = json.loads((Path(output) / "log_history.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(data, list):
        return []
    curve = []
    for entry in data[:MAX_CURVE_POINTS]:
        if isinstance(entry, dict):
            point = {k: float(entry[k]) for k in LEARNING_KEYS
                     if isinstance(entry.get(k), (int, float)) and not isinstance(entry.get(k), bool)
                     and math.isfinite(entry[k])}
            if point:
                curve.append(point)
    return curve
