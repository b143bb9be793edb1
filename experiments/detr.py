"""Train DETR on canvases of 1-3 Fashion-MNIST items and measure it against two baselines.

    python -m experiments.detr --out data/detr_fashion.keras

The task, the model, the matching, the loss and the scores are :mod:`vitlib.detr`'s; the recipe
is ``vitlib.detr.RECIPE`` with the options' changes. The encoder is a shipped ViT, frozen: by
default notebook 10's segmenter (the course's classifier fine-tuned on canvases); its tokens of
every canvas are computed once, and the decoder, the queries and the two heads are trained on
them, one model per seed (``--seeds``; the first seed's model is shipped). The same decoder is
also trained, with the first seed, on the tokens of ``--compare-encoder`` (default: the classifier
itself), and the two encoders are compared on the validation canvases: the reason for the choice.

The detection threshold is chosen on the validation canvases (made of the 5,000 training images
the classifier never trained on), and so is the baseline's smallest component; the test canvases
(test images only) are scored once at the end. Baselines: the floor (one box per canvas: the
training items' mean box and commonest class), and connected components of the thresholded
canvas, each crop classified by the shipped classifier.

The record beside the checkpoint keeps the command, the recipe, the encoders and their SHA-256,
the times (wall and CPU), the losses, the validation choices, and the scores of every seed, of
the comparison and of both baselines, with the test scores also by number of items.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import keras
import numpy as np

from experiments import harness
from vitlib import detr
from vitlib.course_files import CLASSIFIER, SEGMENTER, sha256
from vitlib.data import load_fashion_mnist
from vitlib.finetune import encoder_layers
from vitlib.model import load_model

MODULE = "experiments.detr"
ENCODER_PATH = f"data/{SEGMENTER}"
CLASSIFIER_PATH = f"data/{CLASSIFIER}"
MIN_PIXELS = (10, 20, 40, 80, 160)  # the baseline's smallest component, chosen on validation
SUMMARY = ("item_accuracy", "located", "mean_iou", "false_per_canvas", "count_accuracy")


def cpu_seconds() -> float:
    """CPU time of this process so far (user + system, all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _scores(found, scenes):
    return {**detr.score(found, scenes), "by_items": detr.score_by_items(found, scenes)}


def _f1(scores: dict, detections: int) -> float:
    return round(2 * scores["item_accuracy"] * scores["items"] / (scores["items"] + detections), 4)


def train_decoder(encoder, tokens, scenes, recipe, seed, say):
    """A DETR on ``encoder``'s (frozen) weights whose decoder and heads are trained on ``tokens``
    of ``scenes["train"]`` with ``seed``; the threshold chosen on ``scenes["val"]``. Returns
    (the DETR, its DecoderOnly, the run's record)."""
    keras.utils.set_random_seed(seed)
    decoder = {k: recipe[k] for k in ("num_queries", "decoder_depth", "decoder_dim",
                                      "decoder_heads", "decoder_mlp_dim", "no_object_weight",
                                      "box_weight")}
    model = detr.detr_from_classifier(encoder, recipe["canvas_size"], **decoder)
    trainee = detr.DecoderOnly(model)
    batch, epochs = recipe["batch_size"], recipe["epochs"]
    detr.compile_detr(trainee, len(scenes["train"]) // batch * epochs, recipe)
    history = detr.train_detr(
        trainee, scenes["train"], epochs, batch, seed, inputs=tokens["train"],
        log=lambda e, loss, s: say(f"  seed {seed}, epoch {e + 1}: loss {loss:.4f} ({s:.0f} s)",
                                   flush=True))
    probs, boxes = detr.predict(trainee, tokens["val"])
    threshold, f1 = detr.choose_threshold(probs, boxes, scenes["val"])
    run = {"seed": seed, "training_seconds": history["seconds"], "loss": history["loss"],
           "threshold": threshold, "threshold_f1_validation": {str(k): v for k, v in f1.items()},
           "validation": detr.score(detr.detections(probs, boxes, threshold), scenes["val"])}
    return model, trainee, run


def run(encoder=ENCODER_PATH, compare=CLASSIFIER_PATH, seeds=(0,), verbose=True, command="",
        recipe=detr.RECIPE):
    """Train one decoder per seed on ``encoder``'s frozen tokens (and one on ``compare``'s, if
    given), score them and the baselines; returns (the first seed's model, record)."""
    say = print if verbose else (lambda *a, **k: None)
    start_cpu, start = cpu_seconds(), time.perf_counter()
    record = harness.header(command)
    data = load_fashion_mnist()
    scenes = {split: detr.make_task(data, split, recipe) for split in ("train", "val", "test")}
    say("canvases: " + ", ".join(f"{len(s)} {k}" for k, s in scenes.items()), flush=True)
    encoders = {"main": encoder, **({"compare": compare} if compare else {})}
    runs, models, choice, encode_seconds = [], [], {}, {}
    for role, path in encoders.items():
        vit = load_model(path)
        t = time.perf_counter()
        base = detr.detr_from_classifier(vit, recipe["canvas_size"], num_queries=1,
                                         decoder_depth=1)  # only its encoder is used here
        tokens = {"train": detr.encode_scenes(base, scenes["train"].x),  # float16: half the memory
                  "val": detr.encode_scenes(base, scenes["val"].x, dtype="float32")}
        encode_seconds[Path(path).name] = round(time.perf_counter() - t, 1)
        say(f"{Path(path).name}: tokens of {len(tokens['train'])} + {len(tokens['val'])} canvases "
            f"({encode_seconds[Path(path).name]:.0f} s)", flush=True)
        for seed in (seeds if role == "main" else seeds[:1]):
            model, trainee, one = train_decoder(vit, tokens, scenes, recipe, seed, say)
            if role == "main":
                probs, boxes = detr.predict(model, scenes["test"].x)
                one["test"] = _scores(detr.detections(probs, boxes, one["threshold"]),
                                      scenes["test"])
                runs.append(one)
                models.append(model)
                say(f"  seed {seed}: test {({k: one['test'][k] for k in SUMMARY})}", flush=True)
            if seed == seeds[0]:
                choice[Path(path).name] = {"threshold": one["threshold"],
                                           "f1": one["threshold_f1_validation"][str(one["threshold"])],
                                           "validation": one["validation"]}
        del tokens

    # Baselines: the floor, and connected components + the classifier (min_pixels on validation).
    classifier = load_model(CLASSIFIER_PATH)
    val, test = scenes["val"], scenes["test"]
    floor = {name: _scores(detr.floor_baseline(scenes["train"], len(s)), s)
             for name, s in (("validation", val), ("test", test))}
    options = {}
    for m in MIN_PIXELS:
        found = detr.component_baseline(classifier, val.x, recipe["threshold"], m)
        options[m] = (_f1(detr.score(found, val), len(found.classes)), found)
    min_pixels = max(options, key=lambda m: (options[m][0], -m))
    components = {
        "validation": _scores(options[min_pixels][1], val),
        "test": _scores(detr.component_baseline(classifier, test.x, recipe["threshold"],
                                                min_pixels), test)}
    summary = {k: {"mean": round(float(np.mean([r["test"][k] for r in runs])), 4),
                   "min": min(r["test"][k] for r in runs), "max": max(r["test"][k] for r in runs)}
               for k in SUMMARY}
    record.update({
        "encoder": Path(encoder).name, "encoder_sha256": sha256(encoder),
        "classifier": Path(CLASSIFIER_PATH).name, "classifier_sha256": sha256(CLASSIFIER_PATH),
        "frozen_encoder": True, "recipe": recipe, "seeds": list(seeds), "shipped_seed": seeds[0],
        "parameters": models[0].count_params(),
        "trainable_parameters": models[0].count_params() - sum(
            layer.count_params() for layer in encoder_layers(models[0])),
        "encode_seconds": encode_seconds,
        "wall_seconds": round(time.perf_counter() - start, 1),
        "cpu_seconds": round(cpu_seconds() - start_cpu, 1),
        "runs": runs, "test_summary": summary,
        "note": ("The segmenter was fine-tuned (notebook 10) on canvases of all 60,000 training "
                 "images, so it has seen some of the validation images: the encoder choice on "
                 "validation slightly favours it. The test canvases (test images) are unaffected."),
        "encoder_choice": {"what": f"the same decoder (seed {seeds[0]}) on each encoder's frozen "
                                   "tokens, scored on the validation canvases", **choice},
        "baselines": {
            "floor": {"what": "one detection per canvas: the mean training box, the commonest "
                              "training class", **floor},
            "components": {"what": "connected components (8-neighbours) of the pixels >= "
                                   f"{recipe['threshold']}, each crop classified by "
                                   f"{Path(CLASSIFIER_PATH).name}",
                           "min_pixels": min_pixels,
                           "min_pixels_f1_validation": {str(k): v[0] for k, v in options.items()},
                           **components}},
    })
    return models[0], harness.finish(record)


def main(argv=None) -> int:
    p = harness.parser(__doc__.split("\n\n")[0], "checkpoint path (.keras); its record beside it")
    p.add_argument("--encoder", default=ENCODER_PATH,
                   help="the shipped ViT whose frozen encoder DETR uses")
    p.add_argument("--compare-encoder", default=CLASSIFIER_PATH,
                   help="another ViT to compare on validation ('none' to skip)")
    p.add_argument("--seeds", type=harness.seed, nargs="+", default=[0, 1, 2])
    for key in ("train_canvases", "val_canvases", "test_canvases", "epochs", "batch_size"):
        p.add_argument("--" + key.replace("_", "-"), type=harness.positive_int,
                       default=detr.RECIPE[key])
    p.add_argument("--peak-learning-rate", type=harness.positive_float,
                   default=detr.RECIPE["peak_learning_rate"])
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    if args.out:
        message = harness.existing([args.out, Path(args.out).with_suffix(".json")], args.overwrite)
        if message:
            p.error(f"--out {message}")
    compare = None if args.compare_encoder.lower() == "none" else args.compare_encoder
    for option, path in (("--encoder", args.encoder), ("--compare-encoder", compare)):
        if path and not Path(path).is_file():
            p.error(f"{option} {path} is not a file (a shipped ViT checkpoint, .keras).")
    recipe = {**detr.RECIPE, **{k: getattr(args, k) for k in (
        "train_canvases", "val_canvases", "test_canvases", "epochs", "batch_size",
        "peak_learning_rate")}}
    model, record = run(args.encoder, compare, tuple(args.seeds), recipe=recipe,
                        command=harness.command_line(MODULE, argv))
    if args.out:
        harness.save_model(model, record, args.out, overwrite=args.overwrite)
    print({"test (mean over seeds)": {k: v["mean"] for k, v in record["test_summary"].items()},
           "components": {k: record["baselines"]["components"]["test"][k] for k in SUMMARY},
           "wall_seconds": record["wall_seconds"], "cpu_seconds": record["cpu_seconds"]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
