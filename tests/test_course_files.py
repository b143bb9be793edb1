"""vitlib.course_files: the shipped files found in a clone, else downloaded once from a (here local)
server, checked against the manifest, cached; damaged downloads deleted and reported."""

from __future__ import annotations

from pathlib import Path

import pytest
from _tooling import LocalServer

from vitlib import _meta, course_files
from vitlib.course_files import CourseFileError, course_file

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.single_backend
NAME = "vit_vs_cnn.json"  # a small shipped file


def test_manifest_matches_the_shipped_files():
    """Fails after a shipped file changes until `python -m vitlib.course_files --update` is run."""
    assert course_files.build_manifest(ROOT / "data") == course_files.manifest()
    assert course_files.main(["--data", str(ROOT / "data")]) == 0


def test_manifest_ships_inside_the_package():
    text = (ROOT / "pyproject.toml").read_text()
    assert '"course_files.json"' in text and course_files.MANIFEST.parent == ROOT / "vitlib"


def test_in_a_clone_the_file_comes_from_data():
    assert course_file(NAME) == ROOT / "data" / NAME


def test_unknown_name_is_refused_with_the_known_names():
    with pytest.raises(CourseFileError, match=r"`name` must be one of .*vit_fashion_medium\.keras.*'cat\.png'"):
        course_file("cat.png")


def test_raw_url_is_built_from_meta_and_can_be_replaced(monkeypatch):
    monkeypatch.delenv(course_files.URL_VARIABLE, raising=False)
    owner_name = _meta.REPOSITORY.removeprefix("https://github.com/")
    assert course_files.raw_url(NAME) == (
        f"https://raw.githubusercontent.com/{owner_name}/{_meta.BRANCH}/data/{NAME}")
    monkeypatch.setenv(course_files.URL_VARIABLE, "http://127.0.0.1:9/x/")
    assert course_files.raw_url(NAME) == "http://127.0.0.1:9/x/" + NAME


@pytest.fixture
def outside_a_clone(tmp_path, monkeypatch):
    """No clone around vitlib or the working directory; a local server holds a copy of data/."""
    served = tmp_path / "served"
    served.mkdir()
    (served / NAME).write_bytes((ROOT / "data" / NAME).read_bytes())
    server = LocalServer(served)
    monkeypatch.setattr(course_files, "clone_data_dirs", lambda: [])
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv(course_files.URL_VARIABLE, server.url)
    yield served, server, tmp_path / "keras" / "vitlib"
    server.close()


def test_downloaded_once_checked_and_cached(outside_a_clone):
    served, server, cache = outside_a_clone
    path = course_file(NAME)
    assert path == cache / NAME and path.read_bytes() == (ROOT / "data" / NAME).read_bytes()
    assert len(server.requests) == 1
    assert course_file(NAME) == path and len(server.requests) == 1, "the second call uses the cache"
    assert sorted(p.name for p in cache.iterdir()) == [NAME]


@pytest.mark.parametrize("damage", ["truncated", "byte flipped", "html page"])
def test_a_damaged_download_is_deleted_and_reported(outside_a_clone, damage):
    served, server, cache = outside_a_clone
    good = (served / NAME).read_bytes()
    bad = {"truncated": good[: len(good) // 2],
           "byte flipped": good[:10] + bytes([good[10] ^ 1]) + good[11:],
           "html page": b"<html><body>Not Found</body></html>"}[damage]
    (served / NAME).write_bytes(bad)
    with pytest.raises(CourseFileError) as info:
        course_file(NAME)
    message = str(info.value)
    assert NAME in message and server.url + NAME in message and "damaged or incomplete" in message
    assert list(cache.iterdir()) == [], "nothing partial is left in the cache"


def test_a_damaged_cached_file_is_replaced(outside_a_clone):
    served, server, cache = outside_a_clone
    cache.mkdir(parents=True)
    (cache / NAME).write_bytes(b"{}")
    assert course_file(NAME).read_bytes() == (served / NAME).read_bytes()
    assert len(server.requests) == 1


def test_offline_says_what_it_would_fetch_and_how_to_get_it(outside_a_clone, monkeypatch):
    served, server, cache = outside_a_clone
    server.close()
    with pytest.raises(CourseFileError) as info:
        course_file(NAME, timeout=5)
    message = str(info.value)
    assert "Could not download" in message and server.url + NAME in message
    assert f"clone of {_meta.REPOSITORY}" in message and str(cache / NAME) in message
    assert list(cache.iterdir()) == []
