"""Fine-tune the course's classifier as a per-patch segmenter of Fashion-MNIST canvases.

    python -m experiments.segment --out data/vit_fashion_segment.keras
    python -m experiments.segment --scratch --out data/vit_fashion_segment_scratch.keras

The task, the model and the scores are :mod:`vitlib.segment`'s; the recipe are
``vitlib.segment.RECIPE`` with the options' changes. ``--scratch`` keeps only the encoder's
architecture (random weights): the baseline. The record beside the checkpoint keeps the command,
the recipe, the encoder file and its SHA-256, the training time and the test scores.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import keras

from experiments import harness
from vitlib.course_files import CLASSIFIER, sha256
from vitlib.data import load_fashion_mnist
from vitlib.model import load_model
from vitlib.segment import (
    NUM_LABELS,
    RECIPE,
    make_task,
    predict_labels,
    scores,
    segmenter_from_classifier,
)
from vitlib.train import build_optimizer, cosine_schedule

MODULE = "experiments.segment"
CLASSIFIER_PATH = f"data/{CLASSIFIER}"


def compile_segmenter(model, steps: int, recipe=RECIPE):
    """AdamW on the course's warm-up + cosine schedule, cross-entropy on every patch, XLA."""
    schedule = cosine_schedule(recipe["peak_learning_rate"],
                               int(recipe["warmup_fraction"] * steps), steps)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=recipe["weight_decay"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")], jit_compile=True)
    return build_optimizer(model)  # one trace of the training step, not two


def run(encoder=CLASSIFIER_PATH, pretrained=True, verbose=2, command="", recipe=RECIPE):
    """Fine-tune the classifier checkpoint ``encoder`` as a segmenter; returns (model, record)."""
    keras.utils.set_random_seed(recipe["seed"])
    classifier = load_model(encoder)
    model = segmenter_from_classifier(classifier, recipe["canvas_size"], NUM_LABELS, pretrained)
    data = load_fashion_mnist()
    x, y = make_task(data, "train", recipe, model.patch_size)
    x_test, y_test = make_task(data, "test", recipe, model.patch_size)
    steps = recipe["epochs"] * -(-len(x) // recipe["batch_size"])
    compile_segmenter(model, steps, recipe)
    start = time.perf_counter()
    history = model.fit(x, y, batch_size=recipe["batch_size"], epochs=recipe["epochs"],
                        shuffle=True, verbose=verbose)
    seconds = time.perf_counter() - start
    record = harness.header(command)
    record.update({
        "encoder": Path(encoder).name,  # with pretrained=False only its architecture is used
        "encoder_sha256": sha256(encoder) if pretrained else None,
        "pretrained": pretrained, "recipe": recipe, "patch_size": model.patch_size,
        "parameters": model.count_params(), "training_seconds": round(seconds, 1),
        "train_loss": [round(v, 4) for v in history.history["loss"]],
        "test": scores(y_test, predict_labels(model, x_test)),
    })
    return model, harness.finish(record)


def main(argv=None) -> int:
    p = harness.parser(__doc__.split("\n\n")[0], "checkpoint path (.keras); its record beside it")
    p.add_argument("--encoder", default=CLASSIFIER_PATH, help="the classifier checkpoint to start from")
    p.add_argument("--scratch", action="store_true", help="random encoder weights (a baseline)")
    for key in ("train_canvases", "test_canvases", "epochs", "batch_size"):
        p.add_argument("--" + key.replace("_", "-"), type=harness.positive_int, default=RECIPE[key])
    p.add_argument("--seed", type=int, default=RECIPE["seed"])
    p.add_argument("--peak-learning-rate", type=harness.positive_float,
                   default=RECIPE["peak_learning_rate"])
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    harness.check_out(p, args)
    if not Path(args.encoder).is_file():
        p.error(f"--encoder {args.encoder} is not a file (a classifier checkpoint, .keras).")
    recipe = {**RECIPE, **{k: getattr(args, k) for k in (
        "train_canvases", "test_canvases", "epochs", "batch_size", "seed", "peak_learning_rate")}}
    model, record = run(args.encoder, pretrained=not args.scratch, recipe=recipe,
                        command=harness.command_line(MODULE, argv))
    if args.out:
        harness.save_model(model, record, args.out, overwrite=args.overwrite)
    print({"test": {k: record["test"][k] for k in ("patch_accuracy", "mean_iou")},
           "training_seconds": record["training_seconds"]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
