"""Step 4 of ViT: the Transformer encoder block (Eq. 2-3).

z'_l = MSA(LN(z_{l-1})) + z_{l-1}        (Eq. 2)
z_l  = MLP(LN(z'_l)) + z'_l              (Eq. 3)
"""

from __future__ import annotations

from keras import layers, ops, saving

from . import _checks
from .attention import MultiHeadSelfAttention

#: GELU(x) = x * Phi(x) exactly ("exact", Hendrycks & Gimpel 2016), or its tanh approximation
#: ("tanh"), with which Google's ViT checkpoints were trained (flax's default).
GELU_FORMS = ("exact", "tanh")


@saving.register_keras_serializable(package="vitlib")
class MLP(layers.Layer):
    """The per-token feed-forward network: Dense(mlp_dim, GELU) -> Dropout -> Dense(dim) -> Dropout.

    x (batch, tokens, dim) -> (batch, tokens, dim). Each token is transformed on its own.
    ``gelu`` is ``"exact"`` or ``"tanh"`` (see :data:`GELU_FORMS`).
    """

    def __init__(self, mlp_dim: int, dropout: float = 0.0, gelu: str = "exact", **kwargs):
        super().__init__(**kwargs)
        self.mlp_dim = _checks.positive_int("mlp_dim", mlp_dim)
        self.dropout = _checks.probability("dropout", dropout)
        self.gelu = _checks.one_of("gelu", gelu, set(GELU_FORMS))
        self.fc1 = layers.Dense(self.mlp_dim, name="fc1")  # GELU applied in call
        self.fc2 = None
        self.drop = layers.Dropout(self.dropout)

    def build(self, input_shape):
        self.fc1.build(input_shape)
        self.fc2 = layers.Dense(input_shape[-1], name="fc2")
        self.fc2.build((*input_shape[:-1], self.mlp_dim))

    def call(self, x, training=None):
        x = ops.gelu(self.fc1(x), approximate=self.gelu == "tanh")
        x = self.drop(x, training=training)
        return self.drop(self.fc2(x), training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mlp_dim": self.mlp_dim, "dropout": self.dropout,
                "gelu": self.gelu}


@saving.register_keras_serializable(package="vitlib")
class EncoderBlock(layers.Layer):
    """One pre-norm Transformer encoder block (Eq. 2-3).

    x (batch, tokens, dim) -> (batch, tokens, dim); with ``return_attention_scores=True``
    also the attention weights (batch, heads, tokens, tokens).
    """

    def __init__(self, num_heads: int, mlp_dim: int, dropout: float = 0.0,
                 attention_dropout: float = 0.0, layer_norm_epsilon: float = 1e-6,
                 gelu: str = "exact", **kwargs):
        super().__init__(**kwargs)
        self.num_heads = _checks.positive_int("num_heads", num_heads)
        self.mlp_dim = _checks.positive_int("mlp_dim", mlp_dim)
        self.dropout = _checks.probability("dropout", dropout)
        self.attention_dropout = _checks.probability("attention_dropout", attention_dropout)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.norm1 = layers.LayerNormalization(epsilon=self.layer_norm_epsilon, name="norm1")
        self.attention = MultiHeadSelfAttention(
            self.num_heads, dropout=self.attention_dropout, name="attention"
        )
        self.drop = layers.Dropout(self.dropout)
        self.norm2 = layers.LayerNormalization(epsilon=self.layer_norm_epsilon, name="norm2")
        self.gelu = _checks.one_of("gelu", gelu, set(GELU_FORMS))
        self.mlp = MLP(self.mlp_dim, dropout=self.dropout, gelu=self.gelu, name="mlp")

    def build(self, input_shape):
        _checks.rank("x", input_shape, 3, "(batch, tokens, dim)")
        for layer in (self.norm1, self.attention, self.norm2, self.mlp):
            layer.build(input_shape)

    def call(self, x, mask=None, return_attention_scores=False, training=None):
        width = x.shape[-1] if len(x.shape) == 3 else None
        if isinstance(width, int) and self.built and width != self.attention.dim:
            raise ValueError(f"`x` has width {width}, but this block was built for dim="
                             f"{self.attention.dim}: make a new block for another width.")
        h, weights = self.norm1(x), None
        if return_attention_scores:
            h, weights = self.attention(h, mask=mask, return_attention_scores=True, training=training)
        else:
            h = self.attention(h, mask=mask, training=training)
        x = x + self.drop(h, training=training)  # Eq. 2
        x = x + self.mlp(self.norm2(x), training=training)  # Eq. 3
        return (x, weights) if return_attention_scores else x

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, x, mask=None, return_attention_scores=False, training=None):
        # Symbolic calls: the block's outputs have the attention layer's shapes.
        return self.attention.compute_output_spec(x, return_attention_scores=return_attention_scores)

    def compute_mask(self, inputs, previous_mask=None):
        # `mask` is an attention mask (queries, keys), not a Keras padding mask: nothing to pass
        # on (and Keras no longer warns that the mask is "destroyed" on every masked call).
        return None

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "mlp_dim": self.mlp_dim,
                "dropout": self.dropout, "attention_dropout": self.attention_dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon, "gelu": self.gelu}
