"""Checkers for notebook 05 (the encoder block).

- :func:`check_rms_norm`: RMSNorm, LayerNorm's simpler cousin: divide each token by its root mean
  square, then scale (the notebook's exercise: a transfer of Step 1's LayerNorm).
- :func:`check_layer_norm`: layer normalisation of each token over its features.
- :func:`check_encoder_block_params`: the parameter count of one encoder block, by formula.

The references below are written again here in plain NumPy, independently of :mod:`vitlib`.
"""

from __future__ import annotations

import numpy as np

from ._core import Feedback, Mistake, check

# --- layer_norm ----------------------------------------------------------------------------
# x (batch, tokens, dim), gamma (dim,), beta (dim,) -> (batch, tokens, dim): every token is
# normalised over its own dim features (mean 0, variance 1), then scaled by gamma and shifted by beta.


def _norm(x, axis, ddof=0, eps=1e-6):
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=axis, keepdims=True)
    var = x.var(axis=axis, keepdims=True, ddof=ddof)
    return (x - mean) / np.sqrt(var + eps)


def _layer_norm(x, gamma, beta, eps=1e-6):
    return _norm(x, -1, eps=eps) * gamma + beta


def _over_batch(x, gamma, beta, eps=1e-6):
    return _norm(x, 0, eps=eps) * gamma + beta


def _over_tokens(x, gamma, beta, eps=1e-6):
    return _norm(x, 1, eps=eps) * gamma + beta


def _over_batch_and_tokens(x, gamma, beta, eps=1e-6):
    return _norm(x, (0, 1), eps=eps) * gamma + beta


def _no_gamma_beta(x, gamma, beta, eps=1e-6):
    return _norm(x, -1, eps=eps)


def _ddof1(x, gamma, beta, eps=1e-6):
    return _norm(x, -1, ddof=1, eps=eps) * gamma + beta


LAYER_NORM_MISTAKES = (
    Mistake("batch_axis", _over_batch,
            "you normalised over the batch axis (axis 0), like BatchNorm. LayerNorm normalises "
            "each token over its own features: mean and variance over the last axis (axis=-1)."),
    Mistake("token_axis", _over_tokens,
            "you normalised over the token axis (axis 1), mixing different tokens. LayerNorm "
            "uses only the token's own features: axis=-1."),
    Mistake("batch_and_token_axes", _over_batch_and_tokens,
            "you normalised each feature over the batch and the tokens together (BatchNorm "
            "style). LayerNorm takes the mean and variance over the last axis only."),
    Mistake("no_gamma_beta", _no_gamma_beta,
            "the normalisation is right, but you forgot the learned scale and shift: "
            "multiply by gamma and add beta at the end."),
    Mistake("ddof1", _ddof1,
            "you used the sample variance (ddof=1, dividing by dim - 1). LayerNorm uses the "
            "population variance, dividing by dim (np.var's default, ddof=0)."),
)


def _layer_norm_case(rng):
    b, t, d = int(rng.integers(2, 5)), int(rng.integers(2, 6)), int(rng.integers(4, 13))
    x = rng.normal(size=(b, t, d)) * rng.uniform(0.5, 4.0) + rng.normal(size=(1, 1, d))
    gamma = rng.uniform(0.5, 2.0, size=d)
    beta = rng.normal(size=d)
    return x, gamma, beta


def check_layer_norm(fn, cases: int = 5, seed: int | None = None) -> Feedback:
    """Check ``fn(x (batch, tokens, dim), gamma (dim,), beta (dim,)) -> (batch, tokens, dim)``."""
    return check(fn, _layer_norm, _layer_norm_case, LAYER_NORM_MISTAKES, title="layer_norm",
                 cases=cases, atol=1e-4, seed=seed)


# --- rms_norm ------------------------------------------------------------------------------
# x (batch, tokens, dim), gamma (dim,) -> (batch, tokens, dim): every token is divided by the root
# mean square of its own dim features (no mean subtracted, no shift), then scaled by gamma.


def _rms(x, axis, eps=1e-6):
    x = np.asarray(x, dtype=np.float64)
    return x / np.sqrt((x**2).mean(axis=axis, keepdims=True) + eps)


def _rms_norm(x, gamma, eps=1e-6):
    return _rms(x, -1, eps) * gamma


RMS_NORM_MISTAKES = (
    Mistake("subtracted_mean", lambda x, gamma, eps=1e-6: _norm(x, -1, eps=eps) * gamma,
            "you subtracted the mean, as LayerNorm does. RMSNorm does not centre the token: divide "
            "x itself by sqrt(mean(x**2) over the last axis + eps)."),
    Mistake("batch_axis", lambda x, gamma, eps=1e-6: _rms(x, 0, eps) * gamma,
            "you took the mean square over the batch axis (axis 0). Like LayerNorm, RMSNorm uses "
            "only the token's own features: axis=-1, keepdims=True."),
    Mistake("token_axis", lambda x, gamma, eps=1e-6: _rms(x, 1, eps) * gamma,
            "you took the mean square over the token axis (axis 1), mixing different tokens. Use "
            "the last axis: each token is normalised over its own features."),
    Mistake("no_gamma", lambda x, gamma, eps=1e-6: _rms(x, -1, eps),
            "the normalisation is right, but you forgot the learned scale: multiply by gamma."),
    Mistake("no_sqrt",
            lambda x, gamma, eps=1e-6: np.asarray(x) / ((np.asarray(x)**2).mean(-1, keepdims=True)
                                                        + eps) * gamma,
            "you divided by the mean square; divide by its square ROOT, "
            "np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + eps), so that the result has mean "
            "square 1."),
)


def _rms_norm_case(rng):
    b, t, d = int(rng.integers(2, 5)), int(rng.integers(2, 6)), int(rng.integers(4, 13))
    # a clear non-zero mean per feature, so that subtracting the mean changes the answer
    x = rng.normal(size=(b, t, d)) * rng.uniform(0.5, 3.0) + rng.normal(1.0, 1.0, size=(1, 1, d))
    gamma = rng.uniform(0.5, 2.0, size=d)
    return x, gamma


def check_rms_norm(fn, cases: int = 5, seed: int | None = None) -> Feedback:
    """Check ``fn(x (batch, tokens, dim), gamma (dim,)) -> (batch, tokens, dim)`` (RMSNorm)."""
    return check(fn, _rms_norm, _rms_norm_case, RMS_NORM_MISTAKES, title="rms_norm",
                 cases=cases, atol=1e-4, seed=seed)


# --- encoder_block_params ------------------------------------------------------------------
# One pre-norm encoder block of width D = dim and MLP hidden size M = mlp_dim:
#   2 LayerNorms: 2 * 2D;  attention (Q, K, V and output, each D x D + D): 4 (D^2 + D);
#   MLP: D x M + M (first Dense) and M x D + D (second Dense).


def _params(dim, mlp_dim):
    return 4 * dim + 4 * (dim * dim + dim) + 2 * dim * mlp_dim + mlp_dim + dim


def _params_no_biases(dim, mlp_dim):
    return 4 * dim + 4 * dim * dim + 2 * dim * mlp_dim


def _params_no_layernorm(dim, mlp_dim):
    return 4 * (dim * dim + dim) + 2 * dim * mlp_dim + mlp_dim + dim


def _params_mlp_hidden_dim(dim, mlp_dim):
    return _params(dim, dim)


def _params_three_projections(dim, mlp_dim):
    return 4 * dim + 3 * (dim * dim + dim) + 2 * dim * mlp_dim + mlp_dim + dim


def _params_one_layernorm(dim, mlp_dim):
    return _params(dim, mlp_dim) - 2 * dim


ENCODER_PARAMS_MISTAKES = (
    Mistake("no_biases", _params_no_biases,
            "you counted the weight matrices but forgot the biases: every Dense layer (the "
            "Q, K, V and output projections, and both MLP layers) has one bias per output."),
    Mistake("no_layernorm", _params_no_layernorm,
            "you forgot the two LayerNorms: each has a scale gamma and a shift beta of size "
            "dim, so 4 * dim parameters in all."),
    Mistake("one_layernorm", _params_one_layernorm,
            "a block has two LayerNorms (one before attention, one before the MLP), each with "
            "gamma and beta: 4 * dim, not 2 * dim."),
    Mistake("mlp_hidden_is_dim", _params_mlp_hidden_dim,
            "the MLP's hidden layer has mlp_dim units (4 x dim in ViT), not dim: the first Dense "
            "is dim -> mlp_dim and the second mlp_dim -> dim."),
    Mistake("three_projections", _params_three_projections,
            "attention has four projections, not three: Q, K, V and the output projection "
            "(U_msa), each a dim x dim matrix plus a bias."),
)


def _params_case(rng):
    dim = int(rng.integers(2, 33)) * 2
    mlp_dim = dim * int(rng.choice([2, 3, 4])) + int(rng.integers(1, 8))
    return dim, mlp_dim


def check_encoder_block_params(fn, cases: int = 5, seed: int | None = None) -> Feedback:
    """Check ``fn(dim, mlp_dim) -> int``: the parameters of one encoder block, exactly."""
    return check(fn, _params, _params_case, ENCODER_PARAMS_MISTAKES,
                 title="encoder_block_params", cases=cases, atol=0, rtol=0, seed=seed)
