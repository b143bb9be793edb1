"""The notebooks follow the course pattern and are stored as clean, executed runs.

(Their outputs are re-computed and compared by nbval in `make test`; this file checks what nbval
does not: structure, badges, stored run hygiene.)
"""

from __future__ import annotations

import json
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


@pytest.mark.parametrize("path", NOTEBOOKS[1:], ids=lambda p: p.name)
def test_teaching_notebooks_have_checked_outputs_exercises_and_a_misconception(path):
    cells = _cells(path)
    sources = [_text(c) for c in cells]
    assert sum(s.lstrip().startswith("# NBVAL_CHECK_OUTPUT") for s in sources) >= 3
    assert sum("# BEGIN SOLUTION" in s for s in sources) >= 2, "at least two exercises"
    assert any("from vitlib.exercises import" in s for s in sources)
    assert any("Common misconception" in s for s in sources)
