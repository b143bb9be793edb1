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
