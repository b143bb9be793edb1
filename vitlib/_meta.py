"""Where the course lives: the ONE place that names its repository.

The Colab badges, the set-up cells and the links of the notebooks, the install line in the README
and the download address of the shipped files (vitlib.course_files) all derive from
:data:`REPOSITORY` and :data:`BRANCH`; tests/test_colab.py checks every one of them. A fork runs
``python tools/repoint.py https://github.com/OWNER/NAME`` to re-point all of them at once.
"""

from __future__ import annotations

#: vitlib's version (pyproject.toml reads it from here).
VERSION = "0.1.0"
#: The course's GitHub repository.
REPOSITORY = "https://github.com/vit-course/vit-course"
#: The branch the Colab badges open.
BRANCH = "main"
#: What the set-up cell installs in Colab: vitlib alone, from the repository, with its loose
#: lower bounds (pyproject.toml) so that Colab's TensorFlow and Keras are kept.
INSTALL_SPEC = f"vitlib @ git+{REPOSITORY}"


def github_url(path: str) -> str:
    """The GitHub address of ``path`` (relative to the repository root): works in Colab and on GitHub."""
    return f"{REPOSITORY}/blob/{BRANCH}/{path}"


def colab_url(path: str) -> str:
    """The "Open in Colab" address of ``path`` (relative to the repository root)."""
    owner_name = REPOSITORY.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{owner_name}/blob/{BRANCH}/{path}"
