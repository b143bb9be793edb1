"""Checkers for notebook 04 (position embeddings).

- :func:`check_sincos_1d`: the 1-D sine-cosine position encoding (Vaswani et al. 2017, Sec. 3.5).
- :func:`check_sincos_2d`: the 2-D encoding built from the 1-D one: half the features for the
  row, half for the column, patches listed row by row.
- :func:`check_cosine_similarity_map`: cosine similarity of every position embedding with every other.
- :func:`check_shuffle_reading` (interpret): ``answer``, one letter: what Step 2's measured
  comparison (learned / sine-cosine / none, 3 seeds, ordinary and patch-shuffled test images)
  shows. Every wrong letter gets its own explanation.
- :func:`check_similar_patch_prediction` (predict-then-run): ``prediction``, a patch index
  ``k = 7 * row + column``: the patch whose learned embedding is most similar to that of the
  patch in row 5, column 1, in the trained classifier's 7x7 table (``table``, (1, 50, dim) with
  the class token first, or (49, dim)). The checker computes the cosine similarities and
  compares exactly; the usual guesses (a neighbour, the up-down mirror, the patch itself) get
  their own hint.
- :func:`check_position_table` (transfer): ``position_table(height, width, patch, dim)``: the
  fixed table a sine-cosine ViT adds to its tokens for non-square images: (1 + rows * cols, dim)
  with rows = height // patch, cols = width // patch; row 0, the class token's, all zeros; then
  the 2-D sine-cosine embedding of the grid, patches row by row.

A prediction or an answer of None (the student edition's stub) gets "not answered yet".

The references below are written again here in plain NumPy, independently of :mod:`vitlib`.
"""

from __future__ import annotations

import numpy as np

from ._core import Feedback, Mistake, check, choose, compare_prediction

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


# --- interpret: Step 2's measured comparison -----------------------------------------------

SHUFFLE_WHY = ("Models with E_pos read where each patch is, so a shuffled image is an unfamiliar "
               "one to them and they fall close to chance (0.17 and 0.11). \"none\" never had "
               "that information: permutation equivariance (Step 1) makes its prediction the "
               "same for every order of the patches. Where things are is worth 5-8 points on "
               "ordinary images here.")
SHUFFLE_OPTIONS = {
    "a": ("It is tempting: its orange bar is the tallest by far. But shuffled images are a probe, "
          "not a use case: they show what a model relies on, not which model to deploy. On "
          "ordinary test images, the ones a classifier meets in use, no position embedding is "
          "the worst of the three (0.770 against 0.817 and 0.847, every seed)."),
    "b": ("0.17 is indeed above 0.11 in every seed, but both are close to chance (0.10): both "
          "models lose about 70 points, so neither is robust to shuffling. The evidence that "
          "learned beats sine-cosine here is the ordinary test set (0.847 against 0.817, the "
          "seeds do not overlap), not the shuffled one."),
    "c": ("An exact tie in every seed does look like a skill, but nothing was learned: all three "
          "models were trained the same way on ordinary images (one command, only `position` "
          "differs). Without E_pos the class token's output does not depend on the order of the "
          "patches for ANY weights (Step 1 showed it on an untrained model), so every prediction "
          "is the same for every order. The tie comes from the architecture, not from training."),
    "d": SHUFFLE_WHY,
}


def check_shuffle_reading(answer) -> Feedback:
    """Interpret: what do Step 2's bars (3 seeds; test and patch-shuffled test images) show?

    (a) none is the most useful choice, its accuracy survives shuffling; (b) learned wins because
    it is more robust to shuffling; (c) none learned to ignore the order; (d) right: the models
    with E_pos rely on where the patches are, none cannot see the order and so loses nothing.
    """
    return choose(answer, options=SHUFFLE_OPTIONS, correct="d", why=SHUFFLE_WHY,
                  title="Exercise 3 · reading the shuffle test")


# --- predict-then-run: the learned table's most similar patch ------------------------------

SIMILAR_QUERY = (5, 1)  # row, column on the 7x7 grid


def _patch_table(table):
    e = np.asarray(table, dtype=np.float64)
    if e.ndim == 3:  # (1, 1 + 49, dim): drop the batch axis and the class token
        e = e[0, 1:]
    if e.shape[0] != 49:
        raise ValueError(f"expected the 7x7 table, (1, 50, dim) or (49, dim); got {np.shape(table)}")
    return e


def most_similar_patch(table, row, col) -> tuple[int, float]:
    """Patch index (7 * row + col) most similar (cosine) to patch (row, col), itself excluded."""
    sim = _cosine_map(_patch_table(table))
    k = 7 * row + col
    others = np.delete(np.arange(49), k)
    best = int(others[np.argmax(sim[k, others])])
    return best, float(sim[k, best])


def check_similar_patch_prediction(prediction, table) -> Feedback:
    """Predict-then-run: the patch whose learned embedding is most like that of (5, 1).

    ``table``: the trained classifier's learned E_pos, (1, 50, dim) or (49, dim). For the
    shipped classifier the answer is patch 40 = (5, 5), the left-right mirror.
    """
    r, c = SIMILAR_QUERY
    best, value = most_similar_patch(table, r, c)
    sim = _cosine_map(_patch_table(table))[7 * r + c]
    br, bc = divmod(best, 7)

    def said(k):
        return f"patch {k} = (row {k // 7}, column {k % 7}) has similarity {sim[k]:.2f}"

    guesses = [
        ("itself", 7 * r + c, "Not the patch itself (its similarity is 1 by definition): the "
                              "most similar OTHER patch."),
        ("column_neighbour_above", 7 * (r - 1) + c,
         f"The column neighbours come second: {said(7 * (r - 1) + c)}, {said(7 * (r + 1) + c)}. "
         f"Step 5's numbers: the left-right mirror is on average more similar still."),
        ("column_neighbour_below", 7 * (r + 1) + c,
         f"The column neighbours come second: {said(7 * (r + 1) + c)}, {said(7 * (r - 1) + c)}. "
         f"Step 5's numbers: the left-right mirror is on average more similar still."),
        ("row_neighbour_left", 7 * r + c - 1,
         f"That is what a sine-cosine table would say (round blobs), but this learned table "
         f"hardly links row neighbours: {said(7 * r + c - 1)}."),
        ("row_neighbour_right", 7 * r + c + 1,
         f"That is what a sine-cosine table would say (round blobs), but this learned table "
         f"hardly links row neighbours: {said(7 * r + c + 1)}."),
        ("up_down_mirror", 7 * (6 - r) + c,
         f"The up-down mirror: {said(7 * (6 - r) + c)}. The training flips images left-right "
         f"only, never upside down."),
    ]
    return compare_prediction(
        prediction, best, title="Exercise 4 · the most similar position",
        why=(f"The answer: {said(best)}, " + (
            f"its left-right mirror (the same row, column 6 - {c} = {6 - c}). The training flips every "
            "garment left-right half of the time, so a patch and its mirror position see the "
            "same kinds of content." if (br, bc) == (r, 6 - c) else "the highest of all.")),
        mistakes=[(name, k, hint) for name, k, hint in guesses if k != best])


# --- transfer: the fixed table for non-square images -----------------------------------------
# (height, width, patch, dim) -> (1 + rows * cols, dim): a zero row for the class token, then
# [sincos_1d(row, dim/2) | sincos_1d(column, dim/2)] for every patch, row by row.


def _position_table(height, width, patch, dim):
    grid = _sincos_2d(height // patch, width // patch, dim)
    return np.concatenate([np.zeros((1, dim)), grid], axis=0)


POSITION_TABLE_MISTAKES = (
    Mistake("no_class_token", lambda h, w, p, d: _sincos_2d(h // p, w // p, d),
            "the class token comes first and needs a row too: the table has 1 + rows * cols "
            "rows, the first one all zeros (no place on the grid)."),
    Mistake("height_width_swapped",
            lambda h, w, p, d: np.concatenate([np.zeros((1, d)), _sincos_2d(w // p, h // p, d)]),
            "your grid has width // patch rows and height // patch columns. The rows of patches "
            "run down the image: rows = height // patch, cols = width // patch."),
    Mistake("grid_in_pixels",
            lambda h, w, p, d: np.concatenate([np.zeros((1, d)), _sincos_2d(h, w, d)]),
            "you made one position per PIXEL. The tokens are patches: the grid is "
            "(height // patch) x (width // patch)."),
    Mistake("class_token_at_origin",
            lambda h, w, p, d: np.concatenate([_sincos_2d(1, 1, d), _sincos_2d(h // p, w // p, d)]),
            "your class-token row is the embedding of position (0, 0), the top-left patch's. The "
            "class token has no place on the grid: give it a row of zeros, as "
            "vitlib.PositionEmbedding('sincos') does."),
    Mistake("class_token_last",
            lambda h, w, p, d: np.concatenate([_sincos_2d(h // p, w // p, d), np.zeros((1, d))]),
            "the class token is token 0 (Eq. 1: [x_class; x_p^1 E; ...]): its zero row comes "
            "first, the patches after it."),
    Mistake("square_grid",
            lambda h, w, p, d: np.concatenate([np.zeros((1, d)), _sincos_2d(h // p, h // p, d)]),
            "your grid is square, (height // patch) x (height // patch). These images are not "
            "square: cols = width // patch."),
)


def _position_table_cases():
    """Non-square images only, so that a square or transposed grid is caught."""
    plan = iter([(16, 28, 4, 8), (28, 56, 4, 16), (24, 16, 8, 8), (12, 20, 4, 16), (32, 48, 16, 8)])

    def make_case(rng):
        return next(plan)

    return make_case


def check_position_table(fn) -> Feedback:
    """Check ``fn(height, width, patch, dim) -> (1 + rows * cols, dim)`` on non-square images."""
    return check(fn, _position_table, _position_table_cases(), POSITION_TABLE_MISTAKES,
                 title="Exercise 5 · position_table", cases=5, atol=1e-5, seed=0)
