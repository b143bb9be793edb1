"""Step 2 of ViT: the class token and the position embedding (Eq. 1).

z_0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos,   E_pos in R^((N+1) x D)
"""

from __future__ import annotations

import numpy as np
from keras import initializers, layers, ops, saving

from . import _checks


@saving.register_keras_serializable(package="vitlib")
class ClassToken(layers.Layer):
    """Prepend one learned token, x_class, to every sequence.

    tokens (batch, tokens, dim) -> (batch, 1 + tokens, dim). Initialised to zeros, as in the
    original ViT code; its output after the encoder is the image representation (Eq. 4).
    """

    def build(self, input_shape):
        _checks.rank("tokens", input_shape, 3, "(batch, tokens, dim)")
        self.token = self.add_weight(
            shape=(1, 1, input_shape[-1]), initializer="zeros", name="token"
        )

    def call(self, tokens):
        batch = ops.shape(tokens)[0]
        cls = ops.broadcast_to(ops.cast(self.token, tokens.dtype), (batch, 1, ops.shape(tokens)[-1]))
        return ops.concatenate([cls, tokens], axis=1)

    def compute_output_shape(self, input_shape):
        n = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], n, input_shape[2])


def sincos_1d(positions, dim: int) -> np.ndarray:
    """Sine-cosine encoding of 1-D positions (Vaswani et al. 2017, Sec. 3.5).

    positions (n,) -> (n, dim): first half sin(pos * w_i), second half cos(pos * w_i),
    with frequencies w_i = 1 / 10000^(i / (dim/2)), i = 0 .. dim/2 - 1.
    """
    dim = _checks.positive_int("dim", dim)
    if dim % 2:
        raise ValueError(f"`dim` must be even for a sine-cosine embedding, got {dim}.")
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2))
    try:
        positions = np.asarray(positions, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        positions = None
    if positions is None or not np.all(np.isfinite(positions)):
        raise ValueError("`positions` must be finite numbers (e.g. np.arange(n)), got "
                         f"{positions if positions is not None else 'something else'!r:.60}.")
    angles = positions[:, None] * omega[None, :]
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def sincos_2d(grid_size, dim: int) -> np.ndarray:
    """Fixed 2-D sine-cosine position embedding for a grid of patches.

    Returns (rows*cols, dim), row-major like the patches: the first half of each vector
    encodes the row, the second half the column. The frequencies are MAE's; MAE and big_vision
    put the column in the first half (the two orders work equally well).
    """
    gh, gw = _checks.pair("grid_size", grid_size)
    dim = _checks.positive_int("dim", dim)
    if dim % 4:
        raise ValueError(f"`dim` must be divisible by 4 for a 2-D sine-cosine embedding, got {dim}.")
    rows, cols = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
    return np.concatenate(
        [sincos_1d(rows.reshape(-1), dim // 2), sincos_1d(cols.reshape(-1), dim // 2)], axis=1
    ).astype("float32")


@saving.register_keras_serializable(package="vitlib")
class PositionEmbedding(layers.Layer):
    """Add a position embedding E_pos to the tokens (Eq. 1).

    tokens (batch, prefix + rows*cols, dim) -> same shape. ``kind``:

    - ``"learned"``: a trainable (1, prefix + rows*cols, dim) weight, normal init with std 0.02;
    - ``"sincos"``: fixed 2-D sine-cosine values (zeros for the class token), not trained;
    - ``"none"``: adds nothing (to show why position information is needed).

    ``num_prefix_tokens`` is 1 with a class token, 0 without.
    """

    KINDS = ("learned", "sincos", "none")

    def __init__(self, grid_size, kind: str = "learned", num_prefix_tokens: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.grid_size = _checks.pair("grid_size", grid_size)
        self.kind = _checks.one_of("kind", kind, set(self.KINDS))
        if num_prefix_tokens not in (0, 1):
            raise ValueError(f"`num_prefix_tokens` must be 0 or 1, got {num_prefix_tokens!r}.")
        self.num_prefix_tokens = int(num_prefix_tokens)

    @property
    def num_tokens(self) -> int:
        return self.num_prefix_tokens + self.grid_size[0] * self.grid_size[1]

    def build(self, input_shape):
        _checks.rank("tokens", input_shape, 3, "(batch, tokens, dim)")
        if input_shape[1] is not None and input_shape[1] != self.num_tokens:
            raise ValueError(
                f"`tokens` must have {self.num_tokens} tokens ({self.num_prefix_tokens} prefix + "
                f"{self.grid_size[0]}x{self.grid_size[1]} patches), got shape {tuple(input_shape)}."
            )
        dim = input_shape[-1]
        if self.kind == "learned":
            self.embedding = self.add_weight(
                shape=(1, self.num_tokens, dim),
                initializer=initializers.RandomNormal(stddev=0.02),
                name="embedding",
            )
        elif self.kind == "sincos":
            table = sincos_2d(self.grid_size, dim)
            table = np.concatenate([np.zeros((self.num_prefix_tokens, dim), "float32"), table])
            self.embedding = self.add_weight(
                shape=(1, self.num_tokens, dim),
                initializer=initializers.Constant(table[None]),
                trainable=False,
                name="embedding",
            )

    def call(self, tokens):
        if self.kind == "none":
            return tokens
        return tokens + ops.cast(self.embedding, tokens.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "grid_size": self.grid_size, "kind": self.kind,
                "num_prefix_tokens": self.num_prefix_tokens}


def resize_position_embedding(embedding, new_grid, num_prefix_tokens: int = 1, old_grid=None):
    """Resize a position embedding to a new grid of patches, keeping the prefix (class) token.

    embedding (1, prefix + rows*cols, dim) -> (1, prefix + new_rows*new_cols, dim).
    The grid part is reshaped to (rows, cols, dim) and resized bilinearly (the ViT paper's
    "2D interpolation of the pre-trained position embeddings", Sec. 3.2).
    """
    shape = _checks.rank("embedding", ops.shape(embedding), 3, "(1, prefix + rows*cols, dim)")
    if shape[0] != 1:
        raise ValueError(f"`embedding` must be ONE table (1, prefix + rows*cols, dim), got shape "
                         f"{tuple(shape)}: resize each table separately.")
    new_h, new_w = _checks.pair("new_grid", new_grid)
    if num_prefix_tokens not in (0, 1):
        raise ValueError(f"`num_prefix_tokens` must be 0 or 1, got {num_prefix_tokens!r}.")
    n = shape[1] - num_prefix_tokens
    if old_grid is None:
        side = int(round(max(n, 0) ** 0.5))
        if n <= 0 or side * side != n:
            raise ValueError(
                f"`embedding` has {shape[1]} tokens, so {n} grid tokens after "
                f"{num_prefix_tokens} prefix token(s): not a square grid. Pass `old_grid`=(rows, cols) "
                "or check `num_prefix_tokens`."
            )
        old_grid = (side, side)
    old_h, old_w = _checks.pair("old_grid", old_grid)
    if old_h * old_w != n:
        raise ValueError(
            f"`old_grid` {old_grid} holds {old_h * old_w} tokens, but `embedding` has {n} grid "
            f"tokens ({shape[1]} minus {num_prefix_tokens} prefix)."
        )
    prefix = embedding[:, :num_prefix_tokens]
    grid = ops.reshape(embedding[:, num_prefix_tokens:], (1, old_h, old_w, shape[2]))
    if (new_h, new_w) != (old_h, old_w):
        grid = ops.image.resize(grid, (new_h, new_w), interpolation="bilinear", antialias=False)
    grid = ops.reshape(grid, (1, new_h * new_w, shape[2]))
    return ops.concatenate([ops.cast(prefix, grid.dtype), grid], axis=1)
