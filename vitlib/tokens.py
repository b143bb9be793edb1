"""Beyond classification, hands-on III: models over sequences of discrete tokens (notebook 15).

Two of the five Transformers of notebook 10 read and write *tokens from a small vocabulary*
instead of patch vectors:

- **Image Transformer** (Parmar et al. 2018): an image is a sequence of pixel values in raster
  order, generated one pixel at a time. :func:`downsample` and :func:`quantise` turn Fashion-MNIST
  into 14x14 images of a few grey levels; :class:`PixelTransformer` is a causal (autoregressive)
  model over the 196 pixels; :func:`bits_per_dim` scores it and :func:`marginal_bits_per_dim`
  scores the per-pixel and global marginal baselines; :func:`sample` generates pixel by pixel.
- **VideoBERT** (Sun et al. 2019): each frame of a clip becomes a "visual word", the nearest
  centroid of a k-means codebook of frame features (:func:`kmeans`, :func:`assign`);
  :class:`MaskedTokenModel` is a BERT-style bidirectional encoder trained to predict a masked word
  from the others, and :class:`VideoBERT` is that model carrying its vocabulary (the centroids
  and each word's mean frame). :func:`make_clips` makes the toy videos (an item moving across a
  frame); :func:`masked_inputs`, :func:`masked_predictions` and the baselines
  (:func:`most_frequent_baseline`, :func:`copy_baseline`, :func:`neighbour_count_baseline`)
  score it, one masked frame at a time.

The models use ``keras.ops`` / ``keras.layers`` only (TensorFlow and JAX) and are built from the
course's :class:`vitlib.encoder.EncoderBlock`; the causal model passes
:func:`vitlib.attention.causal_mask` to every block. Data preparation, k-means and the baselines
are NumPy (float64), so the same inputs give the same tokens on every backend.

``python -m experiments.image_transformer`` and ``python -m experiments.videobert`` train and ship
``data/image_transformer.keras`` and ``data/videobert.keras`` with their records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np
from keras import initializers, layers, ops, saving

from . import _checks
from .attention import causal_mask
from .encoder import EncoderBlock

LN2 = math.log(2.0)


# --- pixels as tokens --------------------------------------------------------------------------


def _as_unit(images) -> np.ndarray:
    """(n, H, W) or (n, H, W, 1), uint8 0..255 or float in [0, 1] -> float64 (n, H, W) in [0, 1]."""
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3:
        raise ValueError(f"`images` must have shape (n, height, width) or (n, height, width, 1), "
                         f"got {images.shape}.")
    if images.dtype == np.uint8:
        return images.astype(np.float64) / 255.0
    if images.dtype.kind not in "fiu":
        raise ValueError(f"`images` must hold numbers, got dtype {images.dtype}.")
    images = images.astype(np.float64)
    if images.size and (images.min() < 0 or images.max() > 1):
        raise ValueError(f"float `images` must lie in [0, 1], got values in [{images.min():.3g}, "
                         f"{images.max():.3g}] (uint8 images are divided by 255 here).")
    return images


def downsample(images, factor: int = 2) -> np.ndarray:
    """Average ``factor`` x ``factor`` blocks: images (n, H, W) [or (n, H, W, 1)], uint8 or floats
    in [0, 1] -> float64 (n, H / factor, W / factor) in [0, 1]. 28x28 -> 14x14 with factor 2."""
    x = _as_unit(images)
    factor = _checks.positive_int("factor", factor)
    n, h, w = x.shape
    _checks.divides("height", h, "factor", factor)
    _checks.divides("width", w, "factor", factor)
    return x.reshape(n, h // factor, factor, w // factor, factor).mean(axis=(2, 4))


def quantise(images, levels: int) -> np.ndarray:
    """Grey values in [0, 1] -> integer levels 0..levels-1 (int64, same shape): ``levels`` equal
    bins, value v -> floor(v * levels), with v = 1 in the top bin. uint8 images are divided by 255."""
    levels = _checks.positive_int("levels", levels)
    if levels < 2:
        raise ValueError(f"`levels` must be at least 2, got {levels}.")
    x = np.asarray(images)
    x = x.astype(np.float64) / 255.0 if x.dtype == np.uint8 else x.astype(np.float64)
    if x.size and (x.min() < 0 or x.max() > 1):
        raise ValueError("`images` must be uint8 or floats in [0, 1].")
    return np.minimum(np.floor(x * levels), levels - 1).astype(np.int64)


def dequantise(pixels, levels: int) -> np.ndarray:
    """Integer levels -> the grey value at the centre of each bin, (level + 0.5) / levels, for
    showing quantised images."""
    levels = _checks.positive_int("levels", levels)
    return (np.asarray(pixels, dtype=np.float64) + 0.5) / levels


def _check_pixels(pixels, levels: int, tokens: int, name: str = "pixels") -> np.ndarray:
    p = np.asarray(pixels)
    if p.ndim != 2:
        raise ValueError(f"`{name}` must have shape (batch, length) (raster order), got {p.shape}.")
    if p.dtype.kind not in "iu":
        raise ValueError(f"`{name}` must hold integer levels 0..{levels - 1}, got dtype {p.dtype}.")
    if not 1 <= p.shape[1] <= tokens:
        raise ValueError(f"`{name}` must have 1..{tokens} tokens per row, got {p.shape[1]}.")
    if p.size and (p.min() < 0 or p.max() >= levels):
        raise ValueError(f"`{name}` must hold levels 0..{levels - 1}, got values in "
                         f"[{p.min()}, {p.max()}].")
    return p


# --- the causal pixel model (Image Transformer) -------------------------------------------------


@saving.register_keras_serializable(package="vitlib")
class PixelTransformer(keras.Model):
    """An autoregressive model of images as sequences of grey levels in raster order.

    pixels (batch, t) integers 0..levels-1, t <= ``tokens`` -> logits (batch, t, levels): row i is
    the distribution of pixel i given pixels 0..i-1, p(x_i | x_<i), the factors of

        p(x) = prod_i p(x_i | x_1, ..., x_{i-1})      (Parmar et al. 2018, Section 3)

    The input is shifted right by one: a start token (index ``levels``) first, then pixels
    0..t-2; pixel t-1 is never read. Every encoder block gets :func:`vitlib.attention.causal_mask`,
    so position i sees only the start token and pixels < i: logits[:, i] do not depend on
    pixels >= i, and feeding only the first i+1 pixels gives the same logits[:, i] (how
    :func:`sample` generates). Token embedding (levels + 1 rows) + a learned position embedding
    (tokens, dim), ``depth`` pre-norm :class:`~vitlib.encoder.EncoderBlock`, LayerNorm, Dense(levels).
    Unlike the paper it attends to all earlier pixels (196 are few), not a local block.
    """

    def __init__(self, levels: int = 4, tokens: int = 196, dim: int = 64, depth: int = 3,
                 num_heads: int = 4, mlp_dim: int = 128, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.levels = _checks.positive_int("levels", levels)
        if self.levels < 2:
            raise ValueError(f"`levels` must be at least 2, got {levels}.")
        self.tokens = _checks.positive_int("tokens", tokens)
        self.dim = _checks.positive_int("dim", dim)
        self.depth = _checks.positive_int("depth", depth)
        self.num_heads = _checks.positive_int("num_heads", num_heads)
        self.mlp_dim = _checks.positive_int("mlp_dim", mlp_dim)
        self.dropout = _checks.probability("dropout", dropout)
        _checks.divides("dim", self.dim, "num_heads", self.num_heads)
        self.embed = layers.Embedding(self.levels + 1, self.dim, name="embed")  # + the start token
        self.blocks = [EncoderBlock(self.num_heads, self.mlp_dim, dropout=self.dropout,
                                    name=f"block{i}") for i in range(self.depth)]
        self.norm = layers.LayerNormalization(epsilon=1e-6, name="norm")
        self.head = layers.Dense(self.levels, name="head")

    @property
    def start_token(self) -> int:
        """The index of the start token that precedes pixel 0: ``levels``."""
        return self.levels

    def build(self, input_shape=None):
        self.position = self.add_weight(shape=(self.tokens, self.dim), name="position",
                                        initializer=initializers.RandomNormal(stddev=0.02))
        self.embed.build((None, self.tokens))
        for block in self.blocks:
            block.build((None, self.tokens, self.dim))
        self.norm.build((None, self.tokens, self.dim))
        self.head.build((None, self.tokens, self.dim))
        self.built = True

    def shift(self, pixels):
        """pixels (batch, t) -> inputs (batch, t): the start token, then pixels 0..t-2."""
        pixels = ops.cast(pixels, "int32")
        start = ops.full((ops.shape(pixels)[0], 1), self.start_token, dtype="int32")
        return ops.concatenate([start, pixels[:, :-1]], axis=1)

    def call(self, pixels, training=None):
        t = pixels.shape[1]
        if t is None:  # the causal mask's shape must be known (vitlib.attention checks it)
            raise ValueError("`pixels` must have a known length when the model is traced, got "
                             "shape (batch, None): trace with a fixed length, e.g. "
                             "tf.TensorSpec((None, 196)), or call the model on arrays.")
        mask = causal_mask(t)
        x = self.embed(self.shift(pixels)) + self.position[:t]
        for block in self.blocks:
            x = block(x, mask=mask, training=training)
        return self.head(self.norm(x))

    def __call__(self, pixels, *args, **kwargs):
        if isinstance(pixels, np.ndarray):
            _check_pixels(pixels, self.levels, self.tokens)
        else:
            shape = tuple(pixels.shape)
            if len(shape) != 2 or (isinstance(shape[1], int) and not 1 <= shape[1] <= self.tokens):
                raise ValueError(f"`pixels` must have shape (batch, 1..{self.tokens}), got {shape}.")
        return super().__call__(pixels, *args, **kwargs)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:2], self.levels)

    def get_config(self):
        return {**super().get_config(), "levels": self.levels, "tokens": self.tokens,
                "dim": self.dim, "depth": self.depth, "num_heads": self.num_heads,
                "mlp_dim": self.mlp_dim, "dropout": self.dropout}


def _log_softmax(logits) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def forward(model: keras.Model):
    """A compiled inference call of ``model``: tokens (batch, t) int -> logits as NumPy.

    The same as ``model(tokens)``, but traced once per input shape (``tf.function`` with XLA on
    TensorFlow, ``jax.jit`` of ``stateless_call`` on JAX; plain calls on other backends): a pixel
    model called 196 times while sampling would otherwise spend most of its time dispatching
    operations one by one. Kept on the model (``model._vitlib_forward``); it reads the current
    weights at every call."""
    cached = getattr(model, "_vitlib_forward", None)
    if cached is not None:
        return cached
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        fn = tf.function(lambda z: model(z, training=False), jit_compile=True)

        def run(tokens):
            return ops.convert_to_numpy(fn(np.asarray(tokens, dtype=np.int32)))
    elif backend == "jax":
        import jax

        fn = jax.jit(lambda tv, ntv, z: model.stateless_call(tv, ntv, z, training=False)[0])

        def run(tokens):  # the current weights at every call
            return np.asarray(fn([v.value for v in model.trainable_variables],
                                 [v.value for v in model.non_trainable_variables],
                                 np.asarray(tokens, dtype=np.int32)))
    else:  # pragma: no cover - other backends: plain eager calls
        def run(tokens):
            return ops.convert_to_numpy(model(np.asarray(tokens)))
    model._vitlib_forward = run
    return run


def log2_probabilities(logits, pixels) -> np.ndarray:
    """log2 of the probability that ``logits`` (n, t, levels) give to the levels in ``pixels``
    (n, t): log2 softmax(logits)[pixel], float64 (n, t)."""
    logits, pixels = np.asarray(logits), np.asarray(pixels)
    if logits.ndim != 3 or logits.shape[:2] != pixels.shape:
        raise ValueError(f"`logits` (n, t, levels) and `pixels` (n, t) must agree, got "
                         f"{logits.shape} and {pixels.shape}.")
    logp = _log_softmax(logits)
    return np.take_along_axis(logp, pixels[..., None].astype(np.int64), axis=-1)[..., 0] / LN2


def pixel_log_likelihoods(model: PixelTransformer, pixels, batch_size: int = 250) -> np.ndarray:
    """log2 p(x_i | x_<i) of every pixel, float64 (n, t), from one forward pass per batch
    (teacher forcing: the true earlier pixels are given)."""
    if not isinstance(model, PixelTransformer):
        raise ValueError(f"`model` must be a PixelTransformer, got {type(model).__name__}.")
    p = _check_pixels(pixels, model.levels, model.tokens)
    batch_size = _checks.positive_int("batch_size", batch_size)
    run = forward(model)
    out = np.zeros(p.shape, dtype=np.float64)
    for i in range(0, len(p), batch_size):
        chunk = p[i:i + batch_size]
        out[i:i + batch_size] = log2_probabilities(run(chunk), chunk)
    return out


def bits_per_dim(model: PixelTransformer, pixels, batch_size: int = 250) -> float:
    """Mean negative log2-likelihood per pixel: -(1 / (n t)) sum log2 p(x_i | x_<i). A model that
    knows nothing (uniform over L levels) scores log2 L; lower is better."""
    return float(-pixel_log_likelihoods(model, pixels, batch_size).mean())


def marginal_bits_per_dim(train_pixels, test_pixels, levels: int, per_pixel: bool = True,
                          smoothing: float = 1.0) -> float:
    """Bits per dimension of a model with independent pixels, fitted by counting on
    ``train_pixels`` (n, t): each position's own level frequencies (``per_pixel=True``, the
    per-pixel marginal) or one distribution for every position (``per_pixel=False``, the global
    marginal), with ``smoothing`` added to every count (Laplace). Scored on ``test_pixels`` (m, t)."""
    levels = _checks.positive_int("levels", levels)
    train = np.asarray(train_pixels)
    test = np.asarray(test_pixels)
    if train.ndim != 2 or test.ndim != 2 or train.shape[1] != test.shape[1]:
        raise ValueError(f"`train_pixels` and `test_pixels` must be (n, t) with the same t, got "
                         f"{train.shape} and {test.shape}.")
    onehot = np.eye(levels)[train]  # (n, t, levels)
    counts = onehot.sum(axis=0) if per_pixel else np.broadcast_to(onehot.sum(axis=(0, 1)),
                                                                   (train.shape[1], levels))
    probs = (counts + smoothing) / (counts + smoothing).sum(axis=-1, keepdims=True)  # (t, levels)
    p = np.take_along_axis(probs[None], test[..., None], axis=-1)[..., 0]  # (m, t)
    return float(-np.log2(p).mean())


def sample(model: PixelTransformer, count: int, seed: int = 0, temperature: float = 1.0,
           prefix=None) -> np.ndarray:
    """Generate ``count`` images pixel by pixel in raster order: for i = 0..tokens-1, run the model
    on the pixels so far and draw pixel i from softmax(logits[:, i] / temperature), with a NumPy
    generator seeded by ``seed``. ``prefix`` (count, k) fixes the first k pixels (completion).
    Returns int64 (count, tokens). Costs ``tokens`` compiled forward passes (:func:`forward`) of
    the whole sequence: the pixels not drawn yet are zeros, which the causal mask hides from
    pixel i."""
    if not isinstance(model, PixelTransformer):
        raise ValueError(f"`model` must be a PixelTransformer, got {type(model).__name__}.")
    count = _checks.positive_int("count", count)
    temperature = _checks.positive_float("temperature", temperature)
    rng = np.random.default_rng(seed)
    out = np.zeros((count, model.tokens), dtype=np.int64)
    start = 0
    if prefix is not None:
        prefix = _check_pixels(prefix, model.levels, model.tokens, "prefix")
        if len(prefix) != count:
            raise ValueError(f"`prefix` must have {count} rows (count), got {len(prefix)}.")
        start = prefix.shape[1]
        out[:, :start] = prefix
    run = forward(model)
    for i in range(start, model.tokens):
        logits = run(out)[:, i].astype(np.float64)
        probs = np.exp(_log_softmax(logits / temperature))
        u = rng.random((count, 1))
        out[:, i] = np.minimum((np.cumsum(probs, axis=-1) < u).sum(axis=-1), model.levels - 1)
    return out


# --- visual words: k-means ---------------------------------------------------------------------


def assign(features, centroids) -> np.ndarray:
    """The index of the nearest centroid (squared Euclidean distance) of every row of
    ``features`` (n, d); ``centroids`` (k, d). Returns int64 (n,): the visual words."""
    x = np.asarray(features, dtype=np.float64)
    c = np.asarray(centroids, dtype=np.float64)
    if x.ndim != 2 or c.ndim != 2 or x.shape[1] != c.shape[1]:
        raise ValueError(f"`features` (n, d) and `centroids` (k, d) must share d, got {x.shape} "
                         f"and {c.shape}.")
    d2 = (x * x).sum(1)[:, None] - 2 * x @ c.T + (c * c).sum(1)[None]
    return d2.argmin(axis=1)


def kmeans(features, k: int, seed: int = 0, iterations: int = 100):
    """Lloyd's k-means with k-means++ initialisation, seeded; float64 NumPy.

    features (n, d) -> (centroids (k, d), words (n,), inertia): every row's nearest centroid and
    the sum of squared distances to it. Stops when no word changes. A centroid that loses all
    its rows moves to the row farthest from its centroid.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"`features` must have shape (n, d), got {x.shape}.")
    k = _checks.positive_int("k", k)
    if k > len(x):
        raise ValueError(f"`k`={k} must not exceed the number of rows {len(x)}.")
    rng = np.random.default_rng(seed)
    centroids = [x[rng.integers(len(x))]]
    d2 = ((x - centroids[0]) ** 2).sum(1)
    for _ in range(1, k):  # k-means++: the next centre with probability proportional to d^2
        nxt = x[rng.choice(len(x), p=d2 / d2.sum())] if d2.sum() > 0 else x[rng.integers(len(x))]
        centroids.append(nxt)
        d2 = np.minimum(d2, ((x - nxt) ** 2).sum(1))
    centroids = np.array(centroids)
    words = assign(x, centroids)
    for _ in range(iterations):
        for j in range(k):
            members = words == j
            if members.any():
                centroids[j] = x[members].mean(0)
            else:
                far = ((x - centroids[words]) ** 2).sum(1).argmax()
                centroids[j] = x[far]
        new = assign(x, centroids)
        if np.array_equal(new, words):
            break
        words = new
    inertia = float(((x - centroids[words]) ** 2).sum())
    return centroids, words, inertia


def word_images(frames, words, k: int) -> np.ndarray:
    """Each word's "centroid image": the mean of the frames (n, H, W) assigned to it, (k, H, W)
    float32; zeros for a word that no frame has."""
    frames = np.asarray(frames, dtype=np.float64)
    words = np.asarray(words)
    k = _checks.positive_int("k", k)
    out = np.zeros((k, *frames.shape[1:]))
    for j in range(k):
        if (words == j).any():
            out[j] = frames[words == j].mean(0)
    return out.astype(np.float32)


# --- toy videos ---------------------------------------------------------------------------------


@dataclass
class Clips:
    """Toy videos: ``x`` (clips, frames, size, size) float32 in [0, 1], one item per clip;
    ``items`` (clips,) the index of the item's image; ``positions`` (clips, frames, 2) the item's
    top-left (row, col) in each frame; ``velocity`` (clips, 2) pixels per frame."""

    x: np.ndarray
    items: np.ndarray
    positions: np.ndarray
    velocity: np.ndarray


def make_clips(images, count: int, frames: int = 8, size: int = 28, factor: int = 2,
               max_speed: int = 2, seed: int = 0) -> Clips:
    """``count`` clips of one item moving in a straight line across a black frame.

    Each clip takes a random image of ``images`` (n, H, W) (uint8 or [0, 1]), shrinks it by
    ``factor`` (:func:`downsample`: 28 -> 14), draws a velocity (vy, vx) with integers in
    [-max_speed, max_speed] and a start such that the item stays whole inside the
    ``size`` x ``size`` frame for all ``frames`` frames, then pastes it at start + t * velocity.
    Seeded: the same arguments give the same clips.
    """
    small = downsample(images, factor)
    count = _checks.positive_int("count", count)
    frames = _checks.positive_int("frames", frames)
    size = _checks.positive_int("size", size)
    max_speed = _checks.non_negative_int("max_speed", max_speed)
    h, w = small.shape[1:]
    room = size - max(h, w)
    if room < 0:
        raise ValueError(f"`size`={size} must hold the shrunk item ({h}x{w}).")
    if max_speed * (frames - 1) > room:
        raise ValueError(f"`max_speed`={max_speed} x {frames - 1} steps exceeds the room "
                         f"({room} px) in a frame of {size}; lower max_speed or frames.")
    rng = np.random.default_rng(seed)
    items = rng.integers(len(small), size=count)
    velocity = rng.integers(-max_speed, max_speed + 1, size=(count, 2))
    travel = velocity * (frames - 1)
    lo = np.maximum(0, -travel)
    hi = room - np.maximum(0, travel)
    start = lo + np.floor(rng.random((count, 2)) * (hi - lo + 1)).astype(np.int64)
    positions = start[:, None] + velocity[:, None] * np.arange(frames)[None, :, None]
    x = np.zeros((count, frames, size, size), dtype=np.float32)
    for c in range(count):
        for t in range(frames):
            r, col = positions[c, t]
            x[c, t, r:r + h, col:col + w] = small[items[c]]
    return Clips(x=x, items=items, positions=positions, velocity=velocity)


class _ClassTokenFeatures(keras.Model):
    """Wraps a ViT so that ``predict`` returns its final class token (batch, dim)."""

    def __init__(self, vit, **kwargs):
        super().__init__(**kwargs)
        self.vit = vit

    def call(self, images):
        return self.vit.encode(images)[:, 0]


def frame_features(vit, frames, batch_size: int = 200) -> np.ndarray:
    """The class-token features of a frozen :class:`vitlib.ViT` for every frame: frames
    (..., H, W) floats in [0, 1] (clips (n, frames, H, W) too) -> float32 (..., dim), the
    normalised class token ``vit.encode(x)[:, 0]`` (the token the classifier's head reads).
    Computed in batches of one shape by a compiled ``predict`` (the last batch padded)."""
    from .model import ViT

    if not isinstance(vit, ViT) or vit.pooling != "cls":
        raise ValueError("`vit` must be a vitlib.ViT with a class token (pooling='cls').")
    frames = np.asarray(frames, dtype=np.float32)
    lead, hw = frames.shape[:-2], frames.shape[-2:]
    x = frames.reshape(-1, *hw, 1)
    if len(x) == 0:
        raise ValueError("`frames` holds no frames.")
    wrapper = _ClassTokenFeatures(vit, name="class_token_features")
    wrapper.compile(jit_compile="auto")
    batch_size = min(_checks.positive_int("batch_size", batch_size), len(x))
    pad = -len(x) % batch_size
    padded = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)]) if pad else x
    out = wrapper.predict(padded, batch_size=batch_size, verbose=0)[:len(x)]
    return np.asarray(out, dtype=np.float32).reshape(*lead, -1)


# --- the masked-token model (VideoBERT) ---------------------------------------------------------


@saving.register_keras_serializable(package="vitlib")
class MaskedTokenModel(keras.Model):
    """A BERT-style bidirectional encoder over sequences of words from a vocabulary.

    tokens (batch, t) integers 0..vocab_size, t <= ``length``, where index ``vocab_size`` is
    [MASK] -> logits (batch, t, vocab_size): at each position, the word it predicts there.
    No causal mask: every position sees every other, so a masked word is predicted from both
    sides (Devlin et al. 2019, Section 3.1, "Masked LM"). Trained with the loss on the masked
    positions only. Word embedding (vocab_size + 1 rows) + a learned position embedding
    (length, dim), ``depth`` pre-norm :class:`~vitlib.encoder.EncoderBlock`, LayerNorm,
    Dense(vocab_size).
    """

    def __init__(self, vocab_size: int = 32, length: int = 8, dim: int = 64, depth: int = 2,
                 num_heads: int = 4, mlp_dim: int = 128, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = _checks.positive_int("vocab_size", vocab_size)
        self.length = _checks.positive_int("length", length)
        self.dim = _checks.positive_int("dim", dim)
        self.depth = _checks.positive_int("depth", depth)
        self.num_heads = _checks.positive_int("num_heads", num_heads)
        self.mlp_dim = _checks.positive_int("mlp_dim", mlp_dim)
        self.dropout = _checks.probability("dropout", dropout)
        _checks.divides("dim", self.dim, "num_heads", self.num_heads)
        self.embed = layers.Embedding(self.vocab_size + 1, self.dim, name="embed")  # + [MASK]
        self.blocks = [EncoderBlock(self.num_heads, self.mlp_dim, dropout=self.dropout,
                                    name=f"block{i}") for i in range(self.depth)]
        self.norm = layers.LayerNormalization(epsilon=1e-6, name="norm")
        self.head = layers.Dense(self.vocab_size, name="head")

    @property
    def mask_token(self) -> int:
        """The index of [MASK]: ``vocab_size``."""
        return self.vocab_size

    def build(self, input_shape=None):
        self.position = self.add_weight(shape=(self.length, self.dim), name="position",
                                        initializer=initializers.RandomNormal(stddev=0.02))
        self.embed.build((None, self.length))
        for block in self.blocks:
            block.build((None, self.length, self.dim))
        self.norm.build((None, self.length, self.dim))
        self.head.build((None, self.length, self.dim))
        self.built = True

    def call(self, tokens, training=None):
        t = tokens.shape[1]
        if t is None:  # a length unknown while tracing
            t = ops.shape(tokens)[1]
        x = self.embed(ops.cast(tokens, "int32")) + self.position[:t]
        for block in self.blocks:
            x = block(x, training=training)  # no mask: bidirectional
        return self.head(self.norm(x))

    def __call__(self, tokens, *args, **kwargs):
        if isinstance(tokens, np.ndarray):
            _check_pixels(tokens, self.vocab_size + 1, self.length, "tokens")
        else:
            shape = tuple(tokens.shape)
            if len(shape) != 2 or (isinstance(shape[1], int) and not 1 <= shape[1] <= self.length):
                raise ValueError(f"`tokens` must have shape (batch, 1..{self.length}), got {shape}.")
        return super().__call__(tokens, *args, **kwargs)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:2], self.vocab_size)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "length": self.length,
                "dim": self.dim, "depth": self.depth, "num_heads": self.num_heads,
                "mlp_dim": self.mlp_dim, "dropout": self.dropout}


@saving.register_keras_serializable(package="vitlib")
class VideoBERT(MaskedTokenModel):
    """A :class:`MaskedTokenModel` that carries its visual vocabulary, so that one checkpoint
    turns frames into words and back: ``codebook`` (vocab_size, feature_dim), the k-means
    centroids of the frame features, and ``word_images`` (vocab_size, frame_size, frame_size),
    each word's mean frame; both non-trainable, set with :meth:`set_vocabulary`.
    ``words(features)`` assigns frame features (n, feature_dim) to words (:func:`assign`)."""

    def __init__(self, feature_dim: int = 96, frame_size: int = 28, **kwargs):
        super().__init__(**kwargs)
        self.feature_dim = _checks.positive_int("feature_dim", feature_dim)
        self.frame_size = _checks.positive_int("frame_size", frame_size)

    def build(self, input_shape=None):
        super().build(input_shape)
        self.codebook = self.add_weight(shape=(self.vocab_size, self.feature_dim), name="codebook",
                                        initializer="zeros", trainable=False)
        self.word_images = self.add_weight(
            shape=(self.vocab_size, self.frame_size, self.frame_size), name="word_images",
            initializer="zeros", trainable=False)

    def set_vocabulary(self, codebook, images) -> None:
        """Store the k-means centroids (vocab_size, feature_dim) and the words' mean frames
        (vocab_size, frame_size, frame_size)."""
        if not self.built:
            self.build()
        codebook, images = np.asarray(codebook), np.asarray(images)
        if codebook.shape != tuple(self.codebook.shape):
            raise ValueError(f"`codebook` must have shape {tuple(self.codebook.shape)}, got "
                             f"{codebook.shape}.")
        if images.shape != tuple(self.word_images.shape):
            raise ValueError(f"`images` must have shape {tuple(self.word_images.shape)}, got "
                             f"{images.shape}.")
        self.codebook.assign(codebook.astype("float32"))
        self.word_images.assign(images.astype("float32"))

    def words(self, features) -> np.ndarray:
        """Frame features (n, feature_dim) -> visual words (n,), the nearest centroid."""
        return assign(features, ops.convert_to_numpy(self.codebook))

    def get_config(self):
        return {**super().get_config(), "feature_dim": self.feature_dim,
                "frame_size": self.frame_size}


def masked_inputs(words, mask_token: int):
    """Every clip with each position masked in turn, for training and scoring.

    words (n, t) -> (inputs (n t, t), targets (n t, t), weights (n t, t)): row c t + j is clip c
    with position j replaced by ``mask_token``; targets are the clip's words; weights are 1 at the
    masked position and 0 elsewhere (the loss is on the masked word only)."""
    w = np.asarray(words)
    if w.ndim != 2:
        raise ValueError(f"`words` must have shape (clips, frames), got {w.shape}.")
    n, t = w.shape
    eye = np.eye(t, dtype=bool)
    inputs = np.where(eye[None], mask_token, w[:, None, :]).reshape(n * t, t)
    targets = np.repeat(w, t, axis=0)
    weights = np.tile(eye, (n, 1)).astype(np.float32)
    return inputs.astype(np.int64), targets.astype(np.int64), weights


def masked_predictions(model: MaskedTokenModel, words, batch_size: int = 1024) -> np.ndarray:
    """The model's word at each position when that position alone is masked: words (n, t) ->
    int64 (n, t)."""
    if not isinstance(model, MaskedTokenModel):
        raise ValueError(f"`model` must be a MaskedTokenModel, got {type(model).__name__}.")
    w = np.asarray(words)
    inputs, _, weights = masked_inputs(w, model.mask_token)
    run = forward(model)
    out = np.zeros(len(inputs), dtype=np.int64)
    for i in range(0, len(inputs), batch_size):
        logits = run(inputs[i:i + batch_size])
        rows = weights[i:i + batch_size].argmax(1)
        out[i:i + batch_size] = logits[np.arange(len(rows)), rows].argmax(-1)
    return out.reshape(w.shape)


def most_frequent_baseline(train_words, words) -> np.ndarray:
    """Predict the most frequent training word at every position: (n, t) int64."""
    counts = np.bincount(np.asarray(train_words).ravel())
    return np.full(np.shape(words), counts.argmax(), dtype=np.int64)


def copy_baseline(words) -> np.ndarray:
    """Predict the previous frame's word (for the first frame, the second's): (n, t) int64."""
    w = np.asarray(words)
    if w.ndim != 2 or w.shape[1] < 2:
        raise ValueError(f"`words` must have shape (clips, frames >= 2), got {w.shape}.")
    out = np.empty_like(w)
    out[:, 1:] = w[:, :-1]
    out[:, 0] = w[:, 1]
    return out.astype(np.int64)


def neighbour_count_baseline(train_words, words) -> np.ndarray:
    """A counting model of both neighbours: predict the word most often seen in the training
    clips between the same left and right words (a missing neighbour at either end is a key of
    its own); ties go to the smaller word; a pair never seen falls back to :func:`copy_baseline`.
    Returns (n, t) int64."""
    train, w = np.asarray(train_words), np.asarray(words)
    table: dict = {}
    for row in train:
        for j in range(train.shape[1]):
            key = (row[j - 1] if j > 0 else -1, row[j + 1] if j + 1 < train.shape[1] else -1)
            counts = table.setdefault((int(key[0]), int(key[1])), {})
            counts[int(row[j])] = counts.get(int(row[j]), 0) + 1
    best = {key: min(c, key=lambda v: (-c[v], v)) for key, c in table.items()}
    out = copy_baseline(w)
    for i, row in enumerate(w):
        for j in range(w.shape[1]):
            key = (int(row[j - 1]) if j > 0 else -1, int(row[j + 1]) if j + 1 < w.shape[1] else -1)
            if key in best:
                out[i, j] = best[key]
    return out


def accuracy(predicted, words) -> float:
    """The share of positions where ``predicted`` equals ``words``."""
    return float(np.mean(np.asarray(predicted) == np.asarray(words)))
