"""Checkers for notebook 04 (position embeddings).

- :func:`check_sincos_1d`: the 1-D sine-cosine position encoding (Vaswani et al. 2017, Sec. 3.5).
- :func:`check_sincos_2d`: the 2-D encoding built from the 1-D one: half the features for the
  row, half for the column, patches listed row by row.
- :func:`check_cosine_similarity_map`: cosine similarity of every position embedding with every other.

The references below are written again here in plain NumPy, independently of :mod:`vitlib`.
"""

from __future__ import annotations

import numpy as np

from ._core import Feedback, Mistake, check

# --- sincos_1d -----------------------------------------------------------------------------
# Layout: positions (n,) -> (n, dim). Columns 0 .. dim/2-1 hold sin(pos * w_i), columns
# dim/2 .. dim-1 hold cos(pos * w_i), with w_i = 1 / 10000 ** (i / (dim / 2)), i = 0 .. dim/2-1.


def _angles(positions, dim, exponent_scale):
    i = np.arange(dim // 2, dtype=np.float64)
    omega = 1.0 / 10000.0 ** (i / exponent_scale)
    return np.asarray(positions, dtype=np.float64).reshape(-1, 1) * omega[None, :]


def _sincos_1d(positions, dim):
    a = _angles(positions, dim, dim / 2)
    return np.concatenate([np.sin(a), np.cos(a)], axis=1)


def _sincos_swapped(positions, dim):
    a = _angles(positions, dim, dim / 2)
    return np.concatenate([np.cos(a), np.sin(a)], axis=1)


def _sincos_exponent_over_dim(positions, dim):
    a = _angles(positions, dim, dim)
    return np.concatenate([np.sin(a), np.cos(a)], axis=1)


def _sincos_interleaved(positions, dim):
    a = _angles(positions, dim, dim / 2)
    out = np.empty((a.shape[0], dim))
    out[:, 0::2], out[:, 1::2] = np.sin(a), np.cos(a)
    return out


SINCOS_MISTAKES = (
    Mistake("sin_cos_swapped", _sincos_swapped,
            "the first half should be the sines and the second half the cosines; yours has "
            "them the other way round."),
    Mistake("exponent_over_dim", _sincos_exponent_over_dim,
            "the frequency exponent is i / (dim / 2), not i / dim: there are dim/2 frequencies, "
            "so i runs over 0 .. dim/2 - 1 and the slowest frequency is close to 1/10000."),
    Mistake("interleaved", _sincos_interleaved,
            "you interleaved sin and cos (sin, cos, sin, cos, ...). In this course the layout is "
            "concatenated: all dim/2 sines first, then all dim/2 cosines (np.concatenate on axis 1)."),
)


def _sincos_case(rng):
    n = int(rng.integers(3, 12))
    positions = rng.integers(0, 50, size=n)
    dim = int(rng.choice([4, 8, 16, 32]))
    return positions, dim


def check_sincos_1d(fn, cases: int = 5, seed: int | None = None) -> Feedback:
    """Check ``fn(positions, dim) -> (len(positions), dim)`` against the reference layout."""
    return check(fn, _sincos_1d, _sincos_case, SINCOS_MISTAKES, title="sincos_1d",
                 cases=cases, atol=1e-5, seed=seed)


# --- sincos_2d -----------------------------------------------------------------------------
# (rows, cols, dim) -> (rows * cols, dim): patch k sits at row k // cols, column k % cols;
# its embedding is [sincos_1d(row, dim/2) | sincos_1d(column, dim/2)].


def _grid_positions(rows, cols):
    return np.divmod(np.arange(rows * cols), cols)  # row-major: (row, column) of patch k


def _sincos_2d(rows, cols, dim):
    r, c = _grid_positions(rows, cols)
    return np.concatenate([_sincos_1d(r, dim // 2), _sincos_1d(c, dim // 2)], axis=1)


def _sincos_2d_column_major(rows, cols, dim):
    c, r = np.divmod(np.arange(rows * cols), rows)  # patch k at column k // rows
    return np.concatenate([_sincos_1d(r, dim // 2), _sincos_1d(c, dim // 2)], axis=1)


def _sincos_2d_swapped(rows, cols, dim):
    r, c = _grid_positions(rows, cols)
    return np.concatenate([_sincos_1d(c, dim // 2), _sincos_1d(r, dim // 2)], axis=1)


def _sincos_2d_summed(rows, cols, dim):
    r, c = _grid_positions(rows, cols)
    return _sincos_1d(r, dim) + _sincos_1d(c, dim)


def _sincos_2d_full_dim(rows, cols, dim):
    r, c = _grid_positions(rows, cols)
    return np.concatenate([_sincos_1d(r, dim), _sincos_1d(c, dim)], axis=1)


def _sincos_2d_as_line(rows, cols, dim):
    return _sincos_1d(np.arange(rows * cols), dim)


SINCOS_2D_MISTAKES = (
    Mistake("as_a_line", _sincos_2d_as_line,
            "you encoded the patch index k = 0, 1, ..., rows*cols - 1 as positions on a line. "
            "The 2-D encoding uses the patch's row AND column: row = k // cols, column = k % cols."),
    Mistake("column_major", _sincos_2d_column_major,
            "the patches are listed column by column. `extract_patches` lists them row by row: "
            "patch k is at row k // cols, column k % cols (np.meshgrid(..., indexing='ij'), then "
            "reshape(-1))."),
    Mistake("rows_cols_swapped", _sincos_2d_swapped,
            "the halves are swapped: the first dim/2 features encode the ROW, the second half the "
            "column."),
    Mistake("summed", _sincos_2d_summed,
            "you added a row encoding and a column encoding of full width. Then (r, c) and (c, r) "
            "get the same vector. Concatenate two encodings of width dim/2 instead."),
    Mistake("full_dim_each", _sincos_2d_full_dim,
            "each half must have dim/2 features (sincos_1d(rows, dim // 2)), so that the two "
            "together have dim."),
)


def _sincos_2d_case(rng):
    rows = int(rng.integers(2, 7))
    cols = int(rng.integers(2, 7))
    while cols == rows:  # a non-square grid catches swapped rows and columns
        cols = int(rng.integers(2, 7))
    return rows, cols, int(rng.choice([8, 16, 32]))


def check_sincos_2d(fn, cases: int = 5, seed: int | None = None) -> Feedback:
    """Check ``fn(rows, cols, dim) -> (rows * cols, dim)`` on non-square grids."""
    return check(fn, _sincos_2d, _sincos_2d_case, SINCOS_2D_MISTAKES, title="sincos_2d",
                 cases=cases, atol=1e-5, seed=seed)


# --- cosine_similarity_map -----------------------------------------------------------------
# pos_emb (n, d) -> (n, n): entry [i, j] = <e_i, e_j> / (|e_i| |e_j|).


def _cosine_map(pos_emb):
    e = np.asarray(pos_emb, dtype=np.float64)
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    return e @ e.T


def _dot_only(pos_emb):
    e = np.asarray(pos_emb, dtype=np.float64)
    return e @ e.T


def _normalised_wrong_axis(pos_emb):
    e = np.asarray(pos_emb, dtype=np.float64)
    e = e / np.linalg.norm(e, axis=0, keepdims=True)
    return e @ e.T


def _normalised_once(pos_emb):
    e = np.asarray(pos_emb, dtype=np.float64)
    n = np.linalg.norm(e, axis=1, keepdims=True)
    return (e @ e.T) / n


COSINE_MISTAKES = (
    Mistake("no_normalisation", _dot_only,
            "that is the plain dot product e_i . e_j. Cosine similarity divides by both lengths: "
            "normalise each row (each position's vector) to length 1 first."),
    Mistake("normalised_wrong_axis", _normalised_wrong_axis,
            "you normalised each column (each feature over the positions). Normalise each row "
            "instead: np.linalg.norm(..., axis=1, keepdims=True)."),
    Mistake("normalised_once", _normalised_once,
            "you divided by the length of only one of the two vectors. Divide by |e_i| |e_j|, "
            "e.g. normalise every row first and then take e @ e.T."),
)


def _cosine_case(rng):
    n = int(rng.integers(3, 10))
    d = int(rng.integers(4, 17))
    return (rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=(n, 1)),)


def check_cosine_similarity_map(fn, cases: int = 5, seed: int | None = None) -> Feedback:
    """Check ``fn(pos_emb (n, d)) -> (n, n)`` cosine similarities."""
    return check(fn, _cosine_map, _cosine_case, COSINE_MISTAKES, title="cosine_similarity_map",
                 cases=cases, atol=1e-5, seed=seed)
