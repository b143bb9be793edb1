"""Train a ViT on Fashion-MNIST with the course's recipe and ship it as a checkpoint.

    python -m experiments.train --model fashion-medium --epochs 60 --val-images 5000 \
        --out data/vit_fashion_medium.keras

``--val-images`` training images (a seeded random subset) are held out as a validation split:
their accuracy after every epoch is recorded, for choosing models and recipes without looking at
the test set, which is evaluated once, at the end. The model is ``vitlib.make_vit(--model)`` with the
``--set`` changes (e.g. ``patch_method=hybrid`` for the paper's CNN stem); the recipe is
``vitlib.train.RECIPE`` with the ``--recipe`` changes. Next to the checkpoint a JSON record keeps
the command, the recipe, the split, the training time, the accuracies and the machine.

``--distribution`` trains on several devices with ``keras.distribution`` (JAX backend; notebook 12):
``data`` splits every batch over all devices (weights replicated, gradients averaged); ``model``
splits the batch over the first axis of a BATCHxMODEL device mesh (``--mesh 2x4``; default: the
largest model axis that divides the devices, heads and MLP width) and each encoder block's
attention and MLP kernels over the second (``vitlib.distribute``). The code is the same on 8 virtual
CPU devices, a TPU or several GPUs::

    XLA_FLAGS=--xla_force_host_platform_device_count=8 KERAS_BACKEND=jax \\
        python -m experiments.train --model fashion-small --epochs 1 --distribution model --mesh 2x4

Every batch must split evenly: the batch size must be a multiple of the batch axis, the training
images are cut to a multiple of it (at most axis - 1 dropped, recorded), and evaluation pads with
blank images whose predictions are dropped.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import sys
import time

import keras
import numpy as np

from experiments import harness
from vitlib import distribute
from vitlib.configs import CONFIGS, vit_config
from vitlib.data import load_fashion_mnist
from vitlib.model import ViT, make_vit
from vitlib.train import RECIPE, accuracy, to_inputs, train

MODULE = "experiments.train"


class EpochAccuracy(keras.callbacks.Callback):
    """Accuracy on held-out images after each epoch (learning curves); its time is not training time."""

    def __init__(self, x, y, name, shards: int = 1):
        super().__init__()
        self.x, self.y, self.name, self.shards, self.accuracy = x, y, name, shards, []
        self.seconds = self.cpu_seconds = 0.0

    def on_epoch_end(self, epoch, logs=None):
        start, cpu_start = time.perf_counter(), time.process_time()
        self.accuracy.append(round(score(self.model, self.x, self.y, self.shards), 4))
        self.seconds += time.perf_counter() - start
        self.cpu_seconds += time.process_time() - cpu_start
        print(f"epoch {epoch + 1}: {self.name} accuracy {self.accuracy[-1]:.4f}", flush=True)


def score(model, x, y, shards: int = 1) -> float:
    """``vitlib.train.accuracy``; with ``shards`` > 1 (a distribution's batch axis) the images are
    padded with blank ones to a multiple of ``shards`` and predicted in batches that split evenly
    (JAX refuses uneven slices); the padding's predictions are dropped."""
    if shards == 1:
        return accuracy(model, x, y)
    x, y = np.asarray(x), np.asarray(y)
    padded = np.concatenate([x, np.zeros((-len(x) % shards, *x.shape[1:]), x.dtype)])
    logits = model.predict(padded, batch_size=shards * math.ceil(500 / shards), verbose=0)
    return float(np.mean(np.argmax(logits[: len(x)], axis=-1) == y))


def describe_distribution(distribution) -> dict:
    """What a record keeps of ``distribution`` (None: one device)."""
    if distribution is None:
        return {"kind": "none", "devices": 1}
    mesh = distribution.device_mesh
    kind = "data" if isinstance(distribution, keras.distribution.DataParallel) else "model"
    return {"kind": kind, "mesh": [int(n) for n in mesh.shape], "axes": list(mesh.axis_names),
            "devices": int(np.prod(mesh.shape)),
            "device_names": [str(d) for d in np.asarray(mesh.devices).flat][:2] + ["..."]}


def validation_split(n: int, val_images: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation) of ``n`` training images: ``val_images`` of them, drawn by a
    seeded permutation, are held out for model selection (the test set is never used for it)."""
    if not 0 <= val_images < n:
        raise ValueError(f"`val_images` must be in [0, {n}), got {val_images}.")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[val_images:]), np.sort(order[:val_images])


def split_inputs(limit=None, val_images: int = 5000, seed: int = 0) -> tuple:
    """Fashion-MNIST as model inputs, with the course's validation split:
    ``(x, y, x_val, y_val, x_test, y_test)``; ``limit`` keeps the first training images only."""
    data = load_fashion_mnist()
    train_idx, val_idx = validation_split(len(data.y_train), val_images, seed)
    x, y = to_inputs(data.x_train[train_idx]), data.y_train[train_idx]
    if limit:
        x, y = x[:limit], y[:limit]
    return (x, y, to_inputs(data.x_train[val_idx]), data.y_train[val_idx],
            to_inputs(data.x_test), data.y_test)


def run(model_name="fashion-small", epochs=10, limit=None, recipe=RECIPE, verbose=2,
        curves=False, command="", val_images=0, model=None, distribution=None, **overrides) -> tuple:
    """Train ``model`` (default: a new ``make_vit(model_name, **overrides)``) and return
    ``(model, record)``. ``limit`` keeps only the first ``limit`` training images (quick trials);
    ``curves`` also records the test accuracy after every epoch (for figures only).
    ``distribution`` (a ``keras.distribution`` Distribution, see ``vitlib.distribute``): the model is
    built, trained and evaluated inside its scope, every batch split over its batch axis."""
    shards = distribute.batch_shards(distribution)
    if distribution is not None and model is not None:
        raise ValueError("pass `model_name` with a `distribution`, not a built `model`: the model's "
                         "weights must be created inside the distribution's scope.")
    if recipe["batch_size"] % shards:
        raise ValueError(f"recipe['batch_size']={recipe['batch_size']} must be a multiple of the "
                         f"distribution's batch axis ({shards} slices).")
    data = load_fashion_mnist()
    train_idx, val_idx = validation_split(len(data.y_train), val_images, recipe["seed"])
    x, y = to_inputs(data.x_train[train_idx]), data.y_train[train_idx]
    if limit:
        x, y = x[:limit], y[:limit]
    x, y = x[: len(x) - len(x) % shards], y[: len(y) - len(y) % shards]  # every batch splits evenly
    keras.utils.set_random_seed(recipe["seed"])
    scope = distribution.scope() if distribution is not None else contextlib.nullcontext()
    with scope:
        model = model if model is not None else make_vit(model_name, **overrides)
        callbacks = []
        if val_images:
            callbacks.append(EpochAccuracy(to_inputs(data.x_train[val_idx]), data.y_train[val_idx],
                                           "validation", shards))
        if curves:
            callbacks.append(EpochAccuracy(to_inputs(data.x_test), data.y_test, "test", shards))
        by_name = {c.name: c.accuracy for c in callbacks}
        record = harness.header(command)
        start, cpu_start = time.perf_counter(), time.process_time()
        history = train(model, x, y, epochs, recipe, callbacks, verbose)
        seconds = time.perf_counter() - start - sum(c.seconds for c in callbacks)
        cpu_seconds = time.process_time() - cpu_start - sum(c.cpu_seconds for c in callbacks)
        test = score(model, to_inputs(data.x_test), data.y_test, shards)
    record.update({
        "model": model_name, "overrides": overrides, "epochs": epochs, "recipe": recipe,
        "train_images": len(x), "validation_images": int(val_images),
        "validation_split": f"seeded permutation of the 60,000 training images (seed {recipe['seed']})",
        "parameters": model.count_params(),
        "training_seconds": round(seconds, 1),
        # CPU time of this process (all cores) over the cores: about the wall time on an idle
        # machine, much less sensitive to other jobs than training_seconds.
        "training_cpu_seconds_per_core": round(cpu_seconds / (os.cpu_count() or 1), 1),
        "test_accuracy": round(test, 4),
        "train_loss": [round(v, 4) for v in history.history["loss"]],
        "train_accuracy": [round(v, 4) for v in history.history["accuracy"]],
        "validation_accuracy_per_epoch": by_name.get("validation"),
        "test_accuracy_per_epoch": by_name.get("test"),
    })
    if distribution is not None:
        record["distribution"] = describe_distribution(distribution)
    return model, harness.finish(record)


def model_arguments(name: str) -> dict:
    """Every argument of ``vitlib.ViT`` with its value for the named model (what ``--set`` may
    change)."""
    defaults = {k: p.default for k, p in inspect.signature(ViT.__init__).parameters.items()
                if p.default is not p.empty}
    return {**defaults, **vit_config(name)}


def make_distribution(kind: str, mesh, config: dict, recipe: dict, multi_host: bool = False):
    """The ``keras.distribution`` Distribution of ``--distribution`` and ``--mesh`` (None for
    "none"), checked before any work: the JAX backend, a mesh that uses every device and whose
    model axis divides the heads and the MLP width, a batch size that splits over the batch axis.
    Every problem is a ValueError naming the option. ``multi_host`` (``--multi-host``) first calls
    ``keras.distribution.initialize()``, which joins the processes of several machines into one
    set of devices (the same command runs on every machine; not tested here: one machine)."""
    if kind == "none":
        if mesh is not None:
            raise ValueError("--mesh needs --distribution model.")
        if multi_host:
            raise ValueError("--multi-host needs --distribution data or model.")
        return None
    if keras.backend.backend() != "jax":
        raise ValueError(f"--distribution {kind} needs the JAX backend: run with KERAS_BACKEND=jax "
                         f"(this run uses {keras.backend.backend()!r}; keras.distribution has no "
                         "working TensorFlow implementation, see notebook 12).")
    if mesh is not None and kind != "model":
        raise ValueError("--mesh is for --distribution model (data parallelism uses every "
                         "device for the batch).")
    if multi_host:
        keras.distribution.initialize()
    try:
        shape = distribute.parse_mesh(mesh) if mesh is not None else None
        distribution = distribute.make_distribution(kind, config, shape)
    except ValueError as error:
        raise ValueError(f"--distribution {kind}{f' --mesh {mesh}' if mesh else ''}: {error}") from None
    shards = distribute.batch_shards(distribution)
    if recipe["batch_size"] % shards:
        raise ValueError(f"--recipe batch_size={recipe['batch_size']} must be a multiple of the "
                         f"batch axis ({shards} devices): e.g. batch_size={shards * 8}.")
    return distribution


def main(argv=None) -> int:
    p = harness.parser(__doc__.split("\n\n")[0], "checkpoint path (.keras); its record goes beside it")
    p.add_argument("--model", default="fashion-small", help="a name of vitlib.CONFIGS")
    p.add_argument("--epochs", type=harness.positive_int, default=10)
    p.add_argument("--limit", type=harness.positive_int, default=None,
                   help="use only the first N training images (quick trials)")
    p.add_argument("--val-images", type=int, default=5000,
                   help="training images held out for validation (model selection); default 5000")
    p.add_argument("--curves", action="store_true", help="test accuracy after every epoch")
    p.add_argument("--recipe", nargs="*", default=[], metavar="KEY=VALUE",
                   help=f"recipe changes, e.g. batch_size=128; keys: {', '.join(RECIPE)}")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="model changes, e.g. dim=96 patch_method=hybrid")
    p.add_argument("--distribution", choices=distribute.KINDS, default="none",
                   help="train on several devices (JAX backend): data = batch split over all "
                        "devices; model = batch x model mesh, attention and MLP kernels split")
    p.add_argument("--mesh", default=None, metavar="BATCHxMODEL",
                   help="with --distribution model: the device mesh, e.g. 2x4 (default: the "
                        "largest model axis dividing the devices, heads and MLP width)")
    p.add_argument("--multi-host", action="store_true",
                   help="several machines: call keras.distribution.initialize() first (addresses "
                        "from KERAS_DISTRIBUTION_JOB_ADDRESSES, KERAS_DISTRIBUTION_NUM_PROCESSES, "
                        "KERAS_DISTRIBUTION_PROCESS_ID, or a Cloud TPU's own environment)")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    harness.check_out(p, args)
    if args.model not in CONFIGS:
        p.error(f"--model must be one of {list(CONFIGS)}, got {args.model!r}.")
    try:
        recipe = harness.changes(args.recipe, RECIPE, "--recipe")
        defaults = model_arguments(args.model)
        overrides = harness.changes(args.set, defaults, "--set")
        overrides = {k: v for k, v in overrides.items() if defaults[k] != v}
        if not 0 <= args.val_images < 60_000:
            raise ValueError(f"--val-images must be in [0, 60000), got {args.val_images}.")
        distribution = make_distribution(args.distribution, args.mesh,
                                         vit_config(args.model, **overrides), recipe,
                                         multi_host=args.multi_host)
    except ValueError as error:
        p.error(str(error))
    model, record = run(args.model, args.epochs, args.limit, recipe, curves=args.curves,
                        val_images=args.val_images, command=harness.command_line(MODULE, argv),
                        distribution=distribution, **overrides)
    if args.out:
        harness.save_model(model, record, args.out, overwrite=args.overwrite)
    print({k: record[k] for k in ("test_accuracy", "training_seconds", "parameters")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
