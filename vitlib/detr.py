"""Beyond classification, hands-on I: object detection as set prediction, DETR (notebook 13).

DETR (Carion et al. 2020) outputs a fixed number N of (class, box) pairs, the class possibly
"no object" (∅), and trains them through a one-to-one matching with the true objects:

    images (batch, H, W, C) -> the course's ViT encoder -> memory (batch, 1 + rows*cols, dim)
    N learned object queries (batch, N, d_dec) -> decoder blocks, each: self-attention among the
        queries, cross-attention from the queries to the memory, an MLP (:class:`DecoderBlock`)
        -> class head: logits (batch, N, num_classes), the last class is "no object"
        -> box head: an MLP and a sigmoid -> boxes (batch, N, 4) as (cx, cy, w, h) in [0, 1]

The loss (DETR's Eq. 1 and Eq. 2, Section 3.1): for each image, the cost of giving true object j
to query i is ``-p_i(c_j) + box_weight * |b_i - b_j|_1`` (:func:`matching_cost`); the Hungarian
algorithm finds the one-to-one assignment of lowest total cost (:func:`hungarian_match`, SciPy).
Matched queries are then trained towards their object's class and box, every other query towards
"no object", whose cross-entropy is down-weighted (``no_object_weight``, DETR's 0.1). The matching
runs in NumPy on the model's current predictions, outside the graph; the gradient step is a
standard Keras step on the aligned targets (:func:`aligned_targets`, :func:`hungarian_loss`,
:func:`train_detr`), so the same code runs on TensorFlow and JAX.

Simplifications against the paper (said in notebook 13): the backbone is the course's ViT (no
CNN), the queries are the decoder's input (DETR adds them as positions at every layer and starts
from zeros), the box loss is L1 without the generalised IoU term, and there are no auxiliary
losses after each decoder layer. The shipped model trains only the decoder, queries and heads on
the frozen encoder's tokens, computed once (:class:`DecoderOnly`, :func:`encode_scenes`).

The task: 1-3 Fashion-MNIST items on a black canvas (:func:`make_scenes`), each item's box taken
from its foreground when it is placed. Scores (:func:`score`): an item is found when a prediction
of its class has a box with IoU >= 0.5 with it (each prediction finds at most one item).

``python -m experiments.detr`` trains the decoder on the frozen encoder of notebook 10's segmenter
(the course's classifier fine-tuned on canvases) and ships ``data/detr_fashion.keras``. SciPy is needed for the matching and for the baseline's connected
components: ``pip install scipy`` (or ``pip install "vitlib[detection]"``).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers, ops

from . import _checks
from .attention import MultiHeadSelfAttention
from .configs import FASHION_CLASS_NAMES as CLASS_NAMES
from .cross_attention import LearnedQueries, MultiHeadCrossAttention
from .encoder import GELU_FORMS, MLP
from .finetune import copy_encoder, encoder_layers
from .model import ViT, architecture

#: The class head's labels: the 10 Fashion-MNIST classes, then "no object" (∅, index 10).
LABEL_NAMES = (*CLASS_NAMES, "no object")
NUM_LABELS = len(LABEL_NAMES)  # 11
NO_OBJECT = NUM_LABELS - 1  # 10
#: Padding of the targets' class arrays (a canvas with fewer items than the most it may hold).
PAD = -1
#: The task, the model and the training recipe of the shipped model (the command's defaults).
RECIPE = {
    "canvas_size": 56, "items": (1, 3), "threshold": 0.25, "max_overlap": 0.1,
    "train_canvases": 4000, "val_canvases": 500, "test_canvases": 500,
    "num_queries": 8, "decoder_depth": 2, "decoder_dim": 64, "decoder_heads": 4,
    "decoder_mlp_dim": 128, "epochs": 16, "batch_size": 32, "peak_learning_rate": 1e-3,
    "weight_decay": 0.05, "warmup_fraction": 0.05, "clipnorm": 1.0, "box_weight": 5.0,
    "no_object_weight": 0.1, "seed": 0, "val_seed": 1, "test_seed": 2, "val_images": 5000,
}


def _scipy(what: str):
    """``scipy.optimize`` or ``scipy.ndimage``, with an error that says how to install SciPy."""
    try:
        import scipy.ndimage
        import scipy.optimize
    except ImportError as e:  # pragma: no cover - scipy is in the course environment
        raise ImportError(f"vitlib.detr needs SciPy for {what}: pip install scipy "
                          "(or pip install \"vitlib[detection]\").") from e
    return scipy


# --- the data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenes:
    """Canvases with 1-3 items and the box and class of every item.

    x: (n, size, size, 1) float32 in [0, 1]; classes: (n, max_items) int32, the class of each
    item in the order placed, ``PAD`` (-1) after the last; boxes: (n, max_items, 4) float32,
    (cx, cy, w, h) as fractions of the canvas, zeros after the last item; items: (n,) int, how
    many items each canvas holds.
    """

    x: np.ndarray
    classes: np.ndarray
    boxes: np.ndarray
    items: np.ndarray

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, index) -> Scenes:
        """The canvases at ``index`` (a slice or an index array) as a new :class:`Scenes`."""
        return Scenes(self.x[index], self.classes[index], self.boxes[index], self.items[index])


def _as_unit(images) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3:
        raise ValueError(f"`images` must have shape (n, height, width), got {images.shape}.")
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    return images.astype(np.float32)


def foreground_box(foreground, top: int = 0, left: int = 0, size=None) -> np.ndarray:
    """The box (cx, cy, w, h) of the True pixels of ``foreground`` (h, w), placed with its
    top-left corner at (``top``, ``left``) on a canvas of ``size`` = (height, width) pixels (default:
    the mask's own size), as fractions of the canvas. Pixel (r, c) covers [c, c + 1) x [r, r + 1),
    so a single pixel has width and height 1 / size."""
    fg = np.asarray(foreground, bool)
    _checks.rank("foreground", fg.shape, 2, "(height, width)")
    if not fg.any():
        raise ValueError("`foreground` has no True pixel: an empty item has no box.")
    height, width = fg.shape if size is None else _checks.pair("size", size)
    rows, cols = np.flatnonzero(fg.any(1)), np.flatnonzero(fg.any(0))
    y0, y1 = top + rows[0], top + rows[-1] + 1
    x0, x1 = left + cols[0], left + cols[-1] + 1
    return np.array([(x0 + x1) / 2 / width, (y0 + y1) / 2 / height,
                     (x1 - x0) / width, (y1 - y0) / height], np.float32)


def make_scenes(images, labels, count: int, size: int = 56, items=(1, 3),
                threshold: float = 0.25, max_overlap: float = 0.1, seed: int = 0,
                tries: int = 50) -> Scenes:
    """Paste ``items`` = (min, max) randomly chosen images on each of ``count`` black canvases of
    ``size`` x ``size`` pixels and record each item's class and box.

    images (n, h, w) uint8 (0..255) or float in [0, 1]; labels (n,) in 0..9. An item's foreground
    is its pixels >= ``threshold``; its box is the foreground's bounding box where it is placed
    (:func:`foreground_box`), recorded then, whatever later items cover of it. Each item goes to a
    random position where at most ``max_overlap`` of ITS OWN foreground lies on the foreground of
    items placed before; an item that finds no such place in ``tries`` attempts is left out
    (``Scenes.items`` counts what was placed; a canvas always gets its first item). Seeded.

    The rule bounds how much a new item lands on earlier ones, not how much of an earlier item it
    hides: a small item placed first can end up partly or wholly under a large one placed later,
    its box still in the truth (on the shipped test canvases, 63 of 970 items are more than 10%
    covered, 13 more than 25%, one completely).
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
    usable = np.flatnonzero((pool >= threshold).any(axis=(1, 2)))  # items with a foreground
    rng = np.random.default_rng(seed)
    x = np.zeros((count, size, size), np.float32)
    classes = np.full((count, hi), PAD, np.int32)
    boxes = np.zeros((count, hi, 4), np.float32)
    placed = np.zeros(count, np.int64)
    for i in range(count):
        owner = np.zeros((size, size), bool)
        for _ in range(int(rng.integers(lo, hi + 1))):
            k = int(usable[rng.integers(len(usable))])
            item, fg = pool[k], pool[k] >= threshold
            for _ in range(tries):
                top, left = (int(v) for v in rng.integers(0, [size - h + 1, size - w + 1]))
                window = owner[top:top + h, left:left + w]  # a view: writing to it marks the canvas
                if np.count_nonzero(window[fg]) <= max_overlap * np.count_nonzero(fg):
                    pixels = x[i, top:top + h, left:left + w]
                    pixels[fg] = item[fg]  # on top of what it covers
                    pixels[~fg] = np.maximum(pixels[~fg], item[~fg])  # faint edges never hide others
                    window[fg] = True
                    classes[i, placed[i]] = int(labels[k])
                    boxes[i, placed[i]] = foreground_box(fg, top, left, size)
                    placed[i] += 1
                    break
    return Scenes(x[..., None], classes, boxes, placed)


def split_indices(n: int, val_images: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation) of ``n`` training images: the seeded permutation of
    ``experiments.train.validation_split``, so that the validation canvases are made of the 5,000
    images the shipped classifier never trained on."""
    if not 0 < val_images < n:
        raise ValueError(f"`val_images` must be in (0, {n}), got {val_images}.")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[val_images:]), np.sort(order[:val_images])


def make_task(data, split: str, recipe=RECIPE) -> Scenes:
    """Canvases for ``split``: "train" and "val" from disjoint parts of the TRAINING images (the
    classifier's own train/validation split), "test" from the TEST images only. ``data`` is a
    :class:`vitlib.data.FashionMNIST`; sizes and seeds come from ``recipe``."""
    _checks.one_of("split", split, {"train", "val", "test"})
    if split == "test":
        images, labels = data.x_test, data.y_test
    else:
        train_idx, val_idx = split_indices(len(data.y_train), recipe["val_images"])
        idx = train_idx if split == "train" else val_idx
        images, labels = data.x_train[idx], data.y_train[idx]
    seed = {"train": recipe["seed"], "val": recipe["val_seed"], "test": recipe["test_seed"]}[split]
    return make_scenes(images, labels, recipe[f"{split}_canvases"], recipe["canvas_size"],
                       tuple(recipe["items"]), recipe["threshold"], recipe["max_overlap"], seed)


# --- boxes -------------------------------------------------------------------------------------


def box_corners(boxes) -> np.ndarray:
    """(..., 4) boxes (cx, cy, w, h) -> (..., 4) corners (x0, y0, x1, y1)."""
    b = np.asarray(boxes, np.float64)
    return np.concatenate([b[..., :2] - b[..., 2:] / 2, b[..., :2] + b[..., 2:] / 2], axis=-1)


def box_iou(boxes_a, boxes_b) -> np.ndarray:
    """(n, 4) and (m, 4) boxes (cx, cy, w, h) -> (n, m): the area of each pair's intersection over
    the area of its union (0 for boxes that do not touch)."""
    a, b = box_corners(boxes_a), box_corners(boxes_b)
    _checks.rank("boxes_a", a.shape, 2, "(n, 4)")
    _checks.rank("boxes_b", b.shape, 2, "(m, 4)")
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=-1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=-1)
    union = area_a[:, None] + area_b[None] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


# --- the matching (DETR's Eq. 1) ---------------------------------------------------------------


def matching_cost(probs, pred_boxes, classes, boxes, box_weight: float = 5.0) -> np.ndarray:
    """The cost of giving each true object to each query, DETR's L_match without the gIoU term:

    probs (N, num_labels) class probabilities of the N queries, pred_boxes (N, 4); classes (M,)
    and boxes (M, 4) of the M true objects -> cost (N, M) with
    ``cost[i, j] = -probs[i, classes[j]] + box_weight * sum(|pred_boxes[i] - boxes[j]|)``.
    """
    probs, pred_boxes = np.asarray(probs, np.float64), np.asarray(pred_boxes, np.float64)
    classes, boxes = np.asarray(classes), np.asarray(boxes, np.float64)
    if len(classes) != len(boxes):
        raise ValueError(f"`classes` ({len(classes)}) and `boxes` ({len(boxes)}) must describe "
                         "the same objects.")
    if len(probs) != len(pred_boxes):
        raise ValueError(f"`probs` ({len(probs)}) and `pred_boxes` ({len(pred_boxes)}) must have "
                         "one row per query.")
    l1 = np.abs(pred_boxes[:, None, :] - boxes[None, :, :]).sum(-1)
    return -probs[:, classes] + box_weight * l1


def hungarian_match(cost) -> np.ndarray:
    """The one-to-one assignment of lowest total cost (DETR's Eq. 1), by the Hungarian algorithm
    (``scipy.optimize.linear_sum_assignment``): cost (N, M), N >= M -> (M,) the query given to
    each object (all different)."""
    cost = np.asarray(cost, np.float64)
    _checks.rank("cost", cost.shape, 2, "(queries, objects)")
    if cost.shape[0] < cost.shape[1]:
        raise ValueError(f"`cost` must have at least as many queries (rows) as objects (columns), "
                         f"got shape {cost.shape}.")
    rows, cols = _scipy("the Hungarian matching").optimize.linear_sum_assignment(cost)
    out = np.empty(cost.shape[1], np.int64)
    out[cols] = rows
    return out


def exhaustive_match(cost) -> np.ndarray:
    """The same assignment as :func:`hungarian_match` by trying every one, an independent check:
    ``N! / (N - M)!`` choices (336 for 8 queries and 3 objects)."""
    cost = np.asarray(cost, np.float64)
    n, m = cost.shape
    choices = np.array(list(itertools.permutations(range(n), m)), np.int64).reshape(-1, m)
    totals = cost[choices, np.arange(m)].sum(-1)
    return choices[int(np.argmin(totals))]


def match_batch(probs, pred_boxes, classes, boxes, box_weight: float = 5.0) -> np.ndarray:
    """:func:`hungarian_match` for every image of a batch.

    probs (b, N, num_labels), pred_boxes (b, N, 4), classes (b, max_items) with ``PAD`` after the
    last object, boxes (b, max_items, 4) -> (b, max_items): the query of each object, ``PAD``
    for padding."""
    classes = np.asarray(classes)
    out = np.full(classes.shape, PAD, np.int64)
    for k in range(len(classes)):
        real = classes[k] != PAD
        if real.any():
            cost = matching_cost(probs[k], pred_boxes[k], classes[k][real], boxes[k][real],
                                 box_weight)
            out[k, np.flatnonzero(real)] = hungarian_match(cost)
    return out


def aligned_targets(assigned, classes, boxes, num_queries: int,
                    no_object: int = NO_OBJECT) -> tuple[np.ndarray, np.ndarray]:
    """One target per query from a matching: assigned (b, max_items) query indices (``PAD`` for
    none), classes (b, max_items), boxes (b, max_items, 4) -> target classes (b, num_queries),
    ``no_object`` for every query matched to nothing, and target boxes (b, num_queries, 4),
    zeros there (they get no box loss)."""
    assigned, classes = np.asarray(assigned), np.asarray(classes)
    boxes = np.asarray(boxes, np.float32)
    b = len(assigned)
    target_classes = np.full((b, num_queries), no_object, np.int32)
    target_boxes = np.zeros((b, num_queries, 4), np.float32)
    rows, cols = np.nonzero(assigned != PAD)
    queries = assigned[rows, cols]
    if len(np.unique(rows * num_queries + queries)) != len(rows):
        raise ValueError("`assigned` gives one query to two objects of the same image; a "
                         "matching is one-to-one.")
    target_classes[rows, queries] = classes[rows, cols]
    target_boxes[rows, queries] = boxes[rows, cols]
    return target_classes, target_boxes


# --- the loss (DETR's Eq. 2) -------------------------------------------------------------------


def hungarian_loss(target_classes, target_boxes, logits, boxes, no_object_weight: float = 0.1,
                   box_weight: float = 5.0, no_object: int = NO_OBJECT):
    """DETR's Hungarian loss (Eq. 2, without the gIoU term) on targets already aligned to the
    queries (:func:`aligned_targets`), averaged over the batch as DETR does.

    target_classes (b, N) ints, target_boxes (b, N, 4), logits (b, N, num_labels), boxes
    (b, N, 4) -> (total, class_loss, box_loss), scalars, with
    ``class_loss = sum_q w_q * CE_q / sum_q w_q`` (w = ``no_object_weight`` for "no object"
    targets, 1 otherwise), ``box_loss = sum over matched queries of |b - b_hat|_1 / matched``,
    ``total = class_loss + box_weight * box_loss``.
    """
    target_classes = ops.cast(target_classes, "int32")
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    nll = -ops.take_along_axis(log_probs, target_classes[..., None], axis=-1)[..., 0]
    matched = ops.cast(ops.not_equal(target_classes, no_object), "float32")
    weights = matched + (1.0 - matched) * no_object_weight
    class_loss = ops.sum(weights * nll) / ops.sum(weights)
    l1 = ops.sum(ops.abs(ops.cast(boxes, "float32") - ops.cast(target_boxes, "float32")), axis=-1)
    box_loss = ops.sum(matched * l1) / ops.maximum(ops.sum(matched), 1.0)
    return class_loss + box_weight * box_loss, class_loss, box_loss


# --- the model ---------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="vitlib")
class DecoderBlock(layers.Layer):
    """One pre-norm Transformer decoder block, as DETR's decoder (without its query positions):

        x = x + SelfAttention(LN1(x))            the queries look at each other
        x = x + CrossAttention(LN2(x), memory)   the queries look at the image's tokens
        x = x + MLP(LN3(x))                      each query on its own

    x (batch, queries, dim), memory (batch, tokens, memory_dim) -> (batch, queries, dim); with
    ``return_attention_scores=True`` also the cross-attention weights (batch, heads, queries,
    tokens). No mask: unlike a language decoder, all N queries are decoded at once.
    """

    def __init__(self, num_heads: int, mlp_dim: int, layer_norm_epsilon: float = 1e-6,
                 gelu: str = "exact", **kwargs):
        super().__init__(**kwargs)
        self.num_heads = _checks.positive_int("num_heads", num_heads)
        self.mlp_dim = _checks.positive_int("mlp_dim", mlp_dim)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.gelu = _checks.one_of("gelu", gelu, set(GELU_FORMS))
        eps = self.layer_norm_epsilon
        self.norm1 = layers.LayerNormalization(epsilon=eps, name="norm1")
        self.self_attention = MultiHeadSelfAttention(self.num_heads, name="self_attention")
        self.norm2 = layers.LayerNormalization(epsilon=eps, name="norm2")
        self.cross_attention = MultiHeadCrossAttention(self.num_heads, name="cross_attention")
        self.norm3 = layers.LayerNormalization(epsilon=eps, name="norm3")
        self.mlp = MLP(self.mlp_dim, gelu=self.gelu, name="mlp")

    def build(self, x_shape, memory_shape=None):
        _checks.rank("x", x_shape, 3, "(batch, queries, dim)")
        if memory_shape is None:
            raise ValueError("`memory` is required: the encoder's tokens (batch, tokens, dim).")
        _checks.rank("memory", memory_shape, 3, "(batch, tokens, memory_dim)")
        for layer in (self.norm1, self.self_attention, self.norm2, self.norm3, self.mlp):
            layer.build(x_shape)
        self.cross_attention.build(x_shape, memory_shape)

    def call(self, x, memory, return_attention_scores=False, training=None):
        x = x + self.self_attention(self.norm1(x), training=training)
        h, weights = self.cross_attention(self.norm2(x), memory, return_attention_scores=True)
        x = x + h
        x = x + self.mlp(self.norm3(x), training=training)
        return (x, weights) if return_attention_scores else x

    def compute_output_spec(self, x, memory, return_attention_scores=False, training=None):
        out = keras.KerasTensor(x.shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return out
        return out, keras.KerasTensor((x.shape[0], self.num_heads, x.shape[1], memory.shape[1]),
                                      dtype=self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "mlp_dim": self.mlp_dim,
                "layer_norm_epsilon": self.layer_norm_epsilon, "gelu": self.gelu}


@keras.saving.register_keras_serializable(package="vitlib")
class DETR(ViT):
    """A ViT encoder with a DETR decoder: images -> N (class, box) predictions.

    images (batch, H, W, C) -> (logits (batch, num_queries, num_classes), boxes (batch,
    num_queries, 4)); ``num_classes`` counts "no object" too (the last class), boxes are
    (cx, cy, w, h) in [0, 1]. With ``return_attention=True`` also a list with the cross-attention
    weights of each decoder block (batch, decoder_heads, num_queries, tokens), the tokens being
    the encoder's (class token first).

    Takes :class:`vitlib.ViT`'s arguments for the encoder, and for the decoder: ``num_queries``
    learned object queries of width ``decoder_dim``, ``decoder_depth`` :class:`DecoderBlock`\\ s with
    ``decoder_heads`` heads and an MLP of ``decoder_mlp_dim``. ``head`` is the class head (a Dense
    on the decoder's output); ``box_head`` an MLP (two ReLU layers of ``decoder_dim``, then 4 and a
    sigmoid), as DETR's.

    Training: ``compute_loss`` is :func:`hungarian_loss` on targets ``y = (target_classes,
    target_boxes)`` already aligned to the queries; :func:`train_detr` does the matching.
    """

    def __init__(self, num_queries: int = 8, decoder_depth: int = 2, decoder_dim: int = 64,
                 decoder_heads: int = 4, decoder_mlp_dim: int = 128,
                 no_object_weight: float = 0.1, box_weight: float = 5.0, **kwargs):
        kwargs.setdefault("num_classes", NUM_LABELS)
        super().__init__(**kwargs)
        if self.num_classes < 2:
            raise ValueError(f"`num_classes` counts the classes and 'no object': at least 2, "
                             f"got {self.num_classes}.")
        self.num_queries = _checks.positive_int("num_queries", num_queries)
        self.decoder_depth = _checks.positive_int("decoder_depth", decoder_depth)
        self.decoder_dim = _checks.positive_int("decoder_dim", decoder_dim)
        self.decoder_heads = _checks.positive_int("decoder_heads", decoder_heads)
        _checks.divides("decoder_dim", self.decoder_dim, "decoder_heads", self.decoder_heads)
        self.decoder_mlp_dim = _checks.positive_int("decoder_mlp_dim", decoder_mlp_dim)
        self.no_object_weight = _checks.positive_float("no_object_weight", no_object_weight)
        self.box_weight = _checks.positive_float("box_weight", box_weight)
        self.queries = LearnedQueries(self.num_queries, self.decoder_dim, name="queries")
        self.decoder = [DecoderBlock(self.decoder_heads, self.decoder_mlp_dim,
                                     layer_norm_epsilon=self.layer_norm_epsilon, gelu=self.gelu,
                                     name=f"decoder_{i}") for i in range(self.decoder_depth)]
        self.decoder_norm = layers.LayerNormalization(epsilon=self.layer_norm_epsilon,
                                                      name="decoder_norm")
        self.box_head = [layers.Dense(self.decoder_dim, activation="relu", name="box_1"),
                         layers.Dense(self.decoder_dim, activation="relu", name="box_2"),
                         layers.Dense(4, activation="sigmoid", name="box_out")]

    @property
    def no_object(self) -> int:
        """The index of the "no object" class: the last one."""
        return self.num_classes - 1

    def build(self, input_shape=None):
        # ViT.build, except that the class head reads the decoder's width, not the encoder's.
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
        queries = (input_shape[0], self.num_queries, self.decoder_dim)
        self.queries.build(tokens)
        for block in self.decoder:
            block.build(queries, tokens)
        self.decoder_norm.build(queries)
        self.head.build(queries)
        width = queries
        for layer in self.box_head:
            layer.build(width)
            width = (*queries[:2], layer.units)
        self.built = True

    def decode(self, memory, training=None, return_attention=False):
        """memory (batch, tokens, dim) -> the decoder's normalised outputs (batch, num_queries,
        decoder_dim) [, a list of cross-attention weights, one per block]."""
        x, attention = self.queries(memory), []
        for block in self.decoder:
            x, weights = block(x, memory, return_attention_scores=True, training=training)
            attention.append(weights)
        x = self.decoder_norm(x)
        return (x, attention) if return_attention else x

    def heads(self, x):
        """The decoder's outputs (batch, num_queries, decoder_dim) -> (logits, boxes)."""
        boxes = x
        for layer in self.box_head:
            boxes = layer(boxes)
        return self.head(x), boxes

    def call(self, images, training=None, return_attention=False):
        memory = self.encode(images, training=training)
        x, attention = self.decode(memory, training=training, return_attention=True)
        logits, boxes = self.heads(x)
        return (logits, boxes, attention) if return_attention else (logits, boxes)

    def compute_output_shape(self, input_shape):
        return ((input_shape[0], self.num_queries, self.num_classes),
                (input_shape[0], self.num_queries, 4))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """:func:`hungarian_loss` with ``y = (target_classes, target_boxes)`` aligned to the
        queries (:func:`aligned_targets`); ``y_pred = (logits, boxes)``."""
        target_classes, target_boxes = y
        logits, boxes = y_pred[:2]
        total, _, _ = hungarian_loss(target_classes, target_boxes, logits, boxes,
                                     self.no_object_weight, self.box_weight, self.no_object)
        return total + ops.sum(self.losses) if self.losses else total

    def get_config(self):
        return {**super().get_config(), "num_queries": self.num_queries,
                "decoder_depth": self.decoder_depth, "decoder_dim": self.decoder_dim,
                "decoder_heads": self.decoder_heads, "decoder_mlp_dim": self.decoder_mlp_dim,
                "no_object_weight": self.no_object_weight, "box_weight": self.box_weight}


def detr_from_classifier(classifier, image_size, pretrained: bool = True, **decoder) -> DETR:
    """A :class:`DETR` whose encoder has ``classifier``'s architecture, for images of
    ``image_size``, and the decoder settings ``decoder`` (``num_queries``, ``decoder_depth``, ...).

    With ``pretrained=True`` the encoder gets the classifier's weights (patch embedding, class
    token, blocks, final norm; the learned position embedding resized to the new grid, as
    :func:`vitlib.segment.segmenter_from_classifier` does); the decoder and heads are new
    (random). With ``pretrained=False`` every weight is random.
    """
    if not isinstance(classifier, ViT):
        raise ValueError(f"`classifier` must be a vitlib.ViT, got {type(classifier).__name__}.")
    config = {**architecture(classifier), "image_size": image_size, "num_classes": NUM_LABELS}
    model = DETR(**config, **decoder)
    model.build()
    return copy_encoder(classifier, model) if pretrained else model


class DecoderOnly(keras.Model):
    """The decoder and heads of ``detr`` as a model of the encoder's tokens: memory (batch, tokens,
    dim) -> (logits, boxes). It shares ``detr``'s layers (training it trains them) and freezes the
    encoder's, so that the decoder learns on tokens computed once (:func:`encode_scenes`): a step
    then costs a small fraction of a full one, and ``detr`` is the trained detector afterwards."""

    def __init__(self, detr: DETR, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(detr, DETR):
            raise ValueError(f"`detr` must be a vitlib.detr.DETR, got {type(detr).__name__}.")
        self.detr = detr
        for layer in encoder_layers(detr):
            layer.trainable = False

    def call(self, memory, training=None):
        return self.detr.heads(self.detr.decode(memory, training=training))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return self.detr.compute_loss(x, y, y_pred, sample_weight, training)


class _Memory(keras.Model):
    """Wraps a ViT so that ``predict`` returns all its encoder tokens (batch, tokens, dim)."""

    def __init__(self, vit, **kwargs):
        super().__init__(**kwargs)
        self.vit = vit

    def call(self, images):
        return self.vit.encode(images)


def encode_scenes(model: ViT, x, batch_size: int = 100, dtype="float16") -> np.ndarray:
    """The encoder's tokens of images ``x`` (n, H, W, C) -> (n, tokens, dim) NumPy in ``dtype``
    (float16 halves the memory of a large set; the decoder computes in float32)."""
    if not isinstance(model, ViT):
        raise ValueError(f"`model` must be a vitlib.ViT, got {type(model).__name__}.")
    x = np.asarray(x)
    batch_size = min(_checks.positive_int("batch_size", batch_size), max(len(x), 1))
    memory = _Memory(model, name="memory")
    memory.compile(jit_compile=True)
    out = []
    for start in range(0, len(x), batch_size * 20):  # a slice at a time: float16 as it comes
        chunk = x[start:start + batch_size * 20]
        pad = -len(chunk) % batch_size
        padded = np.concatenate([chunk, np.zeros((pad, *x.shape[1:]), x.dtype)]) if pad else chunk
        out.append(memory.predict(padded, batch_size=batch_size, verbose=0)[:len(chunk)].astype(dtype))
    return np.concatenate(out)


# --- training ----------------------------------------------------------------------------------


def softmax(logits) -> np.ndarray:
    """NumPy softmax over the last axis."""
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def compile_detr(model, steps: int, recipe=RECIPE, jit_compile: bool = True,
                 peak_learning_rate: float | None = None):
    """Compile a :class:`DETR` or a :class:`DecoderOnly` for :func:`train_detr`: AdamW on the
    course's warm-up + cosine schedule over ``steps`` (``peak_learning_rate``, default
    ``recipe``'s, weight decay, warm-up fraction), gradients clipped to a global norm of
    ``recipe["clipnorm"]`` (DETR clips too); the loss is :meth:`DETR.compute_loss`."""
    from .train import build_optimizer, cosine_schedule, jit_for_backend

    peak = recipe["peak_learning_rate"] if peak_learning_rate is None else peak_learning_rate
    schedule = cosine_schedule(peak, int(recipe["warmup_fraction"] * steps), steps)
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=recipe["weight_decay"],
                                       global_clipnorm=recipe["clipnorm"])
    model.compile(optimizer=optimizer, jit_compile=jit_for_backend(jit_compile))
    return build_optimizer(model)


def train_detr(model, scenes: Scenes, epochs: int, batch_size: int, seed: int = 0,
               log=None, inputs=None) -> dict:
    """Train ``model`` (compiled by :func:`compile_detr`) on ``scenes`` for ``epochs``.

    Each step: predict the batch with the current weights; match each canvas's objects to the
    queries (:func:`match_batch`, NumPy, outside the graph); one Keras ``train_on_batch`` on the
    aligned targets (:func:`aligned_targets`). ``model`` is a :class:`DETR` (inputs: the canvases
    ``scenes.x``) or a :class:`DecoderOnly` (``inputs``: the encoder's tokens of the canvases,
    :func:`encode_scenes`). The batches are a seeded shuffle; a last partial batch is left out
    (every step has the same shape, so the steps are traced once). ``log(epoch, mean_loss,
    seconds)`` is called after each epoch. Returns ``{"loss": [mean loss per epoch], "seconds":
    training time}``.
    """
    _checks.positive_int("epochs", epochs)
    batch_size = _checks.positive_int("batch_size", batch_size)
    inputs = scenes.x if inputs is None else inputs
    if len(inputs) != len(scenes):
        raise ValueError(f"`inputs` must have one entry per canvas ({len(scenes)}), got {len(inputs)}.")
    detr = model.detr if isinstance(model, DecoderOnly) else model
    steps = len(scenes) // batch_size
    if steps == 0:
        raise ValueError(f"`batch_size` {batch_size} is larger than the {len(scenes)} canvases.")
    rng = np.random.default_rng(seed)
    history, start = {"loss": []}, time.perf_counter()
    for epoch in range(epochs):
        order, losses = rng.permutation(len(scenes)), []
        for s in range(steps):
            index = np.sort(order[s * batch_size:(s + 1) * batch_size])
            batch, x = scenes.subset(index), np.asarray(inputs[index], np.float32)
            logits, boxes = model.predict_on_batch(x)
            assigned = match_batch(softmax(logits), boxes, batch.classes, batch.boxes,
                                   detr.box_weight)
            targets = aligned_targets(assigned, batch.classes, batch.boxes, detr.num_queries,
                                      detr.no_object)
            losses.append(float(np.asarray(model.train_on_batch(x, targets))))
        history["loss"].append(round(float(np.mean(losses)), 4))
        if log is not None:
            log(epoch, history["loss"][-1], time.perf_counter() - start)
    history["seconds"] = round(time.perf_counter() - start, 1)
    model.predict_function = None  # a predict of another batch size traces anew, no retracing
    return history


# --- predictions and scores --------------------------------------------------------------------


@dataclass(frozen=True)
class Detections:
    """What a detector outputs for n canvases: for canvas k, the rows ``index == k`` of
    classes (d,) ints, boxes (d, 4) (cx, cy, w, h) and scores (d,), and the query (d,) that made
    each (-1 for a detector without queries)."""

    index: np.ndarray
    classes: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    queries: np.ndarray
    count: int

    def of(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(classes, boxes, scores) of canvas ``k``."""
        rows = self.index == k
        return self.classes[rows], self.boxes[rows], self.scores[rows]

    def subset(self, canvases) -> Detections:
        """The detections of ``canvases`` (indices), numbered 0.. in that order, as
        ``Scenes.subset(canvases)`` numbers the canvases."""
        canvases = np.asarray(canvases, np.int64)
        new = np.full(self.count, -1, np.int64)
        new[canvases] = np.arange(len(canvases))
        rows = np.flatnonzero(new[self.index] >= 0)
        rows = rows[np.argsort(new[self.index[rows]], kind="stable")]
        return Detections(new[self.index[rows]], self.classes[rows], self.boxes[rows],
                          self.scores[rows], self.queries[rows], len(canvases))


def predict(model, x, batch_size: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """A :class:`DETR` on images (n, H, W, C), or a :class:`DecoderOnly` on tokens -> (class
    probabilities (n, N, num_classes), boxes (n, N, 4)), NumPy, in batches of one shape (the
    last one padded) so that the predict step is traced once."""
    x = np.asarray(x)
    batch_size = min(_checks.positive_int("batch_size", batch_size), max(len(x), 1))
    pad = -len(x) % batch_size
    padded = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)]) if pad else x
    logits, boxes = model.predict(padded, batch_size=batch_size, verbose=0)
    return softmax(logits[:len(x)]), np.asarray(boxes[:len(x)], np.float64)


def detections(probs, boxes, threshold: float = 0.5) -> Detections:
    """DETR's output as detections, as DETR's own demo reads it: a query is kept when its most
    probable class other than "no object" (the last) has a probability >= ``threshold``; no NMS.
    probs (n, N, num_classes), boxes (n, N, 4)."""
    probs, boxes = np.asarray(probs), np.asarray(boxes)
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"`threshold` must be in [0, 1], got {threshold!r}.")
    real = probs[..., :-1]
    best, confidence = real.argmax(-1), real.max(-1)
    keep = confidence >= threshold
    index, query = np.nonzero(keep)
    return Detections(index, best[keep], boxes[keep], confidence[keep], query, len(probs))


def choose_threshold(probs, boxes, scenes: Scenes,
                     candidates=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)):
    """The detection threshold with the best F1 = 2 hits / (items + detections) on ``scenes``
    (a VALIDATION set: the choice is part of training). Returns (threshold, {threshold: F1})."""
    f1 = {}
    for t in candidates:
        found = detections(probs, boxes, t)
        hits = score(found, scenes)["item_accuracy"] * scenes.items.sum()
        f1[t] = round(float(2 * hits / (scenes.items.sum() + len(found.classes))), 4)
    return max(f1, key=lambda t: (f1[t], -t)), f1


def score_by_items(found: Detections, scenes: Scenes, iou_threshold: float = 0.5) -> dict:
    """:func:`score` separately for the canvases with 1, 2, ... items: ``{"1": {...}, ...}``."""
    out = {}
    for n in np.unique(scenes.items):
        canvases = np.flatnonzero(scenes.items == n)
        out[str(int(n))] = score(found.subset(canvases), scenes.subset(canvases), iou_threshold)
    return out


def score(found: Detections, scenes: Scenes, iou_threshold: float = 0.5) -> dict:
    """Detections against the true items of ``scenes``, one canvas at a time.

    - ``item_accuracy``: the share of true items found: a detection of the item's class whose box
      has IoU >= ``iou_threshold`` with it; each detection finds at most one item (a one-to-one
      matching that finds as many as possible);
    - ``located``: the same without the class (the box alone);
    - ``mean_iou``: the mean IoU of each item with the detection given to it by the one-to-one
      matching of highest total IoU, over the items that got one (``unmatched`` counts the
      others: more items than detections);
    - ``false_per_canvas``: detections that found no item, per canvas;
    - ``duplicates``: pairs of detections of one canvas with the same class and boxes of IoU >=
      ``iou_threshold`` (what NMS would remove);
    - ``count_accuracy``: the share of canvases with as many detections as items.
    """
    if found.count != len(scenes):
        raise ValueError(f"`found` is for {found.count} canvases, `scenes` has {len(scenes)}.")
    lsa = _scipy("scoring").optimize.linear_sum_assignment
    items = hits = located = unmatched = false = right_count = duplicates = 0
    ious = []
    for k in range(len(scenes)):
        n = int(scenes.items[k])
        t_cls, t_box = scenes.classes[k, :n], scenes.boxes[k, :n]
        p_cls, p_box, _ = found.of(k)
        items += n
        right_count += int(len(p_cls) == n)
        if len(p_cls) == 0:
            unmatched += n
            continue
        same = (p_cls[:, None] == p_cls[None]) & (box_iou(p_box, p_box) >= iou_threshold)
        duplicates += int(np.triu(same, 1).sum())
        iou = box_iou(p_box, t_box)  # (detections, items)
        good = iou >= iou_threshold
        hit = good & (p_cls[:, None] == t_cls[None])
        rows, cols = lsa(-hit.astype(float))  # as many hits as possible, one-to-one
        used = hit[rows, cols]
        hits += int(used.sum())
        false += len(p_cls) - int(used.sum())
        rows, cols = lsa(-good.astype(float))
        located += int(good[rows, cols].sum())
        rows, cols = lsa(-iou)
        ious.extend(iou[rows, cols].tolist())
        unmatched += n - len(cols)
    return {"item_accuracy": round(hits / items, 4), "located": round(located / items, 4),
            "mean_iou": round(float(np.mean(ious)), 4) if ious else 0.0,
            "unmatched": unmatched, "false_per_canvas": round(false / len(scenes), 4),
            "duplicates": duplicates,
            "count_accuracy": round(right_count / len(scenes), 4), "items": items,
            "canvases": len(scenes)}


# --- baselines ---------------------------------------------------------------------------------


def component_boxes(canvas, threshold: float = 0.25, min_pixels: int = 20) -> np.ndarray:
    """Boxes (d, 4) (cx, cy, w, h) of the connected components (8-neighbours) of the pixels >=
    ``threshold`` of one canvas (H, W) or (H, W, 1), largest first; components of fewer than
    ``min_pixels`` pixels are left out. Items that touch make one component, one box."""
    canvas = np.asarray(canvas)
    if canvas.ndim == 3:
        canvas = canvas[..., 0]
    _checks.rank("canvas", canvas.shape, 2, "(height, width)")
    ndimage = _scipy("connected components").ndimage
    labels, count = ndimage.label(canvas >= threshold, structure=np.ones((3, 3)))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    order = [k for k in np.argsort(-sizes, kind="stable") if sizes[k] >= min_pixels]
    boxes = [foreground_box(labels == k + 1) for k in order]
    return np.array(boxes, np.float32).reshape(-1, 4)


def crops(x, index, boxes, crop: int = 28) -> np.ndarray:
    """For each box (cx, cy, w, h) of canvas ``index``: the ``crop`` x ``crop`` window of
    ``x[index]`` (n, H, W, 1) centred on the box (moved inside the canvas where needed), with the
    pixels outside the box set to 0 -> (d, crop, crop, 1), what a 28x28 classifier reads."""
    x = np.asarray(x)
    size = x.shape[1]
    out = np.zeros((len(boxes), crop, crop, 1), np.float32)
    for d, (k, box) in enumerate(zip(index, boxes, strict=True)):
        x0, y0, x1, y1 = np.round(box_corners(box) * size).astype(int)
        inside = np.zeros(x.shape[1:3], bool)
        inside[max(y0, 0):y1, max(x0, 0):x1] = True
        top = int(np.clip(round((y0 + y1) / 2 - crop / 2), 0, size - crop))
        left = int(np.clip(round((x0 + x1) / 2 - crop / 2), 0, size - crop))
        window = np.where(inside[..., None], x[k], 0.0)
        out[d] = window[top:top + crop, left:left + crop]
    return out


def component_baseline(classifier, x, threshold: float = 0.25, min_pixels: int = 20,
                       batch_size: int = 100) -> Detections:
    """A detector without learning to detect: the boxes of the connected components of each
    canvas (:func:`component_boxes`), each classified by ``classifier`` (a 28x28 ViT) on its crop
    (:func:`crops`). It relies on the black background: items that touch become one box."""
    index, boxes = [], []
    for k in range(len(x)):
        b = component_boxes(x[k], threshold, min_pixels)
        index.extend([k] * len(b))
        boxes.append(b)
    index = np.array(index, np.int64)
    boxes = np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32)
    if len(index) == 0:
        return Detections(index, index, boxes, np.zeros(0), index, len(x))
    windows = crops(x, index, boxes, classifier.image_size[0])
    pad = -len(windows) % batch_size
    padded = np.concatenate([windows, np.zeros((pad, *windows.shape[1:]), np.float32)])
    probs = softmax(classifier.predict(padded, batch_size=batch_size, verbose=0)[:len(windows)])
    return Detections(index, probs.argmax(-1), boxes, probs.max(-1), np.full(len(index), -1),
                      len(x))


def floor_baseline(train: Scenes, count: int) -> Detections:
    """The floor: one detection per canvas, the mean box of the training items with the most
    frequent training class, whatever the canvas shows."""
    real = train.classes != PAD
    box = train.boxes[real].mean(0)
    cls = int(np.bincount(train.classes[real]).argmax())
    index = np.arange(count)
    return Detections(index, np.full(count, cls), np.tile(box, (count, 1)), np.ones(count),
                      np.full(count, -1), count)
