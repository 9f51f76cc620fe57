"""The test suite's tiers (tests/conftest.py): every test gets a cost marker, the tables name only
tests that exist, the markers are registered, and ``--tier`` selects by a test's dearest marker."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import conftest
import pytest

from autograder import REPO_ROOT

TESTS = Path(__file__).parent


def _functions(module: str) -> set[str]:
    """The test functions a module defines (read from its source, not imported)."""
    tree = ast.parse((TESTS / f"{module}.py").read_text(encoding="utf-8"))
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def _fixtures() -> set[str]:
    names = set()
    for path in TESTS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and any("fixture" in ast.unparse(d) for d in node.decorator_list):
                names.add(node.name)
    return names


def test_the_tables_name_only_modules_tests_and_fixtures_that_exist():
    modules = {p.stem for p in TESTS.glob("test_*.py")}
    assert set(conftest.MODULES) <= modules, f"no such test module: {sorted(set(conftest.MODULES) - modules)}"
    for key in conftest.TESTS:
        module, function = key.split("::")
        assert module in modules and function in _functions(module), f"TESTS names no test: {key}"
    assert set(conftest.FIXTURES) <= _fixtures(), f"no such fixture: {sorted(set(conftest.FIXTURES) - _fixtures())}"
    for value in [*conftest.MODULES.values(), *conftest.TESTS.values(), *conftest.FIXTURES.values()]:
        assert value.split() and set(value.split()) <= set(conftest.TIERS), value


def test_every_tier_is_a_registered_marker():
    ini = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    registered = [line.split(":")[0] for line in ini["markers"]]
    assert set(conftest.TIERS) <= set(registered), set(conftest.TIERS) - set(registered)
    assert "--strict-markers" in ini["addopts"]


class _Item:
    """What the hook reads of a collected test."""

    def __init__(self, module: str, name: str, own=(), fixtures=()):
        self.path, self.name, self.originalname = Path(f"{module}.py"), name, name
        self.nodeid, self.fixturenames, self.stash = f"{module}.py::{name}", list(fixtures), pytest.Stash()
        self.marks = [getattr(pytest.mark, m).mark for m in own]

    def iter_markers(self):
        return iter(self.marks)

    def add_marker(self, name: str):
        self.marks.append(getattr(pytest.mark, name).mark)


class _Config:
    def __init__(self, tiers=()):
        self.tiers, self.dropped = list(tiers), []
        self.hook = type("Hook", (), {"pytest_deselected": lambda _, items: self.dropped.extend(items)})()

    def getoption(self, name):
        return self.tiers


def _hook(items, tiers=()):
    config = _Config(tiers)
    conftest.pytest_collection_modifyitems(config, items)
    return config


def test_markers_come_from_module_test_and_fixture_and_unit_never_sits_beside_a_dearer_one(monkeypatch):
    monkeypatch.setattr(conftest, "MODULES", {"test_m": "unit"})
    monkeypatch.setattr(conftest, "TESTS", {"test_m::test_grades": "jail"})
    monkeypatch.setattr(conftest, "FIXTURES", {"a_class": "jail dask"})
    items = [_Item("test_m", "test_plain"), _Item("test_m", "test_grades"), _Item("test_m", "test_trains", ["slow"]),
             _Item("test_m", "test_cluster", fixtures=["tmp_path", "a_class"])]
    _hook(items)
    assert [sorted(m.name for m in i.marks) for i in items] == [["unit"], ["jail"], ["slow"], ["dask", "jail"]]
    assert [i.stash[conftest.TIER_KEY] for i in items] == ["unit", "jail", "slow", "dask"]


def test_a_test_without_a_marker_or_marked_unit_and_dearer_stops_the_collection(monkeypatch):
    monkeypatch.setattr(conftest, "MODULES", {"test_m": "jail"})
    with pytest.raises(pytest.UsageError, match=r"no marker: test_new\.py::test_x"):
        _hook([_Item("test_m", "test_a"), _Item("test_new", "test_x")])
    with pytest.raises(pytest.UsageError, match=r"marked unit and a dearer marker: test_m\.py::test_a"):
        _hook([_Item("test_m", "test_a", ["unit"])])


def test_a_tier_selects_the_tests_whose_dearest_marker_it_is(monkeypatch):
    monkeypatch.setattr(conftest, "MODULES", {"test_m": "unit", "test_j": "jail", "test_n": "notebook jail"})
    names = ["test_m", "test_j", "test_n"]
    items = [_Item(m, "test_a") for m in names]
    assert _hook(items).dropped == [] and len(items) == 3  # no --tier: every test
    for tiers, kept in ((["dev"], ["test_m"]), (["jail"], ["test_j"]), (["unit,notebook"], ["test_m", "test_n"]),
                        (["unit", "jail"], ["test_m", "test_j"]), (["all"], names)):
        items = [_Item(m, "test_a") for m in names]
        config = _hook(items, tiers)
        assert [i.path.stem for i in items] == kept, tiers
        assert sorted(i.path.stem for i in config.dropped) == sorted(set(names) - set(kept))
    with pytest.raises(pytest.UsageError, match="the tiers are unit"):
        _hook([_Item(m, "test_a") for m in names], ["fast"])


def test_pytest_alone_runs_every_test_and_the_dev_tier_is_what_m_unit_selects():
    """The real hook in a real collection: the README's command deselects nothing."""
    files = ["tests/test_wire.py", "tests/test_bad_input.py", "tests/test_model_tier_sandbox.py"]

    def collected(*args: str) -> list[str]:
        done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                               *args, *files], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return [line for line in done.stdout.splitlines() if "::" in line]

    everything, dev, unit = collected(), collected("--tier", "dev"), collected("-m", "unit")
    assert dev == unit and 0 < len(dev) < len(everything)
    assert not [t for t in dev if t.startswith("tests/test_bad_input.py")]  # graded through the judge
    assert {t for t in everything if t.startswith("tests/test_wire.py")} <= set(dev)
    assert any("test_copy_out" in t for t in dev) and not any("test_a_notebook_has_no_network" in t for t in dev)
