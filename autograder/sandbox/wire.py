"""What crosses the trust boundary: plain data only, framed, with a size cap.

Both sides import this module; it imports only the standard library and numpy at the top, so
the runner can load it inside the jail without the rest of the package. Values are JSON with a
few tagged forms:

- ``{"__tuple__": [...]}``, ``{"__map__": [[k, v], ...], "type": "..."}`` (dicts keep order and
  non-string keys; ``type`` names a dict subclass such as BatchEncoding or a ModelOutput),
  ``{"__record__": {...}, "type": "..."}`` (a named tuple such as TrainOutput);
- ``{"__array__": <base64 .npy>, "torch": bool, "dtype": "..."}``: numpy arrays and tensors,
  read back with ``allow_pickle=False``; ``{"__np__": dtype, "v": x}`` for numpy scalars;
- ``{"__handle__": id, "type": ..., "mro": [...]}``: an object that stays in the runner (a
  model, a Trainer, a dataset); the judge can pass it back, call its methods or probe it;
- ``{"__build__": kind, ...}``: a recipe from the judge that the runner turns into an object
  (a tokenizer from a path, a tiny model, a dataset from columns).

Nothing is ever unpickled, and a message over ``MAX_MESSAGE`` bytes is refused.
"""

from __future__ import annotations

import base64
import io
import json
import os
import struct
from typing import Any

import numpy as np

MAX_MESSAGE = 64 << 20  # bytes in one framed message
MAX_DEPTH = 24
PLAIN = (bool, int, float, str, type(None))


class WireError(RuntimeError):
    """A message could not be framed, parsed or decoded (it is never trusted further)."""


# ----------------------------------------------------------------------------- framing
def send(fd: int, message: dict) -> None:
    data = json.dumps(message, allow_nan=True).encode()
    if len(data) > MAX_MESSAGE:
        raise WireError(f"a message of {len(data) >> 20} MiB is over the {MAX_MESSAGE >> 20} MiB cap")
    payload = struct.pack(">I", len(data)) + data
    view = memoryview(payload)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact(fd: int, n: int, deadline: float | None = None) -> bytes:
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            import select
            import time

            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError("the other side stopped in the middle of a message")
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the pipe")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def receive(fd: int, deadline: float | None = None) -> dict:
    """One framed message; with a ``deadline`` (time.monotonic()) a stalled sender cannot block us."""
    (size,) = struct.unpack(">I", _read_exact(fd, 4, deadline))
    if size > MAX_MESSAGE:
        raise WireError(f"a message of {size >> 20} MiB is over the {MAX_MESSAGE >> 20} MiB cap")
    try:
        message = json.loads(_read_exact(fd, size, deadline))
    except ValueError as exc:
        raise WireError(f"a message is not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise WireError("a message is not a JSON object")
    return message


# ----------------------------------------------------------------------------- arrays
def array_to_wire(value: Any) -> dict:
    """A numpy array or torch tensor as a tagged .npy payload (bf16/fp16 widened to fp32)."""
    is_torch = type(value).__module__.startswith("torch")
    dtype = str(value.dtype)
    if is_torch:
        import torch

        value = value.detach().cpu()
        if value.dtype in (torch.bfloat16, torch.float16):
            value = value.float()
        value = value.numpy()
    if value.dtype == object:
        raise WireError("an array of Python objects cannot cross the boundary")
    buf = io.BytesIO()
    np.save(buf, np.asarray(value, order="C"), allow_pickle=False)
    return {"__array__": base64.b64encode(buf.getvalue()).decode(), "torch": is_torch, "dtype": dtype}


def array_from_wire(obj: dict) -> Any:
    try:
        arr = np.load(io.BytesIO(base64.b64decode(obj["__array__"])), allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - any malformed payload is a wire error
        raise WireError(f"an array payload could not be read: {exc}") from None
    if obj.get("torch"):
        import torch

        tensor = torch.from_numpy(arr.copy())
        want = str(obj.get("dtype", ""))
        if want in ("torch.bfloat16", "torch.float16"):
            tensor = tensor.to(getattr(torch, want.split(".")[1]))
        return tensor
    return arr


def qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def mro_names(value: Any) -> list[str]:
    cls = value if isinstance(value, type) else type(value)
    return [qualname(c) for c in cls.__mro__]


# ----------------------------------------------------------------------------- values
class Codec:
    """Encode and decode values; ``on_object`` says what to do with anything that is not data.

    The runner passes a function that stores the object in its handle table; the judge passes
    none, so an unknown object on its side is an error, never a silent ``str()``.
    """

    def __init__(self, on_object=None, on_tag=None):
        self.on_object = on_object  # value -> dict (a handle), runner side
        self.on_tag = on_tag  # (tag, obj) -> value, for __handle__/__build__ on decode

    def encode(self, value: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise WireError("a value is nested too deeply to cross the boundary")
        kind = type(value)
        if kind in PLAIN:
            return value
        if isinstance(value, np.generic):
            if value.dtype == object:
                return self._object(value)
            return {"__np__": str(value.dtype), "v": value.item()}
        if isinstance(value, np.ndarray) or _is_tensor(value):
            if isinstance(value, np.ndarray) and value.dtype == object:
                return self._object(value)
            return array_to_wire(value)
        if kind is list:
            return [self.encode(v, depth + 1) for v in value]
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            return {"__record__": {f: self.encode(getattr(value, f), depth + 1) for f in value._fields},
                    "type": qualname(kind)}
        if kind is tuple:
            return {"__tuple__": [self.encode(v, depth + 1) for v in value]}
        if (isinstance(value, dict) or _is_mapping_like(value)) and (self.on_object is None or _data_mapping(kind)):
            items = list(value.items())
            if all(type(k) in PLAIN for k, _ in items):
                return {"__map__": [[k, self.encode(v, depth + 1)] for k, v in items], "type": qualname(kind)}
        if hasattr(value, "to_wire"):  # the judge's handles and recipes
            return value.to_wire()
        return self._object(value)

    def _object(self, value: Any) -> dict:
        if self.on_object is None:
            raise WireError(f"a {type(value).__name__} cannot be sent as data")
        return self.on_object(value)

    def decode(self, obj: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise WireError("a value is nested too deeply")
        if type(obj) in PLAIN:
            return obj
        if isinstance(obj, list):
            return [self.decode(v, depth + 1) for v in obj]
        if not isinstance(obj, dict):
            raise WireError(f"unexpected {type(obj).__name__} on the wire")
        if "__tuple__" in obj:
            return tuple(self.decode(v, depth + 1) for v in obj["__tuple__"])
        if "__map__" in obj:
            pairs = [(k, self.decode(v, depth + 1)) for k, v in obj["__map__"]]
            kind = str(obj.get("type", "builtins.dict"))
            return dict(pairs) if kind == "builtins.dict" else Record(pairs, remote_type=kind)
        if "__record__" in obj:
            fields = {k: self.decode(v, depth + 1) for k, v in obj["__record__"].items()}
            return Record(fields, remote_type=str(obj.get("type", "")), ordered=True)
        if "__array__" in obj:
            return array_from_wire(obj)
        if "__np__" in obj:
            try:
                return np.dtype(obj["__np__"]).type(obj["v"])
            except TypeError as exc:
                raise WireError(f"bad numpy scalar: {exc}") from None
        for tag in ("__handle__", "__build__"):
            if tag in obj and self.on_tag is not None:
                return self.on_tag(tag, obj)
        raise WireError(f"unknown value on the wire: keys {sorted(obj)[:5]}")


def _is_tensor(value: Any) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return isinstance(value, torch.Tensor)


def _is_mapping_like(value: Any) -> bool:
    """BatchEncoding is a UserDict, not a dict: it still crosses as a mapping."""
    from collections import UserDict

    return isinstance(value, UserDict)


DATA_MAPPINGS = {"dict", "OrderedDict", "defaultdict", "Counter", "BatchEncoding", "ModelOutput", "UserDict"}


def _data_mapping(kind: type) -> bool:
    """Mappings that cross as data; others (a DatasetDict) stay in the runner as handles."""
    if kind.__module__ in ("builtins", "collections") and kind.__name__ in DATA_MAPPINGS:
        return True
    return any(c.__name__ in ("BatchEncoding", "ModelOutput") and c.__module__.startswith("transformers.")
               for c in kind.__mro__)


class Record(dict):
    """A dict subclass, named tuple or ModelOutput that crossed as data: keys, and attribute access.

    ``remote_type`` keeps the original class name (``transformers.tokenization_utils_base.
    BatchEncoding``), so a grader can say what came back without trusting the object itself.
    """

    def __init__(self, pairs, remote_type: str = "", ordered: bool = False):
        super().__init__(pairs)
        self.remote_type = remote_type
        self.is_record = ordered

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __iter__(self):
        return iter(self.values()) if self.is_record else super().__iter__()

    def __getitem__(self, key):
        if self.is_record and isinstance(key, int):
            return list(self.values())[key]
        return super().__getitem__(key)
