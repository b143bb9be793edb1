"""Train a small Image Transformer: an autoregressive model of 14x14 Fashion-MNIST in 4 grey levels.

    python -m experiments.image_transformer --seeds 0 1 2 --out data/image_transformer.keras

Images are shrunk to 14x14 (2x2 means) and quantised to ``levels`` grey levels
(:mod:`vitlib.tokens`); the model is a :class:`vitlib.tokens.PixelTransformer` over the 196
pixels in raster order with a causal mask, trained by maximum likelihood (cross-entropy on every
pixel). Splits: a seeded permutation of the 60,000 training images gives the training images and
a validation split (the epoch kept for each seed is the one with the lowest validation bits per
dimension); the test images are the first ``--test-images`` of Fashion-MNIST's test set, used
only for the reported scores. Baselines, fitted on the same training images: the per-pixel
marginal (each pixel's own level frequencies, pixels independent), the global marginal (one
frequency table for all pixels) and the uniform distribution (log2 levels bits). The first
seed's model is shipped, with samples drawn from it (seeded) in the record.
"""

from __future__ import annotations

import math
import sys
import time

import keras
import numpy as np

from experiments import harness
from vitlib import tokens
from vitlib.data import load_fashion_mnist
from vitlib.train import build_optimizer, cosine_schedule

MODULE = "experiments.image_transformer"
#: The task and recipe of the shipped model (the command's defaults).
SETTINGS = {
    "levels": 4, "factor": 2, "train_images": 15000, "val_images": 2000, "test_images": 2000,
    "notebook_test_images": 500, "dim": 32, "depth": 3, "num_heads": 2, "mlp_dim": 64,
    "epochs": 3, "batch_size": 64, "peak_learning_rate": 2e-3, "weight_decay": 0.01,
    "warmup_fraction": 0.05, "split_seed": 0, "samples": 16, "sample_seed": 0,
}


def prepare(images, settings) -> np.ndarray:
    """uint8 (n, 28, 28) -> int64 (n, 196) grey levels in raster order."""
    small = tokens.downsample(images, settings["factor"])
    return tokens.quantise(small, settings["levels"]).reshape(len(images), -1)


def splits(settings, data=None) -> dict:
    """The training, validation and test pixels (int64 (n, 196)) of ``settings``."""
    data = load_fashion_mnist() if data is None else data
    order = np.random.default_rng(settings["split_seed"]).permutation(len(data.x_train))
    n_train, n_val = settings["train_images"], settings["val_images"]
    if n_train + n_val > len(order):
        raise ValueError(f"train_images + val_images must be at most {len(order)}.")
    return {"train": prepare(data.x_train[order[:n_train]], settings),
            "val": prepare(data.x_train[order[n_train:n_train + n_val]], settings),
            "test": prepare(data.x_test[:settings["test_images"]], settings)}


def make_model(settings) -> tokens.PixelTransformer:
    side = 28 // settings["factor"]
    return tokens.PixelTransformer(levels=settings["levels"], tokens=side * side,
                                   dim=settings["dim"], depth=settings["depth"],
                                   num_heads=settings["num_heads"], mlp_dim=settings["mlp_dim"])


class _KeepBest(keras.callbacks.Callback):
    """After each epoch: validation bits per dimension; keeps the weights of the best epoch."""

    def __init__(self, val):
        super().__init__()
        self.val, self.scores, self.best = val, [], None

    def on_epoch_end(self, epoch, logs=None):
        score = tokens.bits_per_dim(self.model, self.val)
        self.scores.append(round(score, 4))
        print(f"  epoch {epoch + 1}: validation {score:.4f} bits/dim", flush=True)
        if self.best is None or score < min(self.scores[:-1], default=math.inf):
            self.best = (epoch + 1, [w.copy() for w in self.model.get_weights()])


def train_one(seed: int, data: dict, settings, verbose=2):
    """Train one seed; returns (model at its best validation epoch, its summary)."""
    keras.utils.set_random_seed(seed)
    model = make_model(settings)
    steps = settings["epochs"] * -(-len(data["train"]) // settings["batch_size"])
    schedule = cosine_schedule(settings["peak_learning_rate"],
                               int(settings["warmup_fraction"] * steps), steps)
    model.compile(optimizer=keras.optimizers.AdamW(schedule,
                                                   weight_decay=settings["weight_decay"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=True)
    model.build()
    build_optimizer(model)
    keep = _KeepBest(data["val"])
    start, cpu = time.perf_counter(), time.process_time()
    history = model.fit(data["train"], data["train"], batch_size=settings["batch_size"],
                        epochs=settings["epochs"], shuffle=True, verbose=verbose,
                        callbacks=[keep])
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    best_epoch, weights = keep.best
    model.set_weights(weights)
    n_nb = settings["notebook_test_images"]
    summary = {
        "seed": seed, "parameters": model.count_params(),
        "training_seconds": round(seconds, 1), "training_cpu_seconds": round(cpu, 1),
        "train_bits_per_dim": [round(v / math.log(2), 4) for v in history.history["loss"]],
        "val_bits_per_dim": keep.scores, "best_epoch": best_epoch,
        "test_bits_per_dim": round(tokens.bits_per_dim(model, data["test"]), 4),
        f"test_bits_per_dim_first_{n_nb}": round(tokens.bits_per_dim(model, data["test"][:n_nb]), 4),
    }
    return model, summary


def run(seeds=(0,), settings=SETTINGS, command="", verbose=2):
    """Train every seed; returns (the first seed's model, the record)."""
    data = splits(settings)
    levels, n_nb = settings["levels"], settings["notebook_test_images"]
    baselines = {
        "uniform": round(math.log2(levels), 4),
        "global_marginal": round(tokens.marginal_bits_per_dim(data["train"], data["test"], levels,
                                                              per_pixel=False), 4),
        "per_pixel_marginal": round(tokens.marginal_bits_per_dim(data["train"], data["test"],
                                                                 levels), 4),
        f"per_pixel_marginal_first_{n_nb}": round(tokens.marginal_bits_per_dim(
            data["train"], data["test"][:n_nb], levels), 4),
    }
    record = harness.header(command)
    runs, shipped = [], None
    for seed in seeds:
        print(f"seed {seed}", flush=True)
        model, summary = train_one(seed, data, settings, verbose)
        runs.append(summary)
        if shipped is None:
            shipped = model
    scores = [r["test_bits_per_dim"] for r in runs]
    samples = tokens.sample(shipped, settings["samples"], seed=settings["sample_seed"])
    record.update({
        "settings": settings, "seeds": list(seeds), "shipped_seed": seeds[0],
        "split": (f"seeded permutation (seed {settings['split_seed']}) of the 60,000 training "
                  f"images: the first {settings['train_images']} train, the next "
                  f"{settings['val_images']} validate (best epoch); test: the first "
                  f"{settings['test_images']} test images"),
        "runs": runs,
        "test_bits_per_dim": {"mean": round(float(np.mean(scores)), 4),
                              "min": min(scores), "max": max(scores)},
        "baselines_test_bits_per_dim": baselines,
        "samples": ["".join(map(str, row)) for row in samples],
    })
    return shipped, harness.finish(record)


def main(argv=None) -> int:
    p = harness.parser(__doc__.split("\n\n")[0], "checkpoint path (.keras); its record beside it")
    p.add_argument("--seeds", type=harness.seed, nargs="+", default=[0],
                   help="one run per seed; the first seed's model is shipped")
    for key in ("train_images", "val_images", "test_images", "epochs", "batch_size", "dim",
                "depth", "num_heads", "mlp_dim", "levels", "samples"):
        p.add_argument("--" + key.replace("_", "-"), type=harness.positive_int,
                       default=SETTINGS[key])
    p.add_argument("--peak-learning-rate", type=harness.positive_float,
                   default=SETTINGS["peak_learning_rate"])
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    harness.check_out(p, args)
    if args.levels < 2:
        p.error("--levels must be at least 2.")
    if args.dim % args.num_heads:
        p.error(f"--num-heads {args.num_heads} must divide --dim {args.dim}.")
    settings = {**SETTINGS, **{k: getattr(args, k) for k in (
        "train_images", "val_images", "test_images", "epochs", "batch_size", "dim", "depth",
        "num_heads", "mlp_dim", "levels", "samples", "peak_learning_rate")}}
    settings["notebook_test_images"] = min(settings["notebook_test_images"],
                                           settings["test_images"])
    model, record = run(tuple(args.seeds), settings, harness.command_line(MODULE, argv))
    if args.out:
        harness.save_model(model, record, args.out, overwrite=args.overwrite)
    print({"test_bits_per_dim": record["test_bits_per_dim"],
           "baselines": record["baselines_test_bits_per_dim"]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
