"""Colab set-up, testable without Colab and without the network.

The first code cell of every notebook does, in Colab only::

    %pip install -q "vitlib @ git+https://github.com/vit-course/vit-course"

(it has to: vitlib cannot be imported before it is installed). This module holds the rest of
the logic, so that it can be tested: :func:`install_command` is the line the cell must hold,
:func:`plan` what the set-up does in a given place, and :func:`setup` fetches Fashion-MNIST in
Colab (once; later calls find it in place).
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
    return [install_command(), "vitlib.data.load_fashion_mnist(download=True)"]


def setup(colab: bool | None = None, load=None) -> list[str]:
    """Fetch the data in Colab (after the install). Returns the steps it ran after the install.

    ``load`` replaces :func:`vitlib.data.load_fashion_mnist` (for tests).
    """
    colab = in_colab() if colab is None else colab
    if not colab:
        return []
    if load is None:
        from .data import load_fashion_mnist as load
    load(download=True)
    return plan(colab)[1:]
