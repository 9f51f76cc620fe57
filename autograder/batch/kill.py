"""Ending a batch worker and what it started, on top of :func:`autograder.procs.kill_tree`.

``kill_tree`` is the one process-tree kill: it ends a child that leads a session of its own (its
group, its descendants at that moment) and reaps it. A batch needs two things more, written here
once and nowhere else:

- **A record.** A grading process may start something that leaves both the worker's group and its
  tree (``setsid``, then its parent exits: it is re-parented to init). The supervisor records the
  worker's descendants while it runs (:func:`record_descendants`) and kills the record as well,
  through psutil, which refuses a pid that was reused since it was recorded.
- **A worker's own children.** Before a worker exits it ends what it started
  (:func:`end_own_children`). ``kill_tree`` kills through the group, so it serves the children that
  lead sessions of their own (every judge and runner: they start through :mod:`autograder.procs`);
  a child left in the worker's own session is killed from the record taken first.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable

import psutil

from autograder.procs import kill_tree


def kill_recorded(processes: Iterable[psutil.Process]) -> None:
    """Kill processes recorded earlier; one that is gone, or whose pid was reused, is left alone."""
    for proc in processes:
        try:
            proc.kill()  # psutil checks the process's creation time: a reused pid is refused
        except psutil.Error:
            pass


def record_descendants(proc: subprocess.Popen, seen: dict[int, psutil.Process]) -> None:
    """Add the worker's descendants now to ``seen`` (pid -> process), for :func:`end_worker`."""
    try:
        seen.update((p.pid, p) for p in psutil.Process(proc.pid).children(recursive=True))
    except psutil.Error:
        pass


def end_worker(proc: subprocess.Popen, seen: dict[int, psutil.Process]) -> None:
    """The worker's tree (its session, its descendants now) and every descendant ever recorded."""
    kill_tree(proc)
    kill_recorded(seen.values())


def _leads_session(pid: int) -> bool:
    try:
        return os.getsid(pid) == pid  # a session leader cannot leave its group: killpg reaches it
    except OSError:
        return False


def end_own_children() -> None:
    """Everything this process started, before it exits (a worker whose batch has gone)."""
    try:
        me = psutil.Process()
        below, direct = me.children(recursive=True), me.children()
    except psutil.Error:
        return
    for child in direct:
        if _leads_session(child.pid):
            kill_tree(child.pid)
    kill_recorded(below)
