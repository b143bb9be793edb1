"""Checkers of notebook 02: the solution passes, each usual mistake gets its own hint.

The reference here is written independently of vitlib.exercises (plain NumPy, and one
solution in keras.ops), so a wrong reference in the checker would make these tests fail.
"""

from __future__ import annotations

import numpy as np
import pytest
from keras import ops

from vitlib.exercises import nb02

pytestmark = pytest.mark.single_backend


def softmax(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def attention(q, k, v, mask):
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    w = softmax(np.where(mask, scores, -np.inf), axis=-1)
    return w @ v


def attention_keras_ops(q, k, v, mask):
    q, k, v = (ops.convert_to_tensor(np.asarray(t, "float32")) for t in (q, k, v))
    scores = ops.matmul(q, ops.transpose(k)) / np.sqrt(q.shape[-1])
    w = ops.softmax(ops.where(mask, scores, -1e9), axis=-1)
    return ops.convert_to_numpy(ops.matmul(w, v))


def test_softmax_solution_passes():
    fb = nb02.check_softmax(softmax)
    assert fb.passed and fb.mistake is None, fb.message
    assert "✅" in fb.message


def test_keras_ops_softmax_passes():
    fb = nb02.check_softmax(lambda x, axis=-1: ops.convert_to_numpy(
        ops.softmax(ops.convert_to_tensor(np.asarray(x, "float32")), axis=axis)))
    assert fb.passed, fb.message


SOFTMAX_MISTAKES = {
    "ignored_axis": lambda x, axis=-1: softmax(x, axis=-1),
    "first_axis": lambda x, axis=-1: softmax(x, axis=0),
    "no_normalisation": lambda x, axis=-1: np.exp(x),
    "sum_over_everything": lambda x, axis=-1: np.exp(x) / np.sum(np.exp(x)),
    "no_keepdims": lambda x, axis=-1: np.exp(x) / np.sum(np.exp(x), axis=axis),
}


@pytest.mark.parametrize("name", sorted(SOFTMAX_MISTAKES))
def test_softmax_mistakes_get_their_hint(name):
    fb = nb02.check_softmax(SOFTMAX_MISTAKES[name])
    assert not fb.passed
    assert fb.mistake == name, fb.message
    assert fb.message.startswith("❌ softmax:")


def test_softmax_global_max_gets_its_own_hint():
    """x - x.max() (over the whole array) is exact on ordinary scores and on all-large scores,
    but rows of very different scales underflow to 0 / 0."""
    def global_max(x, axis=-1):
        e = np.exp(x - x.max())
        return e / e.sum(axis=axis, keepdims=True)

    fb = nb02.check_softmax(global_max)
    assert not fb.passed and fb.mistake == "global_max", fb.message
    assert "subtract the max along `axis`, with keepdims" in fb.message.lower()


def test_softmax_without_max_subtraction_overflows():
    def naive(x, axis=-1):
        e = np.exp(x)
        return e / e.sum(axis=axis, keepdims=True)

    fb = nb02.check_softmax(naive)
    assert not fb.passed and fb.mistake == "overflow", fb.message
    assert "Subtract the maximum" in fb.message


def test_attention_solution_passes():
    fb = nb02.check_attention(attention)
    assert fb.passed and fb.mistake is None, fb.message


def test_attention_in_keras_ops_and_vitlib_pass():
    assert nb02.check_attention(attention_keras_ops)

    def with_vitlib(q, k, v, mask):
        import vitlib
        out, _ = vitlib.scaled_dot_product_attention(
            *(np.asarray(t, "float32")[None] for t in (q, k, v)), mask=mask[None])
        return ops.convert_to_numpy(out)[0]

    fb = nb02.check_attention(with_vitlib)
    assert fb.passed, fb.message


def _attn(q, k, v, m, scale=None, axis=-1, kt=True, out=True, use_mask=True):
    scale = np.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ (k.T if kt else k) / scale
    w = softmax(np.where(m, s, -np.inf) if use_mask else s, axis=axis)
    return w @ v if out else w


ATTENTION_MISTAKES = {
    "mask_ignored": lambda q, k, v, m: _attn(q, k, v, m, use_mask=False),
    "mask_inverted": lambda q, k, v, m: _attn(q, k, v, ~m),
    "mask_after_softmax": lambda q, k, v, m: (_attn(q, k, v, m, use_mask=False, out=False) * m) @ v,
    "mask_multiplied": lambda q, k, v, m: softmax(q @ k.T / np.sqrt(q.shape[-1]) * m) @ v,
    "no_scale": lambda q, k, v, m: _attn(q, k, v, m, scale=1.0),
    "divided_by_d": lambda q, k, v, m: _attn(q, k, v, m, scale=q.shape[-1]),
    "divided_by_sqrt_dv": lambda q, k, v, m: _attn(q, k, v, m, scale=np.sqrt(v.shape[-1])),
    "divided_by_sqrt_keys": lambda q, k, v, m: _attn(q, k, v, m, scale=np.sqrt(len(k))),
    "divided_by_sqrt_queries": lambda q, k, v, m: _attn(q, k, v, m, scale=np.sqrt(len(q))),
    "softmax_over_queries": lambda q, k, v, m: _attn(q, k, v, m, axis=0),
    "keys_not_transposed": lambda q, k, v, m: _attn(q, k, v, m, kt=False),
    "returned_weights": lambda q, k, v, m: _attn(q, k, v, m, out=False),
    "returned_tuple": lambda q, k, v, m: (_attn(q, k, v, m), _attn(q, k, v, m, out=False)),
    "no_softmax": lambda q, k, v, m: np.where(m, q @ k.T / np.sqrt(q.shape[-1]), 0.0) @ v,
}


@pytest.mark.parametrize("name", sorted(ATTENTION_MISTAKES))
def test_attention_mistakes_get_their_hint(name):
    fb = nb02.check_attention(ATTENTION_MISTAKES[name])
    assert not fb.passed
    assert fb.mistake == name, fb.message


def test_keys_not_transposed_fails_even_without_a_square_case():
    """On non-square keys `q @ k` raises: the learner is told, not passed."""
    fb = nb02.check_attention(lambda q, k, v, m: _attn(q, k, v, m, kt=False)
                              if k.shape[0] != k.shape[1] else attention(q, k, v, m))
    assert not fb.passed and "raised" in fb.message


def test_unknown_wrong_answer_is_rejected_without_a_hint():
    fb = nb02.check_attention(lambda q, k, v, m: attention(q, k, v, m) + 0.01)
    assert not fb.passed and fb.mistake is None
    assert "values differ" in fb.message


def test_nan_output_is_reported():
    with np.errstate(invalid="ignore"):
        fb = nb02.check_attention(lambda q, k, v, m: np.where(m, q @ k.T, -np.inf) @ v)
    assert not fb.passed and "nan or inf" in fb.message


def test_none_stub_and_errors_are_reported():
    assert "returned None" in nb02.check_attention(lambda q, k, v, m: None).message

    def stub(q, k, v, mask):
        raise NotImplementedError("Exercise: write attention")

    assert "not written yet" in nb02.check_attention(stub).message
    fb = nb02.check_softmax(lambda x, axis=-1: 1 / 0)
    assert not fb.passed and "ZeroDivisionError" in fb.message
