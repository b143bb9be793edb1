"""Automatic checkers for the notebooks' exercises, one module per notebook.

Usage in a notebook::

    from vitlib.exercises import nb02
    nb02.check_attention(my_attention)   # -> ✅ ... or ❌ with a targeted hint

Each checker runs the learner's function on fresh random inputs, compares it with a
reference, and recognises the usual mistakes (see :mod:`vitlib.exercises._core`).
"""

from ._core import Feedback, Mistake, check, choose, compare_prediction

__all__ = ["Feedback", "Mistake", "check", "choose", "compare_prediction"]
