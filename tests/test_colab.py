"""Colab: every badge and every set-up cell agree with the one repository address
(vitlib/_meta.py), and the set-up logic does the right thing in and out of Colab, with no
network: the cell is run with a stand-in IPython that records the %pip line instead of running it.
"""

from __future__ import annotations

import json
import os
import re
import sys
import types
from pathlib import Path

import pytest
import tomllib

from vitlib import _meta, colab

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
pytestmark = pytest.mark.single_backend


def _cells(path):
    return json.loads(path.read_text())["cells"]


def _setup_cell(path) -> str:
    return "".join(next(c for c in _cells(path) if c["cell_type"] == "code")["source"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_badge_opens_this_notebook_from_the_repository(path):
    title = "".join(_cells(path)[0]["source"])
    badges = re.findall(r"\]\((https://colab\.research\.google\.com/github/[^)]+)\)", title)
    assert badges == [_meta.colab_url(f"notebooks/{path.name}")]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_installs_vitlib_from_the_repository(path):
    lines = [ln.strip() for ln in _setup_cell(path).splitlines() if "%pip" in ln]
    assert lines == [colab.install_command()], "the set-up cell's install line"


def _run_setup_cell(path, monkeypatch, in_colab: bool) -> list[tuple[str, str]]:
    """Run the set-up cell as IPython would, recording the magics it calls."""
    from IPython.core.inputtransformer2 import TransformerManager

    calls = []
    fake_ipython = types.SimpleNamespace(
        run_line_magic=lambda name, line: calls.append((name, line)))
    monkeypatch.setattr(os, "environ", dict(os.environ))  # the cell's setdefault stays here
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    code = TransformerManager().transform_cell(_setup_cell(path))
    exec(compile(code, path.name, "exec"), {"get_ipython": lambda: fake_ipython})
    return calls


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_installs_only_in_colab(path, monkeypatch):
    fetched = []
    monkeypatch.setattr(colab, "setup", lambda: fetched.append("data"))
    assert _run_setup_cell(path, monkeypatch, in_colab=False) == [] and fetched == []
    calls = _run_setup_cell(path, monkeypatch, in_colab=True)
    assert calls == [("pip", f'install -q "{_meta.INSTALL_SPEC}"')]
    assert fetched == ["data"], "in Colab the set-up cell fetches the data after the install"
    line = calls[0][1]
    assert "--upgrade" not in line and "-U " not in line and "--force" not in line
    assert not any(re.search(rf"\b{p}\b", line) for p in colab.KEPT), "Colab's stack is kept"


def test_vitlib_never_downgrades_colab():
    """vitlib's own requirements are lower bounds only, at or below what Colab ships (mid-2025:
    TensorFlow 2.19, Keras 3.10), and TensorFlow is optional: pip keeps Colab's builds."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"]
    assert all(re.fullmatch(r"[\w.-]+>=[\d.]+", d) for d in deps), deps
    assert not any(d.startswith("tensorflow") for d in deps)
    bounds = {re.split(">=", d)[0]: tuple(map(int, d.split(">=")[1].split(".")))
              for d in deps + project["optional-dependencies"]["tensorflow"]}
    assert bounds["keras"] <= (3, 10) and bounds["tensorflow"] <= (2, 19)


def test_setup_plan_and_data_fetch_without_network():
    assert colab.plan(colab=False) == [] and colab.setup(colab=False) == []
    asked = []
    steps = colab.setup(colab=True, load=lambda **kw: asked.append(kw),
                        fetch=lambda: asked.append("course files"))
    assert asked == [{"download": True}, "course files"]
    assert colab.plan(colab=True) == [colab.install_command(), *steps]


def test_every_repository_address_in_the_docs_is_the_one_in_meta():
    owner_name = _meta.REPOSITORY.removeprefix("https://github.com/")
    for doc in ("README.md", "CONTRIBUTING.md"):
        text = (ROOT / doc).read_text()
        for url in re.findall(r"(?:github\.com|colab\.research\.google\.com/github)/"
                              r"([\w.-]+/[\w.-]+)", text):
            if url.split("/")[0] in {"keras-team", "google-research"}:  # cited, not ours
                continue
            assert url == owner_name, f"{doc}: {url} is not {owner_name} (vitlib/_meta.py)"


def test_every_link_in_the_notebooks_works_in_colab_and_on_github():
    """No relative links (dead in Colab): links into the course are GitHub addresses of files
    that exist, built from vitlib/_meta.py."""
    prefix = _meta.github_url("")
    for path in NOTEBOOKS:
        for cell in _cells(path):
            if cell["cell_type"] != "markdown":
                continue
            for target in re.findall(r"\]\(([^)\s]+)\)", "".join(cell["source"])):
                if target.startswith(("http://", "https://", "#", "mailto:")):
                    if target.startswith(prefix):
                        assert (ROOT / target.removeprefix(prefix).split("#")[0]).exists(), (
                            f"{path.name}: {target} names no file of the course")
                    continue
                pytest.fail(f"{path.name}: relative link {target!r} is dead in Colab; use "
                            f"vitlib._meta.github_url(...) = {prefix}...")


def test_one_command_repoints_the_course_at_a_fork(tmp_path):
    """tools/repoint.py rewrites _meta.py and every address; afterwards nothing names the old one."""
    from _tooling import copy_tree_as_repository, load_tool

    repoint = load_tool("repoint")
    copy = tmp_path / "fork"
    copy_tree_as_repository(ROOT, copy, skip=("data/",))
    old = _meta.REPOSITORY.removeprefix("https://github.com/")
    changed = repoint.repoint(copy, "https://github.com/someone/my-vit", branch="spring")
    assert copy / "vitlib/_meta.py" in changed and len(changed) >= len(NOTEBOOKS) + 2
    left = [str(p.relative_to(copy)) for p in repoint.tracked_text_files(copy) if old in p.read_text()]
    assert left == [], f"still name {old}: {left}"
    meta = {}
    exec((copy / "vitlib/_meta.py").read_text(), meta)
    assert meta["REPOSITORY"] == "https://github.com/someone/my-vit" and meta["BRANCH"] == "spring"
    badge = json.loads((copy / "notebooks" / NOTEBOOKS[0].name).read_text())["cells"][0]["source"]
    assert meta["colab_url"](f"notebooks/{NOTEBOOKS[0].name}") in "".join(badge)
    assert meta["github_url"]("GLOSSARY.md") in "".join(badge)
