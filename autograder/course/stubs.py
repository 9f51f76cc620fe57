"""Generate the student tree (exercises/) from the reference tree (solutions/).

One source of truth: every ``### BEGIN SOLUTION`` / ``### END SOLUTION`` region is replaced
by a stub with nbgrader's own ClearSolutions preprocessor (python files are wrapped as one
code cell), notebooks go through nbgrader's ClearSolutions and ClearOutput, and every other
file is copied. ``autograder stubs --check`` (and a test) fails when exercises/ is stale.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from autograder import REPO_ROOT

CODE_STUB = ('# YOUR CODE HERE\n'
             'raise NotImplementedError("not written yet: see the docstring, then run `autograder check`")')
SKIP = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}


def _clear_solutions():
    from nbgrader.preprocessors import ClearSolutions

    return ClearSolutions(code_stub={"python": CODE_STUB}, enforce_metadata=False)


def strip_python(source: str) -> str:
    """The stub of one python source: solution regions replaced, everything else kept."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(source))
    nb, _ = _clear_solutions().preprocess(nb, {})
    return nb.cells[0].source


def strip_notebook(source: str) -> str:
    """The student notebook: solution regions cleared and outputs removed, nbgrader metadata kept."""
    import nbformat
    from nbgrader.preprocessors import ClearOutput

    nb = nbformat.reads(source, as_version=4)
    for preprocessor in (_clear_solutions(), ClearOutput()):
        nb, _ = preprocessor.preprocess(nb, {})
    return nbformat.writes(nb) + "\n"


def render(path: Path) -> bytes:
    if path.suffix == ".py":
        return strip_python(path.read_text(encoding="utf-8")).encode("utf-8")
    if path.suffix == ".ipynb":
        return strip_notebook(path.read_text(encoding="utf-8")).encode("utf-8")
    return path.read_bytes()


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not SKIP & set(p.relative_to(root).parts))


def expected_tree(solutions: Path = REPO_ROOT / "solutions") -> dict[str, bytes]:
    return {str(p.relative_to(solutions)): render(p) for p in _files(solutions)}


def generate(solutions: Path = REPO_ROOT / "solutions", exercises: Path = REPO_ROOT / "exercises") -> list[str]:
    """Rewrite ``exercises`` from ``solutions``; returns the relative paths written."""
    tree = expected_tree(solutions)
    if exercises.exists():
        shutil.rmtree(exercises)
    for rel, data in tree.items():
        target = exercises / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return sorted(tree)


def stale_files(solutions: Path = REPO_ROOT / "solutions", exercises: Path = REPO_ROOT / "exercises") -> list[str]:
    """Files of ``exercises`` that differ from what stripping ``solutions`` produces."""
    tree = expected_tree(solutions)
    actual = {str(p.relative_to(exercises)): p.read_bytes() for p in _files(exercises)} if exercises.exists() else {}
    return sorted(k for k in tree.keys() | actual.keys() if tree.get(k) != actual.get(k))
