"""The course's shipped files (checkpoints and records in ``data/``), wherever a notebook runs.

:func:`course_file` returns the local path of one shipped file, from the first place that has it:

1. **a clone of the course**: ``data/NAME`` in the repository around vitlib (an editable install,
   as ``make lab`` makes) or around the working directory (a notebook in ``notebooks/``);
2. **the cache**: ``$KERAS_HOME/vitlib/NAME`` (default ``~/.keras/vitlib/``), if its SHA-256
   matches the manifest;
3. **a download, once**, from :func:`raw_url` (the course's repository, built from
   ``vitlib/_meta.py``): written under a temporary name, checked against the SHA-256 in the
   manifest that ships inside the package (``vitlib/course_files.json``), and only then moved into
   the cache. A damaged or truncated download is deleted and reported with the file's name and
   address; nothing partial is left behind.

So in Colab, where only ``pip install vitlib`` has happened and there is no ``data/`` folder, the
notebooks get the same files as in a clone. ``VITLIB_COURSE_FILES_URL`` replaces the download
address (a fork, a mirror, or the tests' local server).

The manifest is written by ``python -m vitlib.course_files --update`` (after a shipped file
changes); ``tests/test_course_files.py`` fails while it disagrees with ``data/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from ._fetch import fetch_url
from ._meta import BRANCH, REPOSITORY

MANIFEST = Path(__file__).with_name("course_files.json")
#: The shipped models, by role (file names in ``data/``).
CLASSIFIER = "vit_fashion_medium.keras"  # the course's trained ViT (notebooks 06, 07, 09, 10)
SEGMENTER = "vit_fashion_segment.keras"  # the classifier fine-tuned per patch (notebook 10)
MAE = "mae_fashion_small.keras"  # the masked autoencoder (notebook 09)
#: The environment variable that replaces the download address (a folder URL ending in "/").
URL_VARIABLE = "VITLIB_COURSE_FILES_URL"


class CourseFileError(RuntimeError):
    """A shipped file is unknown, unreachable or damaged. The message names it and its address."""


def manifest() -> dict:
    """``{name: {"sha256": ..., "bytes": ...}}`` of every file the course ships in ``data/``."""
    return json.loads(MANIFEST.read_text())


def raw_url(name: str) -> str:
    """The download address of ``data/NAME``: ``$VITLIB_COURSE_FILES_URL`` + name if set, else
    the raw-file address of the course's repository on its branch (``vitlib/_meta.py``)."""
    base = os.environ.get(URL_VARIABLE)
    if not base:
        owner_name = REPOSITORY.removeprefix("https://github.com/")
        base = f"https://raw.githubusercontent.com/{owner_name}/{BRANCH}/data/"
    return base.rstrip("/") + "/" + name


def cache_dir() -> Path:
    """``$KERAS_HOME/vitlib`` (default ``~/.keras/vitlib``): where downloaded files are kept."""
    from .data import keras_home

    return keras_home() / "vitlib"


def clone_data_dirs() -> list[Path]:
    """``data/`` folders of course clones around vitlib or the working directory, nearest first."""
    roots = [Path(__file__).resolve().parent.parent, *Path.cwd().resolve().parents[:3]]
    roots.insert(1, Path.cwd().resolve())
    found = []
    for root in roots:
        if (root / "vitlib" / "_meta.py").is_file() and (root / "pyproject.toml").is_file() \
                and (root / "data").is_dir():
            if root / "data" not in found:
                found.append(root / "data")
    return found


def sha256(path) -> str:
    """SHA-256 (hex) of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def course_file(name: str, *, timeout: float = 60.0) -> Path:
    """The local path of the shipped file ``data/NAME`` (see the module docstring for where from).

    ``name`` is a file name from the manifest, e.g. ``"vit_fashion_medium.keras"``. Raises
    :class:`CourseFileError` for an unknown name, a failed download (with the address and what to
    do offline) or a download whose SHA-256 differs from the manifest (the file is deleted).
    """
    known = manifest()
    if not isinstance(name, str) or name not in known:
        raise CourseFileError(f"`name` must be one of the course's shipped files {sorted(known)}, "
                              f"got {name!r}.")
    for data in clone_data_dirs():
        if (data / name).is_file():
            return data / name
    expected = known[name]
    cached = cache_dir() / name
    if cached.is_file() and sha256(cached) == expected["sha256"]:
        return cached
    return _download(name, raw_url(name), cached, expected, timeout)


def fetch_all() -> list[Path]:
    """:func:`course_file` for every file in the manifest (what Colab's set-up cell runs)."""
    return [course_file(name) for name in sorted(manifest())]


def _download(name: str, url: str, dest: Path, expected: dict, timeout: float) -> Path:
    print(f"Downloading the course file {name} ({expected['bytes'] / 2**20:.1f} MiB) from {url}",
          file=sys.stderr)

    def check(tmp: Path) -> None:
        got, size = sha256(tmp), tmp.stat().st_size
        if got != expected["sha256"]:
            raise CourseFileError(
                f"The course file {name} downloaded from {url} is damaged or incomplete: {size:,} "
                f"bytes with SHA-256 {got[:16]}..., expected {expected['bytes']:,} bytes with "
                f"SHA-256 {expected['sha256'][:16]}... It was deleted; run the cell again, or "
                f"check the address ({URL_VARIABLE} replaces it).")

    try:
        return fetch_url(url, dest, timeout, check)
    except OSError as e:
        raise CourseFileError(
            f"Could not download the course file {name} from {url} ({e}). Offline, run the "
            f"notebook inside a clone of {REPOSITORY} (it reads data/{name}), or copy that file "
            f"to {dest}.") from e


def build_manifest(data_dir) -> dict:
    """The manifest of every file in ``data_dir`` except its README (sorted by name)."""
    files = sorted(p for p in Path(data_dir).iterdir() if p.is_file() and p.name != "README.md")
    return {p.name: {"sha256": sha256(p), "bytes": p.stat().st_size} for p in files}


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        description="Check (default) or rewrite the manifest of the course's shipped files.")
    parser.add_argument("--data", default=str(Path(__file__).resolve().parent.parent / "data"),
                        help="the course's data/ folder (default: the clone around vitlib)")
    parser.add_argument("--update", action="store_true", help="rewrite vitlib/course_files.json")
    args = parser.parse_args(argv)
    fresh = build_manifest(args.data)
    if args.update:
        MANIFEST.write_text(json.dumps(fresh, indent=1) + "\n")
        print(f"{MANIFEST.name}: {len(fresh)} files")
        return 0
    stale = sorted(set(fresh) ^ set(manifest()) | {n for n in fresh if fresh[n] != manifest().get(n)})
    if stale:
        print(f"The manifest disagrees with {args.data} for: {', '.join(stale)}. "
              "Run `python -m vitlib.course_files --update`.", file=sys.stderr)
        return 1
    print(f"manifest up to date ({len(fresh)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
