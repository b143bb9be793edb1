"""Checkers for notebook 03 (multi-head attention).

Exercises in the order the notebook asks them:

- :func:`check_fixed_key_dim_prediction` (Exercise 1, predict-then-run, asked at the start of
  Step 4 before the formula): ``prediction``, a number: the parameters of
  ``keras.layers.MultiHeadAttention(num_heads=8, key_dim=16)`` on width 64 (Step 3's layer with 4
  heads of 16, after doubling the heads but keeping key_dim). The checker builds the layer and
  compares with its ``count_params()``, exactly.
- :func:`check_split_heads` (Exercise 2): ``split_heads(x, num_heads)``:
  (batch, tokens, dim) -> (batch, heads, tokens, dim // heads).
- :func:`check_merge_heads` (Exercise 3): ``merge_heads(x)``: (batch, heads, tokens, head_dim) ->
  (batch, tokens, heads * head_dim), the inverse of ``split_heads``.
- :func:`check_cross_attention_param_count` (Exercise 4, transfer):
  ``cross_attention_param_count(query_dim, kv_dim, heads, key_dim)``: the number of weights of
  ``keras.layers.MultiHeadAttention(heads, key_dim)`` called as ``layer(query, value)`` on queries
  of width ``query_dim`` and keys/values of width ``kv_dim`` (value_dim and output width left at
  their defaults: key_dim and query_dim). Checked exactly, always with ``kv_dim != query_dim``, so
  Step 4's self-attention formula pasted unchanged is recognised and rejected with its own hint.
- :func:`check_attention_weights_prediction` (Exercise 5, predict-then-run): ``prediction``, a
  number: how many attention weights one ViT-B/16 attention layer computes for one 224x224 image
  (12 heads, 197 tokens). The checker runs ``vitlib.scaled_dot_product_attention`` on
  (1, 12, 197, 64) queries and counts the weights it returns, exactly.
- :func:`check_split_qkv` (Exercise 6, transfer): ``split_qkv(x, num_heads)``: the output of ONE
  fused projection [z U_q | z U_k | z U_v] (Eq. 5), (batch, tokens, 3 * dim) -> the tuple
  (q, k, v), each (batch, heads, tokens, dim // heads). ``split_heads`` of Step 1, pasted
  unchanged, is recognised and rejected with its own hint.
- :func:`check_mha_param_count`: ``mha_param_count(dim, heads, key_dim)``, the self-attention
  count of Step 4 (kept for self-study; the notebook's Exercise 4 is the cross-attention one).

A prediction or an answer of None (the student edition's stub) gets "not answered yet".
"""

from __future__ import annotations

import numpy as np

from ._core import Feedback, Mistake, check, compare_prediction

__all__ = ["check_attention_weights_prediction", "check_cross_attention_param_count",
           "check_fixed_key_dim_prediction", "check_merge_heads", "check_mha_param_count", "check_split_heads", "check_split_qkv",
           "reference_cross_attention_param_count", "reference_merge_heads",
           "reference_mha_param_count", "reference_split_heads",
           "reference_split_qkv"]


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


# ---------------------------------------------------------------- transfer: cross-attention

def reference_cross_attention_param_count(query_dim, kv_dim, heads, key_dim):
    """keras.layers.MultiHeadAttention(heads, key_dim)(query, value): W_Q reads query_dim
    features, W_K and W_V read kv_dim; each writes heads * key_dim (+ a bias of that size); W_O
    reads heads * key_dim and writes query_dim (+ a bias of size query_dim)."""
    width = heads * key_dim
    return (query_dim * width + width) + 2 * (kv_dim * width + width) + width * query_dim + query_dim


def _cross_cases():
    """(query_dim, kv_dim, heads, key_dim), kv_dim != query_dim, and no two slips coincide."""
    plan = iter([(64, 32, 4, 16), (96, 48, 3, 8), (16, 40, 2, 4), (24, 12, 6, 5), (80, 30, 5, 6)])

    def make_case(rng):
        return next(plan)

    return make_case


def _cross_wrong(q_in, k_in, v_in, out):
    """A count with W_Q reading q_in, W_K k_in, W_V v_in features and W_O writing out."""
    def count(q, kv, h, k):
        w, dims = h * k, {"q": q, "kv": kv}
        return sum(dims[d] * w + w for d in (q_in, k_in, v_in)) + w * dims[out] + dims[out]
    return count


_CROSS_MISTAKES = [
    Mistake("self_attention_formula", _cross_wrong("q", "q", "q", "q"),
            "that is Step 4's self-attention count with dim = query_dim, pasted unchanged. In "
            "cross-attention the keys and values are projected from the OTHER sequence: the K and "
            "V kernels are (kv_dim, heads, key_dim), only the Q kernel reads query_dim features."),
    Mistake("kv_dim_everywhere", _cross_wrong("kv", "kv", "kv", "kv"),
            "you used kv_dim for every projection. The queries, and the output that replaces them, "
            "have the queries' width: the Q kernel is (query_dim, heads, key_dim) and the output "
            "kernel (heads, key_dim, query_dim)."),
    Mistake("output_to_kv", _cross_wrong("q", "kv", "kv", "kv"),
            "Q, K and V are right, but the output goes back to the QUERIES' width: one output "
            "token per query, added to the query tokens. The output kernel is (heads, key_dim, "
            "query_dim) and its bias has query_dim entries."),
    Mistake("value_from_query", _cross_wrong("q", "kv", "q", "q"),
            "the values come from the same sequence as the keys (the weights of a key's row "
            "average that key's value): the V kernel is (kv_dim, heads, key_dim), like K."),
    Mistake("no_biases", lambda q, kv, h, k: 2 * (q + kv) * h * k,
            "you counted the kernels only. Add the biases: heads * key_dim for each of Q, K and V, "
            "and query_dim for the output projection."),
    Mistake("key_dim_is_total", lambda q, kv, h, k: reference_cross_attention_param_count(q, kv, 1, k),
            "you treated key_dim as the width of all heads together. In Keras key_dim is ONE "
            "head's width: each projection writes heads * key_dim features."),
]


def check_cross_attention_param_count(cross_attention_param_count) -> Feedback:
    """Check ``cross_attention_param_count(query_dim, kv_dim, heads, key_dim)``, exactly, on
    queries and keys/values of different widths."""
    return check(cross_attention_param_count, reference_cross_attention_param_count,
                 _cross_cases(), _CROSS_MISTAKES, title="Exercise 4 · cross-attention parameters",
                 cases=5, seed=8, atol=0, rtol=0)


# ---------------------------------------------------------------- predict-then-run

def _keras_param_count(dim, heads, key_dim) -> int:
    """Build keras.layers.MultiHeadAttention(heads, key_dim) on width ``dim``; its count_params()."""
    import keras

    layer = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=key_dim)
    x = np.zeros((1, 3, dim), "float32")
    layer(x, x)
    return int(layer.count_params())


def check_fixed_key_dim_prediction(prediction) -> Feedback:
    """Predict-then-run: parameters of MultiHeadAttention(num_heads=8, key_dim=16) on D = 64.

    Step 3's layer has 4 heads of key_dim 16 = D / 4 (16,640 parameters). The learner predicts
    the count after doubling the heads while KEEPING key_dim = 16, before Step 4 shows the
    formula. Compared exactly with the layer's count_params() (33,216).
    """
    measured = _keras_param_count(64, 8, 16)
    base = _keras_param_count(64, 4, 16)
    return compare_prediction(
        prediction, measured, title="Exercise 1 · 8 heads, key_dim kept at 16", unit="parameters",
        why=("Only heads x key_dim counts: 8 heads of 16 have 128-wide Q, K and V projections, "
             "twice D = 64, so the four kernels and the Q, K, V biases double; only the output "
             "bias (D = 64 numbers) does not: 2 x 16,640 - 64. Step 4's second table shows the "
             "same count for 2 heads of key_dim = D = 64 (the trap column): 2 x 64 = 8 x 16. With "
             "key_dim = D / heads (8 heads of 8) the count would stay 16,640."),
        mistakes=[
            ("heads_split_width", base,
             "That is the count when key_dim shrinks to D / heads. Here key_dim stays 16, so every "
             "new head brings its own 64x16 Q, K and V kernels and its own 16x64 slice of the "
             "output kernel: heads x key_dim grows from 64 to 128."),
            ("doubled_everything", 2 * base,
             "Close: the Q, K, V and output kernels and the Q, K, V biases double, but the output "
             "bias has D = 64 entries whatever the number of heads: 2 x 16,640 - 64."),
            ("no_biases", 4 * 64 * 8 * 16,
             "That is the four kernels (4 x 64 x 8 x 16) without the biases: add 8 x 16 for each "
             "of Q, K and V, and 64 for the output projection."),
            ("eight_times_key_dim_is_d", _keras_param_count(64, 8, 64),
             "That is the layer with key_dim = D = 64 (8 heads of 64 each, the trap of Step 4). "
             "The question keeps key_dim = 16."),
        ])


def check_attention_weights_prediction(prediction) -> Feedback:
    """Predict-then-run: attention weights of one ViT-B/16 layer for one 224x224 image.

    12 heads, 196 patches + the class token = 197 tokens: 12 x 197 x 197 = 465,708. The checker
    runs vitlib.scaled_dot_product_attention on (1, 12, 197, 64) random queries (keys = values
    = queries) and counts the weights it returns.
    """
    from keras import ops

    from ..attention import scaled_dot_product_attention

    q = np.random.default_rng(0).normal(size=(1, 12, 197, 64)).astype("float32")
    _, weights = scaled_dot_product_attention(q, q, q)
    measured = int(np.prod(ops.shape(weights)))
    return compare_prediction(
        prediction, measured, title="Exercise 5 · attention weights of ViT-B/16",
        unit="weights",
        why=("Every one of the 197 queries gets a weight for every one of the 197 keys (itself "
             "included), in each of the 12 heads: 12 x 197 x 197. In float32 that is 1.9 MB per "
             "image and layer, and it grows as N^2: with 8x8 patches (N = 785) about 16 times "
             "more."),
        mistakes=[
            ("one_head", 197 * 197,
             "That is ONE head's map. Each of the 12 heads computes its own 197 x 197 map from "
             "its own queries and keys: multiply by 12."),
            ("no_class_token", 12 * 196 * 196,
             "You counted the 196 patches only. The class token is a token too: it queries all "
             "the patches and they attend to it, so N = 197."),
            ("no_self_pairs", 12 * 197 * 196,
             "Each token also attends to itself (the diagonal of the map): 197 keys per query, "
             "not 196."),
            ("unordered_pairs", 12 * 197 * 196 // 2,
             "The map is not symmetric: q_i . k_j and q_j . k_i use different vectors (W_Q != W_K) "
             "and each row gets its own softmax, so every ordered pair (i, j) has its own weight, "
             "the diagonal included."),
            ("per_head_dim", 12 * 197 * 197 * 64,
             "A weight is one number per (query, key) pair in each head; the head width 64 is "
             "summed over inside q . k, it does not multiply the number of weights."),
        ])


# ---------------------------------------------------------------- transfer: a fused projection

def reference_split_qkv(x, num_heads):
    """(batch, tokens, 3 * dim), features [q | k | v], head h owning block h of each ->
    (q, k, v), each (batch, heads, tokens, dim // heads)."""
    b, t, d3 = np.shape(x)
    d = d3 // 3
    y = np.asarray(x).reshape(b, t, 3, num_heads, d // num_heads).transpose(2, 0, 3, 1, 4)
    return (y[0], y[1], y[2])


def _qkv_cases():
    """(batch, tokens, heads, head_dim): all different, one with tokens == heads."""
    plan = iter([(2, 5, 2, 3), (1, 4, 4, 2), (3, 6, 3, 4), (2, 7, 2, 5), (2, 3, 6, 2)])

    def make_case(rng):
        b, t, h, k = next(plan)
        return rng.normal(size=(b, t, 3 * h * k)), h

    return make_case


def _qkv_per_head(x, h):
    b, t, d3 = np.shape(x)
    y = np.asarray(x).reshape(b, t, h, 3, d3 // (3 * h)).transpose(3, 0, 2, 1, 4)
    return (y[0], y[1], y[2])


def _qkv_every_third(x, h):
    return tuple(reference_split_heads(np.asarray(x)[..., i::3], h) for i in range(3))


def _qkv_no_transpose(x, h):
    b, t, d3 = np.shape(x)
    y = np.asarray(x).reshape(b, t, 3, h, d3 // (3 * h))
    return (y[:, :, 0], y[:, :, 1], y[:, :, 2])


def _qkv_reshape_only(x, h):
    b, t, d3 = np.shape(x)
    y = np.asarray(x).reshape(b, 3, h, t, d3 // (3 * h))
    return (y[:, 0], y[:, 1], y[:, 2])


_QKV_MISTAKES = [
    Mistake("split_heads_unchanged", lambda x, h: reference_split_heads(x, h),
            "that is Step 1's split_heads, unchanged: it cuts all 3 * dim features into heads, "
            "so each 'head' holds a mix of q, k and v, and you return one array instead of three. "
            "First separate q, k and v (the first dim features are q, the next dim k, the last "
            "dim v), then split each into heads: reshape to (batch, tokens, 3, heads, head_dim)."),
    Mistake("per_head_layout", _qkv_per_head,
            "you read the features head by head (head 0's q, k, v, then head 1's ...), a layout "
            "some libraries use. Here the fused projection is [z U_q | z U_k | z U_v]: all of q "
            "first, then all of k, then all of v. Reshape to (batch, tokens, 3, heads, "
            "head_dim), not (batch, tokens, heads, 3, head_dim)."),
    Mistake("every_third", _qkv_every_third,
            "you took every third feature for q (0, 3, 6, ...). q, k and v are contiguous "
            "blocks of dim features each: x[..., :dim], x[..., dim:2*dim], x[..., 2*dim:]."),
    Mistake("no_transpose", _qkv_no_transpose,
            "q, k and v are right but each is (batch, tokens, heads, head_dim). Move the heads "
            "before the tokens, as in split_heads: (batch, heads, tokens, head_dim)."),
    Mistake("reshape_only", _qkv_reshape_only,
            "you reshaped straight to (batch, 3, heads, tokens, head_dim): the shapes are right "
            "but a reshape keeps memory order, so tokens get mixed up. Reshape to (batch, tokens, "
            "3, heads, head_dim) first, then transpose."),
]


def check_split_qkv(split_qkv) -> Feedback:
    """Check ``split_qkv(x, num_heads) -> (q, k, v)`` on random (batch, tokens, 3 * dim) arrays."""
    return check(split_qkv, reference_split_qkv, _qkv_cases(), _QKV_MISTAKES,
                 title="Exercise 6 · split_qkv", cases=5, seed=7)
