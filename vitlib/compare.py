"""ViT vs CNN at a matched parameter budget and a matched training time (notebook 08).

:func:`train_with_budget` trains ``vitlib.cnn.small_cnn()`` (139,903 parameters) or
``vitlib.make_vit("fashion-small")`` (139,018) for a given number of SECONDS of training, with the
recipe :data:`vitlib.train.RECIPE` for both: the same seeded augmented batches
(:class:`EndlessBatches`), AdamW with weight decay, label smoothing, XLA unless told otherwise.

The learning-rate schedule is clocked in time, not in steps (:class:`TimeBudget`): a step-based
cosine needs the total number of steps in advance, which depends on the model's speed and on the
machine's load; clocked in time, both models warm up for the first 10% of their budget and reach
zero exactly when it is spent, whatever their speed. The clock starts after the first step, which
includes XLA's compilation.

``python -m experiments.vit_vs_cnn`` runs the comparison for several training-set sizes and
ships ``data/vit_vs_cnn.json`` (:func:`load_results`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras
import numpy as np

from .cnn import small_cnn
from .course_files import course_file
from .model import make_vit
from .train import RECIPE, AugmentedBatches, cosine_schedule, jit_for_backend, to_inputs

MODELS = {
    "cnn": ("small_cnn(width=39)", small_cnn),
    "vit": ('make_vit("fashion-small")', lambda: make_vit("fashion-small")),
}
WARMUP_FRACTION = 0.1
#: The shipped results, relative to the repository root.
RESULTS = "data/vit_vs_cnn.json"


def training_set(data, n: int, seed: int = 0):
    """The first ``n`` images of one seeded permutation of the training set, as model inputs:
    x (n, 28, 28, 1) float32 in [0, 1], y (n,) int. Smaller sets are part of larger ones."""
    order = np.random.default_rng(seed).permutation(len(data.x_train))[:n]
    return to_inputs(data.x_train[order]), data.y_train[order]


def load_results(path=None) -> dict:
    """The shipped results: ``path``, else ``data/vit_vs_cnn.json`` of the course (from a clone, or
    downloaded once and checked, see :func:`vitlib.course_files.course_file`)."""
    if path and not Path(path).is_file():
        raise FileNotFoundError(f"`path` {path} does not exist.")
    return json.loads(Path(path or course_file(Path(RESULTS).name)).read_text())


class EndlessBatches(keras.utils.PyDataset):
    """The batches of ``AugmentedBatches`` (full batches only, one-hot labels) as ONE endless
    epoch: after each pass over the data it draws a new permutation, as a new epoch would.

    Why not ordinary epochs: on the TensorFlow backend with XLA, the first step of every new
    Keras epoch costs seconds extra (the step is set up again), which would eat the budget of a
    small training set; and a last, smaller batch would make XLA compile the step again for its
    new shape. ``n_images // batch_size`` batches make one pass.
    """

    def __init__(self, x, y, batch_size, max_shift=2, flip=True, seed=0, num_classes=10,
                 **kwargs):
        super().__init__(**kwargs)
        self.batches = AugmentedBatches(x, y, batch_size, max_shift, flip, seed=seed)
        self.per_pass = max(1, len(x) // batch_size)
        self.num_classes, self.passes = num_classes, 0

    @property
    def num_batches(self):
        return None  # endless

    def __getitem__(self, i):
        if i // self.per_pass > self.passes:  # a new pass over the data: a new permutation
            self.batches.on_epoch_end()
            self.passes = i // self.per_pass
        x, y = self.batches[i % self.per_pass]
        return x, keras.utils.to_categorical(y, self.num_classes)


class TimeBudget(keras.callbacks.Callback):
    """Stop training once ``seconds`` of training time are spent; optionally set the learning rate
    from the elapsed time.

    The clock starts at the end of the first step (which includes tracing and XLA compilation);
    the budget is checked after every step, so training stops within one step of it.
    ``schedule`` (optional) maps the spent share of the budget, in thousandths (0 to 1000), to a
    learning rate, e.g. ``cosine_schedule(peak, 100, 1000)``. After training: ``steps`` (done),
    ``seconds`` (training time after the first step) and ``first_step_seconds``.
    """

    def __init__(self, seconds: float, schedule=None):
        super().__init__()
        if not float(seconds) >= 0:
            raise ValueError(f"`seconds` must be a number >= 0, got {seconds!r}.")
        self.budget, self.schedule = float(seconds), schedule
        self.steps = 0
        self.seconds = self.first_step_seconds = 0.0
        self._begin = self._start = None

    def elapsed(self) -> float:
        return 0.0 if self._start is None else time.perf_counter() - self._start

    def on_train_begin(self, logs=None):
        self._begin = time.perf_counter()

    def on_train_batch_begin(self, batch, logs=None):
        if self.schedule is not None:
            spent = 1000.0 * min(self.elapsed() / self.budget, 1.0) if self.budget else 1000.0
            self.model.optimizer.learning_rate = float(self.schedule(spent))

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self._start is None:  # the first step: compilation, not counted in the budget
            self._start = time.perf_counter()
            self.first_step_seconds = self._start - self._begin
        self.seconds = self.elapsed()
        if self.seconds >= self.budget:
            self.model.stop_training = True


def compile_same(model: keras.Model, recipe=RECIPE, jit_compile: bool = True) -> keras.Model:
    """Compile with the recipe's optimizer (AdamW), loss and XLA (unless ``jit_compile=False``);
    the learning rate is a variable that :class:`TimeBudget` sets at each step (it starts at 0)."""
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=0.0, weight_decay=recipe["weight_decay"]),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True,
                                                  label_smoothing=recipe["label_smoothing"]),
        metrics=["accuracy"],
        jit_compile=jit_for_backend(jit_compile),
    )
    return model


def train_with_budget(kind: str, x, y, seconds: float, recipe=RECIPE, jit_compile: bool = True,
                      build=None):
    """Train a fresh ``kind`` model ("cnn" or "vit") on float images x (n, 28, 28, 1) and labels y
    for ``seconds`` of training time. Returns ``(model, budget)``, budget a :class:`TimeBudget`.
    ``jit_compile=False`` skips XLA: slower steps, but no compilation (for short live demos).
    ``build``, a function returning a new model, replaces ``kind``'s (for other contenders)."""
    if build is None and kind not in MODELS:
        raise ValueError(f"`kind` must be one of {sorted(MODELS)}, got {kind!r}.")
    keras.utils.set_random_seed(recipe["seed"])  # the same start for every run of a kind
    model = compile_same((build or MODELS[kind][1])(), recipe, jit_compile)
    batches = EndlessBatches(x, y, recipe["batch_size"], recipe["max_shift"], recipe["flip"],
                             seed=recipe["seed"])  # the same batches for both models
    schedule = cosine_schedule(recipe["peak_learning_rate"], round(1000 * WARMUP_FRACTION), 1000)
    budget = TimeBudget(seconds, schedule)
    model.fit(batches, epochs=1, verbose=0, shuffle=False, callbacks=[budget])
    return model, budget
