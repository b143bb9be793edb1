"""Write student and teacher editions of the notebooks (what `make student` runs).

Usage: python tools/make_editions.py OUT_DIR notebooks/*.ipynb

In a notebook, each solution sits between marker lines::

    # BEGIN SOLUTION: compute the scores, then the softmax over the keys
    scores = q @ k.T / np.sqrt(d)
    ...
    # END SOLUTION

The student edition replaces each solution by a stub, indented like the solution, that says
what to write (the text after ``BEGIN SOLUTION:``). Inside a function the stub raises
NotImplementedError (the checkers read it as "not written yet"); at the top level of a cell (a
prediction or the letter of a multiple-choice answer) the solution must be assignments only,
and the stub sets each name to None, which the checkers read as "not answered yet", so that
"Run all" goes on. The student edition also clears the outputs of the solution cells, of every
cell that shows a checker's verdict (✅ / ❌ / ❓) and of cells tagged ``uses-exercise``
(a figure drawn from the solution, say).
The teacher edition is the executed notebook with the markers kept. Both go to OUT_DIR/student
and OUT_DIR/teacher. Existing files there are replaced (OUT_DIR is a build folder).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

ASSIGNMENT = re.compile(r"^(?P<names>[A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s*=[^=]")
VERDICTS = ("✅", "❌", "❓")
BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION:?\s*(?P<what>.*)$")
END = re.compile(r"^[ \t]*# END SOLUTION\s*$")


def strip_solutions(source: str, where: str = "") -> tuple[str, int]:
    """Replace each marked solution in ``source`` by a stub. Returns (new source, count)."""
    out, inside, body, count = [], None, [], 0
    for line in source.splitlines():
        if inside is None:
            m = BEGIN.match(line)
            if m:
                inside, body = m, []
                continue
            if END.match(line):
                raise ValueError(f"{where}: '# END SOLUTION' without a BEGIN")
            out.append(line)
        elif END.match(line):
            indent, what = inside.group("indent"), inside.group("what").strip() or "your solution"
            out.append(f"{indent}# TODO: {what}")
            if indent:
                out.append(f'{indent}raise NotImplementedError("Exercise: {what.replace(chr(34), chr(39))}")')
            else:
                out += _top_level_stub(body, where)
            inside, count = None, count + 1
        else:
            body.append(line)
    if inside is not None:
        raise ValueError(f"{where}: '# BEGIN SOLUTION' without an END")
    return "\n".join(out), count


def _top_level_stub(body: list[str], where: str) -> list[str]:
    """``name = None`` for each name a top-level solution assigns (it may assign nothing else)."""
    names = []
    for line in body:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = ASSIGNMENT.match(line)
        if m is None:
            raise ValueError(f"{where}: a solution at the top level of a cell may only assign "
                             f"names (e.g. `answer = \"b\"`), so that its stub can set them to "
                             f"None; found {line.strip()!r}. Put code in a function instead.")
        names += [n.strip() for n in m["names"].split(",") if n.strip() not in names]
    if not names:
        raise ValueError(f"{where}: an empty top-level solution")
    return [f"{n} = None" for n in names]


def _shows_verdict(cell) -> bool:
    text = "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                   + str(o.get("data", {}).get("text/markdown", ""))
                   for o in cell.get("outputs", []))
    return any(v in text for v in VERDICTS)


def student_edition(nb):
    """Return a copy of ``nb`` with the solutions replaced by stubs, and the outputs of the
    solution cells, of the cells showing a checker's verdict and of ``uses-exercise`` cells
    cleared. Returns (notebook, number of solutions)."""
    nb = nbformat.from_dict(nb)
    total = 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        new, n = strip_solutions(cell.source, f"cell {i}")
        if n:
            cell.source = new
            total += n
        if n or _shows_verdict(cell) or "uses-exercise" in cell.metadata.get("tags", []):
            cell.outputs, cell.execution_count = [], None
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


def cli(argv: list[str]) -> int:
    """``OUT_DIR NOTEBOOK...``; ``-h``/``--help`` or too few arguments print the usage (and
    never create a folder named after an option)."""
    if len(argv) < 2 or any(a.startswith("-") for a in argv):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return main(argv[0], argv[1:])


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
