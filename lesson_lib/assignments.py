"""Classroom assignments: student notebooks generated from the lessons, which are the solutions.

A lesson marks the code a student should write between two comment lines of a code cell::

    ### BEGIN SOLUTION: a hint for the student (optional)
    ...the reference code...
    ### END SOLUTION

``student_notebook`` replaces each marked block by a TODO that raises ``NotImplementedError`` and keeps
everything else: the text, the unmarked code and the ``assert`` cells that check the student's work
against ``lesson_lib``. The markers are comments, so the lessons themselves run unchanged.
"""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
_MARKER = re.compile(r"^(\s*)(### (?:BEGIN|END) SOLUTION)(?::\s*(.*))?\s*$")


def strip_solutions(source: str, where: str = "cell") -> str:
    """``source`` with every marked solution block replaced by a TODO at the marker's indentation.
    ValueError (naming ``where`` and the line) for a marker without its partner or a nested one."""
    out, open_at = [], None
    for number, line in enumerate(source.splitlines(keepends=True), 1):
        m = _MARKER.match(line.rstrip("\n"))
        if m and m.group(2) == BEGIN:
            if open_at is not None:
                raise ValueError(f"{where}, line {number}: {BEGIN} inside the block opened on line {open_at}")
            open_at, indent = number, m.group(1)
            hint = m.group(3) or "write this part (the text above says what it computes)"
            out.append(f"{indent}# TODO: {hint}\n{indent}raise NotImplementedError({hint!r})\n")
        elif m:
            if open_at is None:
                raise ValueError(f"{where}, line {number}: {END} without a {BEGIN} before it")
            open_at = None
        elif open_at is None:
            out.append(line)
    if open_at is not None:
        raise ValueError(f"{where}, line {open_at}: {BEGIN} is never closed by {END}")
    return "".join(out).rstrip("\n")


def solution_blocks(notebook: dict) -> int:
    """How many solution blocks the code cells of a notebook mark."""
    return sum(line.strip().startswith(BEGIN) for cell in notebook["cells"] if cell["cell_type"] == "code"
               for line in "".join(cell["source"]).splitlines())


def student_notebook(notebook: dict, name: str = "notebook") -> dict:
    """A copy of ``notebook`` (nbformat 4, as a dict) with the solutions replaced by TODOs and no outputs."""
    nb = copy.deepcopy(notebook)
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        cell["source"] = strip_solutions("".join(cell["source"]), f"{name}, cell {index}").splitlines(keepends=True)
        cell["outputs"], cell["execution_count"] = [], None
    return nb


def write_assignments(notebooks: list[Path], out_dir: Path) -> dict[Path, int]:
    """Write the student version of each notebook that marks solutions into ``out_dir``;
    returns {written path: number of blocks}. Notebooks without a marked block are skipped."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for path in notebooks:
        nb = json.loads(Path(path).read_text())
        blocks = solution_blocks(nb)
        if blocks:
            dst = out_dir / Path(path).name
            dst.write_text(json.dumps(student_notebook(nb, Path(path).name), indent=1, ensure_ascii=False) + "\n")
            written[dst] = blocks
    return written


def add_arguments(p) -> None:
    p.add_argument("notebooks", nargs="*", type=Path, help="lesson notebooks (default: all in notebooks/)")
    p.add_argument("--out", type=Path, default=Path("build/assignments"), help="folder for the student notebooks")


def main(args) -> int:
    from .config import ROOT_DIR

    notebooks = args.notebooks or sorted((ROOT_DIR / "notebooks").glob("*.ipynb"))
    missing = [str(p) for p in notebooks if not Path(p).is_file()]
    if missing:
        raise SystemExit(f"no such notebook: {', '.join(missing)}")
    for dst, blocks in write_assignments(notebooks, args.out).items():
        print(f"{dst}: {blocks} TODO block{'s' * (blocks != 1)}")
    return 0
