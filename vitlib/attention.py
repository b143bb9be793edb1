"""Step 3 of ViT: scaled dot-product attention and multi-head self-attention.

Vaswani et al. 2017, Eq. 1:  Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V
ViT paper, Appendix A, Eq. 5-8: [q, k, v] = z U_qkv;  A = softmax(q k^T / sqrt(D_h));
SA(z) = A v;  MSA(z) = [SA_1(z); ...; SA_k(z)] U_msa.
"""

from __future__ import annotations

import math

from keras import KerasTensor, backend, initializers, layers, ops, saving

from . import _checks


def _mask_value(dtype) -> float:
    """A score so low that softmax gives it (numerically) zero weight, and that ``dtype`` can hold:
    -1e9 would overflow float16 to -inf, and a fully masked row would become NaN."""
    return -6.0e4 if backend.standardize_dtype(dtype) == "float16" else -1e9


def _check_mask(mask, scores_shape):
    """A mask must broadcast to the scores' (..., queries, keys)."""
    mshape = _known(ops.shape(mask))  # sizes unknown while tracing are not compared
    want = _known(scores_shape)
    ok = len(mshape) >= 2 and len(mshape) <= len(want)
    if ok:
        for m, s in zip(reversed(mshape), reversed(want), strict=False):
            if m is not None and s is not None and m not in (1, s):
                ok = False
    if not ok:
        raise ValueError(
            f"`mask` must broadcast to the attention scores' shape {want} "
            f"(..., queries, keys), got shape {mshape}. True means 'may attend'."
        )


def _known(dims) -> tuple:
    """Axis sizes as ints, with None for sizes unknown while tracing (compared as wildcards)."""
    return tuple(d if isinstance(d, int) else None for d in dims)


def scaled_dot_product_attention(q, k, v, mask=None):
    """Softmax-weighted average of the values, weighted by query-key similarity.

    q: (..., queries, d_k), k: (..., keys, d_k), v: (..., keys, d_v)
    mask: optional booleans broadcastable to (..., queries, keys); False blocks a key.
    Returns ``(output, weights)``: output (..., queries, d_v); weights (..., queries, keys),
    each row summing to 1 over the keys.
    """
    # Sizes unknown while tracing (a graph with unknown batch or tokens) are None: not compared.
    qs, ks, vs = _known(ops.shape(q)), _known(ops.shape(k)), _known(ops.shape(v))
    if len(qs) < 2 or len(ks) != len(qs) or len(vs) != len(qs):
        raise ValueError(
            f"`q`, `k`, `v` must have the same rank >= 2 (..., tokens, features), "
            f"got shapes {tuple(qs)}, {tuple(ks)}, {tuple(vs)}."
        )
    if None not in (qs[-1], ks[-1]) and qs[-1] != ks[-1]:
        raise ValueError(f"`q` and `k` must have the same feature size, got {qs[-1]} and {ks[-1]}.")
    if None not in (ks[-2], vs[-2]) and ks[-2] != vs[-2]:
        raise ValueError(f"`k` and `v` must have the same number of keys, got {ks[-2]} and {vs[-2]}.")
    if not all(len({a, b, c} - {None}) <= 1 for a, b, c in zip(qs[:-2], ks[:-2], vs[:-2], strict=True)):
        raise ValueError(f"`q`, `k`, `v` must have the same leading (batch, heads) axes, got shapes "
                         f"{tuple(qs)}, {tuple(ks)}, {tuple(vs)}.")
    if mask is not None:
        _check_mask(mask, (*qs[:-1], ks[-2]))
    # (q / sqrt(d_k)) k^T = q k^T / sqrt(d_k). Scaling the queries costs (queries, d_k) work;
    # scaling the scores would cost one more pass over (queries, keys) and another tensor that
    # size. keras.layers.MultiHeadAttention also scales the queries (see benchmarks/attention.py).
    d_k = qs[-1] if qs[-1] is not None else ops.cast(ops.shape(q)[-1], q.dtype)
    q = ops.multiply(q, 1.0 / math.sqrt(d_k) if isinstance(d_k, int) else ops.rsqrt(d_k))
    scores = ops.matmul(q, ops.swapaxes(k, -1, -2))  # (..., queries, keys)
    if mask is not None:
        scores = ops.where(ops.cast(mask, "bool"), scores, ops.cast(_mask_value(scores.dtype), scores.dtype))
    weights = ops.softmax(scores, axis=-1)
    return ops.matmul(weights, v), weights


@saving.register_keras_serializable(package="vitlib")
class MultiHeadSelfAttention(layers.Layer):
    """Multi-head self-attention: Q, K and V all come from the same tokens.

    x (batch, tokens, dim) -> (batch, tokens, dim), and with ``return_attention_scores=True``
    also the weights (batch, heads, tokens, tokens).

    The weights have the shapes of ``keras.layers.MultiHeadAttention(num_heads, key_dim=dim //
    num_heads)``, in the same order, so ``set_weights(mha.get_weights())`` copies a Keras layer:
    query/key/value kernels (dim, heads, head_dim) and biases (heads, head_dim), output kernel
    (heads, head_dim, dim) and bias (dim,).

    Without weights requested, it calls the fused ``keras.ops.dot_product_attention``;
    with them, the explicit :func:`scaled_dot_product_attention`. Both give the same output.
    """

    def __init__(self, num_heads: int, dropout: float = 0.0, use_bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = _checks.positive_int("num_heads", num_heads)
        self.dropout = _checks.probability("dropout", dropout)
        self.use_bias = bool(use_bias)
        self.dropout_layer = layers.Dropout(self.dropout)  # on the attention weights

    def build(self, input_shape):
        _, _, dim = _checks.rank("x", input_shape, 3, "(batch, tokens, dim)")
        if dim % self.num_heads:
            raise ValueError(
                f"`num_heads`={self.num_heads} must divide the model width dim={dim} "
                f"(each head gets dim / num_heads features)."
            )
        self.dim, self.head_dim = dim, dim // self.num_heads
        h, k = self.num_heads, self.head_dim
        # A new initializer for every kernel: Keras' unseeded initializer object returns the same
        # values at every call, and one shared object would start with W_Q = W_K = W_V.
        for name in ("query", "key", "value"):
            setattr(self, f"{name}_kernel",
                    self.add_weight(shape=(dim, h, k), initializer=initializers.GlorotUniform(),
                                    name=f"{name}_kernel"))
            if self.use_bias:
                setattr(self, f"{name}_bias",
                        self.add_weight(shape=(h, k), initializer="zeros", name=f"{name}_bias"))
        self.output_kernel = self.add_weight(shape=(h, k, dim), initializer=initializers.GlorotUniform(),
                                             name="output_kernel")
        if self.use_bias:
            self.output_bias = self.add_weight(shape=(dim,), initializer="zeros", name="output_bias")

    def _project(self, x, name):
        y = ops.einsum("btd,dhk->bthk", x, getattr(self, f"{name}_kernel"))
        return y + getattr(self, f"{name}_bias") if self.use_bias else y

    def call(self, x, mask=None, return_attention_scores=False, training=None):
        _, t, dim = _checks.rank("x", ops.shape(x), 3, "(batch, tokens, dim)")
        if isinstance(dim, int) and dim != self.dim:
            raise ValueError(f"`x` has width {dim}, but this layer was built for dim={self.dim}: "
                             "a layer's weights fix its width; make a new layer for another one.")
        if mask is not None:
            mask = ops.cast(mask, "bool")
            if len(ops.shape(mask)) == 3:
                mask = mask[:, None]  # (b, 1, tq, tk): the same mask for every head
            _check_mask(mask, (ops.shape(x)[0], self.num_heads, t, t))
        q, k, v = (self._project(x, n) for n in ("query", "key", "value"))  # (b, t, h, k)
        if return_attention_scores or (training and self.dropout > 0):  # the explicit path
            qh, kh, vh = (ops.transpose(z, (0, 2, 1, 3)) for z in (q, k, v))  # (b, h, t, k)
            out, weights = scaled_dot_product_attention(qh, kh, vh, mask)
            if training and self.dropout > 0:
                out = ops.matmul(self.dropout_layer(weights, training=training), vh)
            out = ops.transpose(out, (0, 2, 1, 3))  # (b, t, h, k)
        else:  # the fused kernel, same result
            if mask is not None:
                mask = ops.broadcast_to(mask, (ops.shape(x)[0], self.num_heads, t, t))
            out = ops.dot_product_attention(q, k, v, mask=mask)  # (b, t, h, k)
        y = ops.einsum("bthk,hkd->btd", out, self.output_kernel)
        if self.use_bias:
            y = y + self.output_bias
        return (y, weights) if return_attention_scores else y

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, x, mask=None, return_attention_scores=False, training=None):
        # Symbolic (functional-model) calls: with scores requested there are two outputs.
        out = KerasTensor(x.shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return out
        b, t = x.shape[0], x.shape[1]
        return out, KerasTensor((b, self.num_heads, t, t), dtype=self.compute_dtype)

    def compute_mask(self, inputs, previous_mask=None):
        # `mask` is an attention mask (queries, keys), not a Keras padding mask: nothing to pass
        # on (and Keras no longer warns that the mask is "destroyed" on every masked call).
        return None

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "dropout": self.dropout,
                "use_bias": self.use_bias}


def causal_mask(tokens: int):
    """Booleans (tokens, tokens), True on and below the diagonal: query i may attend to keys
    0..i only, so that an autoregressive model (Image Transformer, GPT) cannot look ahead."""
    tokens = _checks.positive_int("tokens", tokens)
    return ops.tril(ops.ones((tokens, tokens), dtype="bool"))
