"""Write student and teacher editions of the notebooks (what `make student` runs).

Usage: python tools/make_editions.py OUT_DIR notebooks/*.ipynb

In a notebook, each solution sits between marker lines::

    # BEGIN SOLUTION: compute the scores, then the softmax over the keys
    scores = q @ k.T / np.sqrt(d)
    ...
    # END SOLUTION

The student edition replaces each solution by a stub, indented like the solution, that says
what to write (the text after ``BEGIN SOLUTION:``), and clears the outputs of those cells.
The teacher edition is the executed notebook with the markers kept. Both go to OUT_DIR/student
and OUT_DIR/teacher. Existing files there are replaced (OUT_DIR is a build folder).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION:?\s*(?P<what>.*)$")
END = re.compile(r"^[ \t]*# END SOLUTION\s*$")


def strip_solutions(source: str, where: str = "") -> tuple[str, int]:
    """Replace each marked solution in ``source`` by a stub. Returns (new source, count)."""
    out, inside, count = [], None, 0
    for line in source.splitlines():
        if inside is None:
            m = BEGIN.match(line)
            if m:
                inside = m
                continue
            if END.match(line):
                raise ValueError(f"{where}: '# END SOLUTION' without a BEGIN")
            out.append(line)
        elif END.match(line):
            indent, what = inside.group("indent"), inside.group("what").strip() or "your solution"
            out.append(f"{indent}# TODO: {what}")
            out.append(f'{indent}raise NotImplementedError("Exercise: {what.replace(chr(34), chr(39))}")')
            inside, count = None, count + 1
    if inside is not None:
        raise ValueError(f"{where}: '# BEGIN SOLUTION' without an END")
    return "\n".join(out), count


def student_edition(nb):
    """Return a copy of ``nb`` with the solutions replaced by stubs (outputs of those cells cleared)."""
    nb = nbformat.from_dict(nb)
    total = 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        new, n = strip_solutions(cell.source, f"cell {i}")
        if n:
            cell.source, cell.outputs, cell.execution_count = new, [], None
            total += n
    return nb, total


def main(out_dir: str, paths: list[str]) -> int:
    out = Path(out_dir)
    for edition in ("student", "teacher"):
        (out / edition).mkdir(parents=True, exist_ok=True)
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        student, n = student_edition(nb)
        nbformat.validate(student)
        nbformat.write(student, out / "student" / Path(path).name)
        nbformat.write(nb, out / "teacher" / Path(path).name)
        print(f"{Path(path).name}: {n} solution(s) stubbed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
