"""`autograder collect`: clone student repositories safely; the workflows keep the graded run out of students' reach."""

from __future__ import annotations

import csv
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from autograder.batch import classroom
from autograder.cli import main

TEMPLATES = Path(classroom.__file__).parent.parent / "templates"
GIT_ID = ["-c", "user.name=Student", "-c", "user.email=student@example.com"]


def commit(path: Path, text: str, date: str) -> str:
    """Commit ``stage1_tokenize.py`` holding ``text`` at ``date`` (ISO); returns the commit id."""
    (path / "stage1_tokenize.py").write_text(text)
    subprocess.run(["git", "add", "-A"], cwd=path, check=True)
    env = dict(os.environ, GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
    subprocess.run(["git", *GIT_ID, "commit", "-q", "-m", text], cwd=path, check=True, env=env)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True,
                          check=True).stdout.strip()


def make_repo(path: Path, commits: list[tuple[str, str]]) -> list[str]:
    """A git repository with one commit per (file text, ISO date); returns the commit ids, oldest first."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    return [commit(path, text, date) for text, date in commits]


def read_log(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


@pytest.fixture
def repos(tmp_path):
    good = tmp_path / "remote" / "alice-hw"
    ids = make_repo(good, [("v1 = 1\n", "2025-01-10T12:00:00+00:00"), ("v2 = 2\n", "2025-02-10T12:00:00+00:00")])
    return good, ids


# ------------------------------------------------------------------------------------------ URLs
@pytest.mark.parametrize("url", [
    "https://github.com/org/hw1-alice", "https://github.com/org/hw1-alice.git", "ssh://git@github.com/org/r.git",
    "git@github.com:org/hw1-alice.git", "file:///srv/git/repo", "/srv/git/repo", "./repo", "repo",
])
def test_allowed_urls(url):
    assert classroom.check_url(url) == ""


@pytest.mark.parametrize("url", [
    "ext::sh -c touch% /tmp/pwned", "ext::sh", "fd::17", "http://github.com/org/r", "git://github.com/org/r",
    "ftp://host/r", "-uhttps://x", "--upload-pack=touch /tmp/x", "https://user:secret@github.com/org/r",
    "https:///nohost", "file://relative/path", "host:path", "https://github.com/org/r with space", "",
    "ssh://-oProxyCommand=touch%20x/r", "git@-oProxyCommand=x:r",
])
def test_refused_urls(url):
    assert classroom.check_url(url) != ""


def test_redact_hides_credentials():
    assert classroom.redact("https://x-access-token:ghs_abc@github.com/o/r") == "https://***@github.com/o/r"
    assert classroom.redact("git@github.com:o/r.git") == "git@github.com:o/r.git"


# ---------------------------------------------------------------------------------------- roster
def test_plain_roster_with_and_without_ids(tmp_path):
    roster = tmp_path / "roster.txt"
    roster.write_text("# class of 2025\nhttps://github.com/org/hw1-alice.git\n\nbob  git@github.com:org/hw1-bob.git\n")
    entries = classroom.read_roster(roster)
    assert [(e.student, e.url) for e in entries] == [
        ("hw1-alice", "https://github.com/org/hw1-alice.git"), ("bob", "git@github.com:org/hw1-bob.git")]


def test_classroom_csv_roster(tmp_path):
    roster = tmp_path / "grades.csv"
    roster.write_text(
        "assignment_name,github_username,roster_identifier,student_repository_name,student_repository_url,"
        "points_awarded\n"
        "hw1,alice-gh,alice@uni.edu,hw1-alice-gh,https://github.com/org/hw1-alice-gh,0\n"
        "hw1,bob-gh,,hw1-bob-gh,https://github.com/org/hw1-bob-gh,0\n"
        "hw1,carol-gh,carol,,,0\n")
    entries = classroom.read_roster(roster)
    assert [(e.student, e.url) for e in entries] == [
        ("alice@uni.edu", "https://github.com/org/hw1-alice-gh"), ("bob-gh", "https://github.com/org/hw1-bob-gh"),
        ("carol", "")]
    spaced = tmp_path / "spaced.csv"
    spaced.write_text("GitHub Username,Student Repository URL\nalice-gh,https://github.com/org/hw1-alice-gh\n")
    assert [(e.student, e.url) for e in classroom.read_roster(spaced)] == [
        ("alice-gh", "https://github.com/org/hw1-alice-gh")]
    by_username = classroom.read_roster(roster, id_column="github_username")
    assert [e.student for e in by_username] == ["alice-gh", "bob-gh", "carol-gh"]


def test_roster_without_url_column_says_what_is_missing(tmp_path):
    roster = tmp_path / "classroom_roster.csv"
    roster.write_text("identifier,github_username,github_id,name\nalice@uni.edu,alice-gh,1,Alice\n")
    with pytest.raises(classroom.RosterError) as info:
        classroom.read_roster(roster)
    message = str(info.value)
    assert "student_repository_url" in message and "found: identifier, github_username, github_id, name" in message
    assert "--url-template" in message
    entries = classroom.read_roster(roster, url_template="https://github.com/org/hw1-{github_username}")
    assert [(e.student, e.url) for e in entries] == [("alice@uni.edu", "https://github.com/org/hw1-alice-gh")]
    with pytest.raises(classroom.RosterError, match="github_login"):
        classroom.read_roster(roster, url_template="https://github.com/org/hw1-{github_login}")


def test_student_ids_become_safe_folder_names():
    assert classroom.safe_student_id("alice@uni.edu") == "alice_uni.edu"
    assert classroom.safe_student_id("../../etc") == "_.._etc"
    assert classroom.safe_student_id("..") == ""
    assert classroom.safe_student_id("Ann Lee/2") == "Ann_Lee_2"
    from autograder.batch import normalise_id  # the folder name is the id grade-batch gives the student

    for raw in ("alice@uni.edu", "Ann Lee/2", "-x", "Zoë"):
        assert classroom.safe_student_id(raw) == normalise_id(raw)


# --------------------------------------------------------------------------------------- collect
def test_collect_clones_good_repositories_and_logs_every_failure(tmp_path, repos):
    good, ids = repos
    pwned = tmp_path / "pwned"
    roster = tmp_path / "roster.txt"
    roster.write_text(f"alice {good}\n"
                      f"bob {tmp_path / 'remote' / 'does-not-exist'}\n"
                      f"eve ext::sh -c touch% {pwned}\n"
                      f"mallory http://example.com/hw1.git\n"
                      f"file://{good}\n")
    subs = tmp_path / "submissions"
    assert main(["collect", str(roster), "--out", str(subs)]) == 1  # some failed, the rest were collected
    assert not pwned.exists()
    assert sorted(p.name for p in subs.iterdir()) == ["alice", "alice-hw", "collect.csv"]
    assert (subs / "alice" / "stage1_tokenize.py").read_text() == "v2 = 2\n"
    log = read_log(subs / "collect.csv")
    assert list(log) == ["alice", "bob", "eve", "mallory", "alice-hw"]
    assert log["alice"]["status"] == "ok" and log["alice"]["commit"] == ids[-1]
    assert log["alice"]["committed_at"].startswith("2025-02-10")
    assert log["alice-hw"]["status"] == "ok" and log["alice-hw"]["commit"] == ids[-1]
    assert log["bob"]["status"] == "error" and "does not exist" in log["bob"]["message"]
    assert log["eve"]["status"] == "refused" and "ext::" in log["eve"]["message"]
    assert log["mallory"]["status"] == "refused" and "http://" in log["mallory"]["message"]


def test_collect_never_leaves_a_half_clone_and_skips_existing_folders(tmp_path, repos):
    good, ids = repos
    subs = tmp_path / "subs"
    entries = [classroom.Entry("alice", str(good)), classroom.Entry("bob", str(tmp_path / "nope"))]
    classroom.collect(entries, subs)
    assert not any(p.name.startswith(".") for p in subs.iterdir())
    make_repo(tmp_path / "newer", [("v3 = 3\n", "2025-03-01T00:00:00+00:00")])
    again = classroom.collect([classroom.Entry("alice", str(tmp_path / "newer"))], subs)
    assert again[0].status == "skipped" and again[0].commit == ids[-1]
    assert (subs / "alice" / "stage1_tokenize.py").read_text() == "v2 = 2\n"
    refreshed = classroom.collect([classroom.Entry("alice", str(tmp_path / "newer"))], subs, refresh=True)
    assert refreshed[0].status == "ok" and (subs / "alice" / "stage1_tokenize.py").read_text() == "v3 = 3\n"


def test_collect_before_a_deadline_takes_the_last_commit_before_it(tmp_path, repos):
    good, ids = repos
    deadline = datetime(2025, 2, 1, tzinfo=UTC)
    for url in (str(good), f"file://{good}"):  # a local clone is complete; a file:// clone is shallow
        subs = tmp_path / f"subs-{len(url)}"
        [outcome] = classroom.collect([classroom.Entry("alice", url)], subs, before=deadline)
        assert outcome.status == "ok", outcome.message
        assert outcome.commit == ids[0]
        assert (subs / "alice" / "stage1_tokenize.py").read_text() == "v1 = 1\n"
    too_early = datetime(2024, 1, 1, tzinfo=UTC)
    [outcome] = classroom.collect([classroom.Entry("alice", str(good))], tmp_path / "early", before=too_early)
    assert outcome.status == "error" and "no commit before" in outcome.message
    assert not (tmp_path / "early" / "alice").exists()


def test_collect_with_a_branch_and_a_roster_csv(tmp_path, repos):
    good, ids = repos
    subprocess.run(["git", "checkout", "-q", "-b", "submission"], cwd=good, check=True)
    commit(good, "final = 1\n", "2025-02-20T00:00:00+00:00")
    roster = tmp_path / "grades.csv"
    roster.write_text("github_username,roster_identifier,student_repository_url\n"
                      f"alice-gh,alice,{good}\n"
                      "bob-gh,bob,\n"
                      f"eve-gh,eve,ext::sh -c touch% {tmp_path / 'pwned'}\n")
    subs = tmp_path / "subs"
    assert main(["collect", str(roster), "--out", str(subs), "--branch", "main"]) == 1
    log = read_log(subs / "collect.csv")
    assert log["alice"]["status"] == "ok" and log["alice"]["commit"] == ids[-1]
    assert log["bob"]["status"] == "skipped" and "no repository URL" in log["bob"]["message"]
    assert log["eve"]["status"] == "refused"
    assert sorted(p.name for p in subs.iterdir()) == ["alice", "collect.csv"]
    assert not (tmp_path / "pwned").exists()


def test_collect_never_fetches_submodules(tmp_path, repos):
    good, _ = repos
    sub = tmp_path / "remote" / "secret-sub"
    make_repo(sub, [("secret = 1\n", "2025-01-01T00:00:00+00:00")])
    subprocess.run(["git", *GIT_ID, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub), "vendor"],
                   cwd=good, check=True, capture_output=True)
    subprocess.run(["git", *GIT_ID, "commit", "-q", "-m", "add a submodule"], cwd=good, check=True)
    subs = tmp_path / "subs"
    [outcome] = classroom.collect([classroom.Entry("alice", f"file://{good}")], subs)
    assert outcome.status == "ok"
    assert (subs / "alice" / ".gitmodules").exists()
    assert not any((subs / "alice" / "vendor").iterdir())


def test_bad_roster_and_bad_deadline_exit_2(tmp_path, capsys):
    roster = tmp_path / "r.csv"
    roster.write_text("name,email\nAlice,a@b\n")
    assert main(["collect", str(roster), "--out", str(tmp_path / "s")]) == 2
    assert "no repository URL column" in capsys.readouterr().err
    roster.write_text("https://github.com/org/r\n")
    assert main(["collect", str(roster), "--out", str(tmp_path / "s"), "--before", "next friday"]) == 2
    assert "ISO 8601" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- workflows
def _steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_student_workflow_holds_no_secret_and_no_grader():
    text = (TEMPLATES / "practice.yml").read_text()
    assert "GRADER_TOKEN" not in text and "secrets." not in text and "GRADER_REPOSITORY" not in text
    assert "practice: not your grade" in text.lower()
    assert "autograder check" in text and "papermill" in text and "validation_predictions.jsonl" in text
    assert "autograder grade" not in text and "--tier" not in text
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load(text)
    for step in _steps(workflow):
        if step.get("uses", "").startswith("actions/checkout"):
            with_ = step.get("with") or {}
            assert "repository" not in with_ and "token" not in with_ and with_.get("persist-credentials") is False
        assert "secrets" not in str(step)
    assert workflow["permissions"] == {"contents": "read"}


def test_instructor_workflow_holds_the_graded_run():
    text = (TEMPLATES / "instructor-grade.yml").read_text()
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load(text)
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on:` as True
    assert "workflow_dispatch" in triggers and "schedule" in triggers
    steps = _steps(workflow)
    runs = "\n".join(step.get("run", "") for step in steps)
    assert "apt-get install -y -q bubblewrap" in runs
    assert "autograder \"${args[@]}\"" in runs and "collect \"$ROSTER\"" in runs
    assert "autograder grade-batch submissions" in runs
    collect = next(s for s in steps if "collect" in s.get("run", ""))
    assert "secrets.STUDENT_REPOS_TOKEN" in str(collect.get("env"))
    others = [s for s in steps if s is not collect]
    assert not any("secrets." in str(s) for s in others), "the token must reach only the collect step"
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert "gradebook/gradebook.csv" in upload["with"]["path"]
