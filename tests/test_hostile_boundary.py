"""Nothing of the grader's reaches a student, and nothing a student sends hurts the grader.

Two halves of the boundary, each attack as measured against the kit:

- the wire (autograder/sandbox/wire.py): a 32-byte reply that makes numpy allocate gigabytes, an
  .npy header that claims a shape its bytes do not hold, dtypes that are not plain numbers, a reply
  near the size cap built of tiny JSON containers (~20x its size in Python objects). Each is decoded
  in a child process under a low RLIMIT_AS with tracemalloc on, so a regression fails there instead
  of eating the machine;
- the reports: ANSI sequences and control bytes in a message (a retitled window, a cleared screen,
  a fake green verdict in `autograder grade`; an invalid junit.xml that CI rejects whole), Rich
  markup in a submission folder's name.
"""

from __future__ import annotations

import base64
import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from autograder.messages import clean_text, from_exception, remote_failure
from autograder.reports import write_reports
from autograder.reports.exports import junit_xml
from autograder.reports.results import CheckResult, GradeResult, StageResult
from autograder.reports.terminal import print_table
from autograder.sandbox import wire

ROOT = Path(wire.__file__).resolve().parents[2]  # where the child imports the same package from
TRACED_BUDGET = 32 << 20  # bytes numpy and Python may allocate while refusing a hostile reply

# The child: frame the reply in a pipe, receive and decode it as the judge does, under an address-space
# limit 1 GiB above what it already maps, and say what happened and what it allocated at its peak.
CHILD = textwrap.dedent("""
    import json, os, resource, struct, sys, threading, tracemalloc
    from autograder.sandbox import wire

    body = open(sys.argv[1], "rb").read()
    os.unlink(sys.argv[1])
    mapped = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmSize:"))
    limit = mapped * 1024 + (1 << 30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    r, w = os.pipe()

    def feed():
        os.write(w, struct.pack(">I", len(body)))
        view = memoryview(body)
        while view:
            view = view[os.write(w, view[: 1 << 20]):]

    threading.Thread(target=feed, daemon=True).start()
    tracemalloc.start()
    try:
        value = wire.Codec().decode(wire.receive(r).get("value"))
        out = {"error": None, "decoded": type(value).__name__}
    except BaseException as exc:
        out = {"error": type(exc).__name__, "message": str(exc)[:2000]}
    out["peak"] = tracemalloc.get_traced_memory()[1]
    print(json.dumps(out))
""")


def judge_decodes(body: bytes, tmp_path: Path) -> dict:
    """What the judge makes of one reply, decoded in a child with little memory to spare."""
    path = tmp_path / "reply.json"
    path.write_bytes(body)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def reply(value) -> bytes:
    return json.dumps({"ok": True, "id": 1, "value": value}).encode()


def npy_payload(header: dict, data: bytes) -> dict:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return {"__array__": base64.b64encode(buf.getvalue() + data).decode(), "torch": False, "dtype": "x"}


def refused(outcome: dict, words: str = "") -> None:
    assert outcome["error"] == "WireError", outcome
    assert words in outcome["message"], outcome
    assert outcome["peak"] < TRACED_BUDGET, f"{outcome['peak'] >> 20} MiB allocated to refuse it"


# ----------------------------------------------------------------------------- the wire
@pytest.mark.parametrize("number", [10**8, 2 * 10**9])
def test_a_32_byte_void_scalar_reply_is_refused_without_allocating(number, tmp_path):
    """``{"__np__": "V8", "v": 100000000}``: numpy made a 100 MB void scalar of it (2 GB for 2e9)."""
    value = {"__np__": "V8", "v": number}
    assert len(json.dumps(value, separators=(",", ":"))) <= 32
    refused(judge_decodes(reply(value), tmp_path), "dtype 'V8' is refused")


def test_an_npy_header_claiming_a_huge_shape_is_refused_before_allocating(tmp_path):
    """np.load allocates what the header claims (here 256 MiB) before it reads 64 bytes of data."""
    payload = npy_payload({"descr": "<f8", "fortran_order": False, "shape": (1 << 25,)}, b"\0" * 64)
    refused(judge_decodes(reply(payload), tmp_path), "bytes came")


def test_shapes_that_overflow_or_lie_are_refused():
    for shape, data in (((1 << 62, 1 << 62), b""), ((0, 1 << 62), b"\0" * 8), ((3,), b"\0" * 32)):
        with pytest.raises(wire.WireError, match="bytes came"):
            wire.array_from_wire(npy_payload({"descr": "<f4", "fortran_order": False, "shape": shape}, data))


@pytest.mark.parametrize("dtype", ["V16", [("a", "<i4"), ("b", "<f8")], "<U5", "|S3", "<M8[ns]", "<m8[s]",
                                   "<c16", ("<f8", (2,))])
def test_arrays_of_a_dtype_off_the_allow_list_are_refused(dtype):
    """Void, structured, string, datetime, complex, sub-array: np.load built them all from a reply."""
    dt = np.dtype(dtype)
    payload = npy_payload({"descr": np.lib.format.dtype_to_descr(dt), "fortran_order": False, "shape": (2,)},
                          b"\0" * (2 * dt.itemsize))
    with pytest.raises(wire.WireError, match="refused"):
        wire.array_from_wire(payload)


@pytest.mark.parametrize("name", ["V8", "<U5", "O", "complex128", "datetime64[s]", "float128", "x" * 10_000])
def test_numpy_scalars_of_a_dtype_off_the_allow_list_are_refused(name):
    with pytest.raises(wire.WireError, match="refused") as caught:
        wire.Codec().decode({"__np__": name, "v": 1})
    assert len(str(caught.value)) < 300  # a 10,000-character dtype is cut before it is quoted


def test_received_strings_are_cut_before_an_error_quotes_them(tmp_path):
    """numpy's error for ``np.dtype("xxxx...")`` quoted all 10 MB of it, and the learner message with it."""
    outcome = judge_decodes(reply({"__np__": "x" * (10 << 20), "v": 1}), tmp_path)
    refused(outcome)
    assert len(outcome["message"]) < 300
    with pytest.raises(wire.WireError) as caught:
        wire.Codec().decode({"k" * 100_000: 1, "__oops__": 2})
    assert len(str(caught.value)) < 600


@pytest.mark.parametrize("size_mib", [15.9, 60])
def test_a_near_cap_reply_of_tiny_containers_costs_the_judge_little(size_mib, tmp_path):
    """``[[],[],...]``: 60 MiB took the judge past 3.2 GB; 16 MiB cost ~800 MB. Refused on the raw bytes."""
    n = int(size_mib * (1 << 20)) // 3
    body = b'{"ok":true,"id":1,"value":[' + b"[]," * (n - 20) + b"[]]}"
    refused(judge_decodes(body, tmp_path), "over the")


def test_a_near_cap_reply_of_numbers_is_refused_on_its_raw_bytes(tmp_path):
    n = int(15.9 * (1 << 20)) // 4
    refused(judge_decodes(b'{"ok":true,"id":1,"value":[' + b"1.5," * n + b"1]}", tmp_path), "values")


def frame_round_trip(value, codec: wire.Codec | None = None):
    """``value`` sent by the runner's codec through a pipe and decoded by the judge's."""
    message = {"ok": True, "id": 1, "value": (codec or wire.Codec(on_object=lambda v: {"__handle__": 1})).encode(value)}
    r, w = os.pipe()
    try:
        wire.send(w, message)
        return wire.Codec().decode(wire.receive(r)["value"])
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize("dtype", sorted(wire.ARRAY_DTYPES))
def test_honest_arrays_and_scalars_of_every_allowed_dtype_round_trip(dtype):
    """A guard against refusing too much: what graders get back today still comes back the same."""
    for arr in (np.arange(6).reshape(2, 3).astype(dtype), np.zeros((0, 4), dtype), np.asarray(1, dtype),
                np.asfortranarray(np.arange(6).reshape(2, 3).astype(dtype)),
                np.arange(4).astype(np.dtype(dtype).newbyteorder(">"))):
        got = frame_round_trip(arr)
        assert isinstance(got, np.ndarray) and got.dtype == np.dtype(dtype) and got.shape == arr.shape
        assert np.array_equal(got, arr) and got.flags.writeable
    scalar = np.dtype(dtype).type(1)
    got = frame_round_trip(scalar)
    assert type(got) is type(scalar) and got == scalar


@pytest.mark.parametrize("name", ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                                  "float16", "bfloat16", "float32", "float64"])
def test_honest_tensors_round_trip_with_fp16_and_bf16_widened_on_the_wire(name):
    torch = pytest.importorskip("torch")
    dtype = getattr(torch, name)
    tensor = torch.arange(6).reshape(2, 3).to(dtype)
    encoded = wire.Codec().encode(tensor)
    if name in ("float16", "bfloat16"):
        assert np.load(io.BytesIO(base64.b64decode(encoded["__array__"]))).dtype == np.float32
    got = frame_round_trip(tensor)
    assert isinstance(got, torch.Tensor) and got.dtype == dtype and torch.equal(got, tensor)


def test_strings_from_numpy_cross_as_str_never_as_a_string_dtype():
    """A predict() that returns ``np.array(names)[ids]`` still gives the judge its label names."""
    assert frame_round_trip(np.array(["neg", "pos"])[1]) == "pos"
    got = frame_round_trip(np.array([["neg", "pos"], ["pos", "pos"]]))
    assert got == [["neg", "pos"], ["pos", "pos"]]


def test_a_complex_array_stays_in_the_runner_as_a_handle():
    encoded = wire.Codec(on_object=lambda v: {"__handle__": 7}).encode(np.zeros(2, complex))
    assert encoded == {"__handle__": 7}
    with pytest.raises(wire.WireError):
        wire.Codec().encode(np.zeros(2, complex))


def test_malformed_tagged_values_are_wire_errors():
    for bad in ({"__map__": [[["a"], 1]]}, {"__map__": [1, 2]}, {"__map__": "ab"}, {"__tuple__": 5},
                {"__record__": [1]}, {"__array__": 5}, {"__array__": "not base64!"},
                {"__np__": "float64", "v": "1e308"}, {"__np__": "int8", "v": 10**30}):
        with pytest.raises(wire.WireError):
            wire.Codec().decode(bad)


def receive_bytes(body: bytes) -> dict:
    """``wire.receive`` of one frame holding ``body`` as it is (a thread writes it: pipes hold 64 KiB)."""
    import threading

    r, w = os.pipe()
    writer = threading.Thread(target=lambda: os.write(w, struct.pack(">I", len(body)) + body), daemon=True)
    writer.start()
    try:
        return wire.receive(r)
    finally:
        os.close(r)
        writer.join()
        os.close(w)


def test_a_message_that_is_not_ascii_or_is_nested_past_recursion_is_a_wire_error():
    """send writes ASCII JSON; json's RecursionError escaped the judge's handler as a crash."""
    for body in ('{"v": "\u00e9"}'.encode(), b"[" * 100_000 + b"]" * 100_000):
        with pytest.raises(wire.WireError):
            receive_bytes(body)


# ----------------------------------------------------------------------------- the reports
ATTACK = ("\x1b]0;graded by the instructor\x07\x1b[2J\x1b[H\x1b[1;32mALL CHECKS PASSED 60/60\x1b[0m"
          "\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\" + "\x9b2J\x9d0;title\x9c")
EVERY_CONTROL = "".join(map(chr, [*range(0x00, 0x20), *range(0x7f, 0xa0)]))
INJECTED = ("\x1b]", "\x1b[2J", "\x1b[H", "\x1b[1;32m", "\x9b", "\x9d", "\x07", "\x08", "\x00")


def hostile_result(folder: str = "subs/evil\x1b[8m") -> GradeResult:
    message = f"called tokenize(): it raised ValueError: {ATTACK} {EVERY_CONTROL} lone \ud800 end"
    return GradeResult(submission=folder, sandbox="sandbox: on (test)", warnings=[f"refused file {ATTACK}.py"], stages=[
        StageResult("tokenize", "Tokenize", 0.0, 3.0, [
            CheckResult("test_visible", False, 0.0, 1.0, message, hidden=False),
            CheckResult("test_hidden", False, 0.0, 2.0, message, hidden=True)], hint="read the docs",
            error=f"the submission's process stopped: its last output: {ATTACK}"),
        StageResult("sentiment", "Notebook", 0.0, 5.0, [CheckResult("notebook_runs", False, 0.0, 5.0, message, False)],
                    tier="model", error=ATTACK, details={"refused": [f"output_dir/{ATTACK}"]})])


def test_control_bytes_and_ansi_sequences_never_reach_the_terminal():
    from rich.console import Console

    out = io.StringIO()
    print_table(hostile_result(), Console(file=out, force_terminal=True, width=200, color_system="truecolor"))
    text = out.getvalue()
    assert "ALL CHECKS PASSED" in text  # the text stays, as text
    for sequence in INJECTED:
        assert sequence not in text, repr(sequence)
    assert not set(text) & (set(EVERY_CONTROL) - {"\n", "\t", "\x1b"})  # Rich's own styling is its only ESC


def test_junit_xml_of_a_message_full_of_control_bytes_parses():
    root = ET.fromstring(junit_xml(hostile_result()))
    failures = root.findall(".//failure")
    assert failures and all("\x1b" not in (f.text or "") + f.get("message", "") for f in failures)


def strings(data) -> str:
    """Every string in parsed JSON, keys too: a JSON file's ``\\u001b`` is an ESC to whoever reads it."""
    if isinstance(data, dict):
        return "".join(strings(k) + strings(v) for k, v in data.items())
    if isinstance(data, list):
        return "".join(map(strings, data))
    return data if isinstance(data, str) else ""


def test_no_report_file_carries_an_escape(tmp_path):
    write_reports(hostile_result(), tmp_path)
    for name in ("result.json", "results.json", "junit.xml", "feedback.md", "feedback.html"):
        raw = (tmp_path / name).read_text(encoding="utf-8")
        text = strings(json.loads(raw)) if name.endswith(".json") else raw
        assert not set(text) & set(EVERY_CONTROL) - {"\n", "\t"}, name
        assert "\\u001b" not in raw.lower() and "&#27;" not in raw, name
    ET.parse(tmp_path / "junit.xml")


def test_a_submission_folder_named_with_rich_markup_keeps_its_brackets():
    from rich.console import Console

    out = io.StringIO()
    print_table(GradeResult(submission="subs/evil[reverse]x:warning:"), Console(file=out, width=200))
    assert "evil[reverse]x:warning:" in out.getvalue()


def test_learner_messages_from_the_runner_are_cleaned_and_cut_where_they_are_built():
    class Remote(Exception):
        mro, limit, type = ["builtins.ValueError"], None, "ValueError\x1b[2J"
        message = ATTACK + "x" * 10_000_000

        def is_a(self, cls) -> bool:
            return False

        def where(self) -> str:
            return f" (in evil\x1b]0;t\x07.py, line 3, in f{ATTACK})"

    text = remote_failure(Remote(), "tokenize()")
    assert len(text) < 1000 and not set(text) & set(EVERY_CONTROL) - {"\n", "\t"}
    assert not set(from_exception(AssertionError(ATTACK))) & set(EVERY_CONTROL)
    assert clean_text("a\tb\nc\r\n" + EVERY_CONTROL) == "a\tb\nc\n\t\n"
