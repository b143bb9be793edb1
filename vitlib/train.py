"""Train a ViT on Fashion-MNIST with the course's recipe, and save a checkpoint.

    python -m vitlib.train --epochs 50 --val-images 5000 --out data/vit_fashion_small.keras

The recipe (``RECIPE``): AdamW with decoupled weight decay, a linear warm-up then cosine decay of
the learning rate, label smoothing, and light augmentation (random shifts of up to 1 pixel and
horizontal flips, both label-preserving for clothes). Everything is seeded. ``--val-images``
training images are held out as a validation split for choosing recipes; the test set is evaluated
once, at the end. Next to the checkpoint a JSON record keeps the command, the recipe, the split, the
training time, the accuracies and the machine (measurements: README and ``data/*.json``). An
existing checkpoint is never overwritten unless ``--overwrite`` is given.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import keras
import numpy as np
from keras import ops

from .data import load_fashion_mnist
from .model import ViT, vit
from .records import load_average, machine_summary

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


@keras.saving.register_keras_serializable(package="vitlib")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to ``peak`` over ``warmup_steps``, then cosine decay to 0."""

    def __init__(self, peak: float, warmup_steps: int, total_steps: int):
        self.peak, self.warmup_steps, self.total_steps = float(peak), int(warmup_steps), int(total_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = self.peak * step / max(self.warmup_steps, 1)
        progress = (step - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1)
        cosine = 0.5 * self.peak * (1 + ops.cos(math.pi * ops.clip(progress, 0.0, 1.0)))
        return ops.where(step < self.warmup_steps, warm, cosine)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}


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


def compile_for_training(model: ViT, steps_per_epoch: int, epochs: int, recipe=RECIPE,
                         jit_compile: bool = True) -> ViT:
    """Compile ``model`` with the recipe's optimizer, schedule and loss.

    ``jit_compile=False`` skips XLA: no compilation and less memory, for tiny models and short
    live runs where XLA's faster steps do not pay for its compilation."""
    schedule = WarmupCosine(recipe["peak_learning_rate"], recipe["warmup_epochs"] * steps_per_epoch,
                            epochs * steps_per_epoch)
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=recipe["weight_decay"]),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True,
                                                  label_smoothing=recipe["label_smoothing"]),
        # A metric object (not the string "accuracy"): its variables exist now, see build_optimizer.
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        # Keras turns XLA off on CPU-only machines by default; for this small ViT it makes a
        # training step about 2.5x faster on 2 CPU cores (585 vs 226 images/s, measured).
        jit_compile=jit_compile,
    )
    return build_optimizer(model)


def build_optimizer(model: keras.Model) -> keras.Model:
    """Create the compiled optimizer's variables (Adam's moments, ...) now, before ``fit``.

    Keras otherwise creates them inside the first traced training step, and TensorFlow then traces
    the step a second time. Tracing a ViT's step costs seconds (for ``fashion-small`` with AdamW,
    about 6 s of the 14 s before the first step on 2 cores, measured), so short live runs in the
    notebooks start twice as fast. Metric variables count too: compile with metric objects, not
    strings. Call it after ``compile`` and after freezing layers. Returns ``model``.
    """
    if getattr(model, "optimizer", None) is None:
        raise ValueError("`model` is not compiled: call `model.compile(optimizer=...)` first.")
    if not model.optimizer.built and model.built:
        model.optimizer.build(model.trainable_variables)
    return model


class _OneHot(keras.utils.PyDataset):
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


def evaluate(model, x_test, y_test, batch_size=500) -> float:
    """Test accuracy of ``model`` on uint8 images (n, 28, 28) and integer labels."""
    logits = model.predict(to_inputs(x_test), batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == y_test))


def save_without_optimizer(model: keras.Model, path) -> None:
    """Save an uncompiled copy of ``model`` (same class, config and weights; no optimizer state):
    a checkpoint of about 4 bytes per parameter. Used by every course command that ships one."""
    config = {k: v for k, v in model.get_config().items() if k not in ("name", "trainable", "dtype")}
    clean = type(model).from_config(config)
    clean.build()
    clean.set_weights(model.get_weights())
    clean.save(path)


def save_checkpoint(model: keras.Model, record: dict, out) -> None:
    """``model`` without optimizer state to ``out`` (.keras) and ``record`` beside it (.json)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_without_optimizer(model, out)
    out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")


class _EpochAccuracy(keras.callbacks.Callback):
    """Accuracy on held-out images after each epoch (learning curves); its time is not training time."""

    def __init__(self, x, y, name):
        super().__init__()
        self.x, self.y, self.name, self.accuracy = x, y, name, []
        self.seconds = self.cpu_seconds = 0.0

    def on_epoch_end(self, epoch, logs=None):
        start, cpu_start = time.perf_counter(), time.process_time()
        self.accuracy.append(round(evaluate(self.model, self.x, self.y), 4))
        self.seconds += time.perf_counter() - start
        self.cpu_seconds += time.process_time() - cpu_start
        print(f"epoch {epoch + 1}: {self.name} accuracy {self.accuracy[-1]:.4f}", flush=True)


def validation_split(n: int, val_images: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation) of ``n`` training images: ``val_images`` of them, drawn by a
    seeded permutation, are held out for model selection (the test set is never used for it)."""
    if not 0 <= val_images < n:
        raise ValueError(f"`val_images` must be in [0, {n}), got {val_images}.")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[val_images:]), np.sort(order[:val_images])


def _load() -> float | None:
    """The 1-minute load average (other jobs on the machine slow training down), if known."""
    return (load_average() or [None])[0]


def train(model_name="fashion-small", epochs=10, out=None, overwrite=False, limit=None,
          recipe=RECIPE, verbose=2, curves=False, command="", val_images=0, **overrides) -> dict:
    """Train a named ViT on Fashion-MNIST with ``recipe``; save to ``out`` if given.

    ``val_images`` training images (a seeded random subset) are held out as a validation split and
    the model is trained on the rest; their accuracy after every epoch is recorded, for choosing
    recipes without looking at the test set. The test set is evaluated once, at the end.
    ``limit`` uses only the first ``limit`` of the remaining training images (for quick trials);
    ``curves`` also records the test accuracy after every epoch (for figures only; evaluation time
    is not counted as training). Returns the record also written next to the checkpoint as JSON.
    """
    out = Path(out) if out else None
    if out is not None and out.exists() and not overwrite:
        raise FileExistsError(f"`out` {out} exists; pass --overwrite to replace it.")
    keras.utils.set_random_seed(recipe["seed"])
    data = load_fashion_mnist()
    train_idx, val_idx = validation_split(len(data.y_train), val_images, recipe["seed"])
    x, y = to_inputs(data.x_train[train_idx]), data.y_train[train_idx]
    if limit:
        x, y = x[:limit], y[:limit]
    batches = AugmentedBatches(x, y, recipe["batch_size"], recipe["max_shift"], recipe["flip"],
                               seed=recipe["seed"])
    model = vit(model_name, **overrides)
    compile_for_training(model, len(batches), epochs, recipe)
    callbacks = []
    if val_images:
        callbacks.append(_EpochAccuracy(data.x_train[val_idx], data.y_train[val_idx], "validation"))
    if curves:
        callbacks.append(_EpochAccuracy(data.x_test, data.y_test, "test"))
    by_name = {c.name: c.accuracy for c in callbacks}
    start, cpu_start, load_start = time.perf_counter(), time.process_time(), _load()
    history = model.fit(_OneHot(batches), epochs=epochs, verbose=verbose, callbacks=callbacks)
    seconds = time.perf_counter() - start - sum(c.seconds for c in callbacks)
    cpu_seconds = time.process_time() - cpu_start - sum(c.cpu_seconds for c in callbacks)
    accuracy = evaluate(model, data.x_test, data.y_test)
    record = {
        "command": command,
        "model": model_name, "overrides": overrides, "epochs": epochs, "recipe": recipe,
        "train_images": len(x), "validation_images": int(val_images),
        "validation_split": f"seeded permutation of the 60,000 training images (seed {recipe['seed']})",
        "parameters": model.count_params(),
        "training_seconds": round(seconds, 1),
        # CPU time of this process (all cores) over the cores: about the wall time on an idle
        # machine, much less sensitive to other jobs than training_seconds.
        "training_cpu_seconds_per_core": round(cpu_seconds / (os.cpu_count() or 1), 1),
        "load_average": [load_start, _load()],
        "test_accuracy": round(accuracy, 4),
        "train_loss": [round(v, 4) for v in history.history["loss"]],
        "train_accuracy": [round(v, 4) for v in history.history["accuracy"]],
        "validation_accuracy_per_epoch": by_name.get("validation"),
        "test_accuracy_per_epoch": by_name.get("test"),
        "machine": machine_summary(),
    }
    if out is not None:
        save_checkpoint(model, record, out)
    return record


def _parse(items) -> dict:
    """["dim=96", "pooling=mean", "flip=false"] -> {"dim": 96, "pooling": "mean", "flip": False}."""
    out = {}
    for item in items:
        key, value = item.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="fashion-small")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", default=None, help="checkpoint path (.keras)")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--limit", type=int, default=None, help="use only N training images")
    parser.add_argument("--val-images", type=int, default=5000,
                        help="training images held out for validation (model selection); default 5000")
    parser.add_argument("--curves", action="store_true", help="test accuracy after every epoch")
    parser.add_argument("--recipe", nargs="*", default=[], metavar="KEY=VALUE",
                        help="recipe changes, e.g. batch_size=256 peak_learning_rate=1e-3")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="model overrides, e.g. dim=96 depth=6")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    overrides, recipe = _parse(args.set), {**RECIPE, **_parse(args.recipe)}
    record = train(args.model, args.epochs, args.out, args.overwrite, args.limit, recipe=recipe,
                   curves=args.curves, val_images=args.val_images, command=" ".join(["python -m vitlib.train", *argv]),
                   **overrides)
    print(json.dumps({k: record[k] for k in ("test_accuracy", "training_seconds", "parameters")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
