"""tools/careless.py: what a careless learner types gets a clear vitlib error, on each backend.

The JAX pass of `make test` runs this file too (it is not single_backend): the same cases must
be refused by vitlib before Keras, TensorFlow or JAX see them.
"""

from __future__ import annotations

from _tooling import load_tool


def test_every_careless_case_gets_a_clear_vitlib_error(capsys):
    careless = load_tool("careless")
    assert careless.main() == 0, capsys.readouterr().out
