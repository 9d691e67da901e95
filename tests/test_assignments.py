"""Student notebooks generated from the lessons (lesson_lib.assignments)."""
import ast
import json
import re

import pytest

from lesson_lib.__main__ import main
from lesson_lib.assignments import BEGIN, END, solution_blocks, strip_solutions, student_notebook
from lesson_lib.config import ROOT_DIR

LESSONS = sorted((ROOT_DIR / "notebooks").glob("*.ipynb"))

SOLVED = """import numpy as np


def w1_sorted(x, y):
    ### BEGIN SOLUTION: the mean gap between the sorted samples
    return float(np.mean(np.abs(np.sort(x) - np.sort(y))))
    ### END SOLUTION


### BEGIN SOLUTION
answer = w1_sorted([0.0, 1.0], [2.0, 3.0])
### END SOLUTION
print("done")"""


def blocks_and_names(cell: str) -> list[tuple[set[str], int]]:
    """For each solution block of a code cell: the names the student's code provides (the top-level
    function or class it sits in, else what it assigns or defines) and the offset just after the block."""
    lines, out = cell.splitlines(keepends=True), []
    tree = ast.parse(cell)
    starts = [n for n, line in enumerate(lines, 1) if line.strip().startswith(BEGIN)]
    ends = [n for n, line in enumerate(lines, 1) if line.strip().startswith(END)]
    for first, last in zip(starts, ends):
        names = set()
        for node in tree.body:
            if node.end_lineno < first or node.lineno > last:
                continue
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
            else:
                names |= {t.id for t in ast.walk(node) if isinstance(t, ast.Name) and isinstance(t.ctx, ast.Store)}
        out.append((names, len("".join(lines[:last]))))
    return out


def test_blocks_and_names():
    (in_def, end), (assigned, _) = blocks_and_names(SOLVED)
    assert in_def == {"w1_sorted"} and assigned == {"answer"}
    assert SOLVED[end:].startswith("\n\n### BEGIN")


def code_cell(source: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "source": source.splitlines(keepends=True),
            "outputs": [{"output_type": "stream", "name": "stdout", "text": ["x\n"]}], "execution_count": 3}


def test_strip_solutions_replaces_each_block_by_a_todo_at_its_indentation():
    student = strip_solutions(SOLVED)
    assert student == """import numpy as np


def w1_sorted(x, y):
    # TODO: the mean gap between the sorted samples
    raise NotImplementedError('the mean gap between the sorted samples')


# TODO: write this part (the text above says what it computes)
raise NotImplementedError('write this part (the text above says what it computes)')
print("done")"""


def test_the_student_code_fails_where_the_solution_passes_the_same_check():
    check = "\nassert abs(w1_sorted([0.0, 4.0], [1.0, 2.0]) - 1.5) < 1e-12"
    exec(compile(SOLVED + check, "solution", "exec"), {})
    with pytest.raises(NotImplementedError, match="mean gap"):
        namespace = {}
        exec(compile(strip_solutions(SOLVED.split("\n\n\n### BEGIN")[0]) + check, "student", "exec"), namespace)


@pytest.mark.parametrize("source, problem", [
    (f"{BEGIN}\nx = 1\n", "never closed"),
    (f"x = 1\n{END}\n", "without a"),
    (f"{BEGIN}\n{BEGIN}\nx = 1\n{END}\n", "inside the block opened on line 1"),
])
def test_unmatched_markers_are_refused_with_the_line(source, problem):
    with pytest.raises(ValueError, match=f"lesson.ipynb, cell 2, line .*{problem}"):
        strip_solutions(source, "lesson.ipynb, cell 2")


def test_student_notebook_keeps_text_and_checks_and_drops_outputs():
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
          "cells": [{"cell_type": "markdown", "metadata": {}, "source": [f"Write it ({BEGIN} is a marker)"]},
                    code_cell(SOLVED), code_cell("assert answer == 2.0")]}
    student = student_notebook(nb)
    assert student["cells"][0] == nb["cells"][0]                       # text untouched, markers in it too
    assert "".join(student["cells"][1]["source"]) == strip_solutions(SOLVED)
    assert student["cells"][2]["source"] == ["assert answer == 2.0"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in student["cells"][1:])
    assert nb["cells"][1]["outputs"] and "np.sort" in "".join(nb["cells"][1]["source"])   # the input is not changed


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_every_lesson_has_checked_solution_blocks_and_a_valid_student_version(path):
    """Each lesson marks at least one block; each block is checked by an assert in its own cell or a later
    one; the student version compiles (as Python, cell by cell) and raises a TODO for every block."""
    nb = json.loads(path.read_text())
    assert solution_blocks(nb) >= 1, f"{path.name} marks no solution block"
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    for i, cell in enumerate(code):
        for names, end in blocks_and_names(cell):
            assert names, f"{path.name}, code cell {i}: a solution block that defines nothing"
            rest = cell[end:] + "\n" + "\n".join(code[i + 1:])
            use = re.search(r"\b(" + "|".join(map(re.escape, names)) + r")\b", rest)
            assert use and "assert" in rest[use.start():], (
                f"{path.name}, code cell {i}: nothing uses {sorted(names)} (what the block defines) before an assert")
    student = [strip_solutions(s, path.name) for s in code]
    for s in student:
        compile(s, path.name, "exec")
        assert BEGIN not in s and END not in s
    assert sum(s.count("raise NotImplementedError(") for s in student) == solution_blocks(nb) + sum(
        s.count("raise NotImplementedError(") for s in code)


def test_command_line_writes_the_student_notebooks(tmp_path, capsys):
    assert main(["assignments", "--out", str(tmp_path)]) == 0
    written = sorted(p.name for p in tmp_path.glob("*.ipynb"))
    assert written == [p.name for p in LESSONS]
    assert "TODO block" in capsys.readouterr().out
    student = json.loads((tmp_path / LESSONS[0].name).read_text())
    assert solution_blocks(student) == 0 and "NotImplementedError" in json.dumps(student)


def test_command_line_names_a_missing_notebook(tmp_path):
    with pytest.raises(SystemExit, match="no such notebook: .*nope.ipynb"):
        main(["assignments", str(tmp_path / "nope.ipynb"), "--out", str(tmp_path)])
