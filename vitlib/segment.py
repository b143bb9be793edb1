"""Beyond classification: per-patch semantic segmentation with the course's ViT (notebook 10).

A ViT encoder already returns one token per patch; a classifier keeps only the class token
(Eq. 4). A segmenter (semantic segmentation, 意味的領域分割) puts the linear head on EVERY patch token:

    images (batch, H, W, C) -> encoder -> tokens (batch, prefix + rows*cols, dim)
        -> drop the prefix (class) token -> Dense(num_classes) per token
        -> logits (batch, rows, cols, num_classes): one label per patch

The task: Fashion-MNIST items pasted on a larger black canvas (:func:`make_canvases`), labelled per
patch (:func:`patch_labels`): 0 for background, 1 + c for an item of class c. The model is the
course's trained classifier with a new head and its position embedding resized to the larger grid
(:func:`segmenter_from_classifier`). Scores: per-patch accuracy and mean intersection over union
(:func:`mean_iou`).

``python -m experiments.segment`` fine-tunes the shipped classifier as a segmenter and ships
``data/vit_fashion_segment.keras``.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from . import _checks
from .configs import FASHION_CLASS_NAMES as CLASS_NAMES
from .finetune import copy_encoder
from .model import ViT, architecture

#: Label names of the segmentation task: 0 is the background, 1 + c is Fashion-MNIST class c.
LABEL_NAMES = ("background", *CLASS_NAMES)
NUM_LABELS = len(LABEL_NAMES)  # 11
#: The task and training recipe of the shipped segmenter (the defaults of the command).
RECIPE = {
    "canvas_size": 56, "items": (2, 3), "threshold": 0.25, "train_canvases": 8000,
    "test_canvases": 300, "epochs": 2, "batch_size": 8, "peak_learning_rate": 2e-3,
    "weight_decay": 0.05, "warmup_fraction": 0.1, "seed": 0, "test_seed": 1,
}


# --- the model ---------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="vitlib")
class PatchSegmenter(ViT):
    """A ViT whose head labels every patch token instead of the class token.

    images (batch, H, W, C) -> logits (batch, rows, cols, num_classes), rows = H / patch_size.
    ``model.encode(images)`` is the ViT's: normalised tokens (batch, prefix + rows*cols, dim).
    Takes the same arguments as :class:`vitlib.ViT`; ``num_classes`` counts the background too.
    The class token (``pooling="cls"``) stays in the encoder, where every patch can attend to it,
    but gets no label.
    """

    def call(self, images, training=None, return_attention=False):
        out = self.encode(images, training=training, return_attention=return_attention)
        tokens, attention = out if return_attention else (out, None)
        patches = tokens[:, self.num_prefix_tokens:]  # (batch, rows*cols, dim)
        logits = self.head(patches)  # the same Dense on every token: (batch, rows*cols, classes)
        logits = ops.reshape(logits, (-1, *self.grid_size, self.num_classes))
        return (logits, attention) if return_attention else logits

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.grid_size, self.num_classes)


def segmenter_from_classifier(classifier, image_size, num_classes: int = NUM_LABELS,
                              pretrained: bool = True) -> PatchSegmenter:
    """A :class:`PatchSegmenter` with ``classifier``'s architecture, for images of ``image_size``.

    With ``pretrained=True`` it gets the classifier's patch embedding, class token, encoder blocks
    and final norm (:func:`vitlib.finetune.copy_encoder`); a learned position embedding is resized
    to the new grid of patches (the ViT paper's 2-D interpolation). The head is new (random). With
    ``pretrained=False`` every weight is random: the same model, untrained.
    """
    if not isinstance(classifier, ViT):
        raise ValueError(f"`classifier` must be a vitlib.ViT, got {type(classifier).__name__}.")
    model = PatchSegmenter(**{**architecture(classifier), "image_size": image_size, "num_classes": num_classes})
    model.build()
    return copy_encoder(classifier, model) if pretrained else model


# --- the data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Canvases:
    """Items pasted on black canvases.

    x: (n, size, size, 1) float32 in [0, 1]; mask: (n, size, size) int32 pixel labels
    (0 background, 1 + class where an item's pixel is at least ``threshold``); items: (n,) int,
    how many items each canvas holds.
    """

    x: np.ndarray
    mask: np.ndarray
    items: np.ndarray


def _as_unit(images) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3:
        raise ValueError(f"`images` must have shape (n, height, width), got {images.shape}.")
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    return images.astype(np.float32)


def make_canvases(images, labels, count: int, size: int = 56, items=(2, 3),
                  threshold: float = 0.25, max_overlap: float = 0.1, seed: int = 0,
                  tries: int = 50) -> Canvases:
    """Paste ``items`` (min, max) randomly chosen images on each of ``count`` black canvases.

    images (n, h, w) uint8 (0..255) or float in [0, 1]; labels (n,) in 0..9. An item's foreground
    is its pixels >= ``threshold``. Each item goes to a random position where at most
    ``max_overlap`` of its foreground covers items placed before it, and lies on top of them there
    (a small occlusion); every foreground pixel has one owner. An item that finds no such place in
    ``tries`` attempts is left out (``Canvases.items`` counts what was placed). Seeded: the same
    arguments give the same canvases.
    """
    pool = _as_unit(images)
    labels = np.asarray(labels)
    count = _checks.positive_int("count", count)
    size = _checks.positive_int("size", size)
    h, w = pool.shape[1:]
    if size < max(h, w):
        raise ValueError(f"`size` must be at least the item size {max(h, w)}, got {size}.")
    if labels.shape != (len(pool),):
        raise ValueError(f"`labels` must have shape ({len(pool)},) like `images`, got {labels.shape}.")
    lo, hi = (items, items) if isinstance(items, int) else items
    if not 1 <= lo <= hi:
        raise ValueError(f"`items` must be (min, max) with 1 <= min <= max, got {items!r}.")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"`threshold` must be in (0, 1), got {threshold!r}.")
    max_overlap = _checks.probability("max_overlap", max_overlap)
    rng = np.random.default_rng(seed)
    x = np.zeros((count, size, size), np.float32)
    mask = np.zeros((count, size, size), np.int32)
    placed = np.zeros(count, np.int64)
    for i in range(count):
        for _ in range(int(rng.integers(lo, hi + 1))):
            k = int(rng.integers(len(pool)))
            item, fg = pool[k], pool[k] >= threshold
            for _ in range(tries):
                top, left = (int(v) for v in rng.integers(0, [size - h + 1, size - w + 1]))
                window = mask[i, top:top + h, left:left + w]  # views: writing to them fills the canvas
                if np.count_nonzero(window[fg]) <= max_overlap * np.count_nonzero(fg):
                    pixels = x[i, top:top + h, left:left + w]
                    pixels[fg] = item[fg]  # on top of what it covers
                    pixels[~fg] = np.maximum(pixels[~fg], item[~fg])  # faint edges never hide others
                    window[fg] = 1 + int(labels[k])
                    placed[i] += 1
                    break
    return Canvases(x[..., None], mask, placed)


def patch_labels(mask, patch_size: int, num_labels: int = NUM_LABELS) -> np.ndarray:
    """Pixel labels (n, H, W) -> patch labels (n, H / P, W / P): the most frequent label among
    the P x P pixels of each patch, background included; a tie goes to the smaller label."""
    mask = np.asarray(mask)
    _checks.rank("mask", mask.shape, 3, "(n, height, width)")
    p = _checks.positive_int("patch_size", patch_size)
    n, height, width = mask.shape
    _checks.divides("mask height", height, "patch_size", p)
    _checks.divides("mask width", width, "patch_size", p)
    if mask.size and (mask.min() < 0 or mask.max() >= num_labels):
        raise ValueError(f"`mask` labels must be in 0..{num_labels - 1}, got {mask.min()}..{mask.max()}.")
    blocks = mask.reshape(n, height // p, p, width // p, p).transpose(0, 1, 3, 2, 4)
    blocks = blocks.reshape(n, height // p, width // p, p * p)
    counts = np.stack([(blocks == k).sum(-1) for k in range(num_labels)], axis=-1)
    return counts.argmax(-1).astype(np.int32)  # argmax takes the first (smallest) of equal counts


# --- the scores --------------------------------------------------------------------------------


def _labels(name, value, num_classes):
    value = np.asarray(value)
    if value.size and (value.min() < 0 or value.max() >= num_classes):
        raise ValueError(f"`{name}` must hold labels in 0..{num_classes - 1}, "
                         f"got values {value.min()}..{value.max()}.")
    return value.astype(np.int64).ravel()


def confusion_matrix(true, pred, num_classes: int = NUM_LABELS) -> np.ndarray:
    """(num_classes, num_classes) counts: row = true label, column = predicted label, over every
    patch (or pixel) of ``true`` and ``pred`` (integer arrays of the same shape)."""
    num_classes = _checks.positive_int("num_classes", num_classes)
    if np.shape(true) != np.shape(pred):
        raise ValueError(f"`pred` must have the shape of `true` {np.shape(true)}, got {np.shape(pred)}.")
    t, p = _labels("true", true, num_classes), _labels("pred", pred, num_classes)
    return np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(num_classes, num_classes)


def iou_per_class(true, pred, num_classes: int = NUM_LABELS) -> np.ndarray:
    """(num_classes,) intersection over union |true = k and pred = k| / |true = k or pred = k|,
    counted over all images together; nan for a label that is in neither ``true`` nor ``pred``."""
    c = confusion_matrix(true, pred, num_classes).astype(np.float64)
    intersection = np.diag(c)
    union = c.sum(0) + c.sum(1) - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, intersection / union, np.nan)


def mean_iou(true, pred, num_classes: int = NUM_LABELS) -> float:
    """The mean of :func:`iou_per_class` over the labels present in ``true`` or ``pred``
    (background included): every label counts the same, however many patches it has."""
    return float(np.nanmean(iou_per_class(true, pred, num_classes)))


class _Tokens(keras.Model):
    """Wraps a ViT so that ``predict`` returns its patch tokens (batch, rows*cols, dim)."""

    def __init__(self, vit, **kwargs):
        super().__init__(**kwargs)
        self.vit = vit

    def call(self, images):
        return self.vit.encode(images)[:, self.vit.num_prefix_tokens:]


def patch_tokens(model, x, batch_size: int = 100, jit_compile="auto") -> np.ndarray:
    """Frozen features: images (n, H, W, C) -> the encoder's patch tokens (n, rows*cols, dim), as
    NumPy (class token dropped), computed in batches by a compiled ``predict``."""
    if not isinstance(model, ViT):
        raise ValueError(f"`model` must be a vitlib.ViT, got {type(model).__name__}.")
    tokens = _Tokens(model, name="patch_tokens")
    tokens.compile(jit_compile=jit_compile)
    return _predict(tokens, x, batch_size)


def linear_probe(train_features, train_labels, test_features, num_classes: int = NUM_LABELS,
                 steps: int = 100, learning_rate: float = 0.1) -> np.ndarray:
    """A linear probe: softmax regression from ONE patch's features to its label, in NumPy.

    train_features (n, patches, d), train_labels (n, rows, cols) with rows * cols = patches,
    test_features (m, patches, d) -> predicted labels (m, rows, cols). The features stay as they
    are (frozen); only a (d, num_classes) matrix and a bias are fitted: the features are
    standardised with the training mean and standard deviation, then ``steps`` full-batch Adam
    steps minimise the cross-entropy, from zeros. Deterministic: no random numbers.
    """
    x = np.asarray(train_features, np.float32)
    test = np.asarray(test_features, np.float32)
    _checks.rank("train_features", x.shape, 3, "(n, patches, features)")
    _checks.rank("test_features", test.shape, 3, "(m, patches, features)")
    labels = np.asarray(train_labels)
    if labels.shape[0] != x.shape[0] or int(np.prod(labels.shape[1:])) != x.shape[1]:
        raise ValueError(f"`train_labels` must hold one label per patch of `train_features` "
                         f"{x.shape[:2]}, got shape {labels.shape}.")
    if test.shape[1:] != x.shape[1:]:
        raise ValueError(f"`test_features` must have {x.shape[1:]} per image like "
                         f"`train_features`, got shape {test.shape}.")
    x = x.reshape(-1, x.shape[-1])
    mean, std = x.mean(0), x.std(0) + 1e-6
    x = np.concatenate([(x - mean) / std, np.ones((len(x), 1), np.float32)], axis=1)  # bias column
    y = np.eye(num_classes, dtype=np.float32)[labels.reshape(-1)]
    w = np.zeros((x.shape[1], num_classes), np.float32)
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t in range(1, steps + 1):  # Adam (Kingma and Ba 2015) on the mean cross-entropy
        logits = x @ w
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        grad = x.T @ (p - y) / len(x)
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        w -= learning_rate * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    test = (test.reshape(-1, test.shape[-1]) - mean) / std
    logits = test @ w[:-1] + w[-1]
    return logits.argmax(-1).reshape(len(test_features), *labels.shape[1:]).astype(np.int32)


def _predict(model, x, batch_size):
    """``model.predict`` with the last batch padded to full size: every batch has one shape, so
    the predict function is traced once per model (no retracing, no TensorFlow warning)."""
    x = np.asarray(x)
    batch_size = min(_checks.positive_int("batch_size", batch_size), max(len(x), 1))
    pad = -len(x) % batch_size
    padded = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)]) if pad else x
    return model.predict(padded, batch_size=batch_size, verbose=0)[:len(x)]


def predict_labels(model, x, batch_size: int = 100) -> np.ndarray:
    """images (n, H, W, C) -> predicted patch labels (n, rows, cols), the argmax of the logits."""
    return _predict(model, x, batch_size).argmax(-1).astype(np.int32)


def scores(true, pred, num_classes: int = NUM_LABELS) -> dict:
    """Per-patch accuracy, mean IoU and the IoU of each label, rounded to 4 digits."""
    iou = iou_per_class(true, pred, num_classes)
    return {"patch_accuracy": round(float(np.mean(np.asarray(true) == np.asarray(pred))), 4),
            "mean_iou": round(float(np.nanmean(iou)), 4),
            "iou": {name: (None if np.isnan(v) else round(float(v), 4))
                    for name, v in zip(LABEL_NAMES[:num_classes], iou, strict=True)}}


# --- the command -------------------------------------------------------------------------------


def make_task(data, split: str, recipe=RECIPE, patch_size: int = 4):
    """The shipped task's canvases (x (n, size, size, 1), patch labels (n, rows, cols)) of ``split``.

    ``"train"``: ``recipe["train_canvases"]`` canvases of training images (seed ``recipe["seed"]``);
    ``"test"``: ``recipe["test_canvases"]`` canvases of TEST images only (``recipe["test_seed"]``).
    """
    _checks.one_of("split", split, {"train", "test"})
    s = recipe
    images, labels = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
    count, seed = ((s["train_canvases"], s["seed"]) if split == "train"
                   else (s["test_canvases"], s["test_seed"]))
    c = make_canvases(images, labels, count, size=s["canvas_size"], items=tuple(s["items"]),
                      threshold=s["threshold"], seed=seed)
    return c.x, patch_labels(c.mask, patch_size)
