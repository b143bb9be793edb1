"""Transfer to a task the model never saw: handwritten digits at a new image size (notebook 09).

    python -m experiments.digits_transfer --seeds 0 1 2 3 4 --out data/digits_transfer.json

The task: ``vitlib.data.load_digits()``, scikit-learn's 1,797 bundled 8x8 digits enlarged to 32x32
(64 patches of 4x4 instead of Fashion-MNIST's 49), 500 for training and 1,297 for testing. Five
ways to learn it, each with the same seed per run (so the same new head and the same batches):

- ``scratch``: a new ViT of the checkpoint's architecture at 32x32, random weights, trained for
  the same 40 steps as ``full``;
- ``scratch_long`` and ``full_long``: the same as ``scratch`` and ``full``, trained for
  ``LONG_EPOCHS`` epochs (1,000 steps, with XLA), until they fit their 500 training images (the
  record keeps the training accuracy to show it): does the head start last?
- ``pixels``: a linear classifier on the raw pixels (1,024 per image): the baseline that needs
  no network at all;
- ``probe``: the pretrained encoder frozen; its class-token features are computed once and a new
  linear head is trained on them (the same as training the frozen model, many times cheaper);
- ``full``: the pretrained encoder and a new head, all trained (``finetune.with_new_head``).

``scratch`` and ``full`` use :func:`vitlib.train.compile_for_training` (without XLA, which costs
more than it saves in 40 steps) for ``EPOCHS`` epochs of batch ``BATCH``. ``pixels`` and
``probe`` are the same linear classifier (:func:`fit_linear`), trained for ``PROBE_EPOCHS`` epochs
on their features. No choice is made on the test digits: every budget is fixed in advance.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import keras
import numpy as np
from keras import ops

from experiments import harness
from vitlib.course_files import CLASSIFIER, sha256
from vitlib.data import load_digits
from vitlib.finetune import freeze_encoder, with_new_head
from vitlib.model import ViT, architecture, load_model
from vitlib.train import accuracy, compile_for_training

MODULE = "experiments.digits_transfer"
IMAGE_SIZE, TRAIN_IMAGES, EPOCHS, BATCH, PROBE_EPOCHS, LONG_EPOCHS = 32, 500, 2, 25, 30, 50
INITS = ("pixels", "scratch", "probe", "full", "scratch_long", "full_long")
CHECKPOINT = f"data/{CLASSIFIER}"


def new_model(init: str, pretrained: ViT, seed: int = 0) -> ViT:
    """The model a run starts from (``init`` in :data:`INITS`, except ``pixels``, which has no
    network), built after seeding with ``seed``."""
    keras.utils.set_random_seed(seed)
    if init.startswith("scratch"):
        model = ViT(**{**architecture(pretrained), "image_size": IMAGE_SIZE, "num_classes": 10})
        model.build()
        return model
    model = with_new_head(pretrained, 10, image_size=IMAGE_SIZE)
    return freeze_encoder(model) if init == "probe" else model


def fit(model: ViT, x, y, seed: int = 0, epochs: int = EPOCHS) -> ViT:
    """Train all of ``model``'s trainable weights with the course's recipe for ``epochs``
    (XLA only for runs longer than ``EPOCHS``, where it pays for its compilation)."""
    keras.utils.set_random_seed(seed)  # the same batches for every model
    compile_for_training(model, len(x) // BATCH, epochs, jit_compile=epochs > EPOCHS)
    model.fit(x, keras.utils.to_categorical(y, 10), batch_size=BATCH, epochs=epochs, verbose=0)
    return model


def probe_features(model: ViT, x, batch_size: int = 500) -> np.ndarray:
    """The encoder's pooled (class-token) features: images (n, H, W, C) -> (n, dim)."""
    return np.concatenate([ops.convert_to_numpy(model.pool(model.encode(x[i:i + batch_size])))
                           for i in range(0, len(x), batch_size)])


def pixel_features(x) -> np.ndarray:
    """The raw pixels as features: images (n, H, W, C) -> (n, H * W * C)."""
    return np.asarray(x).reshape(len(x), -1)


def fit_linear(features, y_train, head: keras.layers.Dense, seed: int = 0) -> keras.Model:
    """A linear classifier: ``head`` trained alone on ``features`` (n, d) for ``PROBE_EPOCHS``;
    returns it as a model on features (n, d) -> logits (n, 10). The same for every feature."""
    keras.utils.set_random_seed(seed)
    linear = keras.Sequential([keras.Input((features.shape[-1],)), head])
    linear.compile(keras.optimizers.AdamW(1e-3, weight_decay=0.05),
                   keras.losses.CategoricalCrossentropy(from_logits=True))
    linear.fit(features, keras.utils.to_categorical(y_train, 10), batch_size=BATCH,
               epochs=PROBE_EPOCHS, verbose=0)
    return linear


def run_one(init: str, pretrained: ViT, data, seed: int = 0) -> dict:
    """One run of the experiment: {"test_accuracy": ..., "train_accuracy": ...}."""
    x_tr, y_tr, x_te, y_te = data
    if init == "pixels":
        keras.utils.set_random_seed(seed)
        linear = fit_linear(pixel_features(x_tr), y_tr, keras.layers.Dense(10, name="head"), seed)
        return {"test_accuracy": accuracy(linear, pixel_features(x_te), y_te),
                "train_accuracy": accuracy(linear, pixel_features(x_tr), y_tr)}
    model = new_model(init, pretrained, seed)
    if init == "probe":
        def features(x):
            return probe_features(model, x)

        linear = fit_linear(features(x_tr), y_tr, model.head, seed)
        return {"test_accuracy": accuracy(linear, features(x_te), y_te),
                "train_accuracy": accuracy(linear, features(x_tr), y_tr)}
    fit(model, x_tr, y_tr, seed, LONG_EPOCHS if init.endswith("_long") else EPOCHS)
    return {"test_accuracy": accuracy(model, x_te, y_te),
            "train_accuracy": accuracy(model, x_tr, y_tr)}


def run(seeds=(0,), checkpoint=CHECKPOINT, command="", log=print) -> dict:
    """Every init for every seed; returns the record."""
    pretrained = load_model(checkpoint)
    data = load_digits(IMAGE_SIZE, TRAIN_IMAGES)
    record = harness.header(command)
    runs, start = [], time.perf_counter()
    for seed in seeds:
        for init in INITS:
            t0 = time.perf_counter()
            result = run_one(init, pretrained, data, seed)
            runs.append({"seed": seed, "init": init,
                         **{k: round(v, 4) for k, v in result.items()},
                         "seconds": round(time.perf_counter() - t0, 1)})
            log(json.dumps(runs[-1]))
    record.update({
        "what": "Test accuracy on 1,297 scikit-learn digits at 32x32 after training on 500: the "
                "checkpoint's architecture from scratch, a linear classifier on the raw pixels, a "
                "linear probe on the frozen Fashion-MNIST encoder, and full fine-tuning of it; "
                "from scratch and fully fine-tuned for 40 steps and for 1,000; same seed and recipe",
        "checkpoint": Path(checkpoint).as_posix(), "checkpoint_sha256": sha256(checkpoint),
        "image_size": IMAGE_SIZE, "train_images": len(data[0]), "test_images": len(data[2]),
        "epochs": EPOCHS, "batch_size": BATCH, "steps": EPOCHS * (len(data[0]) // BATCH),
        "probe_epochs": PROBE_EPOCHS, "long_epochs": LONG_EPOCHS,
        "long_steps": LONG_EPOCHS * (len(data[0]) // BATCH), "seeds": [int(s) for s in seeds],
        "total_seconds": round(time.perf_counter() - start, 1), "runs": runs,
    })
    return harness.finish(record)


def summary(record: dict) -> dict:
    """{init: (mean, min, max)} of the test accuracy over the record's seeds."""
    out = {}
    for init in INITS:
        values = [r["test_accuracy"] for r in record["runs"] if r["init"] == init]
        if values:  # records may hold only some of the inits
            out[init] = (float(np.mean(values)), min(values), max(values))
    return out


def main(argv=None) -> int:
    p = harness.parser(__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=harness.seed, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--checkpoint", default=CHECKPOINT)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    harness.check_out(p, args)
    if not Path(args.checkpoint).is_file():
        p.error(f"--checkpoint {args.checkpoint} does not exist (make it with "
                "`python -m experiments.train --out ...`).")
    record = run(args.seeds, args.checkpoint, command=harness.command_line(MODULE, argv))
    if args.out:
        harness.write_record(record, args.out, overwrite=args.overwrite)
    for init, (mean, low, high) in summary(record).items():
        print(f"{init:12s} mean {mean:.3f}  (min {low:.3f}, max {high:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
