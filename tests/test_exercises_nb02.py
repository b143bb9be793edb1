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


# ---------------------------------------------------------------- Exercise 3: predict-then-run

def test_sharpen_prediction_passes_near_the_measured_weight():
    e = np.exp(np.array([0.0, 20.0, 15.0]) - 20.0)  # scores of 10 x [0, 2, 1.5] with one-hot keys
    green = float(e[1] / e.sum())
    assert abs(green - nb02.measure_sharpened_weight()) < 1e-12
    for prediction in (green, 0.99, 1.0, 0.98):
        fb = nb02.check_sharpen_prediction(prediction)
        assert fb.passed and "✅" in fb.message, fb.message


@pytest.mark.parametrize("prediction, name", [(0.574, "unchanged"), (0.57, "unchanged"),
                                              (1 / 3, "uniform"), (0.33, "uniform")])
def test_sharpen_prediction_names_each_mistake(prediction, name):
    fb = nb02.check_sharpen_prediction(prediction)
    assert not fb.passed and fb.mistake == name, fb.message


def test_sharpen_prediction_unanswered_and_far_off():
    assert "not answered yet" in nb02.check_sharpen_prediction(None).message
    fb = nb02.check_sharpen_prediction(0.8)
    assert not fb.passed and fb.mistake is None and "sqrt(d)" in fb.message


# ---------------------------------------------------------------- Exercise 4: transfer

def local_mask_loops(grid_h, grid_w, radius):
    n = grid_h * grid_w
    mask = np.zeros((n, n), bool)
    for i in range(n):
        for j in range(n):
            mask[i, j] = (abs(i // grid_w - j // grid_w) <= radius
                          and abs(i % grid_w - j % grid_w) <= radius)
    return mask


def test_local_mask_solution_passes_as_booleans_and_as_numbers():
    assert nb02.check_local_mask(local_mask_loops, seed=0).passed
    fb = nb02.check_local_mask(lambda gh, gw, r: local_mask_loops(gh, gw, r).astype(int), seed=1)
    assert fb.passed, fb.message


def _loops_with(condition):
    def mask(grid_h, grid_w, radius):
        n = grid_h * grid_w
        out = np.zeros((n, n), bool)
        for i in range(n):
            for j in range(n):
                dr, dc = abs(i // grid_w - j // grid_w), abs(i % grid_w - j % grid_w)
                out[i, j] = condition(dr, dc, radius, i, j)
        return out
    return mask


LOCAL_MASK_MISTAKES = {
    "swapped_grid": lambda gh, gw, r: local_mask_loops(gw, gh, r),
    "sequence_distance": _loops_with(lambda dr, dc, r, i, j: abs(i - j) <= r),
    "manhattan": _loops_with(lambda dr, dc, r, i, j: dr + dc <= r),
    "strict": _loops_with(lambda dr, dc, r, i, j: dr < r and dc < r),
    "self_excluded": _loops_with(lambda dr, dc, r, i, j: dr <= r and dc <= r and i != j),
}


@pytest.mark.parametrize("name", sorted(LOCAL_MASK_MISTAKES))
def test_local_mask_mistakes_get_their_hint(name):
    for seed in (0, 1, 2):
        fb = nb02.check_local_mask(LOCAL_MASK_MISTAKES[name], seed=seed)
        assert not fb.passed and fb.mistake == name, fb.message


def test_local_mask_rejects_a_causal_mask_and_reports_stubs():
    fb = nb02.check_local_mask(lambda gh, gw, r: np.tril(np.ones((gh * gw, gh * gw), bool)))
    assert not fb.passed and fb.mistake is None

    def stub(grid_h, grid_w, radius):
        raise NotImplementedError("Exercise: write it")

    assert "not written yet" in nb02.check_local_mask(stub).message


# ---------------------------------------------------------------- Exercise 5: interpret

def test_scaling_answer_right_wrong_and_unanswered():
    assert nb02.check_scaling_answer("b").passed
    hints = {"a": "order", "c": "Overflow", "d": "postpone"}
    for letter, words in hints.items():
        fb = nb02.check_scaling_answer(letter.upper())
        assert not fb.passed and fb.mistake == letter, fb.message
        assert words in fb.message
    assert "not answered yet" in nb02.check_scaling_answer(None).message
