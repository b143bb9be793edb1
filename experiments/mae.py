"""Pretrain a masked autoencoder (MAE) on the Fashion-MNIST training images, labels unused.

    python -m experiments.mae --epochs 8 --out data/mae_fashion_small.keras

The model is ``vitlib.mae.masked_autoencoder()`` (its encoder is ``make_vit("fashion-small")``); the
recipe is :data:`RECIPE` (AdamW with beta_2 = 0.95 and weight decay 0.05, as in MAE, Appendix
A.1). Writes the MAE without optimizer state and a JSON record beside it.
"""

from __future__ import annotations

import sys
import time

import keras
import numpy as np

from experiments import harness
from vitlib.data import load_fashion_mnist
from vitlib.mae import masked_autoencoder
from vitlib.train import AugmentedBatches, adamw, build_optimizer, to_inputs

MODULE = "experiments.mae"
RECIPE = {
    "batch_size": 128, "peak_learning_rate": 1.5e-3, "weight_decay": 0.05, "beta_2": 0.95,
    "warmup_epochs": 1, "max_shift": 2, "flip": True, "mask_ratio": 0.75,
    "norm_pix_loss": False, "seed": 0,
}


def pretrain(epochs=8, limit=None, recipe=RECIPE, command="", verbose=2):
    """Pretrain ``masked_autoencoder()`` on the training images for ``epochs``; ``limit`` keeps
    only the first ``limit`` images (quick trials). Returns ``(model, record)``."""
    keras.utils.set_random_seed(recipe["seed"])
    x = load_fashion_mnist().x_train[:limit]
    # Full batches only (59,904 of the 60,000 images): a smaller last batch would make XLA
    # compile the training step a second time.
    x = to_inputs(x[: max(1, len(x) // recipe["batch_size"]) * recipe["batch_size"]])
    batches = AugmentedBatches(x, np.zeros(len(x), "int32"), recipe["batch_size"],
                               recipe["max_shift"], recipe["flip"], seed=recipe["seed"])
    model = masked_autoencoder(mask_ratio=recipe["mask_ratio"],
                               norm_pix_loss=recipe["norm_pix_loss"], seed=recipe["seed"])
    model.compile(optimizer=adamw(recipe, len(batches), epochs), jit_compile=True)
    build_optimizer(model)  # one trace of the training step, not two
    record = harness.header(command)
    start = time.perf_counter()
    history = model.fit(batches, epochs=epochs, verbose=verbose)
    seconds = time.perf_counter() - start
    encoder = sum(int(np.prod(w.shape)) for w in model.encoder.weights) - sum(
        int(np.prod(w.shape)) for w in model.encoder.head.weights)
    record.update({
        "what": "MAE pretraining of make_vit('fashion-small') on the Fashion-MNIST training images "
                "(labels unused); loss = mean squared error on the hidden patches",
        "epochs": epochs, "recipe": recipe, "train_images": len(x),
        "parameters": {"encoder_without_head": encoder,
                       "decoder": model.count_params() - model.encoder.count_params()},
        "loss_per_epoch": [round(v, 5) for v in history.history["loss"]],
        "training_seconds": round(seconds, 1),
    })
    return model, harness.finish(record)


def main(argv=None) -> int:
    p = harness.parser(__doc__.split("\n\n")[0], "the pretrained MAE (.keras); its record beside it")
    p.add_argument("--epochs", type=harness.positive_int, default=8)
    p.add_argument("--limit", type=harness.positive_int, default=None,
                   help="use only the first N training images")
    p.add_argument("--recipe", nargs="*", default=[], metavar="KEY=VALUE",
                   help=f"recipe changes; keys: {', '.join(RECIPE)}")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    harness.check_out(p, args)
    try:
        recipe = harness.changes(args.recipe, RECIPE)
    except ValueError as error:
        p.error(str(error))
    model, record = pretrain(args.epochs, args.limit, recipe,
                             command=harness.command_line(MODULE, argv))
    if args.out:
        harness.save_model(model, record, args.out, overwrite=args.overwrite)
    print({k: record[k] for k in ("loss_per_epoch", "training_seconds")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
