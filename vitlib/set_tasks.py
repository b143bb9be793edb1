"""A task on sets for Set Transformer (notebook 14): how many different classes are in a set?

A set holds 2-10 Fashion-MNIST items; each item is represented by the course's trained classifier's
class token (its final, normalised output ``z_L^0``, Eq. 4: 96 numbers), computed once with the
classifier frozen (:func:`class_token_features`). The answer is the number of distinct classes in
the set, 1..10 (:func:`sample_sets`): two items of one class are duplicates and count once, so the
model has to recognise items of the same class *within* the set.

Two kinds of model, both permutation invariant (置換不変), built from registered layers only (their
``.keras`` files load with ``safe_mode=True`` without this module):

- :func:`set_transformer`: a per-element Dense, then Set Transformer's SAB or ISAB blocks
  (elements attend to each other, :mod:`vitlib.sets`), pooled by PMA (learned seeds attend to the
  set), then a Dense head;
- :func:`deep_sets`: Deep Sets (Zaheer et al. 2017), rho(mean_i phi(x_i)): a per-element MLP phi,
  the mean over the elements, an MLP rho. The elements never see each other before the mean.

Both output logits over the counts 1..10 (index = count - 1). Sets of one size share a batch
(:class:`SetBatches`): the layers take no padding mask, and a batch of equal sizes needs none.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from . import _checks
from .sets import InducedSetAttentionBlock, PoolingByAttention, SetAttentionBlock

NUM_CLASSES = 10
#: Outputs of the models: the counts 1..10, as indices 0..9.
NUM_COUNTS = NUM_CLASSES
#: The set sizes of the task (min, max).
SIZES = (2, 10)


# --- the elements ------------------------------------------------------------------------------


class _ClassToken(keras.Model):
    """Wraps a ViT so that ``predict`` returns its class token after the final norm: (batch, dim)."""

    def __init__(self, vit, **kwargs):
        super().__init__(**kwargs)
        self.vit = vit

    def call(self, images):
        return self.vit.encode(images)[:, 0]


def class_token_features(classifier, images, batch_size: int = 500) -> np.ndarray:
    """Frozen element features: images (n, 28, 28) uint8 (or (n, 28, 28, 1) float in [0, 1])
    -> the classifier's normalised class token (n, dim) as NumPy, computed in batches."""
    from .model import ViT

    if not isinstance(classifier, ViT) or classifier.pooling != "cls":
        raise ValueError("`classifier` must be a vitlib.ViT with a class token (pooling='cls').")
    images = np.asarray(images)
    if images.dtype == np.uint8:
        images = images.astype("float32") / 255.0
    if images.ndim == 3:
        images = images[..., None]
    _checks.rank("images", images.shape, 4, "(n, height, width, channels)")
    batch_size = min(_checks.positive_int("batch_size", batch_size), max(len(images), 1))
    pad = -len(images) % batch_size  # one batch shape: one trace
    padded = np.concatenate([images, np.zeros((pad, *images.shape[1:]), images.dtype)]) if pad else images
    model = _ClassToken(classifier, name="class_token_features")
    return model.predict(padded.astype("float32"), batch_size=batch_size, verbose=0)[:len(images)]


# --- the sets ----------------------------------------------------------------------------------


def sample_sets(labels, count: int, size: int, rng, num_classes: int = NUM_CLASSES):
    """``count`` sets of ``size`` items drawn from a pool with class ``labels`` (n,).

    For each set: the number of distinct classes k is drawn uniformly from 1..min(size,
    num_classes); k classes are drawn without replacement; every chosen class gets one item, the
    other size - k items get classes drawn from the chosen ones; the items are different pool
    entries of those classes, in random order. Returns (indices (count, size) into the pool,
    distinct (count,) = k). ``rng``: a ``numpy.random.Generator`` (or a seed).
    """
    labels = np.asarray(labels)
    count = _checks.positive_int("count", count)
    size = _checks.positive_int("size", size)
    rng = np.random.default_rng(rng)
    by_class = [np.flatnonzero(labels == c) for c in range(num_classes)]
    if min(len(b) for b in by_class) < size:
        raise ValueError(f"`labels` must hold at least size={size} items of every class "
                         f"0..{num_classes - 1}, got {[len(b) for b in by_class]}.")
    indices = np.empty((count, size), np.int64)
    distinct = rng.integers(1, min(size, num_classes) + 1, size=count)
    for i, k in enumerate(distinct):
        classes = rng.choice(num_classes, size=k, replace=False)
        members = np.concatenate([classes, rng.choice(classes, size=size - k)])
        items = np.empty(size, np.int64)
        for c in classes:
            where = members == c
            items[where] = rng.choice(by_class[c], size=int(where.sum()), replace=False)
        indices[i] = rng.permutation(items)
    return indices, distinct.astype(np.int64)


def fixed_sets(labels, per_size: int, seed: int, sizes=SIZES) -> dict:
    """A fixed evaluation collection: ``{size: (indices (per_size, size), distinct)}`` for every
    size in ``sizes`` = (min, max), drawn with one seeded generator."""
    rng = np.random.default_rng(seed)
    lo, hi = sizes
    return {n: sample_sets(labels, per_size, n, rng) for n in range(lo, hi + 1)}


class SetBatches(keras.utils.PyDataset):
    """Training batches of fresh random sets: ``(features[indices], distinct - 1)``.

    Batch ``i`` of epoch ``e`` holds ``batch_size`` sets of ONE size, drawn uniformly from
    ``sizes``; the draw is seeded by (seed, e, i), so a run is reproducible. x (batch, size, dim)
    float32, y (batch,) int (count - 1).
    """

    def __init__(self, features, labels, batch_size: int, steps: int, seed: int = 0,
                 sizes=SIZES, **kwargs):
        super().__init__(**kwargs)
        self.features = np.asarray(features, np.float32)
        self.labels = np.asarray(labels)
        if len(self.features) != len(self.labels):
            raise ValueError(f"`features` ({len(self.features)}) and `labels` "
                             f"({len(self.labels)}) must describe the same items.")
        self.batch_size = _checks.positive_int("batch_size", batch_size)
        self.steps = _checks.positive_int("steps", steps)
        self.seed, self.sizes, self.epoch = int(seed), tuple(sizes), 0

    def __len__(self):
        return self.steps

    def on_epoch_end(self):
        self.epoch += 1

    def __getitem__(self, i):
        rng = np.random.default_rng([self.seed, self.epoch, i])
        size = int(rng.integers(self.sizes[0], self.sizes[1] + 1))
        idx, distinct = sample_sets(self.labels, self.batch_size, size, rng)
        return self.features[idx], distinct - 1


# --- the models --------------------------------------------------------------------------------


def set_transformer(input_dim: int, dim: int = 64, num_heads: int = 4, encoder: str = "sab",
                    blocks: int = 2, num_inducing: int = 8, num_seeds: int = 1,
                    num_outputs: int = NUM_COUNTS, name: str | None = None) -> keras.Model:
    """Set Transformer (Lee et al. 2019): sets (batch, n, input_dim) -> logits (batch, num_outputs).

    Dense(dim) on every element; ``blocks`` SAB blocks (``encoder="sab"``, every element attends
    to every other, cost n^2) or ISAB blocks (``"isab"``, through ``num_inducing`` learned
    inducing points, cost n m); PMA with ``num_seeds`` learned seeds; the seeds' outputs
    concatenated; a Dense head. Any n: the set size is not fixed.
    """
    _checks.one_of("encoder", encoder, {"sab", "isab"})
    _checks.positive_int("blocks", blocks)
    inputs = keras.Input((None, input_dim), name="set")
    x = layers.Dense(dim, name="embed")(inputs)  # the same Dense on every element
    for i in range(blocks):
        x = (SetAttentionBlock(num_heads, name=f"sab_{i}") if encoder == "sab" else
             InducedSetAttentionBlock(num_heads, num_inducing, name=f"isab_{i}"))(x)
    pooled = PoolingByAttention(num_heads, num_seeds, name="pma")(x)  # (batch, seeds, dim)
    pooled = layers.Reshape((num_seeds * dim,), name="seeds_concatenated")(pooled)
    logits = layers.Dense(num_outputs, name="head")(pooled)
    return keras.Model(inputs, logits, name=name or f"set_transformer_{encoder}")


def deep_sets(input_dim: int, width: int = 140, num_outputs: int = NUM_COUNTS,
              name: str = "deep_sets") -> keras.Model:
    """Deep Sets (Zaheer et al. 2017): rho(mean_i phi(x_i)).

    phi: Dense(width, relu) -> Dense(width, relu) -> Dense(width) on every element; the mean over
    the elements; rho: Dense(width, relu) -> Dense(num_outputs). (batch, n, input_dim) ->
    (batch, num_outputs), for any n.
    """
    width = _checks.positive_int("width", width)
    inputs = keras.Input((None, input_dim), name="set")
    x = layers.Dense(width, activation="relu", name="phi_1")(inputs)
    x = layers.Dense(width, activation="relu", name="phi_2")(x)
    x = layers.Dense(width, name="phi_3")(x)
    x = layers.GlobalAveragePooling1D(name="mean")(x)  # the only place the elements meet
    x = layers.Dense(width, activation="relu", name="rho_1")(x)
    logits = layers.Dense(num_outputs, name="head")(x)
    return keras.Model(inputs, logits, name=name)


#: The compared models, by name: a builder of (input_dim) -> model. Sizes chosen so that the
#: parameter counts are about the same (about 75k with 96 input features).
MODELS = {
    "deep_sets": lambda d: deep_sets(d, width=140),
    "set_transformer_sab": lambda d: set_transformer(d, encoder="sab", blocks=2),
    "set_transformer_isab": lambda d: set_transformer(d, encoder="isab", blocks=1),
}


# --- the scores --------------------------------------------------------------------------------


def predict_counts(model, features, sets: dict, batch_size: int = 250) -> dict:
    """``{size: predicted distinct counts (per_size,)}`` for :func:`fixed_sets`' collection.

    Calls the model directly on each size's sets (batches of ``batch_size``), not
    ``model.predict``: a compiled predict function traced for several set sizes generalises the
    size axis to None, which ``vitlib.attention``'s shape checks do not accept on TensorFlow."""
    features = np.asarray(features, np.float32)
    out = {}
    for n, (idx, _) in sets.items():
        logits = [keras.ops.convert_to_numpy(model(features[idx[i:i + batch_size]], training=False))
                  for i in range(0, len(idx), batch_size)]
        out[n] = np.concatenate(logits).argmax(-1) + 1
    return out


def train_by_size(model, batches, log_every: int = 0, log=print) -> list[float]:
    """Train a compiled ``model`` on every batch of ``batches`` (a :class:`SetBatches`), in order,
    one ``train_on_batch`` per batch; returns the loss of every step.

    One training function per set size, each traced for its own size only: Keras' ``fit`` traces a
    single function whose size axis becomes None once it has seen two sizes, and
    ``vitlib.attention``'s shape checks do not accept a None size on TensorFlow."""
    functions, losses = {}, []
    for i in range(len(batches)):
        x, y = batches[i]
        size = x.shape[1]
        if size not in functions:
            model.train_function = None
            model.make_train_function()
            functions[size] = model.train_function
        model.train_function = functions[size]
        loss = model.train_on_batch(x, y, return_dict=True)["loss"]
        losses.append(float(loss))
        if log_every and (i + 1) % log_every == 0:
            log(f"step {i + 1}/{len(batches)}: loss {np.mean(losses[-log_every:]):.4f}", flush=True)
    batches.on_epoch_end()
    return losses


def count_scores(sets: dict, predicted: dict) -> dict:
    """Exact-count accuracy, mean absolute error, and the accuracy per set size (4 digits)."""
    true = np.concatenate([sets[n][1] for n in sorted(sets)])
    pred = np.concatenate([np.asarray(predicted[n]) for n in sorted(sets)])
    return {"accuracy": round(float(np.mean(true == pred)), 4),
            "mean_absolute_error": round(float(np.mean(np.abs(true - pred))), 4),
            "accuracy_by_size": {str(n): round(float(np.mean(sets[n][1] == np.asarray(predicted[n]))), 4)
                                 for n in sorted(sets)}}


def distinct_predicted_classes(item_classes, sets: dict) -> dict:
    """The rule without learning: classify each item on its own (``item_classes`` (n,), e.g. the
    classifier's argmax), count the distinct predicted classes of each set."""
    item_classes = np.asarray(item_classes)
    return {n: np.array([len(np.unique(item_classes[row])) for row in idx])
            for n, (idx, _) in sets.items()}
