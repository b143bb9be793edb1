"""Step 5: the whole Vision Transformer (Dosovitskiy et al. 2021, Eq. 1-4).

z_0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos      (Eq. 1)  PatchEmbedding, ClassToken, PositionEmbedding
z'_l = MSA(LN(z_{l-1})) + z_{l-1},  l = 1..L         (Eq. 2)  EncoderBlock
z_l  = MLP(LN(z'_l)) + z'_l,        l = 1..L         (Eq. 3)  EncoderBlock
y    = LN(z_L^0)                                     (Eq. 4)  final norm, then the head
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from . import _checks
from .configs import vit_config
from .embeddings import ClassToken, PositionEmbedding
from .encoder import GELU_FORMS, EncoderBlock
from .patches import PatchEmbedding


@keras.saving.register_keras_serializable(package="vitlib")
class ViT(keras.Model):
    """Vision Transformer classifier.

    images (batch, image_size, image_size, channels), float -> logits (batch, num_classes).
    ``model(images, return_attention=True)`` also returns a list with one attention tensor
    (batch, heads, tokens, tokens) per layer. The steps are public, for models built on the
    encoder (MAE, segmentation) and for inspection: ``embed`` (Eq. 1), ``transform`` (Eq. 2-4),
    ``encode`` (both), ``pool`` and ``head``; ``num_prefix_tokens`` is 1 with a class token.

    ``pooling="cls"`` prepends a class token and classifies its output (the paper's default);
    ``pooling="mean"`` has no class token and averages the patch tokens (global average pooling).
    ``position`` is ``"learned"``, ``"sincos"`` or ``"none"``. ``patch_method`` is ``"conv"``
    or ``"dense"`` (the linear patch embedding E, two ways) or ``"hybrid"`` (the paper's CNN stem,
    ``stem_width`` channels in its first convolution): see :class:`vitlib.PatchEmbedding`.
    ``gelu="tanh"`` uses the tanh approximation of GELU in the MLPs, as Google's checkpoints do
    (:func:`vitlib.pretrained.load_npz` sets it); the default is the exact form.
    """

    def __init__(self, image_size=224, patch_size=16, num_classes=1000, dim=768, depth=12,
                 num_heads=12, mlp_dim=3072, channels=3, pooling="cls", position="learned",
                 dropout=0.0, attention_dropout=0.0, patch_method="conv",
                 layer_norm_epsilon=1e-6, stem_width=32, gelu="exact", **kwargs):
        super().__init__(**kwargs)
        self.image_size = _checks.pair("image_size", image_size)
        self.patch_size = _checks.positive_int("patch_size", patch_size)
        for axis, size in zip(("height", "width"), self.image_size, strict=True):
            _checks.divides(f"image_size ({axis})", size, "patch_size", self.patch_size)
        self.num_classes = _checks.positive_int("num_classes", num_classes)
        self.dim = _checks.positive_int("dim", dim)
        self.depth = _checks.positive_int("depth", depth)
        self.num_heads = _checks.positive_int("num_heads", num_heads)
        if self.dim % self.num_heads:
            raise ValueError(
                f"`num_heads`={num_heads} must divide `dim`={dim}: each head gets dim / num_heads "
                f"features (e.g. num_heads in {[h for h in range(1, 17) if dim % h == 0]})."
            )
        self.mlp_dim = _checks.positive_int("mlp_dim", mlp_dim)
        self.channels = _checks.positive_int("channels", channels)
        self.pooling = _checks.one_of("pooling", pooling, {"cls", "mean"})
        self.position = _checks.one_of("position", position, set(PositionEmbedding.KINDS))
        self.dropout = _checks.probability("dropout", dropout)
        self.attention_dropout = _checks.probability("attention_dropout", attention_dropout)
        self.patch_method = _checks.one_of("patch_method", patch_method,
                                           set(PatchEmbedding.METHODS))
        self.stem_width = _checks.positive_int("stem_width", stem_width)
        self.gelu = _checks.one_of("gelu", gelu, set(GELU_FORMS))
        self.layer_norm_epsilon = float(layer_norm_epsilon)

        self.grid_size = (self.image_size[0] // self.patch_size, self.image_size[1] // self.patch_size)
        prefix = self.num_prefix_tokens
        self.patch_embedding = PatchEmbedding(self.patch_size, self.dim, method=patch_method,
                                              stem_width=self.stem_width, name="patch_embedding")
        self.class_token = ClassToken(name="class_token") if prefix else None
        self.position_embedding = PositionEmbedding(self.grid_size, kind=self.position,
                                                    num_prefix_tokens=prefix,
                                                    name="position_embedding")
        self.embedding_dropout = layers.Dropout(self.dropout)
        self.blocks = [
            EncoderBlock(self.num_heads, self.mlp_dim, dropout=self.dropout,
                         attention_dropout=self.attention_dropout,
                         layer_norm_epsilon=self.layer_norm_epsilon, gelu=self.gelu,
                         name=f"block_{i}")
            for i in range(self.depth)
        ]
        self.norm = layers.LayerNormalization(epsilon=self.layer_norm_epsilon, name="norm")
        self.head = layers.Dense(self.num_classes, name="head")

    @property
    def num_prefix_tokens(self) -> int:
        """Tokens before the patch tokens: 1 (the class token) with ``pooling="cls"``, else 0."""
        return int(self.pooling == "cls")

    @property
    def num_tokens(self) -> int:
        """Tokens the encoder sees: patches, plus one class token with ``pooling="cls"``."""
        return self.grid_size[0] * self.grid_size[1] + self.num_prefix_tokens

    def build(self, input_shape=None):
        if input_shape is None:
            input_shape = (None, *self.image_size, self.channels)
        self.check_images(input_shape)
        self.patch_embedding.build(input_shape)
        tokens = (input_shape[0], self.num_tokens, self.dim)
        if self.class_token is not None:
            self.class_token.build((input_shape[0], self.num_tokens - 1, self.dim))
        self.position_embedding.build(tokens)
        for block in self.blocks:
            block.build(tokens)
        self.norm.build(tokens)
        self.head.build((input_shape[0], self.dim))
        self.built = True

    def check_images(self, shape, name: str = "images"):
        """Raise a ValueError naming ``name`` unless ``shape`` is (batch, H, W, channels) with
        this model's image size; returns nothing."""
        shape = _checks.image_batch(name, shape, self.channels)
        if tuple(shape[1:3]) != self.image_size and None not in shape[1:3]:
            raise ValueError(
                f"`{name}` must be {self.image_size[0]}x{self.image_size[1]} for this model "
                f"(image_size={self.image_size}), got shape {tuple(shape)}. Resize the images, or "
                "build a model for the new size and use resize_position_embedding."
            )

    def embed(self, images, training=None):
        """Eq. 1: images (batch, H, W, C) -> z_0 (batch, tokens, dim), the patch tokens with the
        class token first (``pooling="cls"``) and the position embedding added."""
        self.check_images(_checks.static_shape("images", images))
        _checks.float_images("images", images)
        x = self.patch_embedding(images, training=training)  # (batch, N, dim)
        if self.class_token is not None:
            x = self.class_token(x)  # (batch, 1 + N, dim)
        return self.embedding_dropout(self.position_embedding(x), training=training)

    def transform(self, x, training=None, return_attention=False):
        """Eq. 2-4: tokens (batch, tokens, dim) -> the encoder's normalised output, same shape
        [, a list of attention weights (batch, heads, tokens, tokens), one per block]. Any number
        of tokens works (MAE passes only the visible ones)."""
        attention = []
        for block in self.blocks:  # Eq. 2-3
            if return_attention:
                x, weights = block(x, return_attention_scores=True, training=training)
                attention.append(weights)
            else:
                x = block(x, training=training)
        x = self.norm(x)  # Eq. 4 (applied to every token)
        return (x, attention) if return_attention else x

    def encode(self, images, training=None, return_attention=False):
        """images (batch, H, W, C) -> normalised tokens (batch, tokens, dim) [, attention list]:
        ``transform(embed(images))``."""
        return self.transform(self.embed(images, training=training), training=training,
                              return_attention=return_attention)

    def _check_inputs(self, x, name: str = "x", allow_empty: bool = False):
        """Before Keras starts: a clear error for arrays that are not images of this model (on
        JAX an error inside ``predict`` would leave the model's variables unusable)."""
        if x is None or (hasattr(x, "shape") and hasattr(x, "dtype")):  # not datasets
            self.check_images(_checks.static_shape(name, x), name)
            _checks.float_images(name, x)
            if not _all_finite(x):
                raise ValueError(f"`{name}` contains NaN or Inf: the model would return NaN. Check "
                                 "how it was made.")
            if x.shape[0] == 0 and not allow_empty:
                raise ValueError(f"`{name}` holds no images (shape {tuple(x.shape)}): nothing to do.")

    def __call__(self, images, *args, **kwargs):
        _checks.static_shape("images", images)  # None, a list, ...: named here, not by Keras
        self._check_inputs(images, "images", allow_empty=True)
        return super().__call__(images, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        """Keras' ``predict``, after checking ``x`` (see :meth:`check_images`)."""
        self._check_inputs(x)
        return super().predict(x, *args, **kwargs)

    def _check_pairs(self, x, y):
        self._check_inputs(x)
        if hasattr(x, "shape") and hasattr(y, "shape") and len(y) != len(x):
            raise ValueError(f"`y` must hold one label per image: `x` has {len(x)} images, `y` "
                             f"has shape {tuple(y.shape)}.")

    def fit(self, x=None, y=None, *args, **kwargs):
        """Keras' ``fit``, after checking ``x`` and that ``y`` has one label per image."""
        self._check_pairs(x, y)
        return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """Keras' ``evaluate``, after the same checks as :meth:`fit`."""
        self._check_pairs(x, y)
        return super().evaluate(x, y, *args, **kwargs)

    def pool(self, tokens):
        """(batch, tokens, dim) -> (batch, dim): the class token, or the mean of the patch tokens."""
        return tokens[:, 0] if self.pooling == "cls" else ops.mean(tokens, axis=1)

    def call(self, images, training=None, return_attention=False):
        out = self.encode(images, training=training, return_attention=return_attention)
        tokens, attention = out if return_attention else (out, None)
        logits = self.head(self.pool(tokens))
        return (logits, attention) if return_attention else logits

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        return {
            **super().get_config(),
            "image_size": self.image_size, "patch_size": self.patch_size,
            "num_classes": self.num_classes, "dim": self.dim, "depth": self.depth,
            "num_heads": self.num_heads, "mlp_dim": self.mlp_dim, "channels": self.channels,
            "pooling": self.pooling, "position": self.position, "dropout": self.dropout,
            "attention_dropout": self.attention_dropout, "patch_method": self.patch_method,
            "layer_norm_epsilon": self.layer_norm_epsilon, "stem_width": self.stem_width,
            "gelu": self.gelu,
        }


def _all_finite(x) -> bool:
    """False if the concrete array or eager tensor ``x`` holds NaN or Inf; True if it does not,
    or if ``x`` is symbolic (inside a traced function there are no values to check)."""
    if isinstance(x, np.ndarray):
        return bool(np.all(np.isfinite(x)))
    if isinstance(x, keras.KerasTensor):
        return True
    try:
        return bool(ops.all(ops.isfinite(x)))
    except Exception:  # noqa: BLE001 - a graph tensor or a JAX tracer has no value yet
        return True


def architecture(model) -> dict:
    """The constructor arguments of ``model`` (a ViT or any vitlib model, or its config dict):
    the config without Keras' ``name``, ``trainable`` and ``dtype``, to build a fresh model of the
    same kind."""
    config = model if isinstance(model, dict) else model.get_config()
    return {k: v for k, v in config.items() if k not in ("name", "trainable", "dtype")}


def load_model(path) -> keras.Model:
    """``keras.saving.load_model(path, safe_mode=True)`` after checking that ``path`` is a
    readable ``.keras`` archive: an empty, truncated or HTML file (an interrupted download, an
    error page) gets a ValueError that says so, instead of Keras' "File not found"."""
    import zipfile
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"`path` {path} does not exist.")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            damaged = archive.testzip()
    except zipfile.BadZipFile:
        head = path.read_bytes()[:15]
        raise ValueError(f"`path` {path} ({path.stat().st_size:,} bytes, starting {head!r}) is not "
                         "a .keras archive: an empty or interrupted download, or an error page? "
                         "Make or download it again.") from None
    if damaged is not None or not {"config.json", "model.weights.h5"} <= names:
        raise ValueError(f"`path` {path} is a damaged .keras archive ("
                         f"{'corrupt entry ' + damaged if damaged else 'entries missing'}): make "
                         "or download it again.")
    model = keras.saving.load_model(path, safe_mode=True)
    warn_if_not_finite(model, f"`path` {path}")
    return model


def warn_if_not_finite(model: keras.Model, what: str) -> list[str]:
    """Warn (UserWarning) if any weight of ``model`` holds NaN or Inf: every output would be NaN.
    Usually the training run that saved it diverged. Returns the paths of those weights."""
    import warnings

    bad = [v.path for v in model.weights
           if not np.all(np.isfinite(keras.ops.convert_to_numpy(v)))]
    if bad:
        warnings.warn(f"{what}: {len(bad)} weights hold NaN or Inf ({', '.join(bad[:3])}"
                      f"{', ...' if len(bad) > 3 else ''}); the model will output NaN. Did its "
                      "training diverge? Train again with a lower learning rate.", stacklevel=3)
    return bad


def make_vit(name: str, **overrides) -> ViT:
    """Build a named ViT (see :mod:`vitlib.configs`), e.g. ``make_vit("B/16")`` or
    ``make_vit("fashion-small", position="sincos")``. The model is built, ready to count parameters."""
    model = ViT(**vit_config(name, **overrides))
    model.build()
    return model
