"""What a presenter needs from each notebook's deck, checked on the notebooks themselves.

- every slide (a cell that starts a slide or a sub-slide) has speaker notes in English and in
  Japanese, with the minutes it takes (``metadata.speaker_notes``, merged into reveal.js' notes
  by ``tools/build_site.py``: key ``s`` opens the presenter view);
- the deck is a talk of 15-25 minutes, and the README's course map says how long;
- no code longer than 12 lines is visible on a slide (tag ``slides-hide-input`` or skip it),
  no SHA-256 print-out is shown (provenance belongs to the notebook, not to the talk);
- each notebook has at least two exercises that copying a cell cannot solve (tagged
  ``exercise-predict``, ``exercise-transfer`` or ``exercise-interpret``) and a FAQ cell.

What the built decks contain (notes shown, markers and solutions gone) is checked in
tests/test_slides.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
STARTS = ("slide", "subslide")
MAX_CODE_LINES = 12
TALK_MINUTES = (15, 25)
KINDS = ("exercise-predict", "exercise-transfer", "exercise-interpret")
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
pytestmark = pytest.mark.single_backend


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _type(cell: dict) -> str:
    return cell.get("metadata", {}).get("slideshow", {}).get("slide_type", "-")


def _visible_code_lines(cell: dict) -> int:
    source = "".join(cell["source"])
    source = re.sub(r"^[ \t]*# NBVAL_\w+[ \t]*$\n?", "", source, flags=re.M)
    return len(source.strip().splitlines())


def talk_minutes(path: Path) -> float:
    return sum(c["metadata"].get("speaker_notes", {}).get("minutes", 0) for c in _cells(path)
               if _type(c) in STARTS)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_slide_has_notes_in_english_and_japanese(notebook):
    missing, bad = [], []
    for i, cell in enumerate(_cells(notebook)):
        if _type(cell) not in STARTS:
            continue
        notes = cell["metadata"].get("speaker_notes")
        if not notes:
            missing.append(i)
            continue
        en, ja, minutes = notes.get("en", ""), notes.get("ja", ""), notes.get("minutes")
        if (len(en.split()) < 8 or not JAPANESE.search(ja) or len(ja) < 20
                or not isinstance(minutes, (int, float)) or not 0.25 <= minutes <= 5):
            bad.append(i)
    assert not missing, f"{notebook.name}: slides without speaker notes, cells {missing}"
    assert not bad, (f"{notebook.name}: notes need 'en' (8+ words), 'ja' (Japanese) and "
                     f"'minutes' (0.25-5), cells {bad}")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_deck_is_a_talk_of_15_to_25_minutes(notebook):
    low, high = TALK_MINUTES
    minutes = talk_minutes(notebook)
    assert low <= minutes <= high, f"{notebook.name}: the notes add up to {minutes:g} min"


def test_course_map_says_how_long_each_talk_is():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for notebook in NOTEBOOKS:
        row = next((line for line in readme.splitlines()
                    if f"(notebooks/{notebook.name})" in line), None)
        assert row, f"README's course map has no row for {notebook.name}"
        said = re.search(r"\|\s*(\d+) min\s*\|", row)
        assert said, f"{notebook.name}: the course map row gives no talk length ('NN min')"
        assert abs(int(said[1]) - talk_minutes(notebook)) <= 1, (
            f"{notebook.name}: course map says {said[1]} min, the notes add up to "
            f"{talk_minutes(notebook):g}")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_long_code_or_provenance_on_slides(notebook):
    long_code, hashes = [], []
    for i, cell in enumerate(_cells(notebook)):
        if cell["cell_type"] != "code" or _type(cell) == "skip":
            continue
        hidden = "slides-hide-input" in cell["metadata"].get("tags", [])
        solution = "# BEGIN SOLUTION" in "".join(cell["source"])  # left out by the deck build
        if not hidden and not solution and _visible_code_lines(cell) > MAX_CODE_LINES:
            long_code.append(i)
        shown = json.dumps(cell.get("outputs", [])) + ("" if hidden else "".join(cell["source"]))
        if re.search(r"\b[0-9a-f]{64}\b", shown):
            hashes.append(i)
    assert not long_code, (f"{notebook.name}: code cells over {MAX_CODE_LINES} lines on slides "
                           f"(tag them slides-hide-input or skip them): {long_code}")
    assert not hashes, f"{notebook.name}: SHA-256 print-outs on slides, cells {hashes}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercises_that_copying_cannot_solve_and_a_faq(notebook):
    cells = _cells(notebook)
    kinds = [t for c in cells for t in c["metadata"].get("tags", []) if t in KINDS]
    assert len(kinds) >= 2, f"{notebook.name}: {len(kinds)} predict/transfer/interpret exercises"
    faq = [c for c in cells if c["cell_type"] == "markdown"
           and re.search(r"^#+ .*(よくある質問|FAQ)", "".join(c["source"]), flags=re.M)]
    assert faq, f"{notebook.name}: no 'よくある質問 / FAQ' cell"
