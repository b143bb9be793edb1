"""Axial attention (Ho et al. 2019; Wang et al. 2020, Axial-DeepLab): attend along each row of
the patch grid, then along each column, instead of over the whole grid at once.

Full self-attention over a grid of R x C tokens compares every pair: (RC)^2 scores. Row
attention compares tokens within a row (R C^2 scores), column attention within a column
(C R^2); together R C (R + C). Two steps still connect any two tokens: along the row to the
column, then down the column. Row attention is full attention with a mask that allows only keys
in the query's row (:func:`axial_masks`), which is how the tests check it.
"""

from __future__ import annotations

import numpy as np
from keras import layers, ops, saving

from . import _checks
from .attention import MultiHeadSelfAttention


def axial_masks(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Booleans (rows*cols, rows*cols) for tokens in row-major order: (same row, same column).

    ``same_row[i, j]`` is True when tokens i and j lie in the same row of the grid.
    """
    rows, cols = _checks.positive_int("rows", rows), _checks.positive_int("cols", cols)
    r, c = np.divmod(np.arange(rows * cols), cols)
    return r[:, None] == r[None, :], c[:, None] == c[None, :]


@saving.register_keras_serializable(package="vitlib")
class AxialAttention(layers.Layer):
    """Row attention, then column attention, on tokens of a ``grid`` = (rows, cols).

    x (batch, rows*cols, dim), row-major (as ``vitlib.extract_patches`` orders the patches)
    -> (batch, rows*cols, dim). No residual or normalisation inside: use it where a block would
    use ``MultiHeadSelfAttention``.
    """

    def __init__(self, num_heads: int, grid, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = _checks.positive_int("num_heads", num_heads)
        self.grid = _checks.pair("grid", grid)
        self.row_attention = MultiHeadSelfAttention(self.num_heads, name="row_attention")
        self.column_attention = MultiHeadSelfAttention(self.num_heads, name="column_attention")

    def build(self, input_shape):
        _, tokens, dim = _checks.rank("x", input_shape, 3, "(batch, tokens, dim)")
        rows, cols = self.grid
        if tokens is not None and tokens != rows * cols:
            raise ValueError(f"`x` has {tokens} tokens, but grid={self.grid} needs "
                             f"{rows} x {cols} = {rows * cols} (no class token: attend on patches).")
        self.row_attention.build((None, cols, dim))
        self.column_attention.build((None, rows, dim))

    def call(self, x):
        rows, cols = self.grid
        dim = ops.shape(x)[-1]
        g = ops.reshape(x, (-1, rows, cols, dim))
        y = ops.reshape(self.row_attention(ops.reshape(g, (-1, cols, dim))), (-1, rows, cols, dim))
        y = ops.transpose(y, (0, 2, 1, 3))  # (batch, cols, rows, dim): columns as sequences
        y = ops.reshape(self.column_attention(ops.reshape(y, (-1, rows, dim))), (-1, cols, rows, dim))
        return ops.reshape(ops.transpose(y, (0, 2, 1, 3)), (-1, rows * cols, dim))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "grid": list(self.grid)}
