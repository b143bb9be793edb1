"""A masked autoencoder (マスク付きオートエンコーダ, MAE): self-supervised pretraining of a ViT
encoder (He et al. 2022, "Masked Autoencoders Are Scalable Vision Learners").

    images (batch, H, W, C) -> N patch tokens; hide a random 75% of them, a new choice per image
    encoder: the ViT's own layers, on the K VISIBLE patches only (+ class token) (batch, 1 + K, dim)
    decoder: a learned mask token at every hidden place, its own position embedding, a few small
             blocks, then a linear map to pixels                                 (batch, N, P*P*C)
    loss:    mean squared error on the HIDDEN patches only (optionally on per-patch normalised
             pixels, the paper's norm_pix_loss)

The encoder IS a :class:`vitlib.ViT` (by default ``make_vit("fashion-small")``), so after pretraining
``mae.to_vit()`` is that ViT with a new head, ready for fine-tuning (:mod:`vitlib.finetune`).

``python -m experiments.mae`` pretrains it on the Fashion-MNIST training images (their labels are
never used) and ships it as ``data/mae_fashion_small.keras``.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from . import _checks
from .configs import vit_config
from .embeddings import PositionEmbedding
from .encoder import EncoderBlock
from .finetune import with_new_head
from .model import ViT, architecture
from .patches import extract_patches, patches_to_images


def num_visible(num_patches: int, mask_ratio: float) -> int:
    """K = int(N * (1 - mask_ratio)) patches stay visible, as in MAE's code (12 of 49 at 0.75)."""
    ratio = _checks.probability("mask_ratio", mask_ratio)
    keep = int(num_patches * (1 - ratio))
    if keep < 1:
        raise ValueError(f"`mask_ratio`={mask_ratio!r} would hide all {num_patches} patches; "
                         f"use at most {1 - 1 / num_patches:.3f}.")
    return keep


def random_masking(tokens, mask_ratio: float, seed=None, noise=None):
    """Keep a random subset of K = int(N * (1 - mask_ratio)) tokens per sequence, in image order.

    tokens (batch, N, dim) -> visible (batch, K, dim), mask (batch, N), restore (batch, N).
    mask is 1.0 where a token is hidden, 0.0 where it is visible. ``restore`` puts the sequence
    [visible; hidden] (each part in image order) back in image order:
    ``take_along_axis(concatenate([visible, hidden], axis=1), restore[..., None], axis=1)``.
    ``noise`` (batch, N): the K tokens with the smallest noise are kept (default: uniform noise
    drawn with ``seed``, an int or a ``keras.random.SeedGenerator``).
    """
    _checks.rank("tokens", tokens.shape, 3, "(batch, tokens, dim)")
    batch, n = ops.shape(tokens)[0], ops.shape(tokens)[1]
    keep = num_visible(n, mask_ratio)
    if noise is None:
        noise = keras.random.uniform((batch, n), seed=seed)
    elif tuple(noise.shape) != tuple(tokens.shape[:2]) and None not in tokens.shape[:2]:
        raise ValueError(f"`noise` must be (batch, tokens) = {tuple(tokens.shape[:2])}, one value "
                         f"per token, got shape {tuple(noise.shape)}.")
    order = ops.argsort(noise, axis=1)  # (batch, N): a random permutation for each image
    kept = ops.sort(order[:, :keep], axis=1)  # (batch, K): the visible patches, in image order
    hidden = ops.sort(order[:, keep:], axis=1)  # (batch, N - K): the hidden ones, in image order
    restore = ops.argsort(ops.concatenate([kept, hidden], axis=1), axis=1)
    visible = ops.take_along_axis(tokens, ops.expand_dims(kept, -1), axis=1)  # (batch, K, dim)
    mask = ops.cast(restore >= keep, "float32")  # hidden: placed after the K visible ones
    return visible, mask, restore


def masked_mse(images, predicted, mask, patch_size: int, norm_pix_loss: bool = False):
    """Mean squared error over the hidden patches only.

    images (batch, H, W, C); predicted (batch, N, P*P*C) pixels of every patch; mask (batch, N),
    1.0 = hidden. With ``norm_pix_loss`` each target patch is first normalised to mean 0 and
    variance 1 (MAE's norm_pix_loss). Returns a scalar: sum(mask * mse per patch) / sum(mask).
    """
    target = extract_patches(images, patch_size)  # (batch, N, P*P*C)
    if tuple(predicted.shape[1:]) != tuple(target.shape[1:]):
        raise ValueError(f"`predicted` must be (batch, patches, pixels per patch) = (batch, "
                         f"{target.shape[1]}, {target.shape[2]}) for these images and "
                         f"`patch_size`={patch_size}, got shape {tuple(predicted.shape)}.")
    if tuple(mask.shape[1:]) != tuple(target.shape[1:2]):
        raise ValueError(f"`mask` must be (batch, patches) = (batch, {target.shape[1]}), got "
                         f"shape {tuple(mask.shape)}.")
    if norm_pix_loss:
        mean, var = ops.mean(target, -1, keepdims=True), ops.var(target, -1, keepdims=True)
        target = (target - mean) / ops.sqrt(var + 1e-6)
    per_patch = ops.mean(ops.square(predicted - target), axis=-1)  # (batch, N)
    return ops.sum(per_patch * mask) / ops.maximum(ops.sum(mask), 1.0)


@keras.saving.register_keras_serializable(package="vitlib")
class MaskedAutoencoder(keras.Model):
    """MAE with a ViT encoder (``encoder``: a name of :data:`vitlib.CONFIGS` or ViT arguments).

    ``model(images)`` -> (predicted pixels (batch, N, P*P*C), mask (batch, N), 1.0 = hidden).
    ``model.fit(images)`` trains it: :meth:`compute_loss` is :func:`masked_mse` (no labels).
    """

    def __init__(self, encoder="fashion-small", decoder_dim=32, decoder_depth=2, decoder_heads=4,
                 decoder_mlp_dim=64, mask_ratio=0.75, norm_pix_loss=False, seed=None, **kwargs):
        super().__init__(**kwargs)
        config = vit_config(encoder) if isinstance(encoder, str) else dict(encoder)
        self.encoder_config = architecture(config)  # a ViT's arguments, not Keras'
        self.encoder = ViT(**self.encoder_config, name="encoder")  # exactly the ViT's layers
        self.encoder.head.trainable = False  # no labels here: the head is never used
        self.decoder_dim = _checks.positive_int("decoder_dim", decoder_dim)
        self.decoder_depth = _checks.positive_int("decoder_depth", decoder_depth)
        self.decoder_heads = _checks.positive_int("decoder_heads", decoder_heads)
        if self.decoder_dim % 4 or self.decoder_dim % self.decoder_heads:
            raise ValueError(f"`decoder_dim`={decoder_dim} must be divisible by 4 (sine-cosine "
                             f"positions) and by `decoder_heads`={decoder_heads}.")
        self.decoder_mlp_dim = _checks.positive_int("decoder_mlp_dim", decoder_mlp_dim)
        self.num_patches = self.encoder.grid_size[0] * self.encoder.grid_size[1]
        self.mask_ratio = _checks.probability("mask_ratio", mask_ratio)
        num_visible(self.num_patches, self.mask_ratio)  # at least one patch stays visible
        self.norm_pix_loss, self.seed = bool(norm_pix_loss), seed
        self.prefix = self.encoder.num_prefix_tokens  # 1 with a class token
        self.decoder_embed = layers.Dense(self.decoder_dim, name="decoder_embed")
        self.decoder_position = PositionEmbedding(self.encoder.grid_size, kind="sincos",
                                                  num_prefix_tokens=self.prefix,
                                                  name="decoder_position")
        self.decoder_blocks = [EncoderBlock(self.decoder_heads, self.decoder_mlp_dim,
                                            name=f"decoder_block_{i}")
                               for i in range(self.decoder_depth)]
        self.decoder_norm = layers.LayerNormalization(epsilon=1e-6, name="decoder_norm")
        patch_pixels = self.encoder.patch_size**2 * self.encoder.channels
        self.decoder_pred = layers.Dense(patch_pixels, name="decoder_pred")
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape=None):
        self.encoder.build(input_shape)
        tokens = (None, self.prefix + self.num_patches, self.decoder_dim)
        self.decoder_embed.build((None, None, self.encoder.dim))
        self.mask_token = self.add_weight(shape=(1, 1, self.decoder_dim), name="mask_token",
                                          initializer=keras.initializers.RandomNormal(stddev=0.02))
        for layer in (self.decoder_position, *self.decoder_blocks, self.decoder_norm,
                      self.decoder_pred):
            layer.build(tokens)
        self.built = True

    def encode(self, images, mask_ratio=None, seed=None, training=None):
        """images (batch, H, W, C) -> tokens (batch, 1 + K, dim) of the visible patches,
        mask (batch, N) and restore (batch, N) from :func:`random_masking`."""
        enc, p = self.encoder, self.prefix
        x = enc.embed(images, training=training)  # ViT Eq. 1: every patch keeps its position
        ratio = self.mask_ratio if mask_ratio is None else mask_ratio
        visible, mask, restore = random_masking(
            x[:, p:], ratio, self.seed_generator if seed is None else seed)
        x = ops.concatenate([x[:, :p], visible], axis=1)  # (batch, 1 + K, dim)
        return enc.transform(x, training=training), mask, restore  # Eq. 2-4, visible only

    def decode(self, tokens, restore, training=None):
        """tokens (batch, 1 + K, dim), restore (batch, N) -> pixels (batch, N, P*P*C)."""
        x, p = self.decoder_embed(tokens), self.prefix  # (batch, 1 + K, decoder_dim)
        shape = ops.shape(x)
        hidden = ops.broadcast_to(ops.cast(self.mask_token, x.dtype),
                                  (shape[0], self.num_patches - (shape[1] - p), self.decoder_dim))
        patches = ops.concatenate([x[:, p:], hidden], axis=1)  # (batch, N, d): visible, hidden
        patches = ops.take_along_axis(patches, ops.expand_dims(restore, -1), axis=1)  # image order
        x = self.decoder_position(ops.concatenate([x[:, :p], patches], axis=1))
        for block in self.decoder_blocks:
            x = block(x, training=training)
        return self.decoder_pred(self.decoder_norm(x))[:, p:]  # (batch, N, P*P*C)

    def call(self, images, training=None, mask_ratio=None, seed=None):
        tokens, mask, restore = self.encode(images, mask_ratio, seed, training=training)
        return self.decode(tokens, restore, training=training), mask

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The masked MSE of ``y_pred`` = (pixels, mask) against the images ``x``; ``y`` unused."""
        predicted, mask = y_pred
        return masked_mse(x, predicted, mask, self.encoder.patch_size, self.norm_pix_loss)

    def reconstruct(self, images, seed=0, mask_ratio=None, fill=0.5):
        """For plots: NumPy (masked images, reconstruction, mask), each (batch, H, W, C).

        Hidden patches of the masked images are set to ``fill``; mask is 1.0 on hidden pixels.
        The reconstruction is the decoder's output for every patch; with ``norm_pix_loss`` it is
        mapped back to pixels with each true patch's mean and standard deviation.
        """
        images = ops.convert_to_tensor(images, "float32")
        predicted, mask = self(images, mask_ratio=mask_ratio, seed=seed)
        p, grid = self.encoder.patch_size, self.encoder.grid_size
        if self.norm_pix_loss:
            target = extract_patches(images, p)
            std = ops.sqrt(ops.var(target, -1, keepdims=True) + 1e-6)
            predicted = predicted * std + ops.mean(target, -1, keepdims=True)
        pixels = ops.broadcast_to(mask[..., None], ops.shape(predicted))
        mask_image = patches_to_images(pixels, p, grid)
        masked = images * (1 - mask_image) + fill * mask_image
        out = (masked, patches_to_images(predicted, p, grid), mask_image)
        return tuple(ops.convert_to_numpy(t) for t in out)

    def to_vit(self, num_classes=None) -> ViT:
        """The pretrained encoder as a new :class:`vitlib.ViT` with a freshly initialised head."""
        return with_new_head(self.encoder, num_classes)

    def get_config(self):
        return {**super().get_config(), "encoder": self.encoder_config,
                "decoder_dim": self.decoder_dim, "decoder_depth": self.decoder_depth,
                "decoder_heads": self.decoder_heads, "decoder_mlp_dim": self.decoder_mlp_dim,
                "mask_ratio": self.mask_ratio, "norm_pix_loss": self.norm_pix_loss,
                "seed": self.seed}


def masked_autoencoder(encoder="fashion-small", **kwargs) -> MaskedAutoencoder:
    """Build a :class:`MaskedAutoencoder` (built, ready to count parameters)."""
    model = MaskedAutoencoder(encoder, **kwargs)
    model.build()
    return model
