"""Checkers of notebook 05: the solution passes, each usual mistake gets its own hint."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import vitlib
from vitlib.exercises import nb05

pytestmark = pytest.mark.single_backend


# Learner-style answers, written independently of the checker's references.
def ln_good(x, gamma, beta, eps=1e-6):
    mu = x.mean(-1, keepdims=True)
    sd = np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps)
    return gamma * (x - mu) / sd + beta


def ln_axis(axis, ddof=0, affine=True):
    def fn(x, gamma, beta, eps=1e-6):
        y = (x - x.mean(axis, keepdims=True)) / np.sqrt(x.var(axis, keepdims=True, ddof=ddof) + eps)
        return gamma * y + beta if affine else y
    return fn


def test_layer_norm_solution_passes_and_matches_keras():
    assert nb05.check_layer_norm(ln_good, seed=0)
    # The checker's reference agrees with Keras' own LayerNormalization.
    x, gamma, beta = nb05._layer_norm_case(np.random.default_rng(3))
    layer = keras.layers.LayerNormalization(epsilon=1e-6)
    layer.build(x.shape)
    layer.set_weights([gamma.astype("float32"), beta.astype("float32")])
    want = keras.ops.convert_to_numpy(layer(x.astype("float32")))
    np.testing.assert_allclose(nb05._layer_norm(x, gamma, beta), want, atol=1e-4)


@pytest.mark.parametrize("fn, name", [
    (ln_axis(0), "batch_axis"),
    (ln_axis(1), "token_axis"),
    (ln_axis((0, 1)), "batch_and_token_axes"),
    (ln_axis(-1, affine=False), "no_gamma_beta"),
    (ln_axis(-1, ddof=1), "ddof1"),
])
def test_layer_norm_mistakes_get_their_hint(fn, name):
    fb = nb05.check_layer_norm(fn, seed=0)
    assert not fb.passed and fb.mistake == name
    hint = next(m.hint for m in nb05.LAYER_NORM_MISTAKES if m.name == name)
    assert hint in fb.message


def test_layer_norm_without_eps_is_accepted():
    # eps = 1e-6 is negligible for inputs of ordinary size: leaving it out is not a mistake here.
    def no_eps(x, gamma, beta, eps=1e-6):
        return gamma * (x - x.mean(-1, keepdims=True)) / x.std(-1, keepdims=True) + beta

    assert nb05.check_layer_norm(no_eps, seed=0)


def params_good(dim, mlp_dim):
    layer_norms = 2 * (dim + dim)
    attention = 4 * (dim * dim + dim)
    mlp = (dim * mlp_dim + mlp_dim) + (mlp_dim * dim + dim)
    return layer_norms + attention + mlp


@pytest.mark.parametrize("dim, mlp_dim", [(8, 32), (12, 30), (32, 128)])
def test_params_formula_matches_keras_count(dim, mlp_dim):
    block = vitlib.EncoderBlock(num_heads=4, mlp_dim=mlp_dim)
    block.build((None, 5, dim))
    assert block.count_params() == nb05._params(dim, mlp_dim) == params_good(dim, mlp_dim)


def test_params_solution_passes():
    assert nb05.check_encoder_block_params(params_good, seed=0)


@pytest.mark.parametrize("fn, name", [
    (lambda d, m: 4 * d + 4 * d * d + 2 * d * m, "no_biases"),
    (lambda d, m: 4 * (d * d + d) + 2 * d * m + m + d, "no_layernorm"),
    (lambda d, m: 2 * d + 4 * (d * d + d) + 2 * d * m + m + d, "one_layernorm"),
    (lambda d, m: params_good(d, d), "mlp_hidden_is_dim"),
    (lambda d, m: 4 * d + 3 * (d * d + d) + 2 * d * m + m + d, "three_projections"),
])
def test_params_mistakes_get_their_hint(fn, name):
    fb = nb05.check_encoder_block_params(fn, seed=0)
    assert not fb.passed and fb.mistake == name
    hint = next(m.hint for m in nb05.ENCODER_PARAMS_MISTAKES if m.name == name)
    assert hint in fb.message


def test_none_raise_and_unknown_answers_are_reported():
    fb = nb05.check_layer_norm(lambda x, g, b: None, seed=0)
    assert not fb.passed and "returned None" in fb.message
    fb = nb05.check_encoder_block_params(lambda d, m: [][0], seed=0)
    assert not fb.passed and "IndexError" in fb.message
    fb = nb05.check_encoder_block_params(lambda d, m: params_good(d, m) + 1, seed=0)
    assert not fb.passed and fb.mistake is None
    fb = nb05.check_layer_norm(lambda x, g, b: ln_good(x, g, b) * 1.5, seed=0)
    assert not fb.passed and fb.mistake is None and "values differ" in fb.message


def test_params_off_by_one_is_rejected_on_large_counts():
    # dim = 64, mlp_dim = 256 gives ~50k parameters: rtol=1e-4 alone would accept an error of 5.
    assert nb05._params(64, 256) > 40_000
    from vitlib.exercises._core import check
    fb = check(lambda d, m: params_good(d, m) + 1, nb05._params, lambda rng: (64, 256),
               nb05.ENCODER_PARAMS_MISTAKES, atol=0, rtol=0)
    assert not fb.passed
    for seed in range(3):
        fb = nb05.check_encoder_block_params(lambda d, m: params_good(d, m) + 1, seed=seed)
        assert not fb.passed and fb.mistake is None


# RMSNorm (the notebook's transfer exercise), learner-style answers.
def rms_good(x, gamma, eps=1e-6):
    return gamma * x / np.sqrt(np.mean(np.square(x), axis=-1, keepdims=True) + eps)


def rms_over(axis, sqrt=True, centre=False, scale=True):
    def fn(x, gamma, eps=1e-6):
        x = x - x.mean(-1, keepdims=True) if centre else x
        ms = (x**2).mean(axis, keepdims=True) + (eps if not centre else 0)
        if centre:
            ms = x.var(-1, keepdims=True) + eps
        y = x / (np.sqrt(ms) if sqrt else ms)
        return gamma * y if scale else y
    return fn


def test_rms_norm_solution_passes_and_matches_keras():
    assert nb05.check_rms_norm(rms_good, seed=0)
    # The reference agrees with Keras' RMSNormalization (scale only, no centring).
    x, gamma = nb05._rms_norm_case(np.random.default_rng(3))
    layer = keras.layers.RMSNormalization(epsilon=1e-6)
    layer.build(x.shape)
    layer.set_weights([gamma.astype("float32")])
    want = keras.ops.convert_to_numpy(layer(x.astype("float32")))
    np.testing.assert_allclose(nb05._rms_norm(x, gamma), want, atol=1e-4)


@pytest.mark.parametrize("fn, name", [
    (rms_over(-1, centre=True), "subtracted_mean"),
    (rms_over(0), "batch_axis"),
    (rms_over(1), "token_axis"),
    (rms_over(-1, scale=False), "no_gamma"),
    (rms_over(-1, sqrt=False), "no_sqrt"),
])
def test_rms_norm_mistakes_get_their_hint(fn, name):
    fb = nb05.check_rms_norm(fn, seed=0)
    assert not fb.passed and fb.mistake == name, fb.message
    hint = next(m.hint for m in nb05.RMS_NORM_MISTAKES if m.name == name)
    assert hint in fb.message


def test_rms_norm_unknown_answer_gets_a_general_message():
    fb = nb05.check_rms_norm(lambda x, g, eps=1e-6: rms_good(x, g) + 0.1, seed=0)
    assert not fb.passed and fb.mistake is None and "values differ" in fb.message


# Predict-then-run: the experiments, measured independently here with vitlib's block.
def _changed_tokens(arrangement, scale=10.0):
    # Other sizes and Keras' own initial weights; the block is arranged by hand from its layers.
    rng = np.random.default_rng(5)
    block = vitlib.EncoderBlock(num_heads=2, mlp_dim=24)
    block.build((None, 6, 8))

    def run(z):
        if arrangement == "pre":
            z = z + block.attention(block.norm1(z))
            return z + block.mlp(block.norm2(z))
        z = block.norm1(z + block.attention(z))
        return block.norm2(z + block.mlp(z))

    x = rng.normal(size=(1, 6, 8)).astype("float32")
    y = x.copy()
    y[0, 2] *= scale
    diff = np.abs(keras.ops.convert_to_numpy(run(y) - run(x)))[0].max(-1)
    return int((diff > 1e-3).sum())


def test_scaled_token_experiment_and_checker():
    # Independently: pre-norm, one token of six changes; post-norm, all six.
    assert _changed_tokens("pre") == 1 and _changed_tokens("post") == 6
    assert nb05.measure_scaled_token("pre-norm") == 1
    assert nb05.measure_scaled_token("post-norm") == 10
    assert nb05.check_scaled_token_prediction(1).passed
    assert nb05.check_scaled_token_prediction(1.0).passed
    assert "post-norm" in nb05.check_scaled_token_prediction(1).message


@pytest.mark.parametrize("prediction, name", [(10, "all_tokens"), (0, "none")])
def test_scaled_token_wrong_predictions_get_their_hint(prediction, name):
    fb = nb05.check_scaled_token_prediction(prediction)
    assert not fb.passed and fb.mistake == name
    hint = next(h for n, _, h in nb05.SCALED_TOKEN_MISTAKES if n == name)
    assert hint in fb.message


def test_scaled_token_unanswered_and_unknown():
    assert "not answered yet" in nb05.check_scaled_token_prediction(None).message
    fb = nb05.check_scaled_token_prediction(5)
    assert not fb.passed and fb.mistake is None and "measured 1 of 10" in fb.message
    assert nb05.check_scaled_token_prediction("1").mistake == "not_a_number"


def test_token_growth_experiment_and_checker():
    short, long = nb05.measure_token_growth()
    # Independently: the formula of Step 4 has no number of tokens; a block built for 10 tokens
    # also runs on 40 (here on TensorFlow or JAX, once) with the same weights.
    assert short == long == params_good(32, 128) == 12_704
    block = vitlib.EncoderBlock(num_heads=4, mlp_dim=128)
    block.build((None, 10, 32))
    y, weights = block(np.zeros((1, 40, 32), "float32"), return_attention_scores=True)
    assert tuple(y.shape) == (1, 40, 32) and tuple(weights.shape) == (1, 4, 40, 40)
    assert block.count_params() == 12_704
    for right in (1, 1.0):
        assert nb05.check_tokens_prediction(right).passed
    message = nb05.check_tokens_prediction(1).message
    assert "12,704" in message and "6,400" in message and "400" in message


@pytest.mark.parametrize("prediction, name", [(4, "grows_with_tokens"), (4.0, "grows_with_tokens"),
                                              (16, "attention_size")])
def test_token_growth_wrong_predictions_get_their_hint(prediction, name):
    fb = nb05.check_tokens_prediction(prediction)
    assert not fb.passed and fb.mistake == name
    hint = next(h for n, _, h in nb05.TOKEN_GROWTH_MISTAKES if n == name)
    assert hint in fb.message


def test_token_growth_unanswered_and_unknown():
    assert "not answered yet" in nb05.check_tokens_prediction(None).message
    fb = nb05.check_tokens_prediction(2)
    assert not fb.passed and fb.mistake is None


# Interpret: the letters, and the record the explanations quote.
def test_ablation_answer_right_wrong_and_unanswered():
    assert nb05.check_ablation_answer("b").passed
    assert nb05.check_ablation_answer(" B ").passed
    for letter in "acd":
        fb = nb05.check_ablation_answer(letter)
        assert not fb.passed and fb.mistake == letter
        assert nb05.ABLATION_OPTIONS[letter] in fb.message
    assert "not answered yet" in nb05.check_ablation_answer(None).message
    assert nb05.check_ablation_answer("e").mistake == "not_an_option"


def test_ablation_explanations_quote_the_shipped_record():
    import json

    from vitlib.course_files import course_file

    summary = json.loads(course_file("ablation.json").read_text())["summary"]
    t = {v: summary[v]["test_accuracy"] for v in ("learned", "no-mlp", "no-attention",
                                                  "mean-pooling")}
    text = " ".join(nb05.ABLATION_OPTIONS.values())
    for v in ("learned", "no-mlp"):  # option d quotes both ranges
        assert f"{t[v]['min']:.3f}-{t[v]['max']:.3f}" in nb05.ABLATION_OPTIONS["d"], v
    for v in ("no-attention", "mean-pooling"):  # the right answer quotes both means
        assert f"{t[v]['mean']:.3f}" in text + nb05.check_ablation_answer("b").message, v
    assert t["no-mlp"]["max"] < t["learned"]["min"]  # option d: no seed crosses
    # option c: paired by seed, without attention is higher in every seed, by under a point
    runs = json.loads(course_file("ablation.json").read_text())["runs"]
    acc = {(r["variant"], r["seed"]): r["test_accuracy"] for r in runs}
    gaps = [acc["no-attention", s] - acc["mean-pooling", s] for s in (0, 1, 2)]
    assert all(0 < g < 0.01 for g in gaps)
    assert f"+{min(gaps):.4f} to +{max(gaps):.4f}" in nb05.ABLATION_OPTIONS["c"]
