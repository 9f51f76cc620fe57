"""Keep the package's shape (docs/architecture.md): floors without circles, short functions,
settings read from the environment only at the edge, docs without a grading machine's paths.

These read the source (``ast``), so they are instant and fail with the exact place to fix.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from autograder import REPO_ROOT

PACKAGE = REPO_ROOT / "autograder"
MAX_LINES = 60
#: Where the environment may be read for the kit's own settings: the command lines (the instructor's
#: and the student's) map variables to options; procs.py builds children's environments.
#: ``course.metrics`` runs inside the student's own process (the jail mounts it beside the runner, and
#: nothing else of the kit): its one setting, COURSE_ONLINE, is the student's environment to set.
ENV_EDGES = {"autograder.cli", "autograder.student_cli", "autograder.procs", "autograder.course.metrics"}
ENV_PREFIXES = ("AUTOGRADER_", "COURSE_")
#: Lower floors may never import higher ones (course/ is the ground floor: what the course is).
FLOORS = {"autograder.course": ("autograder.grading", "autograder.batch", "autograder.reports",
                                "autograder.release", "autograder.cli")}


def _modules() -> dict[str, tuple[Path, ast.Module]]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO_ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = (path, ast.parse(path.read_text(encoding="utf-8")))
    return found


MODULES = _modules()


def _imports(tree: ast.Module) -> set[str]:
    """Every autograder module this one imports, at the top or inside a function."""
    deps = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("autograder"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                deps.add(full if full in MODULES else node.module)
        elif isinstance(node, ast.Import):
            deps.update(a.name for a in node.names if a.name.startswith("autograder"))
    return {d for d in deps if d in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_circles_inside_the_package():
    graph = {name: _imports(tree) - {name} for name, (_, tree) in MODULES.items()}
    # a module importing from its own package's __init__ is no circle
    graph = {name: {d for d in deps if not name.startswith(d + ".")} for name, deps in graph.items()}
    assert _cycles(graph) == []


def test_the_circle_check_can_fail():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_course_floor_imports_nothing_above_it():
    wrong = [(name, dep) for name, (_, tree) in MODULES.items() for floor, above in FLOORS.items()
             if name.startswith(floor) for dep in _imports(tree) if dep.startswith(above)]
    assert wrong == []


def test_no_function_is_longer_than_a_screen():
    long = [f"{path.relative_to(REPO_ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for path, tree in MODULES.values() for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_LINES]
    assert long == []


def _env_reads(tree: ast.Module) -> list[tuple[int, str]]:
    """``os.environ.get("X")``, ``os.environ["X"]``, ``os.getenv("X")`` and ``"X" in os.environ`` for our
    prefixes (building a child's environment, ``{**os.environ, "X": ...}``, is no read)."""
    def named(node) -> str | None:
        return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) \
            and node.value.startswith(ENV_PREFIXES) else None

    def is_environ(node) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "environ"

    reads = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            func = node.func
            if (func.attr in ("get", "pop", "setdefault") and is_environ(func.value)) or func.attr == "getenv":
                if (name := named(node.args[0])):
                    reads.append((node.lineno, name))
        elif isinstance(node, ast.Subscript) and is_environ(node.value) and (name := named(node.slice)):
            reads.append((node.lineno, name))
        elif isinstance(node, ast.Compare) and any(is_environ(c) for c in node.comparators) \
                and (name := named(node.left)):
            reads.append((node.lineno, name))
    return reads


def test_settings_are_read_from_the_environment_only_at_the_edge():
    reads = [f"{path.relative_to(REPO_ROOT)}:{line} reads {var}" for name, (path, tree) in MODULES.items()
             if name not in ENV_EDGES for line, var in _env_reads(tree)]
    assert reads == []


def test_the_env_read_check_can_fail():
    tree = ast.parse('import os\nx = os.environ.get("COURSE_MODEL")\ny = os.environ["AUTOGRADER_X"]\n'
                     'z = "COURSE_Y" in os.environ\nenv = {**os.environ, "COURSE_Z": "1"}\n')
    assert [var for _, var in _env_reads(tree)] == ["COURSE_MODEL", "AUTOGRADER_X", "COURSE_Y"]


def test_docs_hold_no_path_of_a_grading_machine():
    machine = re.compile(r"(?<![\w.])/(?:work|root|home/\w+|mnt|scratch/\w+)/[\w./-]+")
    hits = [f"{p.relative_to(REPO_ROOT)}: {m.group(0)}" for p in sorted((REPO_ROOT / "docs").rglob("*"))
            if p.is_file() and p.suffix in (".md", ".jsonl", ".json", ".txt") for m in machine.finditer(p.read_text())]
    assert hits == []
