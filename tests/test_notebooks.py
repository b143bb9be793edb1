"""The notebooks follow the course pattern and are stored as clean, executed runs.

(Their outputs are re-computed and compared by nbval in `make test`; this file checks what nbval
does not: structure, badges, stored run hygiene.)
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path

import pytest

from vitlib import _meta

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
pytestmark = pytest.mark.single_backend


def _cells(path):
    return json.loads(path.read_text())["cells"]


def _text(cell):
    return "".join(cell["source"])


def test_notebooks_are_numbered_in_order():
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers == list(range(len(numbers))) and len(numbers) >= 6


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_pattern(path):
    cells = _cells(path)
    title = _text(cells[0])
    assert cells[0]["cell_type"] == "markdown" and title.startswith(f"# {path.name[:2]}")
    assert _meta.colab_url(f"notebooks/{path.name}") in title, "the Colab badge must point at this notebook's path"
    assert "GLOSSARY.md" in title
    setup = next(c for c in cells if c["cell_type"] == "code")
    assert 'if "google.colab" in sys.modules' in _text(setup)
    markdown = "\n".join(_text(c) for c in cells if c["cell_type"] == "markdown").lower()
    for heading in ("learning goals", "summary"):
        assert heading in markdown, f"missing section: {heading}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_as_a_clean_run(path):
    code = [c for c in _cells(path) if c["cell_type"] == "code" and _text(c).strip()]
    counts = [c["execution_count"] for c in code]
    assert counts == list(range(1, len(code) + 1)), "re-run top to bottom from a clean kernel"
    local = [str(ROOT), os.path.expanduser("~"), tempfile.gettempdir()]
    leak = re.compile("|".join(re.escape(p.rstrip("/") + "/") for p in local if len(p) > 1))
    for c in code:
        for out in c["outputs"]:
            assert out["output_type"] != "error", f"stored error in: {_text(c)[:80]}"
            text = "".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))
            assert not leak.search(text), f"local path in output: {text[:120]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_cell_has_a_unique_id(path):
    """nbformat 4.5 cells carry an id (a cell inserted by hand without one makes nbformat warn
    in every deck build and will become an error); ids must be unique within the notebook."""
    ids = [c.get("id") for c in _cells(path)]
    assert None not in ids, f"cells without an id: {[i for i, x in enumerate(ids) if x is None]}"
    assert len(set(ids)) == len(ids), "duplicate cell ids"


@pytest.mark.parametrize("path", NOTEBOOKS[1:], ids=lambda p: p.name)
def test_teaching_notebooks_have_checked_outputs_exercises_and_a_misconception(path):
    cells = _cells(path)
    sources = [_text(c) for c in cells]
    assert sum(s.lstrip().startswith("# NBVAL_CHECK_OUTPUT") for s in sources) >= 3
    assert sum("# BEGIN SOLUTION" in s for s in sources) >= 2, "at least two exercises"
    assert any("from vitlib.exercises import" in s for s in sources)
    assert any("Common misconception" in s for s in sources)


# --- Checked outputs must mean the same on every machine (issue: portable checked outputs) -----
#: A checked cell may state how far its printed numbers may move across CPUs, thread counts and
#: backends, with a comment line `# tolerance: 0.005`. Without one, its numbers must be exact
#: (counts, shapes, copies of shipped records) or float noise at most 1e-6.
_TOLERANCE = re.compile(r"^\s*#\s*tolerance:\s*([0-9.eE+-]+)", re.M)
_SCI = re.compile(r"(?<![\w.])(\d(?:\.\d+)?[eE]-\d+)(?![\w.])")
_FLOAT = re.compile(r"(?<![\w.])-?\d+\.(\d+)(?![\w.])")
_COMPARATOR = re.compile(r"(<=?|≤|>=?|≥|\bto|\bwithin|\btolerance)\s*$")


def checked_output_problems(source: str, output: str) -> list[str]:
    """What in ``output`` (of a checked cell with ``source``) would differ on another machine:
    numbers in scientific notation below 1e-4 that are not a stated tolerance (``< 1e-5``), and
    floats with more decimals than the cell's stated tolerance justifies."""
    problems = []
    stated = _TOLERANCE.search(source)
    tolerance = float(stated.group(1)) if stated else 1e-6
    decimals = max(0, round(-math.log10(tolerance)))
    for m in _SCI.finditer(output):
        if float(m.group(1)) < 1e-4 and not _COMPARATOR.search(output[: m.start()]):
            problems.append(f"{m.group(1)} (float noise: print a comparison with a tolerance)")
    for m in _FLOAT.finditer(output):
        if len(m.group(1)) > decimals:
            problems.append(f"{m.group(0)} (more decimals than the stated tolerance {tolerance:g})")
    return problems


def test_the_guard_catches_noise_and_spurious_digits():
    assert checked_output_problems("", "max |diff| = 8.9e-08") != []
    assert checked_output_problems("", "max |diff| < 1e-5: True  (to 1e-4)") == []
    assert checked_output_problems("# tolerance: 0.01", "test accuracy 0.815") != []
    assert checked_output_problems("# tolerance: 0.01", "test accuracy 0.82, 14.4 px") == []
    assert checked_output_problems("", "parameters 139,018 shape (8, 50, 64) 0.8885") == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_checked_outputs_hold_no_float_noise(path):
    for i, cell in enumerate(_cells(path)):
        source = _text(cell)
        if cell["cell_type"] != "code" or "# NBVAL_CHECK_OUTPUT" not in source:
            continue
        for out in cell["outputs"]:
            text = "".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))
            problems = checked_output_problems(source, text)
            assert not problems, f"cell {i}: {problems}"
