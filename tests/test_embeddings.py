"""vitlib.embeddings: class token, position embeddings and their resizing (ViT Eq. 1, Sec. 3.2).

References: the MAE sine-cosine recipe and a direct formula written out in NumPy, a NumPy
bilinear interpolation (half-pixel centres, clamped edges), hand-computed tiny cases.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from vitlib import ClassToken, PositionEmbedding, resize_position_embedding, sincos_1d, sincos_2d

# ---------------------------------------------------------------------------------------------
# Class token


def test_class_token_prepends_the_same_learned_vector():
    layer = ClassToken()
    x = np.random.default_rng(0).normal(size=(3, 5, 4)).astype("float32")
    out = ops.convert_to_numpy(layer(x))
    assert out.shape == (3, 6, 4)
    np.testing.assert_array_equal(out[:, 0], np.zeros((3, 4)))  # zero init, as in ViT
    token = np.array([1.0, -2.0, 3.0, 0.5], "float32")
    layer.set_weights([token[None, None]])
    out = ops.convert_to_numpy(layer(x))
    np.testing.assert_array_equal(out[:, 0], np.tile(token, (3, 1)))
    np.testing.assert_array_equal(out[:, 1:], x)
    assert [w.shape for w in layer.trainable_weights] == [(1, 1, 4)]


# ---------------------------------------------------------------------------------------------
# Sine-cosine tables


def mae_get_2d_sincos_pos_embed(embed_dim: int, grid_size: int) -> np.ndarray:
    """MAE's recipe (facebookresearch/mae, util/pos_embed.py), written out unchanged.

    Note: MAE's meshgrid(grid_w, grid_h) makes grid[0] the *column* index, so MAE's first
    half encodes the column and the second half the row.
    """
    def get_1d(embed_dim, pos):
        omega = np.arange(embed_dim // 2, dtype=np.float64)
        omega /= embed_dim / 2.0
        omega = 1.0 / 10000**omega
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    grid_h = np.arange(grid_size, dtype=np.float32)
    grid_w = np.arange(grid_size, dtype=np.float32)
    grid = np.stack(np.meshgrid(grid_w, grid_h), axis=0).reshape([2, 1, grid_size, grid_size])
    emb_h = get_1d(embed_dim // 2, grid[0])
    emb_w = get_1d(embed_dim // 2, grid[1])
    return np.concatenate([emb_h, emb_w], axis=1)


def direct_sincos_2d(rows: int, cols: int, dim: int) -> np.ndarray:
    """Token (r, c), row-major: [sin(r w_k), cos(r w_k), sin(c w_k), cos(c w_k)],
    w_k = 10000^(-k / (dim/4)), k = 0 .. dim/4 - 1, one value at a time."""
    q = dim // 4
    out = np.zeros((rows * cols, dim))
    for r in range(rows):
        for c in range(cols):
            for k in range(q):
                w = 10000.0 ** (-k / q)
                out[r * cols + c, [k, q + k, 2 * q + k, 3 * q + k]] = [
                    np.sin(r * w), np.cos(r * w), np.sin(c * w), np.cos(c * w)]
    return out


def test_sincos_1d_is_vaswani_formula():
    # PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(...), with sines first.
    pos, d = np.arange(7), 8
    got = sincos_1d(pos, d)
    for i in range(d // 2):
        np.testing.assert_allclose(got[:, i], np.sin(pos / 10000 ** (2 * i / d)), atol=1e-12)
        np.testing.assert_allclose(got[:, d // 2 + i], np.cos(pos / 10000 ** (2 * i / d)), atol=1e-12)


def test_sincos_2d_matches_direct_formula_non_square():
    got = sincos_2d((3, 5), 16)
    assert got.shape == (15, 16) and got.dtype == np.float32
    np.testing.assert_allclose(got, direct_sincos_2d(3, 5, 16), atol=1e-6)


def test_sincos_2d_matches_mae_recipe():
    g, d = 6, 32
    mae = mae_get_2d_sincos_pos_embed(d, g)
    got = sincos_2d(g, d)
    # vitlib puts the row in the first half, MAE the column: the halves are swapped.
    np.testing.assert_allclose(got, np.concatenate([mae[:, d // 2:], mae[:, :d // 2]], 1), atol=1e-6)
    assert np.abs(got - mae).max() > 0.1  # the comparison above can fail


def test_position_embedding_sincos_layer():
    layer = PositionEmbedding((2, 3), kind="sincos", num_prefix_tokens=1)
    x = np.random.default_rng(0).normal(size=(2, 7, 8)).astype("float32")
    out = ops.convert_to_numpy(layer(x))
    table = np.concatenate([np.zeros((1, 8)), direct_sincos_2d(2, 3, 8)])  # class token: zeros
    np.testing.assert_allclose(out, x + table[None], atol=1e-6)
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 1


def test_position_embedding_none_adds_nothing():
    layer = PositionEmbedding((2, 2), kind="none", num_prefix_tokens=0)
    x = np.random.default_rng(0).normal(size=(2, 4, 6)).astype("float32")
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x)), x)
    assert layer.weights == []


def test_position_embedding_learned_init_std_and_addition():
    keras.utils.set_random_seed(0)
    layer = PositionEmbedding((16, 16), kind="learned", num_prefix_tokens=1)
    x = np.zeros((1, 1 + 16 * 16, 256), "float32")
    out = ops.convert_to_numpy(layer(x))
    table = ops.convert_to_numpy(layer.embedding)
    assert table.shape == (1, 257, 256)
    assert [tuple(w.shape) for w in layer.trainable_weights] == [(1, 257, 256)]
    # 65,792 draws from N(0, 0.02^2): the sample std is within ~6e-5 (1 sigma) of 0.02.
    assert abs(table.std() - 0.02) < 5e-4, table.std()
    assert abs(table.mean()) < 5e-4
    np.testing.assert_array_equal(out, table)  # zeros + E_pos
    x2 = np.random.default_rng(1).normal(size=(2, 257, 256)).astype("float32")
    np.testing.assert_allclose(ops.convert_to_numpy(layer(x2)), x2 + table, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Resizing (Sec. 3.2: "2D interpolation of the pre-trained position embeddings")


def numpy_bilinear(grid: np.ndarray, new_h: int, new_w: int) -> np.ndarray:
    """(h, w, d) -> (new_h, new_w, d): bilinear, half-pixel centres, edges clamped, no antialias."""
    def axis_resize(x, n_out, axis):
        n_in = x.shape[axis]
        src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        i0 = np.floor(src).astype(int)
        i1 = np.minimum(i0 + 1, n_in - 1)
        t = (src - i0).reshape([-1 if a == axis else 1 for a in range(x.ndim)])
        return np.take(x, i0, axis=axis) * (1 - t) + np.take(x, i1, axis=axis) * t
    return axis_resize(axis_resize(grid, new_h, 0), new_w, 1)


def _embedding(rows, cols, dim, prefix=1, seed=0):
    return np.random.default_rng(seed).normal(size=(1, prefix + rows * cols, dim)).astype("float32")


def test_resize_keeps_class_token_exactly_and_shape():
    emb = _embedding(4, 4, 6)
    out = ops.convert_to_numpy(resize_position_embedding(emb, (7, 5)))
    assert out.shape == (1, 1 + 35, 6)
    np.testing.assert_array_equal(out[:, 0], emb[:, 0])


def test_resize_to_same_grid_is_identity():
    emb = _embedding(3, 5, 4)
    out = ops.convert_to_numpy(resize_position_embedding(emb, (3, 5), old_grid=(3, 5)))
    np.testing.assert_array_equal(out, emb)
    emb0 = _embedding(4, 4, 4, prefix=0)
    np.testing.assert_array_equal(
        ops.convert_to_numpy(resize_position_embedding(emb0, 4, num_prefix_tokens=0)), emb0)


def test_resize_hand_computed_2x2_to_4x4():
    # One channel, grid [[0, 4], [8, 12]]. With half-pixel centres the new sample points are
    # at -0.25, 0.25, 0.75, 1.25 (clamped to 0 and 1): weights 1, 3/4-1/4, 1/4-3/4, 1.
    grid = np.array([[0.0, 4.0], [8.0, 12.0]], "float32")
    emb = np.concatenate([[[[99.0]]], grid.reshape(1, 4, 1)], axis=1)
    out = ops.convert_to_numpy(resize_position_embedding(emb, (4, 4)))
    expected = np.array([[0, 1, 3, 4], [2, 3, 5, 6], [6, 7, 9, 10], [8, 9, 11, 12]], "float32")
    np.testing.assert_allclose(out[0, 1:, 0].reshape(4, 4), expected, atol=1e-5)
    assert out[0, 0, 0] == 99.0


def test_resize_linear_ramp_stays_linear():
    # A ramp along the rows (constant along the columns) stays constant along the columns,
    # increasing along the rows, and linear away from the clamped edges.
    rows = np.arange(8, dtype="float32")
    grid = np.broadcast_to(rows[:, None, None] * np.array([1.0, -2.0], "float32"), (8, 8, 2))
    emb = np.concatenate([np.zeros((1, 1, 2), "float32"), grid.reshape(1, 64, 2)], axis=1)
    out = ops.convert_to_numpy(resize_position_embedding(emb, (16, 12)))[0, 1:].reshape(16, 12, 2)
    np.testing.assert_allclose(out, np.broadcast_to(out[:, :1], out.shape), atol=1e-5)  # constant along columns
    col = out[:, 0, 0]
    assert np.all(np.diff(col) >= -1e-6)
    # Interior samples (rows 1..14) are at (i + 0.5) / 2 - 0.5 in the old grid.
    np.testing.assert_allclose(col[1:15], (np.arange(1, 15) + 0.5) / 2 - 0.5, atol=1e-5)
    np.testing.assert_allclose(out[..., 1], -2 * out[..., 0], atol=1e-5)
    assert col.min() >= 0 - 1e-6 and col.max() <= 7 + 1e-6  # no overshoot


@pytest.mark.parametrize("old, new", [((3, 3), (5, 7)), ((6, 6), (4, 4)), ((4, 6), (8, 3))])
def test_resize_matches_numpy_bilinear(old, new):
    emb = _embedding(*old, 5, seed=3)
    out = ops.convert_to_numpy(resize_position_embedding(emb, new, old_grid=old))
    ref = numpy_bilinear(emb[0, 1:].reshape(*old, 5), *new).reshape(1, -1, 5)
    np.testing.assert_allclose(out[:, 1:], ref, atol=1e-5)
    np.testing.assert_array_equal(out[:, :1], emb[:, :1])


def test_resize_constant_embedding_stays_constant():
    emb = np.full((1, 1 + 25, 3), 0.7, "float32")
    out = ops.convert_to_numpy(resize_position_embedding(emb, (9, 2)))
    np.testing.assert_allclose(out, 0.7, atol=1e-6)
