"""Checkers for notebook 04 (position embeddings).

- :func:`check_sincos_1d`: the 1-D sine-cosine position encoding (Vaswani et al. 2017, Sec. 3.5).
- :func:`check_sincos_2d`: the 2-D encoding built from the 1-D one: half the features for the
  row, half for the column, patches listed row by row.
- :func:`check_cosine_similarity_map`: cosine similarity of every position embedding with every other.
- :func:`check_variants_prediction` (predict, then read the record; multiple choice):
  ``answer``, one letter, and ``record``, the shipped ``data/ablation.json`` (a dict): what the
  record's two variants not shown in Step 2 (``mean-pooling``: no class token, patch tokens
  averaged; ``no-attention``: MLP-only blocks, patch tokens averaged; both with a learned E_pos)
  score on patch-shuffled test images. The right letter: both fall far (0.169 and 0.272, from
  0.838 and 0.845). Every wrong letter gets its own explanation; the verdict prints the recorded
  numbers.
- :func:`check_similar_patch_prediction` (predict-then-run): ``prediction``, a patch index
  ``k = 7 * row + column``: the patch whose learned embedding is most similar to that of the
  patch in row 5, column 3 (on the centre column, so its left-right mirror is itself), in the
  trained classifier's 7x7 table (``table``, (1, 50, dim) with the class token first, or
  (49, dim)). The checker computes the cosine similarities and compares exactly; the usual
  guesses (the other column neighbour, a row neighbour, the up-down mirror, the patch itself)
  get their own hint, with their similarity and rank computed from the table.
- :func:`check_position_table` (transfer): ``position_table(height, width, patch, dim)``: the
  fixed table that ``vitlib.ViT(image_size=(height, width), patch_size=patch, dim=dim,
  position="sincos")`` adds to its tokens, checked on non-square images: (1 + rows * cols, dim)
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


# --- predict, then read the record: two variants Step 2 does not show ---------------------

def _shuffled(record, variant):
    s = record["summary"][variant]
    return s["test_accuracy"]["mean"], s["shuffled_test_accuracy"]["mean"]


def check_variants_prediction(answer, record) -> Feedback:
    """Predict: ``mean-pooling`` and ``no-attention`` (learned E_pos, patch tokens averaged) on
    patch-shuffled test images. (a) both keep their accuracy, an average ignores the order;
    (b) mean-pooling falls, no-attention keeps it; (c) no-attention falls, mean-pooling keeps it;
    (d) right: both fall far, every token carries the E_pos row of its place.

    ``record``: the shipped ``ablation.json`` as a dict; the verdict prints its numbers.
    """
    mp_test, mp_shuf = _shuffled(record, "mean-pooling")
    na_test, na_shuf = _shuffled(record, "no-attention")
    none_test, none_shuf = _shuffled(record, "none")
    learned_shuf = _shuffled(record, "learned")[1]
    measured = (f"The record: mean-pooling {mp_test:.3f} -> {mp_shuf:.3f} shuffled, no-attention "
                f"{na_test:.3f} -> {na_shuf:.3f} (3 seeds each; chance is 0.10).")
    why = (f"{measured} Shuffling does not only reorder the tokens: a patch moved to another place "
           "is added to the E_pos row of its NEW place, so the tokens themselves change, and an "
           "average (or attention) of other tokens gives another answer. Only \"none\" has tokens "
           f"that move unchanged ({none_test:.3f} -> {none_shuf:.3f}). Why no-attention loses a "
           "little less than mean-pooling the record does not say.")
    options = {
        "a": (f"Tempting: \"none\" survives shuffling, and an average does not depend on the "
              f"order of what it averages. But these tokens are not the same tokens in another "
              f"order: each patch is added to the E_pos row of the place it lands on. {measured}"),
        "b": (f"Without attention no token sees the others, true, but every token still knows its "
              f"OWN place: its E_pos row is added before the MLP, which can read \"this content "
              f"at this place\". Moved, a patch becomes another token. {measured}"),
        "c": (f"Mean-pooling is the course model with an average instead of a class token: it "
              f"keeps E_pos and attention, so it relies on the layout as much as \"learned\" "
              f"({learned_shuf:.3f} shuffled). {measured}"),
        "d": why,
    }
    return choose(answer, options=options, correct="d", why=why,
                  title="Exercise 3 · shuffled images, two more variants")


# --- predict-then-run: the learned table's most similar patch ------------------------------

SIMILAR_QUERY = (5, 3)  # row, column on the 7x7 grid: the centre column, its own mirror


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
    """Predict-then-run: the patch whose learned embedding is most like that of (5, 3).

    ``table``: the trained classifier's learned E_pos, (1, 50, dim) or (49, dim). For the
    shipped classifier the answer is patch 45 = (6, 3), the column neighbour below (0.62; the
    one above, (4, 3), has 0.55). The patch is on the centre column: its mirror is itself.
    """
    r, c = SIMILAR_QUERY
    q = 7 * r + c
    best, _ = most_similar_patch(table, r, c)
    sim = _cosine_map(_patch_table(table))[q]
    others = [int(k) for k in np.argsort(-sim) if k != q]  # most similar first
    br, bc = divmod(best, 7)

    def said(k):
        return (f"patch {k} = (row {k // 7}, column {k % 7}) has similarity {sim[k]:.2f}, "
                f"rank {others.index(k) + 1} of 48")

    up, down = 7 * (r - 1) + c, 7 * (r + 1) + c
    column = {up: down, down: up}
    guesses = [
        ("itself", q, f"Its left-right mirror is itself (column 6 - {c} = {c}), and a patch's "
                      "similarity with itself is 1 by definition: the question asks for ANOTHER "
                      "patch. With the mirror out of play, use Step 5's next rule."),
        ("up_down_mirror", 7 * (6 - r) + c,
         f"The up-down mirror: {said(7 * (6 - r) + c)}. The training flips images left-right "
         f"only, never upside down."),
    ]
    for k in (up, down):
        if k != best:
            guesses.append((f"column_neighbour_{'above' if k == up else 'below'}", k,
                            f"The right kind of patch, a neighbour in the same column (Step 5's "
                            f"second rule): {said(k)}. The other column neighbour, "
                            f"{said(column[k])}, wins; the averages of Step 5 cannot tell which "
                            f"of the two does."))
    for k, side in ((q - 1, "left"), (q + 1, "right")):
        guesses.append((f"row_neighbour_{side}", k,
                        f"That is what a sine-cosine table would say (round blobs), but in this "
                        f"learned table row neighbours come after column neighbours (Step 5's "
                        f"averages: +0.15 against +0.43): {said(k)}."))
    if (br, bc) in ((r - 1, c), (r + 1, c)):
        kind = (f"a neighbour in the same column; the other one, {said(column[best])}. The "
                "patch is its own left-right mirror, so Step 5's second rule decides")
    else:
        kind = "the highest of all"
    return compare_prediction(
        prediction, best, title="Exercise 4 · the most similar position",
        why=f"The answer: {said(best)}: {kind}.",
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
            "vitlib.PositionEmbedding(grid, kind='sincos') does."),
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
