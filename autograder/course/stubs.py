"""Generate the student tree (exercises/) from the reference tree (solutions/).

One source of truth: every ``### BEGIN SOLUTION`` / ``### END SOLUTION`` region is replaced
by a stub with nbgrader's own ClearSolutions preprocessor (python files are wrapped as one
code cell), notebooks go through nbgrader's ClearSolutions and ClearOutput, and every other
file is copied. ``autograder stubs --check`` (and a test) fails when exercises/ is stale.

A python stub says "see the docstring, then run `autograder check`". A notebook cell has no
docstring and no check, so its stub says what to fill in, taken from the cell's
``# ✏️ Fill in this cell: ...`` comment, and raises ``CellNotFilled``, which Jupyter shows as
one line ("fill in this cell (...)") instead of a traceback.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from autograder import REPO_ROOT

CODE_STUB = ('# YOUR CODE HERE\n'
             'raise NotImplementedError("not written yet: see the docstring, then run `autograder check`")')
WHAT = "@@WHAT@@"  # replaced, cell by cell, with what that cell should do
NOTEBOOK_CODE_STUB = ('# ✏️ YOUR CODE HERE: replace the next line with your code\n'
                      f'raise CellNotFilled("{WHAT}")')
NOTEBOOK_TEXT_STUB = "✏️ YOUR ANSWER HERE"
FILL_IN_COMMENT = re.compile(r"^#\s*✏️\s*Fill in this cell:\s*(.+?)\.?\s*$", re.MULTILINE)
SKIP = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}


def _clear_solutions(code_stub: str = CODE_STUB, text_stub: str = "YOUR ANSWER HERE"):
    from nbgrader.preprocessors import ClearSolutions

    return ClearSolutions(code_stub={"python": code_stub}, text_stub=text_stub, enforce_metadata=False)


def _what(cell) -> str:
    """What a fill-in cell should do, for its stub's message: its ``# ✏️ Fill in this cell: ...``
    comment, else its nbgrader grade_id."""
    found = FILL_IN_COMMENT.search(cell.source)
    if found:
        return found.group(1).replace('"', "'")
    return str(cell.metadata.get("nbgrader", {}).get("grade_id", "see the comment above"))


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
    for preprocessor in (_clear_solutions(NOTEBOOK_CODE_STUB, NOTEBOOK_TEXT_STUB), ClearOutput()):
        nb, _ = preprocessor.preprocess(nb, {})
    for cell in nb.cells:
        if cell.cell_type == "code" and WHAT in cell.source:
            cell.source = cell.source.replace(WHAT, _what(cell))
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
