"""The course's training recipe: data pipeline, optimizer, schedule, loss (notebook 06).

The recipe (``RECIPE``): AdamW with decoupled weight decay, a linear warm-up then cosine decay of
the learning rate (:func:`cosine_schedule`), label smoothing, and light augmentation (random
shifts of up to ``max_shift`` pixels and horizontal flips, both label-preserving for clothes;
:class:`AugmentedBatches`). Everything is seeded. :func:`train` fits any model with it;
``python -m experiments.train`` trains and ships the course's checkpoint with it.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from . import _checks

RECIPE = {
    "batch_size": 64,
    "peak_learning_rate": 1e-3,
    "weight_decay": 0.05,
    "warmup_epochs": 1,
    "label_smoothing": 0.1,
    "max_shift": 1,
    "flip": True,
    "seed": 0,
}


def to_inputs(images: np.ndarray) -> np.ndarray:
    """uint8 images (n, 28, 28) -> float32 model inputs (n, 28, 28, 1) in [0, 1]."""
    return (np.asarray(images, np.float32) / 255.0)[..., None]


def cosine_schedule(peak: float, warmup_steps: int, total_steps: int):
    """Linear warm-up from 0 to ``peak`` over ``warmup_steps``, then cosine decay to 0 at
    ``total_steps``: Keras' ``CosineDecay`` with a warm-up, the schedule of every course run."""
    peak = _checks.positive_float("peak", peak)
    warmup_steps = _checks.non_negative_int("warmup_steps", warmup_steps)
    total_steps = _checks.positive_int("total_steps", total_steps)
    if warmup_steps > total_steps:
        raise ValueError(f"`warmup_steps` ({warmup_steps}) must be at most `total_steps` "
                         f"({total_steps}).")
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(total_steps - warmup_steps, 1), warmup_target=peak,
        warmup_steps=warmup_steps)


def adamw(recipe: dict, steps_per_epoch: int, epochs: int) -> keras.optimizers.AdamW:
    """The course's optimizer: AdamW (decoupled weight decay ``recipe["weight_decay"]``, and
    ``recipe["beta_2"]`` if given) on :func:`cosine_schedule` with ``recipe["warmup_epochs"]`` of
    warm-up (a fraction of an epoch is allowed) and ``recipe["peak_learning_rate"]``."""
    steps_per_epoch = _checks.positive_int("steps_per_epoch", steps_per_epoch)
    epochs = _checks.positive_int("epochs", epochs)
    schedule = cosine_schedule(recipe["peak_learning_rate"],
                               round(recipe["warmup_epochs"] * steps_per_epoch),
                               epochs * steps_per_epoch)
    return keras.optimizers.AdamW(schedule, weight_decay=recipe["weight_decay"],
                                  beta_2=recipe.get("beta_2", 0.999))


class AugmentedBatches(keras.utils.PyDataset):
    """Shuffled mini-batches with random shifts and flips, made in NumPy (works on every backend).

    x: (n, H, W, C) float32, y: (n,) int. Each epoch uses a new permutation and new shifts,
    drawn from a seeded generator, so a run is reproducible.
    """

    def __init__(self, x, y, batch_size, max_shift=2, flip=True, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size = x, y, batch_size
        self.max_shift, self.flip = max_shift, flip
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(x))

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.x))

    def __getitem__(self, i):
        idx = self.order[i * self.batch_size : (i + 1) * self.batch_size]
        x, y = self.x[idx], self.y[idx]
        s = self.max_shift
        if s:
            padded = np.pad(x, ((0, 0), (s, s), (s, s), (0, 0)))
            dy, dx = self.rng.integers(0, 2 * s + 1, size=(2, len(x)))
            h, w = x.shape[1:3]
            x = np.stack([p[a : a + h, b : b + w] for p, a, b in zip(padded, dy, dx, strict=True)])
        if self.flip:
            mirror = self.rng.random(len(x)) < 0.5
            x = np.where(mirror[:, None, None, None], x[:, :, ::-1], x)
        return x, y


def compile_for_training(model: keras.Model, steps_per_epoch: int, epochs: int, recipe=RECIPE,
                         jit_compile: bool = True) -> keras.Model:
    """Compile ``model`` with the recipe's optimizer, schedule and loss.

    ``jit_compile=False`` skips XLA: no compilation and less memory, for tiny models and short
    live runs where XLA's faster steps do not pay for its compilation. It applies to TensorFlow
    only: on JAX a step is always compiled (see :func:`jit_for_backend`)."""
    model.compile(
        optimizer=adamw(recipe, steps_per_epoch, epochs),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True,
                                                  label_smoothing=recipe["label_smoothing"]),
        # A metric object (not the string "accuracy"): its variables exist now, see build_optimizer.
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        # Keras turns XLA off on CPU-only machines by default; for a small ViT it makes a
        # training step much faster (benchmarks/RESULTS.md).
        jit_compile=jit_for_backend(jit_compile),
    )
    return build_optimizer(model)


def jit_for_backend(jit_compile: bool) -> bool:
    """``jit_compile`` on TensorFlow, ``True`` on JAX.

    Without XLA, TensorFlow still runs a traced graph; JAX without ``jit`` runs every operation
    one by one from Python, tens of times slower than compiling, so there is nothing to save."""
    return True if keras.backend.backend() == "jax" else bool(jit_compile)


def build_optimizer(model: keras.Model) -> keras.Model:
    """Create the compiled optimizer's variables (Adam's moments, ...) now, before ``fit``.

    Keras otherwise creates them inside the first traced training step, and TensorFlow then traces
    the step a second time; tracing a ViT's step costs seconds, so short live runs in the
    notebooks start sooner. Metric variables count too: compile with metric objects, not
    strings. Call it after ``compile`` and after freezing layers. Returns ``model``.
    """
    if getattr(model, "optimizer", None) is None:
        raise ValueError("`model` is not compiled: call `model.compile(optimizer=...)` first.")
    if not model.optimizer.built and model.built:
        model.optimizer.build(model.trainable_variables)
    return model


class OneHotBatches(keras.utils.PyDataset):
    """``batches`` (yielding images, integer labels) with the labels one-hot over 10 classes, as
    label smoothing in Keras' CategoricalCrossentropy needs."""

    def __init__(self, batches, **kwargs):
        super().__init__(**kwargs)
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def on_epoch_end(self):
        self.batches.on_epoch_end()

    def __getitem__(self, i):
        x, y = self.batches[i]
        return x, keras.utils.to_categorical(y, 10)


def accuracy(model: keras.Model, x, y, batch_size: int = 500) -> float:
    """Fraction of images ``x`` (n, H, W, C), float model inputs, whose arg-max logit is the
    integer label in ``y`` (n,)."""
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim < 1 or y.shape != (len(x),):
        raise ValueError(f"`y` must hold one label per image: `x` has {len(x) if x.ndim else 0} "
                         f"images, `y` has shape {y.shape}.")
    if len(x) == 0:
        raise ValueError("`x` is empty: there is nothing to score.")
    logits = model.predict(x, batch_size=_checks.positive_int("batch_size", batch_size), verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == y))


def train(model: keras.Model, x, y, epochs: int, recipe=RECIPE, callbacks=(), verbose=2,
          jit_compile: bool = True) -> keras.callbacks.History:
    """Fit ``model`` (any Keras classifier with 10 logits, e.g. a :class:`vitlib.ViT`) on float
    images x (n, H, W, C) and integer labels y (n,) for ``epochs`` with ``recipe``: seeded,
    augmented, shuffled batches, :func:`compile_for_training`. Returns Keras' History."""
    epochs = _checks.positive_int("epochs", epochs)
    unknown = set(recipe) - set(RECIPE) - {"beta_2"}
    if unknown:
        raise ValueError(f"`recipe` has unknown keys {sorted(unknown)}; expected some of "
                         f"{sorted(RECIPE)}.")
    recipe = {**RECIPE, **recipe}
    batch_size = _checks.positive_int("recipe['batch_size']", recipe["batch_size"])
    if len(x) != len(y) or not len(x):
        raise ValueError(f"`x` and `y` must hold the same number (> 0) of images and labels, got "
                         f"{len(x)} and {len(y)}.")
    keras.utils.set_random_seed(recipe["seed"])
    batches = AugmentedBatches(x, y, batch_size, recipe["max_shift"], recipe["flip"],
                               seed=recipe["seed"])
    compile_for_training(model, len(batches), epochs, recipe, jit_compile=jit_compile)
    return model.fit(OneHotBatches(batches), epochs=epochs, verbose=verbose,
                     callbacks=list(callbacks))
