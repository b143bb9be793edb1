"""vitlib.attention: scaled dot-product attention (Vaswani Eq. 1) and multi-head self-attention.

References: softmax(QK^T / sqrt(d)) V written out in NumPy, and ``keras.layers.MultiHeadAttention``.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from vitlib import MultiHeadSelfAttention, scaled_dot_product_attention


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_attention(q, k, v):
    """NumPy reference: softmax(Q K^T / sqrt(d_k)) V, float64."""
    q, k, v = (np.asarray(t, np.float64) for t in (q, k, v))
    w = np_softmax(q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1]))
    return w @ v, w


def _qkv(shape_q=(2, 3, 5, 8), keys=6, dv=4, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=shape_q).astype("float32")
    k = rng.normal(size=(*shape_q[:-2], keys, shape_q[-1])).astype("float32")
    v = rng.normal(size=(*shape_q[:-2], keys, dv)).astype("float32")
    return q, k, v


def test_sdpa_matches_numpy_and_rows_sum_to_one():
    q, k, v = _qkv()
    out, w = (ops.convert_to_numpy(t) for t in scaled_dot_product_attention(q, k, v))
    ref_out, ref_w = np_attention(q, k, v)
    assert out.shape == (2, 3, 5, 4) and w.shape == (2, 3, 5, 6)
    np.testing.assert_allclose(w, ref_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-6)
    assert (w >= 0).all()


def test_sdpa_mask_blocks_keys():
    q, k, v = _qkv(shape_q=(2, 5, 8), keys=6)
    rng = np.random.default_rng(1)
    mask = rng.random((2, 5, 6)) < 0.5
    mask[..., 0] = True  # every query may attend to at least one key
    out, w = (ops.convert_to_numpy(t) for t in scaled_dot_product_attention(q, k, v, mask))
    assert w[~mask].max() < 1e-6  # masked keys get (numerically) zero weight
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-6)
    # Each output row equals attention over the unmasked keys only.
    for b in range(2):
        for i in range(5):
            keep = mask[b, i]
            ref_o, ref_w = np_attention(q[b, i:i + 1], k[b, keep], v[b, keep])
            np.testing.assert_allclose(out[b, i], ref_o[0], rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(w[b, i, keep], ref_w[0], rtol=1e-5, atol=1e-6)


def test_sdpa_mask_broadcasts_over_batch():
    q, k, v = _qkv(shape_q=(2, 3, 4, 8), keys=4)
    causal = np.tril(np.ones((4, 4), bool))
    _, w = scaled_dot_product_attention(q, k, v, causal)
    w = ops.convert_to_numpy(w)
    assert np.abs(w[..., ~causal]).max() < 1e-6
    np.testing.assert_allclose(w[..., 0, 0], 1.0, atol=1e-6)  # the first query sees only key 0


# ---------------------------------------------------------------------------------------------
# Multi-head self-attention vs keras.layers.MultiHeadAttention

B, T, D, H = 3, 5, 16, 4  # batch 3 != heads 4, so batch and head axes cannot be confused


@pytest.fixture(scope="module")
def pair():
    """A Keras MHA with random (non-zero) weights and a vitlib MHSA with the same weights."""
    x = np.random.default_rng(0).normal(size=(B, T, D)).astype("float32")
    mha = keras.layers.MultiHeadAttention(num_heads=H, key_dim=D // H)
    mha(x, x)
    rng = np.random.default_rng(1)
    mha.set_weights([rng.normal(scale=0.3, size=w.shape).astype("float32")
                     for w in mha.get_weights()])  # non-zero biases too
    ours = MultiHeadSelfAttention(H)
    ours.build((None, T, D))
    ours.set_weights(mha.get_weights())
    return mha, ours, x


def test_weight_shapes_equal_keras(pair):
    mha, ours, _ = pair
    assert [tuple(w.shape) for w in ours.get_weights()] == \
        [tuple(w.shape) for w in mha.get_weights()]
    assert [tuple(w.shape) for w in ours.get_weights()] == \
        [(D, H, D // H), (H, D // H)] * 3 + [(H, D // H, D), (D,)]


def test_output_and_scores_equal_keras(pair):
    mha, ours, x = pair
    ours.set_weights(mha.get_weights())
    ref, ref_scores = mha(x, x, return_attention_scores=True)
    out, scores = ours(x, return_attention_scores=True)
    assert tuple(scores.shape) == (B, H, T, T)
    np.testing.assert_allclose(ops.convert_to_numpy(out), ops.convert_to_numpy(ref), atol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(scores), ops.convert_to_numpy(ref_scores),
                               atol=1e-5)
    fused = ours(x)  # no scores requested: keras.ops.dot_product_attention
    np.testing.assert_allclose(ops.convert_to_numpy(fused), ops.convert_to_numpy(ref), atol=1e-5)


def test_output_equals_numpy_heads(pair):
    """MSA(z) = [SA_1(z); ...; SA_k(z)] U_msa, written out head by head in NumPy."""
    mha, ours, x = pair
    ours.set_weights(mha.get_weights())
    wq, bq, wk, bk, wv, bv, wo, bo = (np.asarray(w, np.float64) for w in mha.get_weights())
    heads = []
    for h in range(H):
        q, k, v = x @ wq[:, h] + bq[h], x @ wk[:, h] + bk[h], x @ wv[:, h] + bv[h]
        heads.append(np_attention(q, k, v)[0])  # (B, T, D/H)
    ref = np.concatenate(heads, -1) @ wo.reshape(D, D) + bo
    np.testing.assert_allclose(ops.convert_to_numpy(ours(x)), ref, atol=1e-5)


@pytest.mark.parametrize("mask_rank", [2, 3, 4])
def test_mask_equals_keras_attention_mask_and_fused_path(pair, mask_rank):
    mha, ours, x = pair
    ours.set_weights(mha.get_weights())
    rng = np.random.default_rng(mask_rank)
    full = rng.random((B, T, T)) < 0.6
    full[..., 2] = True  # no fully masked row
    if mask_rank == 2:
        full[:] = full[0]
        mask = full[0]  # (queries, keys), the same for every image
    elif mask_rank == 3:
        mask = full  # (batch, queries, keys)
    else:
        mask = full[:, None]  # (batch, 1, queries, keys)
    ref, ref_scores = mha(x, x, attention_mask=full, return_attention_scores=True)
    ref, ref_scores = ops.convert_to_numpy(ref), ops.convert_to_numpy(ref_scores)
    out, scores = (ops.convert_to_numpy(t) for t in
                   ours(x, mask=mask, return_attention_scores=True))
    np.testing.assert_allclose(out, ref, atol=1e-5)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
    assert scores[np.broadcast_to(~full[:, None], scores.shape)].max() < 1e-6
    fused = ops.convert_to_numpy(ours(x, mask=mask))
    np.testing.assert_allclose(fused, out, atol=1e-5)
    # The mask matters: without it the output is different.
    assert np.abs(ops.convert_to_numpy(ours(x)) - out).max() > 1e-3


def test_fused_equals_explicit_without_mask(pair):
    _, ours, x = pair
    fused = ops.convert_to_numpy(ours(x))  # keras.ops.dot_product_attention
    explicit, w = ours(x, return_attention_scores=True)  # scaled_dot_product_attention
    np.testing.assert_allclose(fused, ops.convert_to_numpy(explicit), atol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(w).sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_fully_masked_row_is_uniform_not_nan(dtype):
    """A row with every key masked gets (numerically) uniform weights, also in float16, where a
    mask value of -1e9 would overflow to -inf and softmax would return NaN."""
    q = k = v = np.ones((1, 3, 4), dtype)
    mask = np.array([[[True, True, False], [False, False, False], [True, False, True]]])
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    weights = ops.convert_to_numpy(weights).astype("float64")
    assert np.all(np.isfinite(weights)) and np.all(np.isfinite(ops.convert_to_numpy(out)))
    np.testing.assert_allclose(weights[0, 1], np.full(3, 1 / 3), atol=1e-3)
    np.testing.assert_allclose(weights[0, 0], [0.5, 0.5, 0.0], atol=1e-3)


def test_query_key_value_and_output_kernels_start_independent():
    """One shared unseeded Keras initializer returns the same values at every call: the four
    kernels must not start equal (W_Q = W_K would make every token its own best match)."""
    keras.utils.set_random_seed(0)
    layer = MultiHeadSelfAttention(num_heads=2)
    layer.build((None, 5, 8))
    kernels = [ops.convert_to_numpy(w).ravel() for w in
               (layer.query_kernel, layer.key_kernel, layer.value_kernel, layer.output_kernel)]
    for i in range(4):
        for j in range(i + 1, 4):
            assert not np.allclose(kernels[i], kernels[j]), (i, j)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="a TensorFlow graph")
@pytest.mark.parametrize("scores", [False, True])
def test_mask_in_a_graph_with_unknown_lengths(scores):
    """In a tf.function whose batch and token counts are unknown, the mask's shape check compares
    only known sizes (it used to test a symbolic size as a Python bool) and the output is the eager
    one; where the token count is known, a mask that cannot fit is still refused by name."""
    import tensorflow as tf

    from vitlib.attention import causal_mask

    layer = MultiHeadSelfAttention(num_heads=2)
    x = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")
    mask = causal_mask(5)
    eager = layer(x, mask=mask, return_attention_scores=scores)
    graph = tf.function(lambda x, m: layer(x, mask=m, return_attention_scores=scores),
                        input_signature=[tf.TensorSpec((None, None, 8)),
                                         tf.TensorSpec((None, None), tf.bool)])
    for e, g in zip(tf.nest.flatten(eager), tf.nest.flatten(graph(x, mask)), strict=True):
        np.testing.assert_allclose(ops.convert_to_numpy(g), ops.convert_to_numpy(e), atol=1e-6)
    wrong = tf.function(lambda x: layer(x, mask=np.ones((4, 4), bool)),
                        input_signature=[tf.TensorSpec((None, 5, 8))])
    with pytest.raises(ValueError, match="`mask` must broadcast"):
        wrong(x)
