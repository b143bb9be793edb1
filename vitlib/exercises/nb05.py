"""Checkers for notebook 05 (the encoder block).

- :func:`check_rms_norm`: RMSNorm, LayerNorm's simpler cousin: divide each token by its root mean
  square, then scale (the notebook's exercise: a transfer of Step 1's LayerNorm).
- :func:`check_layer_norm`: layer normalisation of each token over its features.
- :func:`check_encoder_block_params`: the parameter count of one encoder block, by formula.
- :func:`check_zeroed_attention_prediction` (predict-then-run): the learner's number of the 10
  output tokens that change when one input token changes, in a block whose attention branch is
  zeroed; the checker builds the block, zeroes its output projection and counts (right: 1). The
  sizes are those of the notebook's Step 5, so that on JAX no new shape has to be compiled.
- :func:`check_width_prediction` (predict-then-run): the learner's factor by which one block's
  parameter count grows when its width D doubles (32 -> 64, M = 4D: the blocks of Steps 5 and 3);
  the checker builds both blocks and divides their Keras counts (right: about 4, within 3%).
- :func:`check_ablation_answer` (interpret): a letter, what Step 6's ablation over 3 seeds
  supports; every wrong letter is explained (right: "b").

The references below are written again here in plain NumPy, independently of :mod:`vitlib`.
"""

from __future__ import annotations

import numpy as np

from ._core import Feedback, Mistake, check, choose, compare_prediction

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


# --- predict-then-run: a block with its attention branch at zero ------------------------------
# A pre-norm block (D = 32, 4 heads, M = 128, batches of 2 x 10 tokens: Step 5's sizes) with random
# weights; the attention's output projection (output_kernel, output_bias) is set to 0, so Eq. 2
# gives z' = z. Token 3 of image 0 is changed; the experiment counts image 0's output tokens that
# change (max |difference| over their features > 1e-6).

TOKENS, CHANGED_TOKEN = 10, 3


def measure_changed_tokens(zero_attention: bool = True, seed: int = 0) -> int:
    """How many of the 10 output tokens of a random encoder block change when token 3 changes."""
    import keras

    from ..encoder import EncoderBlock

    rng = np.random.default_rng(seed)
    dim = 32
    block = EncoderBlock(num_heads=4, mlp_dim=4 * dim)
    block.build((None, TOKENS, dim))
    block.set_weights([rng.normal(scale=0.3, size=w.shape).astype("float32")
                       for w in block.get_weights()])
    if zero_attention:
        block.attention.output_kernel.assign(np.zeros(block.attention.output_kernel.shape, "float32"))
        block.attention.output_bias.assign(np.zeros(block.attention.output_bias.shape, "float32"))
    x = rng.normal(size=(2, TOKENS, dim)).astype("float32")
    changed = x.copy()
    changed[0, CHANGED_TOKEN] += rng.normal(size=dim).astype("float32")
    diff = np.abs(keras.ops.convert_to_numpy(block(changed) - block(x)))[0].max(axis=-1)
    return int(np.sum(diff > 1e-6))


ZEROED_ATTENTION_MISTAKES = (
    ("all_tokens", 10,
     "10 is what the FULL block does. Tokens exchange information only through attention's "
     "weighted average, and here its branch adds exactly 0, so Eq. 2 gives z' = z. The MLP of "
     "Eq. 3 then works on each token on its own (Step 2's one-token test): nothing carries token "
     "3's change to the other tokens."),
    ("none", 0,
     "Zeroing a branch removes what that branch adds, not the token. The residual path of Eq. 2 "
     "still hands z to z' = z + 0, so token 3's change reaches the output, and the MLP branch of "
     "Eq. 3 adds its own change to that token."),
)


def check_zeroed_attention_prediction(prediction) -> Feedback:
    """Check the learner's ``prediction`` (a number): of 10 output tokens, how many change when
    token 3 of the input changes, in a pre-norm block whose attention output projection is 0."""
    zeroed, full = measure_changed_tokens(True), measure_changed_tokens(False)
    why = (f"With the attention branch at 0, z' = z: no token receives anything from another, and "
           f"the MLP changes each token on its own, so only token {CHANGED_TOKEN} moves. The same "
           f"block with its attention switched on: {full} of {TOKENS} tokens change. Attention is "
           "the only place where tokens mix.")
    return compare_prediction(prediction, zeroed, title="Exercise 3 · zeroed attention",
                              unit=f"of {TOKENS} tokens", why=why,
                              mistakes=ZEROED_ATTENTION_MISTAKES)


# --- predict-then-run: a block twice as wide -------------------------------------------------
# Step 5's block: D = 32, M = 4D = 128 (12,704 parameters); twice as wide: D = 64, M = 256 (49,984,
# the blocks of Step 3). The experiment builds both with vitlib.EncoderBlock and divides Keras'
# counts (about 3.93).


def measure_width_growth() -> tuple[int, int]:
    """Keras' parameter counts of one encoder block at D = 32 and at D = 64 (M = 4D, 4 heads)."""
    from ..encoder import EncoderBlock

    counts = []
    for dim in (32, 64):
        block = EncoderBlock(num_heads=4, mlp_dim=4 * dim)
        block.build((None, 5, dim))
        counts.append(int(block.count_params()))
    return counts[0], counts[1]


WIDTH_MISTAKES = (
    ("doubles", 2.0,
     "The biases and LayerNorm parameters double (each has D entries), but they are a few percent "
     "of the block. Almost all parameters sit in matrices with D rows and D (or M = 4D) columns: "
     "4D^2 in attention and 2DM = 8D^2 in the MLP. Doubling D multiplies each matrix by 2 x 2 = 4."),
    ("cubes", 8.0,
     "8 = 2^3 would need weights with three factors of D. A D x D matrix has D^2 entries; doubling "
     "D (and M with it) multiplies each matrix by 2 x 2 = 4."),
)


def check_width_prediction(prediction) -> Feedback:
    """Check the learner's ``prediction`` (a number): the factor by which one block's parameter
    count grows from D = 32 to D = 64 (M = 4D both). Right within 3% of the measured ratio."""
    small, large = measure_width_growth()
    why = (f"Keras counts {small:,} parameters at D = 32 and {large:,} at D = 64. The weight "
           "matrices (12D^2 in all with M = 4D) grow as D^2, only the biases and LayerNorms (9D + M) "
           "linearly, so a model twice as wide has about four times the parameters per block.")
    return compare_prediction(prediction, large / small, title="Exercise 4 · twice as wide",
                              unit="times", rtol=0.03, why=why, mistakes=WIDTH_MISTAKES)


# --- interpret: the ablation of Step 6 (data/ablation.json, 3 seeds each) ---------------------
# full block, class token 0.847 (0.842-0.850); without MLP 0.831 (0.829-0.834);
# full block, mean of patches 0.838 (0.835-0.841); without attention, mean 0.845 (0.840-0.847).

ABLATION_OPTIONS = {
    "a": "That generalises one small measurement to all vision Transformers. The record is one task "
         "(centred, upright 28x28 clothes), a 3-epoch budget and a 139k-parameter model. The ViT "
         "paper's results come from large images, long training and much more data, where a model "
         "must relate distant parts of an image; this record cannot speak for that.",
    "b": "(the right answer)",
    "c": "0.845 against 0.838 is a difference of 0.007, about the seeds' own spread: their ranges "
         "overlap (0.840-0.847 without attention, 0.835-0.841 for the full block read out the same "
         "way). The checked line claims only 'not lower'. 'Better' would need more seeds and a "
         "difference larger than the spread.",
    "d": "Read the seeds, not only the means: every seed without the MLP (0.829-0.834) lies below "
         "every seed of the full block (0.842-0.850), the checked line of Step 6. A gap of 1.6 "
         "points that no seed crosses is not the noise of three seeds.",
}


def check_ablation_answer(answer) -> Feedback:
    """Check the letter ``answer`` ("a"-"d") to Exercise 5: what Step 6's ablation supports."""
    return choose(answer, options=ABLATION_OPTIONS, correct="b", title="Exercise 5 · the ablation",
                  why="Without attention, nothing measurable was lost on this task and budget "
                      "(0.845 against 0.838, read out the same way); without the MLP 1.6 points "
                      "were lost with every seed. That is all three seeds can say: the MLP carries "
                      "real weight even here, and this small task cannot measure what attention "
                      "adds.")
