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


# ---------------------------------------------------------------- Exercise 1: masked softmax

def masked_softmax(x, mask, axis=-1):
    """Written independently: loop over the lanes along ``axis``; a lane with no allowed entry
    gives zeros."""
    x, mask = np.asarray(x, float), np.asarray(mask, bool)
    xs, ms = np.moveaxis(x, axis, -1), np.moveaxis(mask, axis, -1)
    out = np.zeros_like(xs)
    for idx in np.ndindex(xs.shape[:-1]):
        allowed = ms[idx]
        if allowed.any():
            e = np.exp(xs[idx][allowed] - xs[idx][allowed].max())
            out[idx][allowed] = e / e.sum()
    return np.moveaxis(out, -1, axis)


def masked_softmax_keras_ops(x, mask, axis=-1):
    scores = ops.where(mask, ops.convert_to_tensor(np.asarray(x, "float32")), -1e9)
    w = ops.softmax(scores, axis=axis) * ops.cast(mask, "float32")  # zeros where blocked
    total = ops.sum(w, axis=axis, keepdims=True)
    return ops.convert_to_numpy(ops.where(total > 0, w / ops.maximum(total, 1e-30), 0.0))


def test_masked_softmax_solutions_pass():
    for solution in (masked_softmax, masked_softmax_keras_ops):
        fb = nb02.check_masked_softmax(solution)
        assert fb.passed and fb.mistake is None, fb.message
    assert "fully blocked row" in nb02.check_masked_softmax(masked_softmax).message


def test_masked_softmax_reference_is_the_loops():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 5))
    mask = rng.random((3, 4, 5)) < 0.5
    for axis in (0, 1, 2, -1):
        np.testing.assert_allclose(nb02.reference_masked_softmax(x, mask, axis),
                                   masked_softmax(x, mask, axis), atol=1e-12)


def _with(prepare, finish=None, shift=True):
    """A masked softmax along ``axis`` built the usual ways: ``prepare`` the scores, exponentiate
    (after subtracting the max along axis when ``shift``), then ``finish``."""
    def fn(x, m, axis=-1):
        s = prepare(np.asarray(x, float), np.asarray(m, bool))
        e = np.exp(s - np.max(s, axis=axis, keepdims=True)) if shift else np.exp(s)
        return finish(e, m, axis) if finish else e / np.sum(e, axis=axis, keepdims=True)
    return fn


MASKED_SOFTMAX_MISTAKES = {
    "nan_on_empty_row": _with(lambda x, m: np.where(m, x, -np.inf)),
    "uniform_on_empty_row": _with(lambda x, m: np.where(m, x, -1e9)),
    "blocked_max": _with(lambda x, m: x, lambda e, m, axis: e * m / np.sum(e * m, axis=axis,
                                                                           keepdims=True)),
    "overflow": _with(lambda x, m: x, lambda e, m, axis: e * m / np.sum(e * m, axis=axis,
                                                                        keepdims=True),
                      shift=False),
    "mask_ignored": lambda x, m, axis=-1: softmax(x, axis=axis),
    "mask_inverted": lambda x, m, axis=-1: masked_softmax(x, ~np.asarray(m, bool), axis),
    "mask_after_softmax": lambda x, m, axis=-1: softmax(x, axis=axis) * m,
    "mask_multiplied": lambda x, m, axis=-1: softmax(x * m, axis=axis),
    "ignored_axis": lambda x, m, axis=-1: masked_softmax(x, m, -1),
    "first_axis": lambda x, m, axis=-1: masked_softmax(x, m, 0),
    "no_normalisation": lambda x, m, axis=-1: np.where(m, np.exp(x), 0.0),
    "sum_over_everything": lambda x, m, axis=-1: np.where(m, np.exp(x), 0.0) / np.sum(
        np.where(m, np.exp(x), 0.0)),
    "no_keepdims": lambda x, m, axis=-1: np.where(m, np.exp(x), 0.0) / np.sum(
        np.where(m, np.exp(x), 0.0), axis=axis),
}


@pytest.mark.parametrize("name", sorted(MASKED_SOFTMAX_MISTAKES))
def test_masked_softmax_mistakes_get_their_hint(name):
    with np.errstate(all="ignore"):
        fb = nb02.check_masked_softmax(MASKED_SOFTMAX_MISTAKES[name])
    assert not fb.passed and fb.mistake == name, fb.message
    assert fb.message.startswith("❌ masked_softmax:")


def test_masked_softmax_global_max_and_stub():
    def global_max(x, m, axis=-1):
        s = np.where(m, x, -np.inf)
        e = np.where(m, np.exp(s - s.max()), 0.0)
        total = e.sum(axis=axis, keepdims=True)
        return e / np.where(total > 0, total, 1.0)

    with np.errstate(all="ignore"):
        fb = nb02.check_masked_softmax(global_max)
    assert not fb.passed and fb.mistake == "global_max", fb.message

    def stub(x, mask, axis=-1):
        raise NotImplementedError("Exercise: write it")

    assert "not written yet" in nb02.check_masked_softmax(stub).message


def test_step_2_softmax_pasted_unchanged_fails_exercise_1():
    """Exercise 1 cannot be solved by pasting Step 2's softmax (it takes no mask)."""
    fb = nb02.check_masked_softmax(lambda x, mask, axis=-1: softmax(x, axis=axis))
    assert not fb.passed and fb.mistake == "mask_ignored", fb.message


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

def test_jacobian_answer_right_wrong_and_unanswered():
    right = nb02.check_jacobian_answer("c")
    assert right.passed and "0.242" in right.message
    hints = {"a": "same draw", "b": "keeps their order", "d": "does not depend on d",
             "e": "contradicts"}
    for letter, words in hints.items():
        fb = nb02.check_jacobian_answer(letter.upper())
        assert not fb.passed and fb.mistake == letter, fb.message
        assert words in fb.message and nb02.JACOBIAN_OPTIONS[letter] in fb.message
    assert "not answered yet" in nb02.check_jacobian_answer(None).message
    assert nb02.check_jacobian_answer("f").mistake == "not_an_option"


def _jacobian_norm(p):
    """Frobenius norm of d softmax / d scores for weights p (n,), by finite differences."""
    n, eps = len(p), 1e-6
    s = np.log(p)
    cols = []
    for j in range(n):
        bumped = s.copy()
        bumped[j] += eps
        cols.append((softmax(bumped) - softmax(s)) / eps)
    return float(np.linalg.norm(np.stack(cols, axis=1)))


def test_the_jacobian_is_small_for_flat_and_for_one_hot_weights():
    """The fact behind Exercise 5's answer, measured independently with finite differences:
    flat weights (all scores equal) give sqrt(15) / 16 = 0.242 for 16 keys; scores of spread 2
    give more; scores of spread 16 (nearly one-hot) give much less."""
    flat = _jacobian_norm(np.full(16, 1 / 16))
    assert abs(flat - nb02.jacobian_norm_uniform()) < 1e-4
    assert f"{flat:.3f}" == "0.242"
    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 16))
    mean_norm = {std: np.mean([_jacobian_norm(softmax(row * std)) for row in z])
                 for std in (1.0, 2.0, 16.0)}
    assert flat < mean_norm[1.0] < mean_norm[2.0]
    assert mean_norm[16.0] < flat
