"""ViT vs CNN when data is the limit: a fixed number of epochs per training-set size (notebook 08).

    python -m experiments.data_curve --sizes 500 2000 8000 --epochs 20 --seeds 0 1 2 \\
        --out data/data_curve.json

``experiments.vit_vs_cnn`` gives every run the same wall-clock time, so every run sees about as
many images and the curve is one of compute. Here every run makes ``--epochs`` passes over its
own training set instead: a model trained on 500 images sees 500 x epochs images, one trained on
8,000 sees 16 times more. Both models are about 140k parameters (``vitlib.compare.MODELS``),
trained by :func:`vitlib.train.train` with the course recipe **without random shifts**
(``max_shift=0``; flips kept), so that the shift test below measures the architectures, not the
augmentation. Training sets are class-balanced, nested (each contains the smaller ones) and
drawn from the 55,000 images outside the validation split; every model is scored on the
validation split and on the 10,000 test images, and the models of the largest size also on the
test images shifted right by 1-4 pixels (zeros fill the gap): the shift test.
"""

from __future__ import annotations

import json
import sys
import time

import keras
import numpy as np

from experiments import harness
from experiments.label_efficiency import balanced_subset
from experiments.train import validation_split
from vitlib.compare import MODELS
from vitlib.data import load_fashion_mnist
from vitlib.train import RECIPE, accuracy, to_inputs, train

MODULE = "experiments.data_curve"
SHIFTS = (0, 1, 2, 3, 4)


def shift_right(x: np.ndarray, pixels: int) -> np.ndarray:
    """images (n, H, W, C) moved ``pixels`` to the right; the columns that enter are zeros."""
    if pixels == 0:
        return x
    out = np.zeros_like(x)
    out[:, :, pixels:] = x[:, :, :-pixels]
    return out


def summarise(runs: list[dict]) -> dict:
    """Per model and size: mean, sample std, min and max of the test accuracy over the seeds."""
    out = {}
    for kind in sorted({r["model"] for r in runs}):
        for n in sorted({r["train_images"] for r in runs}):
            acc = np.array([r["test_accuracy"] for r in runs
                            if r["model"] == kind and r["train_images"] == n])
            out[f"{kind} {n}"] = {"mean": round(float(acc.mean()), 4),
                                  "std": round(float(acc.std(ddof=1)), 4) if len(acc) > 1 else 0.0,
                                  "min": round(float(acc.min()), 4),
                                  "max": round(float(acc.max()), 4), "seeds": len(acc)}
    return out


def run(sizes, epochs: int, seeds, command: str = "", log=print) -> dict:
    """Train both models at every size with every seed; return the record."""
    record = harness.header(command)
    recipe = {**RECIPE, "max_shift": 0}
    data = load_fashion_mnist()
    pool, val_idx = validation_split(len(data.y_train), 5000, seed=0)
    x_val, y_val = to_inputs(data.x_train[val_idx]), data.y_train[val_idx]
    x_test = to_inputs(data.x_test)
    runs = []
    for seed in seeds:
        for i, n in enumerate(sizes):
            picked = pool[balanced_subset(data.y_train[pool], n / len(pool), seed=0)]
            x, y = to_inputs(data.x_train[picked]), data.y_train[picked]
            for kind in (("cnn", "vit") if (i + seed) % 2 == 0 else ("vit", "cnn")):
                keras.utils.set_random_seed(seed)
                model = MODELS[kind][1]()
                start = time.perf_counter()
                train(model, x, y, epochs, {**recipe, "seed": seed}, verbose=0)
                row = {"model": kind, "train_images": len(x), "seed": seed,
                       "training_seconds": round(time.perf_counter() - start, 1),
                       "validation_accuracy": round(accuracy(model, x_val, y_val), 4),
                       "test_accuracy": round(accuracy(model, x_test, data.y_test), 4)}
                if n == max(sizes):
                    row["shifted_test_accuracy"] = {
                        str(s): round(accuracy(model, shift_right(x_test, s), data.y_test), 4)
                        for s in SHIFTS}
                runs.append(row)
                log(json.dumps(row), flush=True)
    record.update({
        "what": "Test accuracy of a small CNN and a small ViT of about the same size, each trained "
                "for the same number of epochs on class-balanced subsets of the training images; "
                "the largest size's models also on test images shifted right by 0-4 pixels.",
        "models": {k: v[0] for k, v in MODELS.items()}, "epochs": epochs,
        "sizes": list(sizes), "seeds": list(seeds),
        "recipe": {**recipe, "seed": "the run's seed"},
        "validation_images": len(y_val), "shifts_pixels": list(SHIFTS),
        "runs": runs, "summary": summarise(runs),
    })
    return harness.finish(record)


def main(argv=None) -> int:
    p = harness.parser(__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=harness.positive_int, nargs="+", default=[500, 2000, 8000])
    p.add_argument("--epochs", type=harness.positive_int, default=20)
    p.add_argument("--seeds", type=harness.seed, nargs="+", default=[0, 1, 2])
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    harness.check_out(p, args)
    if max(args.sizes) > 55_000:
        p.error(f"--sizes must be at most 55000 (the images outside the validation split), "
                f"got {max(args.sizes)}.")
    record = run(args.sizes, args.epochs, args.seeds, command=harness.command_line(MODULE, argv))
    if args.out:
        harness.write_record(record, args.out, overwrite=args.overwrite)
    for key, s in record["summary"].items():
        print(key, s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
