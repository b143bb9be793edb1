"""Where the course lives: the ONE place that names its repository.

The Colab badges and the set-up cells of the notebooks, and the install line in the README, must
agree with :data:`REPOSITORY`; tests/test_colab.py checks every one of them. (A fork changes
this line, then the badges and install lines; the test lists each one that still differs.)
"""

from __future__ import annotations

#: The course's GitHub repository.
REPOSITORY = "https://github.com/vit-course/vit-course"
#: The branch the Colab badges open.
BRANCH = "main"
#: What the set-up cell installs in Colab: vitlib alone, from the repository, with its loose
#: lower bounds (pyproject.toml) so that Colab's TensorFlow and Keras are kept.
INSTALL_SPEC = f"vitlib @ git+{REPOSITORY}"


def colab_url(path: str) -> str:
    """The "Open in Colab" address of ``path`` (relative to the repository root)."""
    owner_name = REPOSITORY.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{owner_name}/blob/{BRANCH}/{path}"
