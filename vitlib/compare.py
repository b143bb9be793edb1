"""ViT vs CNN at a matched parameter budget and a matched training time (notebook 08).

    python -m vitlib.compare --sizes 1000 5000 20000 60000 --seconds 120 --out data/vit_vs_cnn.json

For every training-set size n (the first n images of one seeded permutation of the 60,000, so each
set contains the smaller ones) it trains two models of about the same size from the same seed:
``vitlib.cnn.small_cnn()`` (139,903 parameters) and ``vitlib.vit("fashion-small")`` (139,018). Each
gets the SAME wall-clock budget of ``--seconds`` of training, then is tested on the full 10,000 test
images. The runs are interleaved (CNN, ViT, then ViT, CNN, ...) so that slow phases of a shared
machine hit both models.

The recipe is :data:`vitlib.train.RECIPE` for both (recorded in the results): the same seeded
``AugmentedBatches`` (random shifts and flips; full batches in one endless epoch, see
:class:`EndlessBatches`), AdamW with weight decay, label smoothing, compiled with XLA
(``jit_compile=True``, as ``compile_for_training`` does).

The learning-rate schedule is :class:`vitlib.train.WarmupCosine`, but **clocked in time, not in
steps**: at each step the rate is ``WarmupCosine(peak, 0.1 * budget, budget)`` evaluated at the
elapsed training time (in milliseconds). A step-based cosine needs the total number of steps in
advance, which depends on the model's speed and on the machine's load at that moment; a short
timing would guess it wrong on a shared machine (the rate then stops at zero early, or never reaches
it). Clocked in time, both models warm up for the first 10% of their budget and reach zero exactly
when it is spent, whatever their speed. The clock starts after the first step, which includes XLA's
compilation (its time is recorded as ``first_step_seconds``, not counted in the budget).

The results file records per point the test accuracy, the steps and epochs done, the images seen,
and the load average; and for the run the exact command, the machine, the date, the versions, and
the load average at the start and end (``shared_load`` says if other work was running). An
existing file is never overwritten unless ``--overwrite`` is given.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
import time
from pathlib import Path

import keras
import numpy as np

from .cnn import small_cnn
from .course_files import course_file
from .data import load_fashion_mnist
from .model import vit
from .records import load_average, machine, refuse_existing_out, versions, write_results
from .train import RECIPE, AugmentedBatches, WarmupCosine, evaluate, to_inputs

MODELS = {
    "cnn": ("small_cnn(width=39)", small_cnn),
    "vit": ('vit("fashion-small")', lambda: vit("fashion-small")),
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
    Keras epoch was measured to cost 1-10 s extra on this CPU (the step is set up again), which
    would eat the budget of a small training set. And a last, smaller batch would make XLA compile
    the step again for its new shape. ``n_images // batch_size`` batches make one pass.
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
    ``schedule`` (optional) maps elapsed milliseconds to a learning rate, e.g.
    ``WarmupCosine(peak, warmup_ms, budget_ms)``. After training: ``steps`` (done),
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
            self.model.optimizer.learning_rate = float(self.schedule(1000.0 * self.elapsed()))

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
        jit_compile=jit_compile,
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
    budget_ms = 1000.0 * seconds
    schedule = WarmupCosine(recipe["peak_learning_rate"], WARMUP_FRACTION * budget_ms, budget_ms)
    budget = TimeBudget(seconds, schedule)
    model.fit(batches, epochs=1, verbose=0, shuffle=False, callbacks=[budget])
    return model, budget


def compare(sizes, seconds: float, recipe=RECIPE, command: str = "", note: str = "",
            log=print) -> dict:
    """Run the comparison (see the module docstring) and return the record."""
    sizes = [int(n) for n in sizes]
    if not sizes or any(not 1 <= n <= 60_000 for n in sizes):
        raise ValueError(f"`sizes` must be training-set sizes between 1 and 60000, got {sizes!r}.")
    load_start, start = load_average(), time.perf_counter()
    data = load_fashion_mnist()
    x_all, y_all = training_set(data, max(sizes), recipe["seed"])
    parameters = {}
    for kind, (name, build) in MODELS.items():
        model = build()
        trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
        parameters[kind] = {"model": name, "parameters": model.count_params(),
                            "trainable": trainable}
    results = []
    for i, n in enumerate(sizes):
        for kind in (("cnn", "vit") if i % 2 == 0 else ("vit", "cnn")):
            load = load_average()
            model, budget = train_with_budget(kind, x_all[:n], y_all[:n], seconds, recipe)
            accuracy = evaluate(model, data.x_test, data.y_test)
            images_seen = budget.steps * min(n, recipe["batch_size"])  # full batches only
            point = {
                "model": kind, "train_images": n, "test_accuracy": round(accuracy, 4),
                "steps": budget.steps, "epochs": round(images_seen / n, 2),
                "images_seen": images_seen,
                "train_seconds": round(budget.seconds, 1),
                "first_step_seconds": round(budget.first_step_seconds, 1),
                "load_average_at_start": load,
            }
            results.append(point)
            log(json.dumps(point))
    load_end = load_average()
    shared = bool(load_start and load_start[0] >= 0.5)
    return {
        "what": "Test accuracy (10,000 Fashion-MNIST test images) of a small CNN and a small ViT "
                "of about the same size, each trained for the same wall-clock time on the first "
                "n images of a seeded permutation of the training set.",
        "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "budget_seconds_per_run": seconds,
        "sizes": sizes,
        "models": parameters,
        "recipe": recipe,
        "schedule": (f"WarmupCosine clocked in training time: linear warm-up over the first "
                     f"{WARMUP_FRACTION:.0%} of the budget, cosine decay to 0 at the end of it; "
                     "the clock starts after the first (compiling) step"),
        "order": "interleaved: cnn, vit for the 1st size; vit, cnn for the 2nd; ...",
        "load_average": {"start": load_start, "end": load_end},
        "shared_load": shared,
        "note": note or ("measured under shared load: other processes were using the CPU "
                         "(see load_average)" if shared else ""),
        "total_seconds": round(time.perf_counter() - start, 1),
        "results": results,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000, 60000])
    parser.add_argument("--seconds", type=float, default=120.0,
                        help="training time per model and size, in seconds (the shipped run's: 120)")
    parser.add_argument("--out", default=None, help="results file (.json)")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--note", default="", help="a remark stored in the results")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    refuse_existing_out(parser, args.out, args.overwrite)  # before any training
    record = compare(args.sizes, args.seconds, note=args.note,
                     command=shlex.join(["python", "-m", "vitlib.compare", *argv]))
    if args.out:
        write_results(record, args.out, overwrite=args.overwrite)
    for kind in MODELS:
        accs = [p["test_accuracy"] for p in record["results"] if p["model"] == kind]
        print(kind, dict(zip(record["sizes"], accs, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
