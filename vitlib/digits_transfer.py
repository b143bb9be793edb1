"""Transfer to a task the model never saw: handwritten digits at a new image size (notebook 09).

    python -m vitlib.digits_transfer --seeds 0 1 2 3 4 --out data/digits_transfer.json

The task: scikit-learn's 1,797 bundled 8x8 digits (offline), enlarged to 32x32 (64 patches of 4x4
instead of Fashion-MNIST's 49), 500 for training and 1,297 for testing (one seeded split). Three
ways to learn it, each with the same seed per run (so the same new head and the same batches):

- ``scratch``: a new ``vit("fashion-small", image_size=32)``, random weights;
- ``probe``: the pretrained encoder frozen; its class-token features are computed once and a new
  linear head is trained on them (the same as training the frozen model, many times cheaper);
- ``full``: the pretrained encoder and a new head, all trained (``finetune.with_new_head``).

``scratch`` and ``full`` use :func:`vitlib.train.compile_for_training` (AdamW, warm-up then cosine
decay, label smoothing; without XLA, which costs more than it saves in 40 steps) for ``EPOCHS``
epochs of batch ``BATCH`` (40 steps); the probe's head gets ``PROBE_EPOCHS`` epochs of the features.
An existing ``--out`` is never overwritten without ``--overwrite``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import numbers
import shlex
import sys
import time
from pathlib import Path

import keras
import numpy as np
from keras import ops

from . import _checks
from .course_files import sha256
from .finetune import freeze_encoder, with_new_head
from .model import ViT, vit
from .records import machine, refuse_existing_out, versions, write_results
from .train import compile_for_training

IMAGE_SIZE, TRAIN_IMAGES, EPOCHS, BATCH, PROBE_EPOCHS = 32, 500, 2, 25, 30
INITS = ("scratch", "probe", "full")
CHECKPOINT = "data/vit_fashion_small.keras"


def load_digits_32(image_size: int = IMAGE_SIZE, train_images: int = TRAIN_IMAGES, seed: int = 0):
    """The digits as float images (n, size, size, 1) in [0, 1] and int labels (n,), split once
    (seeded) into ``train_images`` for training and the rest for testing:
    returns (x_train, y_train, x_test, y_test)."""
    from sklearn.datasets import load_digits

    digits = load_digits()  # images (1797, 8, 8) with values 0..16, labels 0..9
    x = ops.convert_to_numpy(ops.image.resize((digits.images[..., None] / 16.0).astype("float32"),
                                              (image_size, image_size), interpolation="bilinear"))
    order = np.random.default_rng(seed).permutation(len(x))
    tr, te = order[:train_images], order[train_images:]
    return x[tr].astype("float32"), digits.target[tr], x[te].astype("float32"), digits.target[te]


def accuracy(model, x, y, batch_size: int = 500) -> float:
    """Share of images (n, H, W, C) whose largest logit is their label y (n,)."""
    logits = np.concatenate([ops.convert_to_numpy(model(x[i:i + batch_size]))
                             for i in range(0, len(x), batch_size)])
    return float(np.mean(np.argmax(logits, -1) == np.asarray(y)))


def new_model(init: str, pretrained: ViT | None, seed: int = 0) -> ViT:
    """The model a run starts from (``init`` in :data:`INITS`), built after seeding with ``seed``."""
    _checks.one_of("init", init, INITS)
    keras.utils.set_random_seed(seed)
    if init == "scratch":
        return vit("fashion-small", image_size=IMAGE_SIZE)
    model = with_new_head(pretrained, 10, image_size=IMAGE_SIZE)
    return freeze_encoder(model) if init == "probe" else model


def fit(model: ViT, x, y, seed: int = 0, epochs: int = EPOCHS, batch_size: int = BATCH) -> ViT:
    """Train all of ``model``'s trainable weights on x (n, H, W, 1), y (n,) int with the course's
    recipe for ``epochs`` epochs (no XLA). Returns ``model``."""
    keras.utils.set_random_seed(seed)  # the same batches for every model
    compile_for_training(model, len(x) // batch_size, epochs, jit_compile=False)
    model.fit(x, keras.utils.to_categorical(y, 10), batch_size=batch_size, epochs=epochs, verbose=0)
    return model


def probe_features(model: ViT, x, batch_size: int = 500) -> np.ndarray:
    """The encoder's class-token features: images (n, H, W, C) -> (n, dim)."""
    return np.concatenate([ops.convert_to_numpy(model.pool(model.encode(x[i:i + batch_size])))
                           for i in range(0, len(x), batch_size)])


def fit_probe(model: ViT, x_train, y_train, seed: int = 0, epochs: int = PROBE_EPOCHS,
              batch_size: int = BATCH) -> keras.Model:
    """Train ``model.head`` alone on the frozen encoder's features of x_train; returns the
    head as a model on features (n, dim) -> logits (n, 10)."""
    features = probe_features(model, x_train)
    keras.utils.set_random_seed(seed)
    head = keras.Sequential([keras.Input((features.shape[-1],)), model.head])
    head.compile(keras.optimizers.AdamW(1e-3, weight_decay=0.05),
                 keras.losses.CategoricalCrossentropy(from_logits=True))
    head.fit(features, keras.utils.to_categorical(y_train, 10), batch_size=batch_size,
             epochs=epochs, verbose=0)
    return head


def run(init: str, pretrained: ViT | None, data, seed: int = 0) -> float:
    """One run of the experiment; returns the test accuracy."""
    x_tr, y_tr, x_te, y_te = data
    model = new_model(init, pretrained, seed)
    if init == "probe":
        return accuracy(fit_probe(model, x_tr, y_tr, seed), probe_features(model, x_te), y_te)
    return accuracy(fit(model, x_tr, y_tr, seed), x_te, y_te)


def experiment(seeds=(0,), checkpoint=CHECKPOINT, command="", log=print) -> dict:
    """Every init for every seed; returns the record (see the module docstring)."""
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0:
            raise ValueError(f"`seeds` must be integers >= 0, got {s!r} in {list(seeds)!r}.")
    pretrained = keras.saving.load_model(checkpoint, safe_mode=True)
    data = load_digits_32()
    runs, start = [], time.perf_counter()
    for seed in seeds:
        for init in INITS:
            runs.append({"seed": seed, "init": init,
                         "test_accuracy": round(run(init, pretrained, data, seed), 4)})
            log(json.dumps(runs[-1]))
    return {
        "what": "Test accuracy on 1,297 scikit-learn digits at 32x32 after training on 500: "
                "vit('fashion-small') from scratch, a linear probe on the frozen Fashion-MNIST "
                "encoder, and full fine-tuning of it; same seed, recipe and steps per run",
        "command": command, "checkpoint": str(checkpoint),
        "checkpoint_sha256": sha256(checkpoint), "image_size": IMAGE_SIZE,
        "train_images": len(data[0]), "test_images": len(data[2]), "epochs": EPOCHS,
        "batch_size": BATCH, "steps": EPOCHS * (len(data[0]) // BATCH),
        "probe_epochs": PROBE_EPOCHS, "seeds": [int(s) for s in seeds],
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(), "versions": versions(),
        "total_seconds": round(time.perf_counter() - start, 1), "runs": runs,
    }


def summary(record: dict) -> dict:
    """{init: (mean, min, max)} of the test accuracy over the record's seeds."""
    out = {}
    for init in INITS:
        values = [r["test_accuracy"] for r in record["runs"] if r["init"] == init]
        out[init] = (float(np.mean(values)), min(values), max(values))
    return out


def main(argv=None) -> int:
    """Command line: about 30 s per seed on 2 CPU cores (three runs)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--checkpoint", default=CHECKPOINT)
    parser.add_argument("--out", default=None, help="results file (.json)")
    parser.add_argument("--overwrite", action="store_true")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    refuse_existing_out(parser, args.out, args.overwrite)  # before any training
    if not Path(args.checkpoint).is_file():
        parser.error(f"--checkpoint {args.checkpoint} does not exist (make it with "
                     "`python -m vitlib.train --out data/vit_fashion_small.keras`).")
    record = experiment(args.seeds, args.checkpoint,
                        command=shlex.join(["python", "-m", "vitlib.digits_transfer", *argv]))
    if args.out:
        write_results(record, args.out, overwrite=args.overwrite)
    for init, (mean, low, high) in summary(record).items():
        print(f"{init:8s} mean {mean:.3f}  (min {low:.3f}, max {high:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
