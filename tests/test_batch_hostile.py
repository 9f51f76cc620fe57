"""Hostile submissions against the batch (issue 9, item 4), each next to an honest one that must
keep its full marks.

Fast tests drive the batch with stand-in workers (``child.WORKER``) that die, hang, flood, lie or
tamper, and check zips, ids and result validation directly. The slow ones grade a real class on
the ``tokenize`` stage: once in the jail (the configuration ``grade-batch`` requires), once with
the sandbox off, where the attacks really reach the batch's processes and files.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
import zipfile
from pathlib import Path

import psutil
import pytest

from autograder import REPO_ROOT
from autograder.batch import child, store, submissions, validate
from autograder.batch import local as batch
from autograder.course.manifest import SubmissionCaps, load_course
from autograder.reports.batch_report import write_class_reports
from autograder.sandbox.jail import detect

STAGE = "tokenize"
MODULE = "stage1_tokenize.py"
SOLUTION = (REPO_ROOT / "solutions" / MODULE).read_text()
STUB = (REPO_ROOT / "exercises" / MODULE).read_text()
POINTS = load_course().stage(STAGE).points
SMALL = SubmissionCaps(max_file_mb=1, max_total_mb=2, max_files=50)
FORMULA = ("=", "+", "-", "@", "\t", "\r")
HOSTILE_TEXT = "<script>alert(1)</script> [link](http://x) **bold** | cell"


@pytest.fixture(autouse=True)
def private_tmp(tmp_path_factory, monkeypatch):
    """The batch's fresh copies (and the graders' temporary folders) go under pytest's folder."""
    where = tmp_path_factory.mktemp("tmp")
    monkeypatch.setenv("TMPDIR", str(where))
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    return where


def folder(path: Path, text: str = SOLUTION, **extra: str) -> Path:
    path.mkdir(parents=True)
    (path / MODULE).write_text(text)
    for name, content in extra.items():
        (path / name).write_text(content)
    return path


def zip_with(path: Path, entries) -> Path:
    """``entries``: (name or ZipInfo, bytes) pairs, written as they are (no path cleaning)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return path


def bomb(path: Path, mib: int = 300) -> Path:
    """One file of ``mib`` MiB of zeros, compressed (about 300 KiB), streamed: never in memory."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("bomb/zeros.bin", "w") as f:
        block = bytes(1 << 20)
        for _ in range(mib):
            f.write(block)
    return path


def symlink_entry(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


# ----------------------------------------------------------------------------- ids
@pytest.mark.parametrize("raw, want", [
    ("alice", "alice"), ('=HYPERLINK("x")', "_HYPERLINK__x__"), ("../../etc", "_.._etc"), ("-rf", "rf"),
    (".hidden", "hidden"), ("Ａｌｉｃｅ", "Alice"), ("josé maría", "jos__mar_a"), ("", "student"),
    ("...", "student"), ("x" * 200, "x" * 64), ("a/b\\c\0d", "a_b_c_d"), ("+@cmd", "__cmd"),
])
def test_student_ids_are_normalised(raw, want):
    got = submissions.normalise_id(raw)
    assert got == want
    assert not got.startswith((".", "-", *FORMULA)) and len(got) <= 64


def test_colliding_ids_are_graded_apart_with_a_warning(tmp_path):
    subs = tmp_path / "subs"
    folder(subs / "carol")
    zip_with(subs / "carol.zip", [("carol/" + MODULE, STUB)])
    folder(subs / "Carol")
    folder(subs / "carol-2")  # a real student with the id a renamed duplicate would take
    folder(subs / "dave")
    found = {s.id: s for s in submissions.discover(subs)}
    assert set(found) == {"Carol", "carol-3", "carol-4", "carol-2", "dave"}
    assert [found[i].source.name for i in ("Carol", "carol-3", "carol-4")] == ["Carol", "carol", "carol.zip"]
    for sid in ("Carol", "carol-3", "carol-4"):
        (note,) = found[sid].warnings
        assert "3 submissions map to the student id 'Carol'" in note and "carol.zip" in note
    assert not found["dave"].warnings and not found["carol-2"].warnings


# ----------------------------------------------------------------------------- zips
def _zips(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    outside = root / "outside"
    lying = bomb(root / "lying.zip", mib=30)
    data = bytearray(lying.read_bytes())  # every size field of the entry says 1000 bytes
    for header, offsets in ((b"PK\x03\x04", (22,)), (b"PK\x01\x02", (24,))):
        at = data.find(header)
        for off in offsets:
            data[at + off:at + off + 4] = (1000).to_bytes(4, "little")
    lying.write_bytes(bytes(data))
    return {
        "dotdot": zip_with(root / "dotdot.zip", [("dotdot/" + MODULE, SOLUTION), ("../outside/evil.py", "x")]),
        "absolute": zip_with(root / "absolute.zip", [(MODULE, SOLUTION), (str(outside / "abs.py"), "x")]),
        "symlink": zip_with(root / "symlink.zip", [(MODULE, SOLUTION), (symlink_entry("link.py", "/etc/passwd"),
                                                                        "/etc/passwd")]),
        "bomb": bomb(root / "bomb.zip"),
        "lying": lying,
        "many": zip_with(root / "many.zip", [(f"f{i}.txt", "") for i in range(200)]),
        "backslash": zip_with(root / "backslash.zip", [("..\\outside\\evil.py", "x")]),
        "not_a_zip": (root / "not_a_zip.zip").write_bytes(b"PK\x03\x04 garbage") and root / "not_a_zip.zip",
    }


@pytest.mark.parametrize("kind, why", [
    ("dotdot", "points outside its folder"), ("absolute", "is an absolute path"), ("symlink", "symbolic link"),
    ("bomb", "over the 1 MiB limit per file"), ("lying", "could not be extracted"), ("many", "over the limit"),
    ("backslash", "points outside its folder"), ("not_a_zip", "not a zip file"),
])
def test_unsafe_zips_are_refused_and_nothing_is_written_outside(tmp_path, kind, why):
    archive = _zips(tmp_path / "zips")[kind]
    target = tmp_path / "work" / "extracted"
    with pytest.raises(submissions.Refused, match=why):
        submissions.extract_zip(archive, target, SMALL)
    assert not (tmp_path / "zips" / "outside").exists() and not (tmp_path / "outside").exists()
    assert not target.exists() or tree_size(target) <= SMALL.max_file_mb << 20


def test_a_safe_zip_extracts_to_its_inner_folder(tmp_path):
    archive = zip_with(tmp_path / "alice.zip", [("alice/" + MODULE, SOLUTION), ("alice/data/x.txt", "1"),
                                                ("__MACOSX/alice/._x", "junk")])
    sub = submissions.Submission("alice", archive, "zip")
    root, warnings = submissions.prepare(sub, tmp_path / "work", SMALL)
    assert root == tmp_path / "work" / "extracted" / "alice" and warnings == []
    assert (root / MODULE).read_text() == SOLUTION and (root / "data" / "x.txt").read_text() == "1"
    assert not (tmp_path / "work" / "extracted" / "__MACOSX").exists()


# ----------------------------------------------------------------------------- result validation
def honest(student: str = "x") -> dict:
    st = load_course().stage(STAGE)
    checks = [{"name": n, "passed": True, "score": p, "max_score": p, "message": "", "hidden": True}
              for n, p in st.checks.items()]
    return {"submission": student, "stages": [{"id": st.id, "title": st.title, "score": st.points,
                                                "max_score": st.points, "checks": checks, "tier": "structural"}],
            "model": "m", "duration_s": 1.0, "score": st.points, "max_score": st.points}


def _mutations():
    def stage(d):
        return d["stages"][0]

    yield "not a dict", lambda d: [d]
    yield "unknown field", lambda d: d.update(owned=True)
    yield "inflated max", lambda d: stage(d).update(max_score=1000, score=1000)
    yield "check max", lambda d: stage(d)["checks"][0].update(max_score=99, score=99)
    yield "score over max", lambda d: stage(d)["checks"][0].update(score=5)
    yield "negative", lambda d: stage(d)["checks"][0].update(score=-1)
    yield "nan", lambda d: stage(d).update(score=float("nan"))
    yield "bool score", lambda d: stage(d)["checks"][0].update(score=True)
    yield "string score", lambda d: stage(d).update(score="10")
    yield "sum", lambda d: stage(d).update(score=stage(d)["score"] - 1)
    yield "unknown stage", lambda d: stage(d).update(id="train")
    yield "repeated stage", lambda d: d["stages"].append(dict(stage(d)))
    yield "repeated check", lambda d: stage(d)["checks"].append(dict(stage(d)["checks"][0]))
    yield "unknown check", lambda d: stage(d)["checks"][0].update(name="test_bonus")
    yield "no stages", lambda d: d.pop("stages")
    yield "passed not bool", lambda d: stage(d)["checks"][0].update(passed="yes")
    yield "details", lambda d: stage(d).update(details=[1])
    yield "warnings", lambda d: d.update(warnings="x")
    yield "tier", lambda d: stage(d).update(tier="model")  # model-tier messages are shown unsanitised


@pytest.mark.parametrize("what, mutate", list(_mutations()), ids=[m[0] for m in _mutations()])
def test_malformed_results_are_rejected(what, mutate):
    expected = validate.expected_stages("structural", [STAGE])
    ok = validate.validate_result(honest(), expected)
    assert ok.score == POINTS and ok.max_score == POINTS
    data = honest()
    replaced = mutate(data)
    with pytest.raises(validate.MalformedResult):
        validate.validate_result(replaced if replaced is not None else data, expected)


def test_a_missing_stage_is_added_at_zero():
    expected = validate.expected_stages("structural", [STAGE, "model"])
    result = validate.validate_result(honest(), expected)
    assert [s.id for s in result.stages] == [STAGE, "model"]
    assert result.score == POINTS and result.max_score == POINTS + load_course().stage("model").points


# ----------------------------------------------------------------------------- stand-in workers
FAKE_WORKER = textwrap.dedent('''
    import json, os, signal, subprocess, sys, threading, time
    from pathlib import Path

    sys.path.insert(0, {tests!r})
    from test_batch_hostile import honest
    from autograder.batch.worker import _read_request, _watch_batch

    req = json.loads(_read_request())
    threading.Thread(target=_watch_batch, daemon=True).start()  # as the real worker does
    sub = Path(req["submission"])
    what = (sub / "behaviour.txt").read_text().strip() if (sub / "behaviour.txt").exists() else "honest"
    result = honest()
    if what == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    elif what == "garbage":
        print("Traceback: all is well, 10/10")
        sys.exit(0)
    elif what == "exit":
        sys.exit(3)
    elif what == "hang":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        print(f"grandchild={{child.pid}}", file=sys.stderr, flush=True)
        time.sleep(600)
    elif what == "flood":
        chunk = b"x" * (1 << 20)
        for _ in range(40):
            sys.stdout.buffer.write(chunk)
    elif what == "inflate":
        result["stages"][0]["max_score"] = result["stages"][0]["score"] = 1000
    elif what == "error":
        print(json.dumps({{"error": "ValueError: <b>boom</b>", "traceback": "Traceback ..."}}))
        sys.exit(0)
    elif what == "report":
        result["stages"][0]["details"] = {{"cwd": os.getcwd(), "env": dict(os.environ), "argv": sys.argv,
                                           "request": req, "fds": os.listdir("/proc/self/fd")}}
    elif what.startswith("tamper "):
        results = Path(what.split(" ", 1)[1]) / "results"
        for path in results.glob("*.json"):
            data = json.loads(path.read_text())
            for s in data["stages"]:
                s["score"] = 0
            path.write_text(json.dumps(data))
        (results / "zzz_late.json").write_text(json.dumps(honest("zzz_late")))
        (results / "z_tamper.json").write_text(json.dumps(honest("z_tamper")))
    print(json.dumps({{"result": result}}))
''')


@pytest.fixture
def fake_worker(tmp_path, monkeypatch):
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE_WORKER.format(tests=str(Path(__file__).parent)))
    monkeypatch.setattr(child, "WORKER", [sys.executable, str(script)])
    return script


def scores(results) -> dict[str, float]:
    return {r.submission: r.score for r in results}


def note(result) -> str:
    return next((s.error for s in result.stages if s.id == "submission"), "")


def test_workers_that_die_hang_flood_or_lie_fail_only_their_submission(tmp_path, fake_worker):
    subs = tmp_path / "subs"
    behaviours = ["die", "garbage", "exit", "hang", "flood", "inflate", "error"]
    folder(subs / "a_honest")
    for b in behaviours:
        folder(subs / b, **{"behaviour.txt": b})
    folder(subs / "z_honest")
    out = tmp_path / "out"
    start = time.monotonic()
    results = {r.submission: r for r in batch.grade_batch(subs, out, workers=3, stages=[STAGE], progress=False,
                                                          limit_s=6, log=lambda m: None)}
    assert time.monotonic() - start < 60
    assert results["a_honest"].score == results["z_honest"].score == POINTS
    words = {"die": "killed", "garbage": "reply could not be read", "exit": "exit code 3",
             "hang": "did not finish within 6 s", "flood": "larger than a result", "inflate": "not well-formed",
             "error": "could not be graded: ValueError"}
    for b, word in words.items():
        r = results[b]
        assert r.score == 0 and r.max_score == POINTS, b  # every check of the stage, not graded
        assert word in note(r), (b, note(r))
        stage = next(s for s in r.stages if s.id == STAGE)
        assert all(c.message.startswith("not graded") for c in stage.checks)
    # the hanging worker's own child was killed with it
    instructor = next(s for s in results["hang"].stages if s.id == "submission").details["instructor"]
    pid = int(instructor.split("grandchild=")[1].split()[0])
    time.sleep(0.5)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    # every result is recorded: a resumed batch grades nobody again (a worker would fail now)
    before = {p.name: p.read_text() for p in (out / "results").glob("*.json")}
    assert len(before) == len(behaviours) + 2
    (subs / "a_honest" / "behaviour.txt").write_text("die")
    again = batch.grade_batch(subs, out, workers=2, stages=[STAGE], progress=False, limit_s=6)
    assert scores(again) == scores(results.values())
    assert {p.name: p.read_text() for p in (out / "results").glob("*.json")} == before
    # --regrade retries (and the honest one now dies)
    (subs / "die" / "behaviour.txt").write_text("honest")
    third = {r.submission: r for r in batch.grade_batch(subs, out, workers=2, stages=[STAGE], progress=False,
                                                        limit_s=6, regrade=True)}
    assert third["die"].score == POINTS and third["a_honest"].score == 0


def test_the_worker_is_not_told_where_the_batch_writes(tmp_path, fake_worker):
    subs = tmp_path / "subs"
    folder(subs / "spy", **{"behaviour.txt": "report"})
    out = tmp_path / "batch_output_folder"
    (result,) = batch.grade_batch(subs, out, stages=[STAGE], progress=False)
    seen = result.stages[0].details
    assert "batch_output_folder" not in json.dumps(seen)
    assert Path(seen["cwd"]).resolve() != out.resolve() and out.resolve() not in Path(seen["cwd"]).resolve().parents
    assert not Path(seen["request"]["submission"]).resolve().is_relative_to(out.resolve())
    assert set(seen["fds"]) <= {"0", "1", "2", "3", "4"}  # std streams, its reply copy, the listing itself
    assert result.score == POINTS


def test_result_files_changed_during_a_batch_are_restored(tmp_path, fake_worker):
    subs = tmp_path / "subs"
    out = tmp_path / "out"
    folder(subs / "a_honest")
    folder(subs / "z_tamper", **{"behaviour.txt": f"tamper {out}"})  # an attacker that found OUT
    logs = []
    results = batch.grade_batch(subs, out, workers=1, stages=[STAGE], progress=False, log=logs.append)
    assert scores(results) == {"a_honest": POINTS, "z_tamper": POINTS}
    on_disk = {p.stem: json.loads(p.read_text())["score"] for p in (out / "results").glob("*.json")}
    assert on_disk == {"a_honest": POINTS, "z_tamper": POINTS}  # zzz_late.json removed, a_honest restored
    assert any("restored" in m and "a_honest" in m for m in logs)
    assert any("removed" in m and "zzz_late" in m for m in logs)


def test_a_refused_zip_fails_only_itself(tmp_path, fake_worker):
    subs = tmp_path / "subs"
    folder(subs / "alice")
    zips = _zips(tmp_path / "zips")
    for kind in ("dotdot", "absolute", "symlink", "bomb"):
        os.replace(zips[kind], subs / f"{kind}.zip")
    (subs / "linked").symlink_to(subs / "alice")
    results = {r.submission: r for r in batch.grade_batch(subs, tmp_path / "out", stages=[STAGE], workers=2,
                                                          progress=False, caps=SMALL)}
    assert results["alice"].score == POINTS
    for kind in ("dotdot", "absolute", "symlink", "bomb", "linked"):
        assert results[kind].score == 0 and results[kind].max_score == POINTS
        assert "refused" in note(results[kind]) or "symbolic link" in note(results[kind])
    assert not (tmp_path / "zips" / "outside").exists()


# ----------------------------------------------------------------------------- the real thing
KILLER = textwrap.dedent('''
    import os, signal

    def _ancestors():
        pids, pid = [], os.getppid()
        while pid > 1:
            pids.append(pid)
            try:
                with open(f"/proc/{pid}/stat") as f:
                    pid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                break
        return pids

    for _pid in _ancestors():  # the old pool's worker: find it, kill it
        try:
            with open(f"/proc/{_pid}/cmdline", "rb") as f:
                if b"autograder.batch.worker" in f.read():
                    os.kill(_pid, signal.SIGKILL)
        except OSError:
            pass
    os.kill(os.getppid(), signal.SIGKILL)
''')

SNOOP = textwrap.dedent('''
    import glob, json, os

    ROOT = {root!r}  # where this attacker guesses batches are graded (the test's class folder)

    def _look():
        """Paths that the processes above us reveal: their cwd, environment and arguments."""
        found, pid = set(), os.getppid()
        while pid > 1:
            try:
                found.add(os.readlink(f"/proc/{{pid}}/cwd"))
            except OSError:
                pass
            for name in ("environ", "cmdline"):
                try:
                    with open(f"/proc/{{pid}}/{{name}}", "rb") as f:
                        for item in f.read().split(b"\\0"):
                            text = item.decode(errors="ignore")
                            found.update(p for p in (text, text.split("=", 1)[-1]) if p.startswith("/"))
                except OSError:
                    pass
            try:
                with open(f"/proc/{{pid}}/stat") as f:
                    pid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                break
        return found

    LEAKED = sorted(p for p in _look() if p.startswith(ROOT + "/out"))
    for _path in glob.glob(os.path.join(ROOT, "**", "results", "*.json"), recursive=True):
        try:
            with open(_path) as f:
                _data = json.load(f)
            mine = os.path.basename(_path).startswith("zoe")
            for _s in _data["stages"]:
                for _c in _s["checks"]:
                    _c["score"], _c["passed"] = (_c["max_score"], True) if mine else (0, False)
                _s["score"] = sum(_c["score"] for _c in _s["checks"])
            with open(_path, "w") as f:
                json.dump(_data, f)
            with open(os.path.join(os.path.dirname(_path), "zzz_late.json"), "w") as f:
                json.dump(dict(_data, submission="zzz_late"), f)
        except (OSError, ValueError, KeyError, TypeError):
            pass
    if LEAKED:
        raise RuntimeError(f"found the batch output through /proc: {{LEAKED}}")
''')

def attack_then_solution(attack: str) -> str:
    """The solution with ``attack`` run first, at import (after its ``from __future__`` line)."""
    future = "from __future__ import annotations\n"
    assert future in SOLUTION
    return SOLUTION.replace(future, future + attack, 1)


MARKDOWN = SOLUTION.replace("def load_tokenizer(", f"def load_tokenizer(*a, **k):\n"
                                                  f"    raise ValueError({HOSTILE_TEXT!r})\n\n\ndef _unused(", 1)


def hostile_class(root: Path) -> Path:
    subs = root / "submissions"
    folder(subs / "solution")
    folder(subs / "mallory", attack_then_solution(KILLER))
    folder(subs / "zoe", attack_then_solution(SNOOP.format(root=str(root))))
    folder(subs / "carol")
    zip_with(subs / "carol.zip", [("carol/" + MODULE, STUB)])
    folder(subs / '=HYPERLINK("x")', MARKDOWN)
    zips = _zips(root / "zips")
    for kind in ("dotdot", "absolute", "symlink", "bomb"):
        os.replace(zips[kind], subs / f"{kind}.zip")
    return subs


def csv_cells(path: Path) -> list[str]:
    with path.open(newline="") as f:
        return [cell for row in csv.reader(f) for cell in row]


@pytest.fixture(scope="module")
def jailed_class(tmp_path_factory):
    if not detect().on:
        pytest.skip(f"grade-batch's default needs the jail: {detect().describe()}")
    root = tmp_path_factory.mktemp("jailed")
    subs = hostile_class(root)
    out, logs = root / "out", []
    with pytest.MonkeyPatch.context() as mp:
        scratch = tmp_path_factory.mktemp("tmp")
        mp.setenv("TMPDIR", str(scratch))
        mp.setattr(tempfile, "tempdir", str(scratch))
        results = batch.grade_batch(subs, out, workers=2, stages=[STAGE], progress=False, caps=SMALL,
                                    require_sandbox=True, log=logs.append)
    write_class_reports(results, out, assignment="ps1")
    return root, out, {r.submission: r for r in results}, logs


def test_jailed_class_honest_submissions_keep_full_marks(jailed_class):
    root, out, results, logs = jailed_class
    assert results["solution"].score == POINTS and results["carol"].score == POINTS
    assert all(r.sandbox.startswith("sandbox: on") for r in results.values() if r.sandbox)
    on_disk = {p.stem: json.loads(p.read_text())["score"] for p in (out / "results").glob("*.json")}
    assert on_disk == {sid: r.score for sid, r in results.items()}


def test_jailed_killer_and_snoop_reach_nothing(jailed_class):
    root, out, results, logs = jailed_class
    # in the jail the parent is the jail's init (pid 1 of its own namespace): the kill does nothing,
    # nothing above is visible, the class folder is not mounted; both are graded like anyone
    assert results["mallory"].score == POINTS, results["mallory"]
    assert results["zoe"].score == POINTS, results["zoe"]
    assert not (out / "results" / "zzz_late.json").exists()
    assert not [m for m in logs if "restored" in m or "removed" in m]


def test_jailed_unsafe_zips_are_refused_alone(jailed_class):
    root, out, results, logs = jailed_class
    for kind, why in (("dotdot", "outside its folder"), ("absolute", "absolute path"),
                      ("symlink", "symbolic link"), ("bomb", "limit per file")):
        r = results[kind]
        assert r.score == 0 and r.max_score == POINTS and why in note(r), (kind, note(r))
        assert why in (out / "reports" / kind / "feedback.md").read_text()
    assert not (root / "zips" / "outside").exists() and not (root / "outside").exists()
    assert not any(p.name in ("evil.py", "abs.py") for p in root.rglob("*"))


def test_jailed_collision_is_reported_on_both(jailed_class):
    root, out, results, logs = jailed_class
    assert results["carol"].score == POINTS and results["carol-2"].score == 0  # the folder, then the zip
    for sid in ("carol", "carol-2"):
        assert any("2 submissions map to the student id 'carol'" in w for w in results[sid].warnings)
        assert "carol.zip" in (out / "reports" / sid / "feedback.md").read_text()
    assert any("carol.zip -> carol-2" in m for m in logs)


def test_jailed_formula_ids_and_markdown_messages_are_neutralised(jailed_class):
    root, out, results, logs = jailed_class
    sid = "_HYPERLINK__x__"
    assert results[sid].score < POINTS
    for name in ("gradebook.csv", "nbgrader_grades.csv"):
        cells = csv_cells(out / name)
        assert sid in cells and not [c for c in cells if c.startswith(FORMULA)]
    md = (out / "reports" / sid / "feedback.md").read_text()
    page = (out / "reports" / sid / "feedback.html").read_text()
    assert "alert(1)" in md and "<script" not in md and "[link](" not in md and "**bold**" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt; \\[link\\](http://x) \\*\\*bold\\*\\* \\| cell" in md
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; [link](http://x)" in page


def test_jailed_class_resumes_without_grading_again(jailed_class):
    root, out, results, logs = jailed_class
    before = {p.name: p.read_text() for p in (out / "results").glob("*.json")}
    start = time.monotonic()
    again = batch.grade_batch(root / "submissions", out, workers=2, stages=[STAGE], progress=False, caps=SMALL)
    assert time.monotonic() - start < 10
    assert {r.submission: r.score for r in again} == {sid: r.score for sid, r in results.items()}
    assert {p.name: p.read_text() for p in (out / "results").glob("*.json")} == before


def test_without_the_jail_a_killer_fails_alone_and_tampering_is_undone(tmp_path, monkeypatch):
    """Sandbox off: the killer's kill reaches the worker, the snoop's writes reach OUT/results."""
    off = "turned off by the test"
    subs = tmp_path / "submissions"
    folder(subs / "alice")
    folder(subs / "mallory", attack_then_solution(KILLER))
    folder(subs / "zoe", attack_then_solution(SNOOP.format(root=str(tmp_path))))
    out, logs = tmp_path / "out", []
    results = {r.submission: r for r in batch.grade_batch(subs, out, workers=1, stages=[STAGE], progress=False,
                                                          log=logs.append, sandbox_off=off)}
    assert results["alice"].score == POINTS
    assert results["mallory"].score == 0 and "grading stopped before it finished" in note(results["mallory"])
    assert "killed" in note(results["mallory"])
    # zoe found OUT only by the guess baked into it (nothing above it leaked it), tampered, and
    # the batch put back what it had written
    assert results["zoe"].score == POINTS
    zoe_stage = next(s for s in results["zoe"].stages if s.id == STAGE)
    assert "found the batch output" not in json.dumps([c.message for c in zoe_stage.checks])
    on_disk = {p.stem: json.loads(p.read_text())["score"] for p in (out / "results").glob("*.json")}
    assert on_disk == {"alice": POINTS, "mallory": 0, "zoe": POINTS}
    assert any("restored" in m and "alice" in m for m in logs) and any("zzz_late" in m for m in logs)
    # resumed: nobody is graded again, the killer is not retried
    before = {p.name: p.read_text() for p in (out / "results").glob("*.json")}
    again = batch.grade_batch(subs, out, workers=1, stages=[STAGE], progress=False, sandbox_off=off)
    assert {r.submission: r.score for r in again} == {"alice": POINTS, "mallory": 0, "zoe": POINTS}
    assert {p.name: p.read_text() for p in (out / "results").glob("*.json")} == before


def test_grade_batch_requires_the_sandbox_unless_told(tmp_path):
    folder(tmp_path / "subs" / "alice")
    env = {**os.environ, "AUTOGRADER_SANDBOX": "off"}
    cmd = [sys.executable, "-m", "autograder.cli", "grade-batch", str(tmp_path / "subs"), "--out",
           str(tmp_path / "out"), "--stage", STAGE]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert "apt-get install bubblewrap" in proc.stderr and "--no-require-sandbox" in proc.stderr
    assert not (tmp_path / "out" / "results").exists()


def test_a_batch_killed_midway_leaves_no_worker_behind(tmp_path, fake_worker):
    """The batch dies (SIGKILL): each worker sees its stdin close and stops with its children."""
    subs = tmp_path / "subs"
    folder(subs / "slow", **{"behaviour.txt": "hang"})
    script = tmp_path / "run_batch.py"
    script.write_text(textwrap.dedent(f'''
        import sys
        from pathlib import Path
        from autograder.batch import child, local as batch
        child.WORKER = [sys.executable, {str(fake_worker)!r}]
        batch.grade_batch(Path({str(subs)!r}), Path({str(tmp_path / "out")!r}), stages=[{STAGE!r}],
                          progress=False, limit_s=300)
    '''))
    proc = subprocess.Popen([sys.executable, str(script)], start_new_session=True, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    kids: list[psutil.Process] = []
    while time.monotonic() < deadline and len(kids) < 2:  # the worker and its sleeping child
        time.sleep(0.3)
        kids = psutil.Process(proc.pid).children(recursive=True)
    assert len(kids) >= 2, kids
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    gone, alive = psutil.wait_procs(kids, timeout=15)
    for p in alive:
        p.kill()
    assert not alive, alive


def test_model_tier_run_files_are_kept_in_out_and_paths_follow(tmp_path):
    from autograder.reports.results import GradeResult, StageResult

    runs = tmp_path / "tmp" / "runs"
    output = runs / "sentiment_model" / "output"
    output.mkdir(parents=True)
    (output / "log_history.json").write_text("[]")
    (runs / "sentiment_model" / "executed_sentiment.ipynb").write_text("{}")
    (output / "model.safetensors").write_bytes(b"0" * 100)  # models stay behind
    (runs / "sentiment_model" / "executed_evil.ipynb").symlink_to("/etc/passwd")
    notebook = runs / "sentiment_model" / "executed_sentiment.ipynb"
    details = {"output_dir": str(output), "executed_notebook": str(notebook), "evaluation": {"n": 500, "accuracy": 0.8}}
    elsewhere = {"output_dir": "/etc", "executed_notebook": str(tmp_path / "out")}
    result = GradeResult("x", [StageResult("sentiment_model", "t", 0.0, 10.0, tier="model", details=details),
                               StageResult("emotion_model", "t", 0.0, 10.0, tier="model", details=elsewhere)])
    dest = tmp_path / "out" / "runs" / "x"
    store.place_run_files(store.pack_run_files(runs, result, SMALL), dest, result)  # the worker's, the client's
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()) == [
        "sentiment_model/executed_sentiment.ipynb", "sentiment_model/output/log_history.json"]
    assert result.stages[0].details["output_dir"] == str(dest / "sentiment_model" / "output")
    assert result.stages[0].details["evaluation"] == {"n": 500, "accuracy": 0.8}
    assert result.stages[1].details == {}  # paths the worker named outside its run folder are dropped
