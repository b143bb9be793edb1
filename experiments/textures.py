"""Fine-tuning on a folder of texture tiles, against simple baselines, over seeds (notebook 11).

    python -m experiments.textures --seeds 0 1 2 3 4 --out data/textures_finetune.json

The folder is ``vitlib.data.write_texture_folder`` (3 classes, 64 tiles each, mixed sizes and
colour modes), read at the course encoder's 28x28 grey by centre crop, with the stratified
validation split of notebook 11 (``folders.split(labels, 0.25, seed=0)``: 144 training and 48
validation tiles). The record holds, on the validation tiles:

- three baselines that involve no training randomness, each a logistic regression (scikit-learn,
  L-BFGS, ``max_iter=2000``, on features standardised by the training images): on the raw
  pixels; on four statistics per tile (mean, standard deviation, mean absolute horizontal and
  vertical difference); on the frozen pretrained encoder's pooled features (a linear probe
  trained to convergence); and, as a control, on the pooled features of the same architecture
  with random weights (seed 0);
- per seed, the fine-tuned ViT (``finetune.fit_in_two_stages`` with notebook 11's settings:
  5 epochs of the head alone at 3e-3, then 5 of everything at 3e-4, batch 32) and the same
  architecture and recipe from random weights (from scratch).

The seed sets the new head's first weights and the order of the batches; the split is fixed.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time

import keras
import numpy as np

from experiments import harness
from vitlib.course_files import CLASSIFIER, sha256

MODULE = "experiments.textures"
CHECKPOINT = f"data/{CLASSIFIER}"
SETTINGS = {"image_size": 28, "channels": 1, "fit": "crop", "validation_fraction": 0.25,
            "split_seed": 0, "head_epochs": 5, "full_epochs": 5, "head_learning_rate": 3e-3,
            "full_learning_rate": 3e-4, "batch_size": 32}


def tile_statistics(images) -> np.ndarray:
    """uint8 tiles (n, H, W, 1) -> (n, 4): mean, standard deviation, mean |horizontal
    difference| and mean |vertical difference| of the grey levels (0..1)."""
    x = np.asarray(images, dtype="float64").mean(axis=-1) / 255.0  # grey, any channels
    return np.stack([x.mean(axis=(1, 2)), x.std(axis=(1, 2)),
                     np.abs(np.diff(x, axis=2)).mean(axis=(1, 2)),
                     np.abs(np.diff(x, axis=1)).mean(axis=(1, 2))], axis=1)


def logistic_accuracy(features, labels, train_idx, val_idx) -> float:
    """Validation accuracy of a logistic regression (L-BFGS to convergence) on ``features``,
    each standardised by the training images' mean and standard deviation."""
    from sklearn.linear_model import LogisticRegression

    f = np.asarray(features, dtype="float64")
    f = (f - f[train_idx].mean(axis=0)) / (f[train_idx].std(axis=0) + 1e-12)
    model = LogisticRegression(max_iter=2000).fit(f[train_idx], labels[train_idx])
    return float(model.score(f[val_idx], labels[val_idx]))


def load_textures(root):
    """``(data, train_idx, val_idx)``: the folder read and split as in notebook 11."""
    from vitlib import folders

    s = SETTINGS
    data = folders.load_folder(root, s["image_size"], s["channels"], s["fit"])
    train_idx, val_idx = folders.split(data.y, s["validation_fraction"], s["split_seed"])
    return data, train_idx, val_idx


def fine_tune(data, train_idx, val_idx, seed: int, checkpoint=CHECKPOINT,
              pretrained: bool = True) -> float:
    """The validation accuracy after notebook 11's two stages, from the pretrained encoder
    (``pretrained=True``) or from random weights of the same architecture."""
    from vitlib import finetune, folders
    from vitlib.model import ViT, architecture

    s = SETTINGS
    keras.utils.set_random_seed(seed)  # the new head's first weights
    model, scale = finetune.load_pretrained(checkpoint, num_classes=len(data.class_names))
    if not pretrained:
        model = ViT(**architecture(model))
        model.build()
    x = folders.scale_images(data.x, scale)
    keras.utils.set_random_seed(seed)  # the order of the batches
    history = finetune.fit_in_two_stages(
        model, x[train_idx], data.y[train_idx], (x[val_idx], data.y[val_idx]),
        head_epochs=s["head_epochs"], full_epochs=s["full_epochs"],
        head_learning_rate=s["head_learning_rate"], full_learning_rate=s["full_learning_rate"],
        batch_size=s["batch_size"], verbose=0)
    return float(history["full"]["val_accuracy"][-1])


def baselines(data, train_idx, val_idx, checkpoint=CHECKPOINT) -> dict:
    """The four deterministic baselines (module docstring): {name: validation accuracy}."""
    from keras import ops

    from vitlib.model import ViT, architecture, load_model

    encoder = load_model(checkpoint)
    keras.utils.set_random_seed(0)
    random_encoder = ViT(**architecture(encoder))  # the control: no pretraining at all
    random_encoder.build()
    x = data.x.astype("float32") / 255.0

    def features(model):
        return np.concatenate([ops.convert_to_numpy(model.pool(model.encode(x[i:i + 64])))
                               for i in range(0, len(x), 64)])

    y = data.y
    return {
        "pixels": logistic_accuracy(data.x.reshape(len(y), -1) / 255.0, y, train_idx, val_idx),
        "statistics": logistic_accuracy(tile_statistics(data.x), y, train_idx, val_idx),
        "frozen_probe": logistic_accuracy(features(encoder), y, train_idx, val_idx),
        "random_probe": logistic_accuracy(features(random_encoder), y, train_idx, val_idx),
    }


def summarise(runs: list[dict]) -> dict:
    """Per start ("pretrained", "scratch"): mean, sample std, min and max over the seeds."""
    out = {}
    for start in ("pretrained", "scratch"):
        values = np.array([r["validation_accuracy"] for r in runs if r["start"] == start])
        if len(values):
            out[start] = {"mean": round(float(values.mean()), 4),
                          "std": round(float(values.std(ddof=1)), 4) if len(values) > 1 else 0.0,
                          "min": round(float(values.min()), 4),
                          "max": round(float(values.max()), 4), "seeds": len(values)}
    return out


def run(seeds, checkpoint=CHECKPOINT, command: str = "", log=print) -> dict:
    from vitlib.data import write_texture_folder

    record = harness.header(command)
    with tempfile.TemporaryDirectory() as tmp:
        data, train_idx, val_idx = load_textures(write_texture_folder(f"{tmp}/textures"))
        start = time.perf_counter()
        base = {k: round(v, 4) for k, v in baselines(data, train_idx, val_idx, checkpoint).items()}
        log(json.dumps(base), flush=True)
        runs = []
        for seed in seeds:
            for pretrained in (True, False):
                t0 = time.perf_counter()
                accuracy = fine_tune(data, train_idx, val_idx, seed, checkpoint, pretrained)
                runs.append({"seed": seed, "start": "pretrained" if pretrained else "scratch",
                             "validation_accuracy": round(accuracy, 4),
                             "seconds": round(time.perf_counter() - t0, 1)})
                log(json.dumps(runs[-1]), flush=True)
    record.update({
        "what": "Validation accuracy on notebook 11's texture tiles (48 of 192): logistic "
                "regressions on pixels, on four statistics and on the frozen encoder's "
                "features; the ViT fine-tuned from the course checkpoint and from scratch",
        "checkpoint": checkpoint, "checkpoint_sha256": sha256(checkpoint),
        "settings": SETTINGS, "images": len(data.y), "train_images": len(train_idx),
        "validation_images": len(val_idx), "class_names": data.class_names,
        "baselines": base, "seeds": list(seeds), "runs": runs, "summary": summarise(runs),
        "total_seconds": round(time.perf_counter() - start, 1),
    })
    return harness.finish(record)


def main(argv=None) -> int:
    p = harness.parser(__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=harness.seed, nargs="+", default=[0, 1, 2, 3, 4])
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    harness.check_out(p, args)
    record = run(args.seeds, command=harness.command_line(MODULE, argv))
    if args.out:
        harness.write_record(record, args.out, overwrite=args.overwrite)
    print("baselines:", record["baselines"])
    for start, s in record["summary"].items():
        print(f"{start:10s} mean {s['mean']:.3f} (min {s['min']:.3f}, max {s['max']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
