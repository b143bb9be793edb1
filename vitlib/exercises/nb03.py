"""Checkers for notebook 03 (multi-head attention).

- :func:`check_split_heads`: ``split_heads(x, num_heads)``:
  (batch, tokens, dim) -> (batch, heads, tokens, dim // heads).
- :func:`check_merge_heads`: ``merge_heads(x)``: (batch, heads, tokens, head_dim) ->
  (batch, tokens, heads * head_dim), the inverse of ``split_heads``.
- :func:`check_mha_param_count`: ``mha_param_count(dim, heads, key_dim)``: the number of
  weights in ``keras.layers.MultiHeadAttention(heads, key_dim)`` on inputs of width ``dim``.
"""

from __future__ import annotations

import numpy as np

from ._core import Feedback, Mistake, check

__all__ = ["check_merge_heads", "check_mha_param_count", "check_split_heads",
           "reference_merge_heads", "reference_mha_param_count", "reference_split_heads"]


def reference_split_heads(x, num_heads):
    """(batch, tokens, dim) -> (batch, heads, tokens, dim // heads); head h gets features
    h*head_dim ... (h+1)*head_dim - 1."""
    b, t, d = np.shape(x)
    return np.asarray(x).reshape(b, t, num_heads, d // num_heads).transpose(0, 2, 1, 3)


def reference_merge_heads(x):
    """(batch, heads, tokens, head_dim) -> (batch, tokens, heads * head_dim)."""
    b, h, t, k = np.shape(x)
    return np.asarray(x).transpose(0, 2, 1, 3).reshape(b, t, h * k)


def reference_mha_param_count(dim, heads, key_dim):
    """Q, K, V kernels (dim, heads, key_dim) + biases (heads, key_dim), output kernel
    (heads, key_dim, dim) + bias (dim,)."""
    return 3 * (dim * heads * key_dim + heads * key_dim) + heads * key_dim * dim + dim


# ---------------------------------------------------------------- split / merge heads

def _split_cases():
    """(batch, tokens, heads, head_dim): all different, and one case with tokens == heads."""
    plan = iter([(2, 5, 3, 4), (1, 4, 4, 2), (3, 6, 2, 5), (2, 7, 4, 3), (2, 3, 6, 2)])

    def make_case(rng):
        b, t, h, k = next(plan)
        return rng.normal(size=(b, t, h * k)), h

    return make_case


def _split_wrong(x, num_heads, order):
    b, t, d = np.shape(x)
    return np.asarray(x).reshape(b, t, num_heads, d // num_heads).transpose(order)


_SPLIT_MISTAKES = [
    Mistake("reshape_only",
            lambda x, h: np.asarray(x).reshape(x.shape[0], h, x.shape[1], x.shape[2] // h),
            "you reshaped straight to (batch, heads, tokens, head_dim). The shape is right but "
            "the numbers are not: a reshape keeps memory order, so 'head 0' now holds the first "
            "tokens' features, not the first head_dim features of every token. Reshape to "
            "(batch, tokens, heads, head_dim) first, then transpose to (0, 2, 1, 3)."),
    Mistake("no_transpose", lambda x, h: _split_wrong(x, h, (0, 1, 2, 3)),
            "you stopped at (batch, tokens, heads, head_dim). Move the heads axis before the "
            "tokens: transpose with axes (0, 2, 1, 3)."),
    Mistake("interleaved",
            lambda x, h: np.asarray(x).reshape(x.shape[0], x.shape[1], x.shape[2] // h, h)
            .transpose(0, 3, 1, 2),
            "your heads take every `num_heads`-th feature (interleaved). Each head must get a "
            "contiguous block of head_dim features: reshape to (batch, tokens, heads, head_dim), "
            "not (batch, tokens, head_dim, heads)."),
    Mistake("wrong_axis_order", lambda x, h: _split_wrong(x, h, (0, 2, 3, 1)),
            "your axes end in (head_dim, tokens): each head's matrix is transposed. The order "
            "is (batch, heads, tokens, head_dim): transpose with (0, 2, 1, 3)."),
    Mistake("heads_first", lambda x, h: _split_wrong(x, h, (2, 0, 1, 3)),
            "you put the heads before the batch axis. The batch stays first: "
            "(batch, heads, tokens, head_dim)."),
]


def check_split_heads(split_heads) -> Feedback:
    """Check ``split_heads(x, num_heads)`` on random (batch, tokens, dim) arrays."""
    return check(split_heads, reference_split_heads, _split_cases(), _SPLIT_MISTAKES,
                 title="split_heads", cases=5, seed=4)


def _merge_cases():
    plan = iter([(2, 3, 5, 4), (1, 4, 4, 2), (3, 2, 6, 5), (2, 4, 7, 3)])

    def make_case(rng):
        return (rng.normal(size=next(plan)),)

    return make_case


_MERGE_MISTAKES = [
    Mistake("reshape_only",
            lambda x: np.asarray(x).reshape(x.shape[0], x.shape[2], x.shape[1] * x.shape[3]),
            "you reshaped without transposing back: the shape is right but each token now holds "
            "pieces of other tokens. Transpose to (batch, tokens, heads, head_dim) with "
            "(0, 2, 1, 3) first, then reshape."),
    Mistake("interleaved",
            lambda x: np.asarray(x).transpose(0, 2, 3, 1)
            .reshape(x.shape[0], x.shape[2], x.shape[1] * x.shape[3]),
            "your merged features interleave the heads (h0[0], h1[0], ..., h0[1], ...). "
            "Concatenate them: head 0's head_dim features, then head 1's, ...: transpose with "
            "(0, 2, 1, 3), not (0, 2, 3, 1)."),
]


def check_merge_heads(merge_heads) -> Feedback:
    """Check ``merge_heads(x)`` on random (batch, heads, tokens, head_dim) arrays."""
    return check(merge_heads, reference_merge_heads, _merge_cases(), _MERGE_MISTAKES,
                 title="merge_heads", cases=4, seed=5)


# ---------------------------------------------------------------- parameter count

def _count_cases():
    """(dim, heads, key_dim) with key_dim != dim and heads > 1, so every mistake differs.

    Counts are compared exactly (rtol=0, atol=0): an answer off by one weight is rejected.
    """
    plan = iter([(16, 4, 4), (24, 3, 8), (12, 2, 6), (20, 4, 5), (16, 2, 3)])

    def make_case(rng):
        return next(plan)

    return make_case


_COUNT_MISTAKES = [
    Mistake("no_biases", lambda d, h, k: 4 * d * h * k,
            "you counted the kernels only. Add the biases: h*key_dim for each of Q, K, V and "
            "dim for the output projection."),
    Mistake("key_dim_is_dim", lambda d, h, k: reference_mha_param_count(d, h, d),
            "you used the model width `dim` as key_dim. In Keras, key_dim is the size of ONE "
            "head: each of Q, K, V has a (dim, heads, key_dim) kernel."),
    Mistake("key_dim_is_total", lambda d, h, k: reference_mha_param_count(d, 1, k),
            "you treated key_dim as the width of all heads together. Each of the `heads` heads "
            "has its own key_dim features: the kernels are (dim, heads, key_dim)."),
    Mistake("no_output_projection", lambda d, h, k: 3 * (d * h * k + h * k),
            "you forgot the output projection (Eq. 8's U_msa): a (heads, key_dim, dim) kernel "
            "and a (dim,) bias."),
    Mistake("no_output_bias", lambda d, h, k: reference_mha_param_count(d, h, k) - d,
            "almost: the output projection also has a bias of size dim."),
    Mistake("output_bias_per_head", lambda d, h, k: reference_mha_param_count(d, h, k) - d + h * k,
            "the output projection's bias has size dim (the output width), not heads*key_dim."),
]


def check_mha_param_count(mha_param_count) -> Feedback:
    """Check ``mha_param_count(dim, heads, key_dim)`` against the exact count."""
    return check(mha_param_count, reference_mha_param_count, _count_cases(), _COUNT_MISTAKES,
                 title="mha_param_count", cases=5, seed=6, atol=0, rtol=0)
