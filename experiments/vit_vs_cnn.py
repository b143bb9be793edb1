"""ViT vs CNN at a matched parameter budget and a matched training time (notebook 08).

    python -m experiments.vit_vs_cnn --sizes 1000 5000 20000 60000 --seconds 120 \
        --out data/vit_vs_cnn.json

For every training-set size n (the first n images of one seeded permutation of the 60,000, so each
set contains the smaller ones) it trains the two models of :data:`vitlib.compare.MODELS` from the
same seed, each for the SAME wall-clock budget (``vitlib.compare.train_with_budget``), then tests
them on the 10,000 test images. The runs are interleaved (CNN, ViT, then ViT, CNN, ...) so that
slow phases of a shared machine hit both models. The record keeps per point the test accuracy,
the steps, epochs and images seen, and the load average.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from experiments import harness
from vitlib.compare import MODELS, WARMUP_FRACTION, train_with_budget, training_set
from vitlib.data import load_fashion_mnist
from vitlib.train import RECIPE, accuracy, to_inputs

MODULE = "experiments.vit_vs_cnn"


def run(sizes, seconds: float, recipe=RECIPE, command: str = "", note: str = "", log=print) -> dict:
    """Run the comparison (see the module docstring) and return the record."""
    record = harness.header(command)
    start = time.perf_counter()
    data = load_fashion_mnist()
    x_all, y_all = training_set(data, max(sizes), recipe["seed"])
    x_test = to_inputs(data.x_test)
    parameters = {}
    for kind, (name, build) in MODELS.items():
        model = build()
        trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
        parameters[kind] = {"model": name, "parameters": model.count_params(),
                            "trainable": trainable}
    results = []
    for i, n in enumerate(sizes):
        for kind in (("cnn", "vit") if i % 2 == 0 else ("vit", "cnn")):
            load = harness.load_average()
            model, budget = train_with_budget(kind, x_all[:n], y_all[:n], seconds, recipe)
            images_seen = budget.steps * min(n, recipe["batch_size"])  # full batches only
            point = {
                "model": kind, "train_images": n,
                "test_accuracy": round(accuracy(model, x_test, data.y_test), 4),
                "steps": budget.steps, "epochs": round(images_seen / n, 2),
                "images_seen": images_seen,
                "train_seconds": round(budget.seconds, 1),
                "first_step_seconds": round(budget.first_step_seconds, 1),
                "load_average_at_start": load,
            }
            results.append(point)
            log(json.dumps(point))
    record.update({
        "what": "Test accuracy (10,000 Fashion-MNIST test images) of a small CNN and a small ViT "
                "of about the same size, each trained for the same wall-clock time on the first "
                "n images of a seeded permutation of the training set.",
        "budget_seconds_per_run": seconds, "sizes": list(sizes), "models": parameters,
        "recipe": recipe,
        "schedule": (f"cosine clocked in training time: linear warm-up over the first "
                     f"{WARMUP_FRACTION:.0%} of the budget, cosine decay to 0 at the end of it; "
                     "the clock starts after the first (compiling) step"),
        "order": "interleaved: cnn, vit for the 1st size; vit, cnn for the 2nd; ...",
        "note": note,
        "total_seconds": round(time.perf_counter() - start, 1),
        "results": results,
    })
    return harness.finish(record)


def main(argv=None) -> int:
    p = harness.parser(__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=harness.positive_int, nargs="+", default=[1000, 5000, 20000, 60000])
    p.add_argument("--seconds", type=harness.positive_float, default=120.0,
                   help="training time per model and size, in seconds (the shipped run's: 120)")
    p.add_argument("--note", default="", help="a remark stored in the results")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    harness.check_out(p, args)
    if max(args.sizes) > 60_000:
        p.error(f"--sizes must be at most 60000 (the training set), got {max(args.sizes)}.")
    record = run(args.sizes, args.seconds, note=args.note, command=harness.command_line(MODULE, argv))
    if args.out:
        harness.write_record(record, args.out, overwrite=args.overwrite)
    for kind in MODELS:
        accs = [p["test_accuracy"] for p in record["results"] if p["model"] == kind]
        print(kind, dict(zip(record["sizes"], accs, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
