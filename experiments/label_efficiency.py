"""Label efficiency (ラベル効率): does MAE pretraining help when only a few images are labelled?

    python -m experiments.label_efficiency --fractions 0.01 0.05 0.1 \\
        --encoder data/mae_fashion_small.keras --out data/label_efficiency.json

For each fraction f it draws a seeded, class-balanced subset of the 60,000 labelled training
images (f * 6,000 per class) and trains ``make_vit("fashion-small")`` on it twice: from the pretrained
encoder (``--encoder``: an MAE or a ViT ``.keras``; the head is new) and from scratch. Both runs
use the same seed (so the same new head and the same batches), the recipe of
:data:`vitlib.train.RECIPE` (``compile_for_training``: AdamW, warm-up over the first tenth of the
steps then cosine decay, label smoothing, XLA) and the same number of ``--steps``; the two are
interleaved (pretrained first for the 1st fraction, scratch first for the 2nd, ...). Each model is
tested on all 10,000 test images. An existing ``--out`` is never overwritten without
``--overwrite``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import keras
import numpy as np

from experiments import harness
from vitlib.compare import EndlessBatches
from vitlib.course_files import MAE
from vitlib.data import load_fashion_mnist
from vitlib.finetune import copy_encoder
from vitlib.mae import MaskedAutoencoder
from vitlib.model import ViT, load_model, make_vit
from vitlib.train import RECIPE, accuracy, compile_for_training, to_inputs

MODULE = "experiments.label_efficiency"
STEPS = 250  # training steps per run


def balanced_subset(labels, fraction: float, seed: int = 0) -> np.ndarray:
    """Indices of round(fraction * count) images of every class (at least 1), sorted.

    labels (n,) int -> indices (m,). Each class is shuffled with the same seeded generator and
    its first images are taken, so the subset of a smaller fraction lies inside a larger one.
    """
    if not 0.0 < float(fraction) <= 1.0:
        raise ValueError(f"`fraction` must be a number in (0, 1], got {fraction!r}.")
    labels, rng = np.asarray(labels), np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        picked.append(members[: max(1, round(fraction * len(members)))])
    return np.sort(np.concatenate(picked))


def load_encoder(path) -> ViT:
    """The pretrained ViT in ``path``: the encoder of a saved MAE, or a saved ViT."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"`encoder` {path} does not exist; make it with "
                                "`python -m experiments.mae --out data/mae_fashion_small.keras`.")
    loaded = load_model(path)
    if isinstance(loaded, MaskedAutoencoder):
        return loaded.encoder
    if isinstance(loaded, ViT):
        return loaded
    raise ValueError(f"`encoder` {path} holds a {type(loaded).__name__}, not an MAE or a ViT.")


def train_run(x, y, steps: int, pretrained: ViT | None = None, recipe=RECIPE):
    """Train ``make_vit("fashion-small")`` (from ``pretrained``'s encoder, or from scratch) for
    ``steps`` full batches of x (n, 28, 28, 1) float, y (n,) int. Returns (model, seconds)."""
    keras.utils.set_random_seed(recipe["seed"])  # the same head and batches for both starts
    model = make_vit("fashion-small")
    if pretrained is not None:
        copy_encoder(pretrained, model)
    # The recipe's schedule, counted in steps: warm-up over the first tenth, cosine to 0 at the end.
    compile_for_training(model, steps_per_epoch=1, epochs=steps,
                         recipe={**recipe, "warmup_epochs": max(1, steps // 10)})
    batches = EndlessBatches(x, y, recipe["batch_size"], recipe["max_shift"], recipe["flip"],
                             seed=recipe["seed"])
    start = time.perf_counter()
    model.fit(batches, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
    return model, time.perf_counter() - start


def label_efficiency(fractions, encoder_path, steps=STEPS, recipe=RECIPE, command="",
                     log=print) -> dict:
    """Run the experiment of the module docstring and return the record."""
    pretrained = load_encoder(encoder_path)
    data = load_fashion_mnist()
    record = harness.header(command)
    runs, start = [], time.perf_counter()
    for i, fraction in enumerate(fractions):
        idx = balanced_subset(data.y_train, fraction, recipe["seed"])
        x, y = to_inputs(data.x_train[idx]), data.y_train[idx]
        for init in (("mae", "scratch") if i % 2 == 0 else ("scratch", "mae")):
            load = harness.load_average()
            model, seconds = train_run(x, y, steps, pretrained if init == "mae" else None, recipe)
            run = {"fraction": fraction, "train_images": len(idx), "init": init, "steps": steps,
                   "epochs": round(steps * recipe["batch_size"] / len(idx), 1),
                   "train_seconds": round(seconds, 1),
                   "test_accuracy": round(accuracy(model, to_inputs(data.x_test), data.y_test), 4),
                   "load_average_at_start": load}
            runs.append(run)
            log(json.dumps(run))
    record.update({
        "what": "Test accuracy (10,000 Fashion-MNIST test images) of make_vit('fashion-small') "
                "fine-tuned from a pretrained encoder vs trained from scratch, on class-balanced "
                "fractions of the labelled training images; same seed, recipe and steps.",
        "encoder": str(encoder_path), "recipe": recipe, "steps": steps,
        "schedule": "warm-up over the first tenth of the steps, cosine to 0",
        "total_seconds": round(time.perf_counter() - start, 1),
        "runs": runs,
    })
    return harness.finish(record)


def main(argv=None) -> int:
    p = harness.parser(__doc__.split("\n\n")[0])
    p.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.05, 0.1])
    p.add_argument("--encoder", default=f"data/{MAE}")
    p.add_argument("--steps", type=harness.positive_int, default=STEPS, help="training steps per run")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    harness.check_out(p, args)
    try:
        for f in args.fractions:
            balanced_subset([0], f)  # checks every fraction before any training
    except ValueError as error:
        p.error(f"--fractions: {error}")
    record = label_efficiency(args.fractions, args.encoder, args.steps,
                              command=harness.command_line(MODULE, argv))
    if args.out:
        harness.write_record(record, args.out, overwrite=args.overwrite)
    for init in ("mae", "scratch"):
        print(init, {r["fraction"]: r["test_accuracy"] for r in record["runs"] if r["init"] == init})
    return 0


if __name__ == "__main__":
    sys.exit(main())
