"""exercises/ is exactly what stripping solutions/ produces."""

from autograder.course import stubs


def test_exercises_are_generated_from_solutions():
    assert stubs.stale_files() == [], "run `autograder stubs` and commit exercises/"


def test_stripping_replaces_solution_regions_only():
    src = "def f(x):\n    '''doc'''\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n\nY = 2\n"
    out = stubs.strip_python(src)
    assert "return x + 1" not in out and "BEGIN SOLUTION" not in out
    assert "    raise NotImplementedError(" in out and "'''doc'''" in out and "Y = 2" in out


def test_generate_writes_a_tree(tmp_path):
    sol = tmp_path / "solutions"
    (sol / "checks").mkdir(parents=True)
    (sol / "m.py").write_text("def g():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n")
    (sol / "checks" / "data.txt").write_text("kept")
    written = stubs.generate(sol, tmp_path / "exercises")
    assert written == ["checks/data.txt", "m.py"]
    assert (tmp_path / "exercises" / "checks" / "data.txt").read_text() == "kept"
    assert stubs.stale_files(sol, tmp_path / "exercises") == []
