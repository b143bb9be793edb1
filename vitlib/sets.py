"""Set Transformer's blocks (Lee et al. 2019, Section 3): attention on sets, no positions.

- ``MAB(X, Y) = LayerNorm(H + rFF(H))``, ``H = LayerNorm(X + Multihead(X, Y, Y))``: the
  multihead attention block, queries from X, keys and values from Y;
- ``SAB(X) = MAB(X, X)``: self-attention among the elements (cost n^2);
- ``ISAB_m(X) = MAB(X, MAB(I, X))``: through m learned inducing points I (cost n m);
- ``PMA_k(Z) = MAB(S, rFF(Z))``: pooling by attention, k learned seed vectors S.

Shapes: a batch of sets is (batch, elements, dim); SAB and ISAB return (batch, elements, dim)
and are permutation equivariant (shuffling the elements shuffles the outputs the same way); PMA
returns (batch, k, dim) and is permutation invariant (shuffling changes nothing).
"""

from __future__ import annotations

from keras import layers, saving

from . import _checks
from .cross_attention import LearnedQueries, MultiHeadCrossAttention


def _row_ff(dim: int, name: str) -> layers.Layer:
    """rFF: one Dense layer with ReLU, the same on every element (row) of the set (the paper
    allows "any row-wise feedforward layer")."""
    return layers.Dense(dim, activation="relu", name=name)


@saving.register_keras_serializable(package="vitlib")
class MultiheadAttentionBlock(layers.Layer):
    """MAB(X, Y): x (batch, n, dim) attends to y (batch, m, dim) -> (batch, n, dim)."""

    def __init__(self, num_heads: int, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = _checks.positive_int("num_heads", num_heads)

    def build(self, x_shape, y_shape=None):
        dim = _checks.rank("x", x_shape, 3, "(batch, elements, dim)")[-1]
        y_shape = x_shape if y_shape is None else y_shape
        self.attention = MultiHeadCrossAttention(self.num_heads, name="attention")
        self.attention.build(x_shape, y_shape)
        self.norm1 = layers.LayerNormalization(epsilon=1e-6, name="norm1")
        self.norm2 = layers.LayerNormalization(epsilon=1e-6, name="norm2")
        self.ff = _row_ff(dim, "ff")
        for layer in (self.norm1, self.norm2, self.ff):
            layer.build(x_shape)

    def call(self, x, y):
        h = self.norm1(x + self.attention(x, y))
        return self.norm2(h + self.ff(h))

    def compute_output_shape(self, x_shape, y_shape=None):
        return x_shape

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads}


@saving.register_keras_serializable(package="vitlib")
class SetAttentionBlock(layers.Layer):
    """SAB(X) = MAB(X, X): x (batch, n, dim) -> (batch, n, dim), permutation equivariant."""

    def __init__(self, num_heads: int, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = _checks.positive_int("num_heads", num_heads)

    def build(self, x_shape):
        self.mab = MultiheadAttentionBlock(self.num_heads, name="mab")
        self.mab.build(x_shape, x_shape)

    def call(self, x):
        return self.mab(x, x)

    def compute_output_shape(self, x_shape):
        return x_shape

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads}


@saving.register_keras_serializable(package="vitlib")
class InducedSetAttentionBlock(layers.Layer):
    """ISAB_m(X) = MAB(X, MAB(I, X)) with m learned inducing points I: x (batch, n, dim) ->
    (batch, n, dim), permutation equivariant, cost n m instead of n^2."""

    def __init__(self, num_heads: int, num_inducing: int, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = _checks.positive_int("num_heads", num_heads)
        self.num_inducing = _checks.positive_int("num_inducing", num_inducing)

    def build(self, x_shape):
        dim = _checks.rank("x", x_shape, 3, "(batch, elements, dim)")[-1]
        self.inducing = LearnedQueries(self.num_inducing, dim, name="inducing_points")
        self.inducing.build()
        induced = (x_shape[0], self.num_inducing, dim)
        self.summarise = MultiheadAttentionBlock(self.num_heads, name="mab_inducing")
        self.summarise.build(induced, x_shape)
        self.broadcast = MultiheadAttentionBlock(self.num_heads, name="mab_elements")
        self.broadcast.build(x_shape, induced)

    def call(self, x):
        h = self.summarise(self.inducing(x), x)  # (batch, m, dim): the set summarised
        return self.broadcast(x, h)

    def compute_output_shape(self, x_shape):
        return x_shape

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads,
                "num_inducing": self.num_inducing}


@saving.register_keras_serializable(package="vitlib")
class PoolingByAttention(layers.Layer):
    """PMA_k(Z) = MAB(S, rFF(Z)) with k learned seeds S: z (batch, n, dim) -> (batch, k, dim),
    permutation invariant (a learned, attention-weighted pooling instead of the mean)."""

    def __init__(self, num_heads: int, num_seeds: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = _checks.positive_int("num_heads", num_heads)
        self.num_seeds = _checks.positive_int("num_seeds", num_seeds)

    def build(self, z_shape):
        dim = _checks.rank("z", z_shape, 3, "(batch, elements, dim)")[-1]
        self.seeds = LearnedQueries(self.num_seeds, dim, name="seeds")
        self.seeds.build()
        self.ff = _row_ff(dim, "ff")
        self.ff.build(z_shape)
        self.mab = MultiheadAttentionBlock(self.num_heads, name="mab")
        self.mab.build((z_shape[0], self.num_seeds, dim), z_shape)

    def call(self, z):
        return self.mab(self.seeds(z), self.ff(z))

    def compute_output_shape(self, z_shape):
        return (z_shape[0], self.num_seeds, z_shape[-1])

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "num_seeds": self.num_seeds}
