"""Colab set-up, testable without Colab and without the network.

The first code cell of every notebook does, in Colab only::

    %pip install -q "vitlib @ git+https://github.com/vit-course/vit-course"

(it has to: vitlib cannot be imported before it is installed). This module holds the rest of
the logic, so that it can be tested: :func:`install_command` is the line the cell must hold,
:func:`plan` what the set-up does in a given place, and :func:`setup` fetches Fashion-MNIST and the
course's shipped checkpoints and records (:mod:`vitlib.course_files`) in Colab, once;
later calls find them in place. Fetching them here, in the set-up cell, keeps the download messages
out of the lessons' cells.
"""

from __future__ import annotations

import sys

from ._meta import INSTALL_SPEC

#: Packages the set-up must never install, upgrade or pin: Colab's own builds are kept.
KEPT = ("tensorflow", "keras", "jax", "numpy")


def in_colab() -> bool:
    """True inside a Google Colab runtime."""
    return "google.colab" in sys.modules


def install_command() -> str:
    """The line of the set-up cell that installs vitlib in Colab."""
    return f'%pip install -q "{INSTALL_SPEC}"'


def plan(colab: bool | None = None) -> list[str]:
    """What the set-up does here: nothing locally (``make lab`` did it), else install + data."""
    colab = in_colab() if colab is None else colab
    if not colab:
        return []
    return [install_command(), "vitlib.data.load_fashion_mnist(download=True)",
            "vitlib.course_files.fetch_all()"]


def setup(colab: bool | None = None, load=None, fetch=None) -> list[str]:
    """Fetch the data and the shipped files in Colab (after the install). Returns the steps it ran
    after the install.

    ``load`` and ``fetch`` replace :func:`vitlib.data.load_fashion_mnist` and
    :func:`vitlib.course_files.fetch_all` (for tests).
    """
    colab = in_colab() if colab is None else colab
    if not colab:
        return []
    if load is None:
        from .data import load_fashion_mnist as load
    if fetch is None:
        from .course_files import fetch_all as fetch
    load(download=True)
    fetch()
    return plan(colab)[1:]
