"""Checkers for notebook 05 (the encoder block).

- :func:`check_rms_norm`: RMSNorm, LayerNorm's simpler cousin: divide each token by its root mean
  square, then scale (the notebook's exercise: a transfer of Step 1's LayerNorm).
- :func:`check_layer_norm`: layer normalisation of each token over its features.
- :func:`check_encoder_block_params`: the parameter count of one encoder block, by formula.
- :func:`check_scaled_token_prediction` (predict-then-run): the learner's number of the 10
  output tokens that change when token 3 of the input is multiplied by 10, in a pre-norm block
  with random weights; the checker builds the block, runs it and counts (right: 1, since both
  branches see LN(z) and LayerNorm removes a token's scale; post-norm with the same weights: 10).
  The sizes are those of the notebook's Step 5, so that on JAX no new shape has to be compiled.
- :func:`check_tokens_prediction` (predict-then-run): the learner's factor by which one block's
  parameter count changes when it is built for 40 tokens instead of 10 (D = 32, M = 128); the
  checker builds both blocks and divides their Keras counts (right: 1, within 1%).
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


# --- predict-then-run: one token made ten times larger ---------------------------------------
# A pre-norm block (D = 32, 4 heads, M = 128, batches of 2 x 10 tokens: Step 5's sizes, so that on
# JAX no new shape has to be compiled) with random weights. Token 3 of image 0 is multiplied by 10
# (every feature); the experiment counts image 0's output tokens that change (max |difference| over
# their features > 0.001; float rounding moves the others by about 1e-6). Both branches of Eq. 2-3
# see the tokens only through LayerNorm, which removes a token's scale, so only the residual path
# carries the change: 1 token. The same weights arranged post-norm (Step 3) change all 10.

TOKENS, SCALED_TOKEN, FACTOR, THRESHOLD = 10, 3, 10.0, 1e-3


def measure_scaled_token(arrangement: str = "pre-norm", seed: int = 0) -> int:
    """How many of the 10 output tokens of a random encoder block change when token 3 of the input
    is multiplied by 10; ``arrangement`` is "pre-norm" (Eq. 2-3) or "post-norm" (Step 3)."""
    import keras

    from ..encoder import EncoderBlock

    rng = np.random.default_rng(seed)
    dim = 32
    block = EncoderBlock(num_heads=4, mlp_dim=4 * dim)
    block.build((None, TOKENS, dim))
    block.set_weights([rng.normal(scale=0.3, size=w.shape).astype("float32")
                       for w in block.get_weights()])

    def post_norm(z):  # the 2017 arrangement: LayerNorm after each addition
        z = block.norm1(z + block.attention(z))
        return block.norm2(z + block.mlp(z))

    run = {"pre-norm": block, "post-norm": post_norm}[arrangement]
    x = rng.normal(size=(2, TOKENS, dim)).astype("float32")
    scaled = x.copy()
    scaled[0, SCALED_TOKEN] *= FACTOR
    diff = np.abs(keras.ops.convert_to_numpy(run(scaled) - run(x)))[0].max(axis=-1)
    return int(np.sum(diff > THRESHOLD))


SCALED_TOKEN_MISTAKES = (
    ("all_tokens", 10,
     "10 is right for a change that attention can see, and attention is where tokens mix. But in "
     "Eq. 2-3 both branches see the tokens only through LayerNorm, and LN(10 z) = LN(z): LayerNorm "
     "divides each token by its own standard deviation (Step 1), so the scale is gone before Q, K "
     "and V are computed. The other tokens' attention outputs do not change, and nothing reaches "
     "them."),
    ("none", 0,
     "LayerNorm removes the scale inside the branches, but the residual path of Eq. 2 adds z "
     "itself, 10 z_3 now, not LN(z): token 3's output changes."),
)


def check_scaled_token_prediction(prediction) -> Feedback:
    """Check the learner's ``prediction`` (a number): of 10 output tokens, how many change when
    token 3 of the input is multiplied by 10, in a pre-norm encoder block with random weights."""
    pre, post = measure_scaled_token("pre-norm"), measure_scaled_token("post-norm")
    why = (f"Both branches read LN(z), and LayerNorm makes every token mean 0 and variance 1, so "
           f"LN(10 z_{SCALED_TOKEN}) = LN(z_{SCALED_TOKEN}) (up to the tiny epsilon): attention's queries, keys and values "
           f"are unchanged for every token. Only the residual path carries the larger token, so "
           f"only token {SCALED_TOKEN}'s output moves. The same weights arranged post-norm "
           f"(Step 3: attention on z itself, LayerNorm after the addition): {post} of {TOKENS} "
           "tokens change. Pre-norm keeps a token's size out of the mixing.")
    return compare_prediction(prediction, pre, title="Exercise 3 · one token ten times larger",
                              unit=f"of {TOKENS} tokens", why=why,
                              mistakes=SCALED_TOKEN_MISTAKES)


# --- predict-then-run: four times as many tokens ----------------------------------------------
# Step 5's block (D = 32, 4 heads, M = 128) built for sequences of 10 tokens and for sequences of
# 40 (a grid with four times as many patches): Keras counts 12,704 parameters for both, since every
# weight acts on one token's D features and is shared by all positions. What grows is computed per
# image: the attention weights, heads x T x T = 400 -> 6,400 numbers (16 times).

SHORT, LONG = 10, 40


def measure_token_growth() -> tuple[int, int]:
    """Keras' parameter counts of one encoder block (D = 32, M = 128, 4 heads) built for 10 and
    for 40 tokens. The blocks are only built, not run: no new shape to compile on JAX."""
    from ..encoder import EncoderBlock

    counts = []
    for tokens in (SHORT, LONG):
        block = EncoderBlock(num_heads=4, mlp_dim=128)
        block.build((None, tokens, 32))
        counts.append(int(block.count_params()))
    return counts[0], counts[1]


TOKEN_GROWTH_MISTAKES = (
    ("grows_with_tokens", 4.0,
     "The sequence is 4 times longer, but no weight belongs to a token: W_Q, W_K, W_V, W_O and the "
     "MLP act on one token's D features and are applied to every token alike, as a convolution's "
     "filter is applied at every position of an image. Eq. 2-3 and the formula of Step 4 have D "
     "and M in them, but no number of tokens."),
    ("attention_size", 16.0,
     "16 = 4 x 4 is how much the attention weights grow (heads x T x T per image). They are not "
     "parameters: they are computed for each image from its tokens with W_Q and W_K, and their "
     "size depends on T; the weights that compute them do not."),
)


def check_tokens_prediction(prediction) -> Feedback:
    """Check the learner's ``prediction`` (a number): the factor by which one block's parameter
    count changes when it is built for 40 tokens instead of 10 (right: 1)."""
    short, long = measure_token_growth()
    heads = 4
    why = (f"Keras counts {short:,} parameters for {SHORT} tokens and {long:,} for {LONG}. Every "
           "weight acts on one token's features and is shared by all positions, so a block runs on "
           "any number of tokens with the same parameters (in a whole ViT only the position "
           "embedding has a row per token, notebook 04). What does grow is computed per image: the "
           f"attention weights, {heads} x {SHORT} x {SHORT} = {heads * SHORT**2:,} numbers against "
           f"{heads} x {LONG} x {LONG} = {heads * LONG**2:,} (16 times), and the compute with them.")
    return compare_prediction(prediction, long / short, title="Exercise 4 · four times the tokens",
                              rtol=0.01, why=why, mistakes=TOKEN_GROWTH_MISTAKES)


# --- interpret: the ablation of Step 6 (data/ablation.json, 3 seeds each) ---------------------
# full block, class token 0.847 (0.842-0.850); without MLP 0.831 (0.829-0.834);
# full block, mean of patches 0.838 (0.835-0.841); without attention, mean 0.845 (0.840-0.847).
# Paired by seed, without attention minus the full block read out by the mean: +0.0087, +0.0052,
# +0.0055 (seeds 0, 1, 2).

ABLATION_OPTIONS = {
    "a": "That generalises one small measurement to all vision Transformers. The record is one task "
         "(centred, upright 28x28 clothes), a 3-epoch budget and a 139k-parameter model. The ViT "
         "paper's results come from large images, long training and much more data, where a model "
         "must relate distant parts of an image; this record cannot speak for that.",
    "b": "(the right answer)",
    "c": "Seed by seed, the model without attention does score higher than the full block read "
         "out the same way, in each of the three seeds, but by under a point (+0.0052 to +0.0087, "
         "the paired line of Step 6). Three seeds, one small task and one 3-epoch budget do not "
         "establish 'better': the checked line claims only 'not lower'. A claim of 'better' would "
         "need more seeds and budgets, with the gap holding in all of them.",
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
