"""The glossary: the words learners use, one anchor per term, and each term linked from the
notebook that introduces it (and only to anchors that exist)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {p.name[:2]: p for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))}
ROW = re.compile(r'^\| <a id="(?P<slug>[a-z0-9-]+)"></a>(?P<en>[^|]+)\| (?P<ja>[^|]+)\|'
                 r'.*\| \[(?P<nb>\d\d)\]\(notebooks/(?P<file>[\w-]+\.ipynb)\) \|$')
# What learners type into a search box (issue #16), and coinages that nobody searches for.
LEARNERS_WORDS = ["ポジションエンコーディング", "位置エンコーディング", "アテンションマップ",
                  "マルチヘッドアテンション", "セルフアテンション", "クロスアテンション",
                  "線形プロービング", "事前学習済みモデル", "ラベル効率",
                  "セマンティックセグメンテーション", "IoU"]
COINAGES = ["ソースターゲット注意", "交差注意"]
pytestmark = pytest.mark.single_backend


def _rows():
    lines = [x for x in (ROOT / "GLOSSARY.md").read_text(encoding="utf-8").splitlines()
             if x.startswith("| <a id=")]
    rows = [ROW.match(x) for x in lines]
    assert all(rows), [x for x, r in zip(lines, rows, strict=True) if not r][:3]
    return rows


def _markdown(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def test_rows_have_unique_anchors_and_real_notebooks():
    rows = _rows()
    assert len(rows) > 60
    slugs = [r["slug"] for r in rows]
    assert len(set(slugs)) == len(slugs)
    for r in rows:
        assert r["nb"] in NOTEBOOKS and NOTEBOOKS[r["nb"]].name == r["file"], r.group(0)


def test_learners_words_are_there_and_coinages_are_not():
    text = (ROOT / "GLOSSARY.md").read_text(encoding="utf-8")
    assert [w for w in LEARNERS_WORDS if w not in text] == []
    assert [w for w in COINAGES if w in text] == []


def test_each_term_is_linked_from_the_notebook_that_introduces_it():
    missing = [f"{r['nb']}: {r['en'].strip()} (#{r['slug']})" for r in _rows()
               if f"GLOSSARY.md#{r['slug']})" not in _markdown(NOTEBOOKS[r["nb"]])]
    assert not missing, f"terms not linked where they are introduced: {missing}"


def test_notebook_links_point_at_existing_anchors():
    slugs = {r["slug"] for r in _rows()}
    broken = [(nb, s) for nb, path in NOTEBOOKS.items()
              for s in re.findall(r"GLOSSARY\.md#([\w-]+)", _markdown(path)) if s not in slugs]
    assert not broken, broken
