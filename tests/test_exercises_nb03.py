"""Checkers of notebook 03: the solution passes, each usual mistake gets its own hint.

The parameter count is checked against keras.layers.MultiHeadAttention.count_params(),
an independent reference.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from vitlib.exercises import nb03


def split_heads(x, num_heads):
    b, t, d = x.shape
    return np.transpose(np.reshape(x, (b, t, num_heads, d // num_heads)), (0, 2, 1, 3))


def merge_heads(x):
    b, h, t, k = x.shape
    return np.reshape(np.transpose(x, (0, 2, 1, 3)), (b, t, h * k))


def mha_param_count(dim, heads, key_dim):
    qkv = 3 * (dim * heads * key_dim + heads * key_dim)
    return qkv + heads * key_dim * dim + dim


@pytest.mark.single_backend
def test_split_heads_solution_passes():
    fb = nb03.check_split_heads(split_heads)
    assert fb.passed and fb.mistake is None, fb.message


@pytest.mark.single_backend
def test_split_heads_by_slicing_passes():
    """An independent way to write it: slice head_dim-wide blocks of features."""
    def by_slices(x, h):
        k = x.shape[-1] // h
        return np.stack([x[..., i * k:(i + 1) * k] for i in range(h)], axis=1)

    fb = nb03.check_split_heads(by_slices)
    assert fb.passed, fb.message


def test_split_heads_in_keras_ops_passes():
    def with_ops(x, h):
        b, t, d = x.shape
        y = ops.transpose(ops.reshape(ops.convert_to_tensor(x), (b, t, h, d // h)), (0, 2, 1, 3))
        return ops.convert_to_numpy(y)

    fb = nb03.check_split_heads(with_ops)
    assert fb.passed, fb.message


def _split(x, h, order):
    b, t, d = x.shape
    return np.reshape(x, (b, t, h, d // h)).transpose(order)


SPLIT_MISTAKES = {
    "reshape_only": lambda x, h: np.reshape(x, (x.shape[0], h, x.shape[1], x.shape[2] // h)),
    "no_transpose": lambda x, h: _split(x, h, (0, 1, 2, 3)),
    "interleaved": lambda x, h: np.reshape(x, (*x.shape[:2], x.shape[2] // h, h))
    .transpose(0, 3, 1, 2),
    "wrong_axis_order": lambda x, h: _split(x, h, (0, 2, 3, 1)),
    "heads_first": lambda x, h: _split(x, h, (2, 0, 1, 3)),
}


@pytest.mark.single_backend
@pytest.mark.parametrize("name", sorted(SPLIT_MISTAKES))
def test_split_heads_mistakes_get_their_hint(name):
    fb = nb03.check_split_heads(SPLIT_MISTAKES[name])
    assert not fb.passed
    assert fb.mistake == name, fb.message


@pytest.mark.single_backend
def test_merge_heads_solution_and_round_trip():
    assert nb03.check_merge_heads(merge_heads).passed
    x = np.random.default_rng(0).normal(size=(2, 5, 12))
    np.testing.assert_array_equal(merge_heads(split_heads(x, 3)), x)


MERGE_MISTAKES = {
    "reshape_only": lambda x: np.reshape(x, (x.shape[0], x.shape[2], x.shape[1] * x.shape[3])),
    "interleaved": lambda x: np.transpose(x, (0, 2, 3, 1))
    .reshape(x.shape[0], x.shape[2], x.shape[1] * x.shape[3]),
}


@pytest.mark.single_backend
@pytest.mark.parametrize("name", sorted(MERGE_MISTAKES))
def test_merge_heads_mistakes_get_their_hint(name):
    fb = nb03.check_merge_heads(MERGE_MISTAKES[name])
    assert not fb.passed and fb.mistake == name, fb.message


@pytest.mark.parametrize("dim,heads,key_dim", [(16, 4, 4), (24, 3, 8), (64, 4, 64), (12, 2, 6)])
def test_param_count_matches_keras(dim, heads, key_dim):
    layer = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=key_dim)
    x = np.zeros((1, 3, dim), "float32")
    layer(x, x)
    assert mha_param_count(dim, heads, key_dim) == layer.count_params()
    assert nb03.reference_mha_param_count(dim, heads, key_dim) == layer.count_params()


@pytest.mark.single_backend
def test_param_count_solution_passes():
    fb = nb03.check_mha_param_count(mha_param_count)
    assert fb.passed and fb.mistake is None, fb.message


COUNT_MISTAKES = {
    "no_biases": lambda d, h, k: 4 * d * h * k,
    "key_dim_is_dim": lambda d, h, k: mha_param_count(d, h, d),
    "key_dim_is_total": lambda d, h, k: 4 * d * k + 3 * k + d,
    "no_output_projection": lambda d, h, k: 3 * (d * h * k + h * k),
    "no_output_bias": lambda d, h, k: 4 * d * h * k + 3 * h * k,
    "output_bias_per_head": lambda d, h, k: 4 * d * h * k + 4 * h * k,
}


@pytest.mark.single_backend
@pytest.mark.parametrize("name", sorted(COUNT_MISTAKES))
def test_param_count_mistakes_get_their_hint(name):
    fb = nb03.check_mha_param_count(COUNT_MISTAKES[name])
    assert not fb.passed and fb.mistake == name, fb.message


@pytest.mark.single_backend
def test_off_by_one_count_is_rejected():
    fb = nb03.check_mha_param_count(lambda d, h, k: mha_param_count(d, h, k) + 1)
    assert not fb.passed and fb.mistake is None, fb.message


@pytest.mark.single_backend
def test_none_and_errors_are_reported():
    assert "returned None" in nb03.check_split_heads(lambda x, h: None).message
    assert "raised" in nb03.check_merge_heads(lambda x: x.reshape(7, 7)).message
    assert "wrong shape" in nb03.check_split_heads(lambda x, h: x).message


# ---------------------------------------------------------------- predict-then-run (Exercises 4, 5)

def _keras_count(dim, heads, key_dim):
    layer = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=key_dim)
    x = np.zeros((1, 2, dim), "float32")
    layer(x, x)
    return layer.count_params()


def test_fixed_key_dim_prediction_right_and_each_slip():
    right = _keras_count(64, 8, 16)
    assert right == mha_param_count(64, 8, 16) == 33_216
    fb = nb03.check_fixed_key_dim_prediction(right)
    assert fb.passed and "33,216" in fb.message, fb.message
    slips = {"heads_split_width": _keras_count(64, 4, 16),
             "doubled_everything": 2 * _keras_count(64, 4, 16),
             "no_biases": 4 * 64 * 8 * 16,
             "eight_times_key_dim_is_d": _keras_count(64, 8, 64)}
    for name, value in slips.items():
        fb = nb03.check_fixed_key_dim_prediction(value)
        assert not fb.passed and fb.mistake == name, (name, fb.message)
    fb = nb03.check_fixed_key_dim_prediction(33_217)
    assert not fb.passed and fb.mistake is None
    assert "not answered yet" in nb03.check_fixed_key_dim_prediction(None).message


def test_attention_weights_prediction_right_and_each_slip():
    tokens = (224 // 16) ** 2 + 1
    heads = 12
    fb = nb03.check_attention_weights_prediction(heads * tokens * tokens)
    assert fb.passed and "465,708" in fb.message, fb.message
    slips = {"one_head": tokens * tokens,
             "no_class_token": heads * (tokens - 1) ** 2,
             "no_self_pairs": heads * tokens * (tokens - 1),
             "unordered_pairs": heads * tokens * (tokens - 1) // 2,
             "per_head_dim": heads * tokens * tokens * 64}
    for name, value in slips.items():
        fb = nb03.check_attention_weights_prediction(value)
        assert not fb.passed and fb.mistake == name, (name, fb.message)
    assert "not answered yet" in nb03.check_attention_weights_prediction(None).message
    assert nb03.check_attention_weights_prediction("465708").mistake == "not_a_number"


# ---------------------------------------------------------------- transfer: split_qkv (Exercise 6)

def split_qkv(x, num_heads):
    dim = x.shape[-1] // 3
    return tuple(split_heads(x[..., i * dim:(i + 1) * dim], num_heads) for i in range(3))


@pytest.mark.single_backend
def test_split_qkv_solution_passes_and_matches_keras_layout():
    fb = nb03.check_split_qkv(split_qkv)
    assert fb.passed and fb.mistake is None, fb.message
    # the layout is that of a fused Eq. (5) projection: [z U_q | z U_k | z U_v]
    rng = np.random.default_rng(1)
    z, u = rng.normal(size=(2, 5, 8)), [rng.normal(size=(8, 8)) for _ in range(3)]
    q, k, v = split_qkv(z @ np.concatenate(u, axis=1), 2)
    for got, ui in zip((q, k, v), u, strict=True):
        np.testing.assert_allclose(got, split_heads(z @ ui, 2))


@pytest.mark.single_backend
def test_split_heads_pasted_unchanged_fails_split_qkv():
    fb = nb03.check_split_qkv(split_heads)
    assert not fb.passed and fb.mistake == "split_heads_unchanged", fb.message


def _thirds(y):
    return y[0], y[1], y[2]


QKV_MISTAKES = {
    "per_head_layout": lambda x, h: _thirds(np.moveaxis(
        x.reshape(*x.shape[:2], h, 3, -1), 3, 0).transpose(0, 1, 3, 2, 4)),
    "every_third": lambda x, h: tuple(split_heads(x[..., i::3], h) for i in range(3)),
    "no_transpose": lambda x, h: tuple(x[..., i * (x.shape[-1] // 3):(i + 1) * (x.shape[-1] // 3)]
                                       .reshape(*x.shape[:2], h, -1) for i in range(3)),
    "reshape_only": lambda x, h: _thirds(np.moveaxis(
        x.reshape(x.shape[0], 3, h, x.shape[1], -1), 1, 0)),
}


@pytest.mark.single_backend
@pytest.mark.parametrize("name", sorted(QKV_MISTAKES))
def test_split_qkv_mistakes_get_their_hint(name):
    fb = nb03.check_split_qkv(QKV_MISTAKES[name])
    assert not fb.passed and fb.mistake == name, fb.message


@pytest.mark.single_backend
def test_split_qkv_stub_and_stacked_array_are_reported():
    def stub(x, h):
        raise NotImplementedError("Exercise")

    assert "not written yet" in nb03.check_split_qkv(stub).message
    fb = nb03.check_split_qkv(lambda x, h: np.stack(split_qkv(x, h)))
    assert not fb.passed and fb.mistake is None


# ---------------------------------------------------------------- transfer: cross-attention (Exercise 4)

def cross_attention_param_count(query_dim, kv_dim, heads, key_dim):
    # written as a learner would: one projection at a time
    w = heads * key_dim
    q = query_dim * w + w
    k = kv_dim * w + w
    v = kv_dim * w + w
    out = w * query_dim + query_dim
    return q + k + v + out


@pytest.mark.parametrize("query_dim,kv_dim,heads,key_dim", [(64, 32, 4, 16), (16, 40, 2, 4),
                                                             (768, 512, 12, 64)])
def test_cross_attention_count_matches_keras(query_dim, kv_dim, heads, key_dim):
    layer = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=key_dim)
    layer(np.zeros((1, 3, query_dim), "float32"), np.zeros((1, 5, kv_dim), "float32"))
    assert cross_attention_param_count(query_dim, kv_dim, heads, key_dim) == layer.count_params()
    assert (nb03.reference_cross_attention_param_count(query_dim, kv_dim, heads, key_dim)
            == layer.count_params())


@pytest.mark.single_backend
def test_cross_attention_solution_passes():
    fb = nb03.check_cross_attention_param_count(cross_attention_param_count)
    assert fb.passed and fb.mistake is None, fb.message


@pytest.mark.single_backend
def test_self_attention_formula_pasted_unchanged_fails_cross_attention():
    fb = nb03.check_cross_attention_param_count(lambda q, kv, h, k: mha_param_count(q, h, k))
    assert not fb.passed and fb.mistake == "self_attention_formula", fb.message


def _cross(q_from, k_from, v_from, out_to):
    def count(q, kv, h, k):
        dims = {"q": q, "kv": kv}
        w = h * k
        return (dims[q_from] * w + w + dims[k_from] * w + w + dims[v_from] * w + w
                + w * dims[out_to] + dims[out_to])
    return count


CROSS_MISTAKES = {
    "kv_dim_everywhere": lambda q, kv, h, k: mha_param_count(kv, h, k),
    "output_to_kv": _cross("q", "kv", "kv", "kv"),
    "value_from_query": _cross("q", "kv", "q", "q"),
    "no_biases": lambda q, kv, h, k: q * h * k + 2 * kv * h * k + h * k * q,
    "key_dim_is_total": lambda q, kv, h, k: cross_attention_param_count(q, kv, 1, k),
}


@pytest.mark.single_backend
@pytest.mark.parametrize("name", sorted(CROSS_MISTAKES))
def test_cross_attention_mistakes_get_their_hint(name):
    fb = nb03.check_cross_attention_param_count(CROSS_MISTAKES[name])
    assert not fb.passed and fb.mistake == name, fb.message


@pytest.mark.single_backend
def test_cross_attention_stub_and_off_by_one():
    def stub(q, kv, h, k):
        raise NotImplementedError("Exercise")

    assert "not written yet" in nb03.check_cross_attention_param_count(stub).message
    fb = nb03.check_cross_attention_param_count(
        lambda q, kv, h, k: cross_attention_param_count(q, kv, h, k) + 1)
    assert not fb.passed and fb.mistake is None
