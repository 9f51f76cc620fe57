"""The wire codec (autograder/sandbox/wire.py) on its own: what it carries, what it refuses, and how.

Every value a grader gets back from a submission crosses here, so each supported type must come
back as the same type with the same contents (a tuple stays a tuple, an int key stays an int, an
array keeps its dtype), and everything else must stop with a ``WireError`` that says why: messages
over the 16 MiB cap, too many values or containers, dtypes off the allow-list, malformed tagged
values. Nothing is unpickled. Attacks measured under a memory limit are in test_hostile_boundary.py.
"""

from __future__ import annotations

import ast
import base64
import io
import json
import math
import os
import pickle
import struct
import threading
import time
from collections import Counter, OrderedDict, UserDict, defaultdict, namedtuple

import numpy as np
import pytest

from autograder.sandbox import wire
from autograder.sandbox.wire import MAX_MESSAGE, Codec, Record, WireError

RUNNER = Codec(on_object=lambda v: {"__handle__": 1, "type": type(v).__name__})
JUDGE = Codec()
Point = namedtuple("Point", "x y")


def frame(message: dict) -> dict:
    """``message`` sent through a real pipe (a thread writes: a pipe holds 64 KiB) and received."""
    r, w = os.pipe()
    failure: list[BaseException] = []

    def write():
        try:
            wire.send(w, message)
        except BaseException as exc:  # noqa: BLE001 - reported by the reader
            failure.append(exc)
        finally:
            os.close(w)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        got = wire.receive(r, deadline=time.monotonic() + 30)
    finally:
        writer.join()
        os.close(r)
    if failure:
        raise failure[0]
    return got


def raw(body: bytes, size: int | None = None) -> dict:
    """``wire.receive`` of a frame whose header says ``size`` (default: the body's length)."""
    r, w = os.pipe()
    head = struct.pack(">I", len(body) if size is None else size)

    def write():
        try:
            os.write(w, head + body)
        except BrokenPipeError:  # refused before it was all read: the reader closed its end
            pass
        finally:
            os.close(w)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        return wire.receive(r, deadline=time.monotonic() + 5)
    finally:
        os.close(r)
        writer.join()


def round_trip(value):
    """Encoded by the runner, framed through a pipe, decoded by the judge."""
    return JUDGE.decode(frame({"value": RUNNER.encode(value)})["value"])


def same(a, b) -> bool:
    """Equal and of the same types all the way down (``1 == 1.0 == True`` is not enough here)."""
    if isinstance(a, np.ndarray):
        return type(b) is np.ndarray and a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        keys_same = all(type(k) is type(j) and k == j for k, j in zip(a, b))
        return len(a) == len(b) and keys_same and all(same(a[k], b[k]) for k in a)
    return a == b


# ----------------------------------------------------------------------------- what crosses
@pytest.mark.parametrize("value", [
    None, True, False, 0, -7, 2**62, 1.5, -0.0, float("inf"), float("-inf"), float("nan"), "", "plain",
    "caf\u00e9 \u2713 \U0001f600", "quote \" and \\ and \n", [], [1, [2, [3]]], (), (1, "a", None), [(1, 2), (3,)],
    {}, {"a": 1, "b": [1.0]}, {1: "int key", 2.5: "float key", None: "none", False: "bool"},
    {"z": 1, "a": 2, "m": 3}, {"nested": {"t": (1, {"k": [None]})}},
], ids=repr)
def test_plain_values_lists_tuples_and_dicts_come_back_the_same(value):
    assert same(round_trip(value), value)


def test_unicode_is_sent_as_ascii_and_comes_back():
    r, w = os.pipe()
    wire.send(w, {"v": "\u00e9\U0001f600"})
    os.close(w)
    with os.fdopen(r, "rb") as f:
        body = f.read()[4:]
    assert body.isascii() and json.loads(body) == {"v": "\u00e9\U0001f600"}


@pytest.mark.parametrize("make", [OrderedDict, lambda d: defaultdict(list, d), Counter, UserDict])
def test_dict_subclasses_cross_as_records_that_name_their_class(make):
    value = make({"b": 2, "a": 1})
    got = round_trip(value)
    assert type(got) is Record and dict(got) == {"b": 2, "a": 1} and list(got) == ["b", "a"]
    assert got.remote_type == f"{type(value).__module__}.{type(value).__qualname__}"
    assert got.a == 1 and got["b"] == 2
    with pytest.raises(AttributeError):
        got.missing  # noqa: B018


def test_a_named_tuple_is_a_record_that_iterates_and_indexes_like_one():
    got = round_trip(Point(1, [2.5]))
    assert type(got) is Record and got.remote_type == f"{__name__}.Point"
    assert got.x == 1 and got["y"] == [2.5] and got[0] == 1 and list(got) == [1, [2.5]]
    assert tuple(got) == (1, [2.5])


def test_transformers_data_mappings_cross_as_data():
    from transformers import BatchEncoding
    from transformers.modeling_outputs import SequenceClassifierOutput

    got = round_trip(BatchEncoding({"input_ids": [[101, 102]], "attention_mask": [[1, 1]]}))
    assert type(got) is Record and got.remote_type.endswith(".BatchEncoding")
    assert got["input_ids"] == [[101, 102]] and got.attention_mask == [[1, 1]]
    got = round_trip(SequenceClassifierOutput(logits=np.ones((1, 2), np.float32)))
    assert got.remote_type.endswith(".SequenceClassifierOutput") and same(got.logits, np.ones((1, 2), np.float32))


def test_numpy_strings_and_scalars_come_back_as_str_and_typed_scalars():
    assert same(round_trip(np.str_("pos")), "pos")
    assert same(round_trip(np.array([["a", "b"]])), [["a", "b"]])
    for scalar in (np.float32(1.5), np.int64(-3), np.uint8(255), np.bool_(True), np.float16(0.5)):
        got = round_trip(scalar)
        assert type(got) is type(scalar) and got == scalar


@pytest.mark.parametrize("dtype", sorted(wire.ARRAY_DTYPES))
def test_arrays_of_every_allowed_dtype_keep_values_dtype_shape_and_are_writable(dtype):
    for arr in (np.arange(12).reshape(3, 4).astype(dtype), np.zeros((2, 0, 3), dtype), np.asarray(1, dtype),
                np.asfortranarray(np.arange(6).reshape(2, 3).astype(dtype)), np.arange(3).astype(dtype)[::-1]):
        got = round_trip(arr)
        assert same(got, arr), (dtype, arr.shape)
        got[...] = 0  # the judge may write to what it received


def test_torch_tensors_come_back_as_tensors_and_half_precision_is_widened_on_the_wire():
    torch = pytest.importorskip("torch")
    for dtype in (torch.int64, torch.float32, torch.bool, torch.float16, torch.bfloat16):
        tensor = torch.arange(6).reshape(2, 3).to(dtype)
        encoded = RUNNER.encode(tensor)
        sent = np.load(io.BytesIO(base64.b64decode(encoded["__array__"])), allow_pickle=False)
        assert encoded["torch"] is True and encoded["dtype"] == str(dtype)
        assert sent.dtype == (np.float32 if dtype in (torch.float16, torch.bfloat16) else tensor.numpy().dtype)
        got = round_trip(tensor)
        assert isinstance(got, torch.Tensor) and got.dtype == dtype and torch.equal(got, tensor)


def test_objects_that_are_not_data_become_handles_in_the_runner_and_errors_in_the_judge():
    class Model:
        pass

    class DatasetDict(dict):  # a mapping that is not data stays in the runner
        pass

    for value in (Model(), DatasetDict(a=1), {(1, 2): "tuple key"}, np.zeros(2, complex), {1, 2}, b"bytes"):
        assert RUNNER.encode(value)["__handle__"] == 1, value
    with pytest.raises(WireError, match="Model cannot be sent as data"):
        JUDGE.encode(Model())
    assert JUDGE.encode(DatasetDict(a=1)) == {"__map__": [["a", 1]], "type": f"{__name__}.{DatasetDict.__qualname__}"}


def test_recipes_encode_themselves_and_tags_decode_through_the_callback():
    class Recipe:
        def to_wire(self):
            return {"__build__": "tiny_model", "labels": 2}

    assert JUDGE.encode([Recipe()]) == [{"__build__": "tiny_model", "labels": 2}]
    seen = []
    codec = Codec(on_tag=lambda tag, obj: seen.append((tag, obj)) or "object")
    assert codec.decode({"__handle__": 3, "type": "Trainer"}) == "object"
    assert seen == [("__handle__", {"__handle__": 3, "type": "Trainer"})]
    with pytest.raises(WireError, match="unknown value on the wire"):
        JUDGE.decode({"__handle__": 3})  # the judge's plain codec has no handles to give


# ----------------------------------------------------------------------------- the allow-list
def test_the_dtype_allow_list_is_bool_integers_and_floats_only():
    assert wire.ARRAY_DTYPES == {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                                 "float16", "float32", "float64"}


@pytest.mark.parametrize("dtype", ["complex64", "complex128", "object", "<U3", "|S3", "V4", "datetime64[s]",
                                   "timedelta64[s]", "longdouble", [("a", "<i4")]], ids=str)
def test_arrays_off_the_allow_list_are_refused_both_ways(dtype):
    dt = np.dtype(dtype)
    if dt.name in wire.ARRAY_DTYPES:  # where long double is just float64
        pytest.skip(f"{dtype} is {dt.name} here")
    with pytest.raises(WireError, match="cannot cross the boundary"):
        wire.array_to_wire(np.zeros(2, dt))
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(dt), "fortran_order": False,
                                               "shape": (2,)})
    payload = {"__array__": base64.b64encode(buf.getvalue() + b"\0" * (2 * dt.itemsize)).decode()}
    with pytest.raises(WireError, match="is refused"):
        JUDGE.decode(payload)


# ----------------------------------------------------------------------------- the caps
def test_a_message_of_exactly_16_mib_crosses_and_one_byte_more_is_refused_by_send():
    assert MAX_MESSAGE == 16 << 20
    filler = MAX_MESSAGE - len(json.dumps({"v": ""}))
    assert len(frame({"v": "x" * filler})["v"]) == filler
    r, w = os.pipe()
    try:
        with pytest.raises(WireError, match="over the 16 MiB cap"):
            wire.send(w, {"v": "x" * (filler + 1)})
        os.set_blocking(r, False)
        with pytest.raises(BlockingIOError):
            os.read(r, 1)  # nothing was written: a refused message leaves no half frame behind
    finally:
        os.close(r)
        os.close(w)


def test_a_frame_claiming_more_than_16_mib_is_refused_before_its_body_is_read():
    with pytest.raises(WireError, match="over the 16 MiB cap"):
        raw(b"", size=MAX_MESSAGE + 1)  # no body follows: reading it would time out instead


def test_messages_with_too_many_values_or_containers_are_refused_on_their_raw_bytes():
    ok = b'{"v":[' + b"0," * (wire.MAX_ITEMS - 2) + b"0]}"
    assert len(raw(ok)["v"]) == wire.MAX_ITEMS - 1
    with pytest.raises(WireError, match="over the limits"):
        raw(b'{"v":[' + b"0," * wire.MAX_ITEMS + b"0]}")
    with pytest.raises(WireError, match="over the limits"):
        raw(b'{"v":[' + b"[]," * wire.MAX_CONTAINERS + b"[]]}")


def test_values_nested_past_the_depth_limit_are_refused_both_ways():
    def nest(depth):
        value = 0
        for _ in range(depth):
            value = [value]
        return value

    assert JUDGE.decode(JUDGE.encode(nest(wire.MAX_DEPTH))) == nest(wire.MAX_DEPTH)
    with pytest.raises(WireError, match="nested too deeply"):
        JUDGE.encode(nest(wire.MAX_DEPTH + 1))
    with pytest.raises(WireError, match="nested too deeply"):
        JUDGE.decode(nest(wire.MAX_DEPTH + 1))


def test_a_message_larger_than_one_read_arrives_whole():
    arr = np.random.default_rng(0).standard_normal((3, 300_000)).astype(np.float32)  # ~4.8 MiB of base64
    assert same(round_trip(arr), arr)


def test_a_closed_or_stalled_sender_is_an_error_not_a_hang():
    r, w = os.pipe()
    os.write(w, struct.pack(">I", 100) + b'{"v":')
    try:
        with pytest.raises(TimeoutError):
            wire.receive(r, deadline=time.monotonic() + 0.2)
    finally:
        os.close(w)
    with pytest.raises(EOFError):
        wire.receive(r)
    os.close(r)


# ----------------------------------------------------------------------------- malformed input
@pytest.mark.parametrize("body, words", [
    (b"not json", "not JSON"), (b'{"v": 1', "not JSON"),
    (b"[1, 2]", "not a JSON object"), (b'"text"', "not a JSON object"),
    ('{"v": "\u00e9"}'.encode(), "not ASCII"), (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    (pickle.dumps({"v": 1}), "not ASCII"), (pickle.dumps({"v": 1}, protocol=0), "not JSON"),
])
def test_malformed_frames_are_refused_with_what_is_wrong(body, words):
    with pytest.raises(WireError, match=words):
        raw(body)


@pytest.mark.parametrize("value, words", [
    ({"__what__": 1}, "unknown value on the wire: keys '__what__'"),
    ({"__tuple__": {"a": 1}}, "holds a dict, not a list"),
    ({"__map__": [[1, 2, 3]]}, "not a \\[key, value\\] pair"),
    ({"__map__": [[[1], 2]]}, "with a plain key"),
    ({"__record__": [1, 2]}, "record is not an object"),
    ({"__array__": 12}, "not base64 text"),
    ({"__array__": "%%%"}, "not base64"),
    ({"__array__": base64.b64encode(b"\x93NUMPY garbage").decode()}, "no valid .npy header"),
    ({"__np__": "float32", "v": "1.5"}, "value is a str, not a number"),
    ({"__np__": "int8", "v": 1000}, "bad numpy scalar"),
    ({"__np__": ["float32"], "v": 1}, "is refused"),
])
def test_malformed_tagged_values_are_refused_with_what_is_wrong(value, words):
    with pytest.raises(WireError, match=words):
        JUDGE.decode(value)


def test_an_npy_of_an_unknown_format_version_is_refused():
    buf = io.BytesIO()
    np.lib.format.write_array_header_2_0(buf, {"descr": "<i4", "fortran_order": False, "shape": (1,)})
    header = bytearray(buf.getvalue())
    assert bytes(header[:8]) == b"\x93NUMPY\x02\x00"
    JUDGE.decode({"__array__": base64.b64encode(bytes(header) + b"\0" * 4).decode()})  # version 2.0 is read
    header[6] = 9
    with pytest.raises(WireError, match="no valid .npy header"):
        JUDGE.decode({"__array__": base64.b64encode(bytes(header) + b"\0" * 4).decode()})


def test_an_array_whose_bytes_disagree_with_its_header_is_refused():
    good = RUNNER.encode(np.arange(4, dtype=np.int32))["__array__"]
    for cut in (base64.b64decode(good)[:-4], base64.b64decode(good) + b"\0" * 4):
        with pytest.raises(WireError, match="claims 4 values of 4 bytes"):
            JUDGE.decode({"__array__": base64.b64encode(cut).decode()})


# ----------------------------------------------------------------------------- no pickle
def test_nothing_is_ever_unpickled(monkeypatch):
    """An object array whose payload is a pickle that would run code: refused, and pickle never called."""
    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, lambda *a, **k: pytest.fail("pickle was called"))
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": (1,)})
    evil = b"cos\nsystem\n(S'true'\ntR."  # os.system("true"), were it ever loaded
    with pytest.raises(WireError, match="refused"):
        JUDGE.decode({"__array__": base64.b64encode(buf.getvalue() + evil).decode()})
    with pytest.raises(WireError):
        wire.array_to_wire(np.array([os.system], dtype=object))


def test_the_codec_has_no_way_to_unpickle():
    """The module itself: no pickle or marshal import, no np.load, never allow_pickle=True."""
    tree = ast.parse(open(wire.__file__, encoding="utf-8").read())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)
                for a in n.names} | {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not imported & {"pickle", "marshal", "dill", "cloudpickle", "shelve", "joblib"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            assert node.attr not in ("load", "loads") or not isinstance(node.value, ast.Name) \
                or node.value.id not in ("np", "numpy", "pickle"), ast.unparse(node)
        if isinstance(node, ast.keyword) and node.arg == "allow_pickle":
            assert isinstance(node.value, ast.Constant) and node.value.value is False
