"""The layers beyond classification (#21), each against an independent computation.

- cross-attention = keras.layers.MultiHeadAttention(x, context) with the same weights;
- axial attention = full attention with the same-row, then the same-column mask (1e-5);
- the causal mask: an output never depends on a later token;
- Set Transformer: SAB and ISAB are permutation equivariant, PMA invariant;
- every layer survives .keras save/load and rebuilds from get_config.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from vitlib.attention import MultiHeadSelfAttention, causal_mask
from vitlib.axial import AxialAttention, axial_masks
from vitlib.cross_attention import LearnedQueries, MultiHeadCrossAttention
from vitlib.sets import (
    InducedSetAttentionBlock,
    MultiheadAttentionBlock,
    PoolingByAttention,
    SetAttentionBlock,
)

RNG = np.random.default_rng(0)


def _np(x):
    return ops.convert_to_numpy(x)


def _x(*shape):
    return RNG.normal(size=shape).astype("float32")


def test_cross_attention_equals_keras_multi_head_attention():
    x, context = _x(2, 5, 16), _x(2, 9, 12)
    mha = keras.layers.MultiHeadAttention(num_heads=4, key_dim=4)
    want, want_w = mha(x, context, return_attention_scores=True)
    ours = MultiHeadCrossAttention(4)
    ours.build(x.shape, context.shape)
    ours.set_weights(mha.get_weights())
    got, got_w = ours(x, context, return_attention_scores=True)
    assert got.shape == (2, 5, 16) and got_w.shape == (2, 4, 5, 9)
    np.testing.assert_allclose(_np(got), _np(want), atol=1e-5)
    np.testing.assert_allclose(_np(got_w), _np(want_w), atol=1e-6)


def test_cross_attention_mask_and_errors():
    x, context = _x(1, 3, 8), _x(1, 6, 8)
    layer = MultiHeadCrossAttention(2)
    mask = np.zeros((1, 3, 6), bool)
    mask[..., :2] = True  # every query may see the first two context tokens only
    _, w = layer(x, context, mask=mask, return_attention_scores=True)
    assert np.all(_np(w)[..., 2:] == 0) and np.allclose(_np(w).sum(-1), 1, atol=1e-6)
    with pytest.raises(ValueError, match="num_heads"):
        MultiHeadCrossAttention(3)(x, context)
    with pytest.raises(ValueError, match="mask"):
        layer(x, context, mask=np.ones((1, 3, 5), bool))


def test_learned_queries_are_shared_across_the_batch():
    q = LearnedQueries(7, 16)
    out = _np(q(_x(3, 49, 16)))
    assert out.shape == (3, 7, 16) and np.array_equal(out[0], out[2])
    with pytest.raises(ValueError, match="count"):
        LearnedQueries(0, 16)


def test_axial_attention_is_full_attention_with_row_then_column_masks():
    rows, cols, dim = 3, 5, 8
    x = _x(2, rows * cols, dim)
    layer = AxialAttention(2, (rows, cols))
    got = _np(layer(x))
    same_row, same_col = axial_masks(rows, cols)
    # The same two attention layers, applied to the whole grid with masks.
    full_rows = MultiHeadSelfAttention(2)
    full_cols = MultiHeadSelfAttention(2)
    full_rows.build(x.shape)
    full_cols.build(x.shape)
    full_rows.set_weights(layer.row_attention.get_weights())
    full_cols.set_weights(layer.column_attention.get_weights())
    want = full_cols(full_rows(x, mask=same_row[None]), mask=same_col[None])
    np.testing.assert_allclose(got, _np(want), atol=1e-5)


def test_axial_masks_and_grid_errors():
    same_row, same_col = axial_masks(2, 3)
    assert same_row.shape == (6, 6) and same_row.sum() == 2 * 9 and same_col.sum() == 3 * 4
    assert same_row[0, 2] and not same_row[0, 3] and same_col[0, 3] and not same_col[0, 1]
    with pytest.raises(ValueError, match="grid"):
        AxialAttention(2, (3, 4))(_x(1, 13, 8))


def test_causal_mask_outputs_never_depend_on_later_tokens():
    x = _x(1, 6, 8)
    layer = MultiHeadSelfAttention(2)
    mask = causal_mask(6)[None]
    before = _np(layer(x, mask=mask))
    x2 = x.copy()
    x2[:, 4:] += 10.0  # change the last two tokens
    after = _np(layer(x2, mask=mask))
    np.testing.assert_allclose(after[:, :4], before[:, :4], atol=1e-6)
    assert not np.allclose(after[:, 4:], before[:, 4:])
    assert np.array_equal(_np(causal_mask(3)), np.tril(np.ones((3, 3), bool)))


@pytest.mark.parametrize("make", [lambda: SetAttentionBlock(2),
                                  lambda: InducedSetAttentionBlock(2, num_inducing=3)],
                         ids=["SAB", "ISAB"])
def test_set_blocks_are_permutation_equivariant(make):
    x = _x(2, 7, 8)
    perm = RNG.permutation(7)
    layer = make()
    np.testing.assert_allclose(_np(layer(x[:, perm])), _np(layer(x))[:, perm], atol=1e-5)


def test_pooling_by_attention_is_permutation_invariant_unlike_a_position_aware_model():
    z = _x(2, 7, 8)
    pma = PoolingByAttention(2, num_seeds=2)
    out = _np(pma(z))
    assert out.shape == (2, 2, 8)
    np.testing.assert_allclose(_np(pma(z[:, RNG.permutation(7)])), out, atol=1e-5)
    # The test can fail: with a position added to each element the pooling sees the order.
    pos = _x(1, 7, 8)
    assert not np.allclose(_np(pma(z[:, ::-1] + pos)), _np(pma(z + pos)), atol=1e-3)


@pytest.mark.parametrize("name", ["cross", "queries", "axial", "mab", "sab", "isab", "pma"])
def test_save_load_and_config(tmp_path, name):
    x = _x(2, 12, 8)
    layer = {"cross": lambda: MultiHeadCrossAttention(2), "queries": lambda: LearnedQueries(3, 8),
             "axial": lambda: AxialAttention(2, (3, 4)), "mab": lambda: MultiheadAttentionBlock(2),
             "sab": lambda: SetAttentionBlock(2), "isab": lambda: InducedSetAttentionBlock(2, 4),
             "pma": lambda: PoolingByAttention(2, 3)}[name]()
    inputs = keras.Input((12, 8))
    out = layer(inputs, inputs) if name in ("cross", "mab") else layer(inputs)
    model = keras.Model(inputs, out)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    again = keras.models.load_model(path)
    np.testing.assert_allclose(_np(again(x)), _np(model(x)), atol=1e-6)
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
