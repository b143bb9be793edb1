"""Step 1 of ViT: cut an image into patches and embed each patch as a token.

Paper (Dosovitskiy et al. 2021), Eq. 1: an image x in R^(H x W x C) becomes N = HW/P^2
flattened patches x_p in R^(N x (P^2 C)), each mapped to D dimensions by a matrix E.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from . import _checks


def _grid(shape, patch_size: int, name: str = "images") -> tuple[int, int, int]:
    """Validate ``shape`` = (batch, H, W, C) and return the grid (H/P, W/P) and C."""
    _, h, w, c = _checks.image_batch(name, shape)
    for axis, size in (("height", h), ("width", w)):
        if size is not None and size % patch_size:
            raise ValueError(
                f"`{name}` {axis} {size} must be divisible by `patch_size`={patch_size}; "
                f"got shape {tuple(shape)}. Resize or crop to a multiple of {patch_size} "
                f"(e.g. {size - size % patch_size or patch_size})."
            )
    return h // patch_size, w // patch_size, c


def extract_patches(images, patch_size: int):
    """Cut images into non-overlapping square patches, in row-major order.

    images: (batch, height, width, channels) -> (batch, tokens, patch_size*patch_size*channels),
    tokens = (height/patch_size) * (width/patch_size). Patch 0 is top-left, patch 1 is its
    right neighbour; each patch is flattened row by row, channels last.
    """
    p = _checks.positive_int("patch_size", patch_size)
    gh, gw, c = _grid(ops.shape(images), p)
    x = ops.reshape(images, (-1, gh, p, gw, p, c))  # (batch, gh, p, gw, p, c)
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))  # (batch, gh, gw, p, p, c)
    return ops.reshape(x, (-1, gh * gw, p * p * c))


def patches_to_images(patches, patch_size: int, grid_size=None):
    """The exact inverse of :func:`extract_patches`.

    patches: (batch, tokens, patch_size*patch_size*channels) -> (batch, height, width, channels).
    ``grid_size`` is ``(rows, cols)`` of patches; by default the grid is square.
    """
    p = _checks.positive_int("patch_size", patch_size)
    _, n, d = _checks.rank("patches", ops.shape(patches), 3, "(batch, tokens, patch_dim)")
    if grid_size is None:
        side = int(round(n**0.5))
        if side * side != n:
            raise ValueError(
                f"`patches` has {n} tokens, which is not a square grid; pass `grid_size`=(rows, cols)."
            )
        grid_size = (side, side)
    gh, gw = _checks.pair("grid_size", grid_size)
    if gh * gw != n:
        raise ValueError(f"`grid_size` {grid_size} holds {gh * gw} patches, but `patches` has {n}.")
    if d % (p * p):
        raise ValueError(
            f"`patches` last axis {d} must be patch_size*patch_size*channels, "
            f"a multiple of {p * p} for `patch_size`={p}."
        )
    c = d // (p * p)
    x = ops.reshape(patches, (-1, gh, gw, p, p, c))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))  # (batch, gh, p, gw, p, c)
    return ops.reshape(x, (-1, gh * p, gw * p, c))


@keras.saving.register_keras_serializable(package="vitlib")
class PatchEmbedding(layers.Layer):
    """Patches to tokens: the matrix E of Eq. 1, or the paper's hybrid stem (Section 3.1).

    images (batch, height, width, channels) -> tokens (batch, tokens, dim),
    tokens = (height / patch_size) * (width / patch_size), in row-major order.

    ``method="conv"`` uses a Conv2D with kernel = stride = patch size (what ViT code does);
    ``method="dense"`` flattens the patches and applies a Dense layer. The two compute the
    same function: ``dense.kernel = conv.kernel.reshape(-1, dim)`` (see notebook 01).
    ``method="hybrid"`` forms the tokens from a small CNN's feature map instead (the paper's
    hybrid): log2(patch_size) 3x3 convolutions of stride 2 (``stem_width``, then twice as many
    channels each time; batch normalisation, ReLU) reach the same grid, and a 1x1 convolution
    (patches "of spatial size 1x1") maps each position to ``dim``. ``patch_size`` must then be
    a power of 2.
    """

    METHODS = ("conv", "dense", "hybrid")

    def __init__(self, patch_size: int, dim: int, method: str = "conv", stem_width: int = 32,
                 **kwargs):
        super().__init__(**kwargs)
        self.patch_size = _checks.positive_int("patch_size", patch_size)
        self.dim = _checks.positive_int("dim", dim)
        self.method = _checks.one_of("method", method, set(self.METHODS))
        self.stem_width = _checks.positive_int("stem_width", stem_width)
        self.stem = []
        if self.method == "hybrid":
            steps = self.patch_size.bit_length() - 1
            if self.patch_size != 2**steps or steps == 0:
                raise ValueError(
                    f"`patch_size` must be a power of 2 (2, 4, 8, ...) with method='hybrid' "
                    f"(each stride-2 convolution halves the grid), got {patch_size}.")
            for i in range(steps):
                self.stem += [layers.Conv2D(self.stem_width * 2**i, 3, strides=2, padding="same",
                                            use_bias=False, name=f"stem_conv_{i}"),
                              layers.BatchNormalization(name=f"stem_norm_{i}")]
            self.projection = layers.Conv2D(self.dim, 1, name="conv")
        elif self.method == "conv":
            self.projection = layers.Conv2D(
                self.dim, self.patch_size, strides=self.patch_size, padding="valid", name="conv"
            )
        else:
            self.projection = layers.Dense(self.dim, name="dense")

    def build(self, input_shape):
        gh, gw, c = _grid(input_shape, self.patch_size)
        if c is None:
            raise ValueError("`images` must have a known number of channels (last axis).")
        self.grid_size = (gh, gw)
        self.channels = c
        shape = tuple(input_shape)
        for layer in self.stem:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        if self.method == "dense":
            self.projection.build((input_shape[0], gh * gw, self.patch_size**2 * c))
        else:
            self.projection.build(shape)

    def call(self, images, training=None):
        _checks.image_batch("images", ops.shape(images), self.channels)
        if self.method == "dense":
            return self.projection(extract_patches(images, self.patch_size))
        x = images
        for conv, norm in zip(self.stem[::2], self.stem[1::2], strict=True):
            x = ops.relu(norm(conv(x), training=training))
        x = self.projection(x)  # (batch, gh, gw, dim)
        return ops.reshape(x, (-1, x.shape[1] * x.shape[2], self.dim))

    def compute_output_shape(self, input_shape):
        gh, gw, _ = _grid(input_shape, self.patch_size)
        return (input_shape[0], gh * gw, self.dim)

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size, "dim": self.dim,
                "method": self.method, "stem_width": self.stem_width}
