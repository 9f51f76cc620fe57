"""What crosses the trust boundary: plain data only, framed, with a size cap.

Both sides import this module; it imports only the standard library and numpy at the top, so
the runner can load it inside the jail without the rest of the package. Values are JSON with a
few tagged forms:

- ``{"__tuple__": [...]}``, ``{"__map__": [[k, v], ...], "type": "..."}`` (dicts keep order and
  non-string keys; ``type`` names a dict subclass such as BatchEncoding or a ModelOutput),
  ``{"__record__": {...}, "type": "..."}`` (a named tuple such as TrainOutput);
- ``{"__array__": <base64 .npy>, "torch": bool, "dtype": "..."}``: arrays and tensors of the
  ``ARRAY_DTYPES`` only (fp16/bf16 tensors widened to fp32), whose header is checked against the
  bytes received before anything is allocated; ``{"__np__": dtype, "v": x}``: numpy scalars of
  the same dtypes (numpy strings cross as ``str``);
- ``{"__handle__": id, "type": ..., "mro": [...]}``: an object that stays in the runner (a
  model, a Trainer, a dataset); the judge can pass it back, call its methods or probe it;
- ``{"__build__": kind, ...}``: a recipe from the judge that the runner turns into an object
  (a tokenizer from a path, a tiny model, a dataset from columns).

Nothing is ever unpickled. A message over ``MAX_MESSAGE`` bytes, not ASCII (``send`` writes ASCII)
or with more than ``MAX_ITEMS`` values or ``MAX_CONTAINERS`` lists and objects is refused before it
is parsed: JSON of tiny containers costs ~20 times its size in Python objects. Honest messages are
far below every limit (graders ask for a handful of rows; a dataset probe shows 64).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import os
import select
import struct
import time
from typing import Any

import numpy as np

MAX_MESSAGE = 16 << 20  # bytes in one message: the solutions' largest is 46 KB (a Trainer probe), padded to 512 ~2 MiB
MAX_ITEMS = 1 << 20  # "," and ":" in one message: an upper bound on its values
MAX_CONTAINERS = 1 << 17  # "[" and "{" in one message: lists and objects
MAX_DEPTH = 24
SHOWN = 80  # characters of a received string that an error message may quote
PLAIN = (bool, int, float, str, type(None))
# What an array or a numpy scalar may be: no object, void/structured, string, datetime or complex
# dtype is ever built from a message, so nothing received can make numpy run code or allocate by fiat.
ARRAY_DTYPES = frozenset(["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                          "float16", "float32", "float64"])


class WireError(RuntimeError):
    """A message could not be framed, parsed or decoded (it is never trusted further)."""


def _short(value: Any) -> str:
    """A received value as an error message may quote it: cut before repr, so a 16 MiB key costs nothing."""
    text = value if isinstance(value, str) else type(value).__name__
    return repr(text[:SHOWN]) + ("..." if len(text) > SHOWN else "")


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


def _read_exact(fd: int, n: int, deadline: float | None = None) -> bytearray:
    """``n`` bytes into one buffer (no list of chunks joined into a second copy)."""
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError("the other side stopped in the middle of a message")
        k = os.readv(fd, [view[got:got + (1 << 20)]])
        if not k:
            raise EOFError("the other side closed the pipe")
        got += k
    view.release()
    return buf


def receive(fd: int, deadline: float | None = None) -> dict:
    """One framed message; with a ``deadline`` (time.monotonic()) a stalled sender cannot block us.
    Size, alphabet and counts are checked on the raw bytes, before ``json`` builds one object."""
    (size,) = struct.unpack(">I", _read_exact(fd, 4, deadline))
    if size > MAX_MESSAGE:
        raise WireError(f"a message of {size >> 20} MiB is over the {MAX_MESSAGE >> 20} MiB cap")
    data = _read_exact(fd, size, deadline)
    items, containers = data.count(b",") + data.count(b":"), data.count(b"[") + data.count(b"{")
    if items > MAX_ITEMS or containers > MAX_CONTAINERS:
        raise WireError(f"a message with {items} values and {containers} lists or objects is over the limits "
                        f"({MAX_ITEMS} and {MAX_CONTAINERS})")
    try:
        text = data.decode("ascii")
        del data
        message = json.loads(text)
    except UnicodeDecodeError:
        raise WireError("a message is not ASCII JSON") from None
    except (ValueError, RecursionError) as exc:
        raise WireError(f"a message is not JSON: {str(exc)[:200]}") from None
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
    if value.dtype.name not in ARRAY_DTYPES:
        raise WireError(f"an array of {value.dtype} cannot cross the boundary (only bool, integers and floats)")
    buf = io.BytesIO()
    np.save(buf, np.asarray(value, order="C"), allow_pickle=False)
    return {"__array__": base64.b64encode(buf.getvalue()).decode(), "torch": is_torch, "dtype": dtype}


def _npy(raw: bytes) -> np.ndarray:
    """A writable array from .npy bytes. ``np.load`` allocates the shape its header claims before it
    reads: 80 bytes could ask for gigabytes. Here the dtype is allow-listed and shape x itemsize must
    be the bytes that came, so the one allocation (the copy) is never larger than what was received."""
    fp = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(fp)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"version {version}")
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(fp, max_header_size=4096)
    except Exception as exc:  # noqa: BLE001 - any malformed header is a wire error
        raise WireError(f"an array payload has no valid .npy header ({str(exc)[:SHOWN]})") from None
    if dtype.name not in ARRAY_DTYPES or dtype.fields is not None or dtype.subdtype is not None:
        raise WireError(f"an array of dtype {_short(str(dtype))} is refused (only bool, integers and floats)")
    if len(shape) > 32 or any(type(d) is not int or d < 0 for d in shape):
        raise WireError(f"an array's shape is not a shape ({_short(str(shape))})")
    count, offset = math.prod(shape), fp.tell()
    if count * dtype.itemsize != len(raw) - offset:
        raise WireError(f"an array claims {count} values of {dtype.itemsize} bytes but {len(raw) - offset} bytes "
                        "came")
    flat = np.frombuffer(raw, dtype=dtype, count=count, offset=offset)
    return flat.reshape(shape, order="F" if fortran else "C").astype(dtype.newbyteorder("="), copy=True)


def array_from_wire(obj: dict) -> Any:
    payload = obj["__array__"]
    if not isinstance(payload, str):
        raise WireError("an array payload is not base64 text")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise WireError("an array payload is not base64") from None
    arr = _npy(raw)
    del raw
    if obj.get("torch"):
        import torch

        tensor = torch.from_numpy(arr)
        want = str(obj.get("dtype", ""))[:SHOWN]
        if want in ("torch.bfloat16", "torch.float16"):
            tensor = tensor.to(getattr(torch, want.split(".")[1]))
        return tensor
    return arr


def scalar_from_wire(obj: dict) -> Any:
    """An allow-listed numpy scalar from a JSON number (``np.dtype("V8").type(10**8)`` is 100 MB)."""
    name, v = obj["__np__"], obj.get("v")
    if not isinstance(name, str) or name not in ARRAY_DTYPES:
        raise WireError(f"a numpy scalar of dtype {_short(name)} is refused (only bool, integers and floats)")
    if type(v) not in (bool, int, float):
        raise WireError(f"a numpy scalar's value is a {type(v).__name__}, not a number")
    try:
        return np.dtype(name).type(v)
    except (TypeError, ValueError, OverflowError) as exc:
        raise WireError(f"bad numpy scalar: {str(exc)[:SHOWN]}") from None


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
            if isinstance(value, np.str_):
                return str(value)
            if value.dtype.name in ARRAY_DTYPES:
                return {"__np__": value.dtype.name, "v": value.item()}
            return self._object(value)
        if isinstance(value, np.ndarray) and value.dtype.kind == "U":  # never a string array on the other side
            return self.encode(value.tolist(), depth + 1)
        if isinstance(value, np.ndarray) or _is_tensor(value):
            try:
                return array_to_wire(value)
            except WireError:
                if self.on_object is None:
                    raise
                return self._object(value)  # a complex or object array stays in the runner
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
            return tuple(self.decode(v, depth + 1) for v in _list(obj["__tuple__"]))
        if "__map__" in obj:
            pairs = [(_key(p), self.decode(p[1], depth + 1)) for p in _list(obj["__map__"])]
            kind = _type_name(obj, "builtins.dict")
            return dict(pairs) if kind == "builtins.dict" else Record(pairs, remote_type=kind)
        if "__record__" in obj:
            if not isinstance(obj["__record__"], dict):
                raise WireError("a record is not an object")
            fields = {k: self.decode(v, depth + 1) for k, v in obj["__record__"].items()}
            return Record(fields, remote_type=_type_name(obj, ""), ordered=True)
        if "__array__" in obj:
            return array_from_wire(obj)
        if "__np__" in obj:
            return scalar_from_wire(obj)
        for tag in ("__handle__", "__build__"):
            if tag in obj and self.on_tag is not None:
                return self.on_tag(tag, obj)
        raise WireError(f"unknown value on the wire: keys {', '.join(_short(k) for k in list(obj)[:5])}")


def _list(value: Any) -> list:
    if not isinstance(value, list):
        raise WireError(f"a tagged value holds a {type(value).__name__}, not a list")
    return value


def _key(pair: Any) -> Any:  # a mapping's [key, value]: the key plain, so hashable
    if not (isinstance(pair, list) and len(pair) == 2 and type(pair[0]) in PLAIN):
        raise WireError("a mapping's item is not a [key, value] pair with a plain key")
    return pair[0]


def _type_name(obj: dict, default: str) -> str:  # the class a mapping or record says it was, cut short
    name = obj.get("type", default)
    return name[:200] if isinstance(name, str) else default


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
