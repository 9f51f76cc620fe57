"""The judge's reads from a job's scratch folder: every component opened without following a link.

Why: the runner (the submission's process, in the jail) can write its scratch folder while the
judge reads what it saved there, and it can keep a thread running to do so. A path that was
checked first (``resolve()``, ``lstat``) and opened by name afterwards can be swapped for a
symlink to a host file in between (a time-of-check/time-of-use race): the judge once parsed the
project's course.toml as a saved config.json that way. So nothing here opens a path by name.
The scratch folder is opened once (``O_NOFOLLOW | O_DIRECTORY``); each further component is
opened relative to the directory before it with ``openat`` and ``O_NOFOLLOW`` (``O_DIRECTORY``
for folders); a file is checked on the descriptor itself (``fstat``: a regular file with one
link, within the size cap) and read from that descriptor; what is parsed (JSON, safetensors) is
those bytes. A swap during the read makes the open fail (``ELOOP``, ``ENOTDIR``, ``ENOENT``),
which becomes a learner message; it can never make the judge read another file.

Hard links are refused too (``st_nlink != 1``): where a submission can reach a host file on the
same file system (the sandbox off), a hard link would pass every other check.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder.messages import GraderFailure

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO the submission left in place of a file must not wait for a writer
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
MAX_DEPTH = 8  # components of a path the runner reports (probes/model3 is 2)
MAX_ENTRIES = 256  # files in one saved folder
MAX_CONFIG = 1 << 20  # bytes of a config.json
MAX_NAME_SHOWN = 60


class ScratchError(GraderFailure):
    """What the runner left in its scratch cannot be read safely: a learner message."""


def _shown(name: str) -> str:
    """A name the submission chose, cut before repr (it is shown to the learner)."""
    return repr(name[:MAX_NAME_SHOWN] + ("..." if len(name) > MAX_NAME_SHOWN else ""))


def _components(relative: Any) -> list[str]:
    if not isinstance(relative, str) or not relative or "\0" in relative or len(relative) > 4096:
        raise ScratchError("the submission's process reported a saved folder that is not a plain relative path")
    parts = relative.split("/")
    if len(parts) > MAX_DEPTH or any(p in ("", ".", "..") for p in parts):
        raise ScratchError(f"the submission's process pointed outside its scratch folder ({_shown(relative)})")
    return parts


def _refused(name: str, exc: OSError) -> ScratchError:
    return ScratchError(f"the saved {_shown(name)} could not be opened as a plain file or folder: it was "
                        f"replaced, linked or removed while the grader read it ({os.strerror(exc.errno or 0)})")


def open_folder(root: Path, relative: Any) -> int:
    """A descriptor of ``root/relative``, each component opened with ``O_NOFOLLOW`` under the one before.

    ``root`` (the job's scratch) belongs to the judge; its last component is still opened with
    ``O_NOFOLLOW``. The caller closes the descriptor.
    """
    parts = _components(relative)
    try:
        fd = os.open(root, DIR_FLAGS)
    except OSError as exc:
        raise ScratchError(f"the job's scratch folder cannot be opened ({os.strerror(exc.errno or 0)})") from None
    try:
        for part in parts:
            try:
                child = os.open(part, DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise _refused(part, exc) from None
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_at(dir_fd: int, name: str, cap: int) -> bytes:
    """The bytes of the regular file ``name`` in the folder ``dir_fd``, opened without following a link."""
    try:
        fd = os.open(name, FILE_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        raise _refused(name, exc) from None
    with os.fdopen(fd, "rb", closefd=True) as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ScratchError(f"the saved {_shown(name)} is not a plain file")
        if st.st_nlink != 1:
            raise ScratchError(f"the saved {_shown(name)} is linked to another file (a hard link): it is not read")
        if st.st_size > cap:
            raise ScratchError(f"the saved {_shown(name)} is {st.st_size >> 20} MiB, over the {cap >> 20} MiB "
                               "the grader reads")
        data = f.read(cap + 1)  # it may have grown since fstat: never read past the cap
        # A hard link opened just before its name was replaced reads nlink 1 on the descriptor; so,
        # after reading, the name must still be this inode and have no other name.
        try:
            now = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError as exc:
            raise _refused(name, exc) from None
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or now.st_nlink != 1:
            raise ScratchError(f"the saved {_shown(name)} changed while the grader read it: it is not read")
    if len(data) > cap:
        raise ScratchError(f"the saved {_shown(name)} grew past the {cap >> 20} MiB the grader reads")
    return data


def regular_entries(dir_fd: int) -> list[str]:
    """The names in a folder, each checked (without following it) to be a plain file."""
    names = sorted(os.listdir(dir_fd))
    if len(names) > MAX_ENTRIES:
        raise ScratchError(f"the saved folder holds {len(names)} entries, over the {MAX_ENTRIES} the grader reads")
    for name in names:
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError as exc:
            raise _refused(name, exc) from None
        if not stat.S_ISREG(st.st_mode):
            raise ScratchError(f"the saved model holds {_shown(name)}, which is not a plain file")
    return names


@dataclass
class SavedModel:
    """A model the runner saved with ``save_pretrained``, as bytes the judge read and parsed itself."""

    config: dict
    state: dict = field(repr=False)
    files: list[str] = field(default_factory=list)


def read_saved_model(root: Path, relative: Any, cap: int) -> SavedModel:
    """config.json (as JSON) and every ``*.safetensors`` (loaded from bytes) of ``root/relative``.

    ``cap`` bounds the bytes read in all. Refused, with a learner message: a folder or file that is
    (or becomes, during the read) a link, a non-regular entry, too much data, unparseable files.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    fd = open_folder(root, relative)
    try:
        names = regular_entries(fd)
        if "config.json" not in names:
            raise ScratchError("the model was saved without a config.json")
        raw = read_at(fd, "config.json", min(cap, MAX_CONFIG))
        left = cap - len(raw)
        state: dict = {}
        for name in (n for n in names if n.endswith(".safetensors")):
            data = read_at(fd, name, left)
            left -= len(data)
            try:
                state.update(load(data))
            except (SafetensorError, ValueError, RuntimeError) as exc:
                raise ScratchError(f"the saved {_shown(name)} is not a readable safetensors file "
                                   f"({str(exc)[:120]})") from None
            del data
    finally:
        os.close(fd)
    try:
        config = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ScratchError(f"the saved config.json is not JSON ({str(exc)[:120]})") from None
    if not isinstance(config, dict):
        raise ScratchError("the saved config.json does not hold a JSON object")
    if not state:
        raise ScratchError("the model was saved without weights (no .safetensors file)")
    return SavedModel(config, state, names)


def saved_config(saved: SavedModel):
    """The saved config.json as a transformers config (its class chosen by ``model_type``).

    Keys that change how a model is loaded rather than what it is (remote code, quantisation,
    attention kernels: ``architecture.REFUSED_KEYS``) are refused, and so is a label count that
    would make the config class build millions of id2label entries.
    """
    from transformers import AutoConfig

    from autograder.grading.architecture import MAX_LABELS, REFUSED_KEYS

    fields = dict(saved.config)
    refused = [key for key in REFUSED_KEYS if key in fields]
    if refused:
        raise ScratchError(f"the saved config.json sets {_shown(refused[0])}, which changes how a model is loaded: "
                           "save the model with save_pretrained, without changing its config")
    labels = fields.get("num_labels", len(fields.get("id2label") or {}))
    if not isinstance(labels, int) or not 0 <= labels <= MAX_LABELS:
        raise ScratchError(f"the saved config.json asks for {str(labels)[:20]} labels: it was not read")
    model_type = fields.pop("model_type", None)
    try:
        return AutoConfig.for_model(str(model_type)[:100], **fields)
    except Exception as exc:  # noqa: BLE001 - whatever the saved config holds becomes a message
        raise ScratchError(f"the returned model's saved config could not be read: {type(exc).__name__}: "
                           f"{str(exc)[:200]}") from None


def rebuild(saved: SavedModel, auto_class, what: str):
    """The saved model, built in the judge from its config and weights as ``from_pretrained`` would
    (a missing head initialised), in eval mode.

    Nothing is allocated for a config that describes a model much larger than the weights that were
    saved: its size is counted on the meta device first (a 1 KB config can ask for a BERT-large).
    """
    import torch
    from transformers.utils import logging as hf_logging

    config = saved_config(saved)
    hf_logging.disable_progress_bar()
    saved_bytes = sum(t.numel() * t.element_size() for t in saved.state.values())
    try:
        cls = auto_class._model_mapping[type(config)]
        with torch.device("meta"):
            size = sum(p.numel() * p.element_size() for p in cls(config).parameters())
        if size > 2 * saved_bytes + (64 << 20):
            raise ScratchError(f"the saved config describes a {size >> 20} MiB model, but only {saved_bytes >> 20} "
                               "MiB of weights were saved: the config does not match the model")
        return cls.from_pretrained(None, config=config, state_dict=saved.state).eval()
    except ScratchError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ScratchError(f"{what} could not be rebuilt from its saved config and weights: "
                           f"{type(exc).__name__}: {str(exc)[:200]}") from None
