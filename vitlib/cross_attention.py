"""Cross-attention (source-target attention) and learned queries: the decoder side of DETR and
the pooling of Set Transformer (notebook 10).

Vaswani et al. 2017, Eq. 1, with the queries from one sequence and the keys and values from
another: CrossAttn(x, c) = softmax((x W_Q)(c W_K)^T / sqrt(d_k)) (c W_V), per head, then
concatenated and projected by W_O (Eq. 4-5 of the same paper). The output has one token per
query, whatever the length of the context.
"""

from __future__ import annotations

from keras import KerasTensor, initializers, layers, ops, saving

from . import _checks
from .attention import _check_mask, scaled_dot_product_attention


@saving.register_keras_serializable(package="vitlib")
class MultiHeadCrossAttention(layers.Layer):
    """Multi-head attention whose queries come from ``x`` and keys and values from ``context``.

    x (batch, queries, dim), context (batch, keys, context_dim) -> (batch, queries, dim), and
    with ``return_attention_scores=True`` also the weights (batch, heads, queries, keys).
    ``mask``: booleans broadcastable to (batch, queries, keys), True = may attend.

    Weights in the order and shapes of ``keras.layers.MultiHeadAttention(num_heads,
    key_dim=dim // num_heads)`` called as ``mha(x, context)``: query kernel (dim, heads,
    head_dim) and bias, key and value kernels (context_dim, heads, head_dim) and biases, output
    kernel (heads, head_dim, dim) and bias (dim,); ``set_weights(mha.get_weights())`` copies one.
    """

    def __init__(self, num_heads: int, use_bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = _checks.positive_int("num_heads", num_heads)
        self.use_bias = bool(use_bias)

    def build(self, x_shape, context_shape=None):
        _, _, dim = _checks.rank("x", x_shape, 3, "(batch, queries, dim)")
        if context_shape is None:
            raise ValueError("`context` is required: (batch, keys, context_dim).")
        _, _, cdim = _checks.rank("context", context_shape, 3, "(batch, keys, context_dim)")
        _checks.divides("dim", dim, "num_heads", self.num_heads)
        self.dim, self.context_dim, self.head_dim = dim, cdim, dim // self.num_heads
        h, k = self.num_heads, self.head_dim
        for name, width in (("query", dim), ("key", cdim), ("value", cdim)):
            setattr(self, f"{name}_kernel", self.add_weight(
                shape=(width, h, k), initializer=initializers.GlorotUniform(), name=f"{name}_kernel"))
            if self.use_bias:
                setattr(self, f"{name}_bias",
                        self.add_weight(shape=(h, k), initializer="zeros", name=f"{name}_bias"))
        self.output_kernel = self.add_weight(shape=(h, k, dim), initializer=initializers.GlorotUniform(),
                                             name="output_kernel")
        if self.use_bias:
            self.output_bias = self.add_weight(shape=(dim,), initializer="zeros", name="output_bias")

    def _project(self, z, name):
        y = ops.einsum("btd,dhk->bhtk", z, getattr(self, f"{name}_kernel"))
        return y + getattr(self, f"{name}_bias")[:, None, :] if self.use_bias else y

    def call(self, x, context, mask=None, return_attention_scores=False):
        b, tq, dim = _checks.rank("x", ops.shape(x), 3, "(batch, queries, dim)")
        _, tk, cdim = _checks.rank("context", ops.shape(context), 3, "(batch, keys, context_dim)")
        for name, got, want in (("x", dim, self.dim), ("context", cdim, self.context_dim)):
            if isinstance(got, int) and got != want:
                raise ValueError(f"`{name}` has width {got}, but this layer was built for {want}.")
        if mask is not None:
            mask = ops.cast(mask, "bool")
            if len(ops.shape(mask)) == 3:
                mask = mask[:, None]  # the same mask for every head
            _check_mask(mask, (b, self.num_heads, tq, tk))
        q, k, v = self._project(x, "query"), self._project(context, "key"), self._project(context, "value")
        out, weights = scaled_dot_product_attention(q, k, v, mask)  # (b, h, tq, head_dim)
        y = ops.einsum("bhtk,hkd->btd", out, self.output_kernel)
        if self.use_bias:
            y = y + self.output_bias
        return (y, weights) if return_attention_scores else y

    def compute_output_spec(self, x, context, mask=None, return_attention_scores=False):
        out = KerasTensor(x.shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return out
        return out, KerasTensor((x.shape[0], self.num_heads, x.shape[1], context.shape[1]),
                                dtype=self.compute_dtype)

    def compute_mask(self, inputs, previous_mask=None):
        return None  # `mask` is an attention mask (queries, keys), not a padding mask

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "use_bias": self.use_bias}


@saving.register_keras_serializable(package="vitlib")
class LearnedQueries(layers.Layer):
    """``count`` learned tokens of width ``dim``, the same for every example: DETR's object
    queries, Set Transformer's seed vectors and inducing points.

    Called on any tensor whose first axis is the batch, returns (batch, count, dim).
    """

    def __init__(self, count: int, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.count = _checks.positive_int("count", count)
        self.dim = _checks.positive_int("dim", dim)

    def build(self, input_shape=None):
        self.queries = self.add_weight(shape=(self.count, self.dim),
                                       initializer=initializers.RandomNormal(stddev=0.02),
                                       name="queries")

    def call(self, like):
        batch = ops.shape(like)[0]
        return ops.broadcast_to(self.queries[None], (batch, self.count, self.dim))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.count, self.dim)

    def get_config(self):
        return {**super().get_config(), "count": self.count, "dim": self.dim}
