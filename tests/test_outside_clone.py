"""Notebooks 06-10 run as in Colab: outside any clone of the course, with vitlib installed into a
fresh virtual environment by the set-up cell's own pip line, and the shipped checkpoints and
records downloaded, checked and cached by vitlib.course_files.

What stands in for what: a copy of this working tree, committed in a temporary git repository,
stands in for GitHub (the install line points at it: ``git+file://localhost/...``); a local HTTP
server over its ``data/`` stands in for the raw-file address (``VITLIB_COURSE_FILES_URL``); a stub
``google.colab`` module, imported at start-up as Colab does, makes the set-up cell take its Colab
branch; the course environment's site-packages stand in for Colab's preinstalled TensorFlow, Keras
and Jupyter (a .pth file; vitlib itself is not taken from there). Then nbval runs the notebooks from
a temporary folder: their checked outputs must match the stored ones.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest
from _tooling import LocalServer, copy_tree_as_repository

from vitlib import _meta, course_files

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))[6:11]
pytestmark = pytest.mark.single_backend


def test_notebooks_06_to_10_pass_outside_the_clone(tmp_path):
    assert [p.name[:2] for p in NOTEBOOKS] == ["06", "07", "08", "09", "10"]
    repo, venv, stub, course, keras_home = (tmp_path / n for n in
                                            ("repo", "venv", "stub", "course", "keras"))
    copy_tree_as_repository(ROOT, repo)

    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    venv_site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                    capture_output=True, text=True, check=True).stdout.strip())
    (venv_site / "colab_stack.pth").write_text(site.getsitepackages()[0] + "\n")

    (stub / "google" / "colab").mkdir(parents=True)
    (stub / "google" / "colab" / "__init__.py").write_text('"""Stand-in for Colab\'s module."""\n')
    (stub / "sitecustomize.py").write_text("import google.colab  # noqa: F401  (as in Colab)\n")

    install_spec = _meta.INSTALL_SPEC.replace(f"git+{_meta.REPOSITORY}", f"git+file://localhost{repo}")
    (course / "notebooks").mkdir(parents=True)
    for path in NOTEBOOKS:
        text = path.read_text()
        assert _meta.INSTALL_SPEC in text
        (course / "notebooks" / path.name).write_text(text.replace(_meta.INSTALL_SPEC, install_spec))

    env = {**os.environ, "PYTHONPATH": str(stub), "KERAS_HOME": str(keras_home),
           "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"}
    env.pop("VITLIB_DATA_DIR", None)
    # vitlib as the set-up cell installs it (the cell runs the same line again: already satisfied)
    subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", install_spec],
                   check=True, env=env, cwd=course)
    where = subprocess.run([python, "-c", "import vitlib, google.colab; print(vitlib.__file__)"],
                           capture_output=True, text=True, check=True, env=env, cwd=course).stdout
    assert Path(where.strip()).is_relative_to(venv), where

    with LocalServer(repo / "data") as server:
        env[course_files.URL_VARIABLE] = server.url
        run = subprocess.run(
            [python, "-m", "pytest", "-q", "--nbval-lax", "--nbval-current-env",
             "--nbval-cell-timeout=300", "-p", "no:cacheprovider",
             *[f"notebooks/{p.name}" for p in NOTEBOOKS]],
            cwd=course, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    fetched = sorted(p.name for p in (keras_home / "vitlib").iterdir())
    assert fetched == sorted(course_files.manifest()), "the set-up cell fetched every shipped file"
    asked = sorted(r.lstrip("/") for r in server.requests)
    assert asked == fetched, f"each file downloaded once, then taken from the cache: {asked}"
