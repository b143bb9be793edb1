"""Train a toy VideoBERT: visual words of moving Fashion-MNIST items, and a masked-word model.

    python -m experiments.videobert --seeds 0 1 2 3 4 --out data/videobert.keras

Clips (:func:`vitlib.tokens.make_clips`): 8 frames of 28x28, one item shrunk to 14x14 moving in a
straight line. Every frame becomes a visual word: its class-token features from the course's
classifier (``data/vit_fashion_medium.keras``, frozen) assigned to the nearest of ``k`` k-means
centroids fitted on the TRAINING clips' frames only (seeded). A BERT-style
:class:`vitlib.tokens.VideoBERT` (no causal mask) learns to predict a masked word from the other
seven: every training clip is shown with each of its frames masked in turn, the loss on the masked
word only. Splits: training clips from Fashion-MNIST training images, validation clips from
training images held out of them (the epoch kept for each seed is the one with the best
validation accuracy), test clips from the test images. Scored on the test clips, each frame
masked in turn, against three baselines: the most frequent training word, copying the previous
frame's word, and a count table of the word seen most often between the same two neighbours.
The first seed's model is shipped with its vocabulary (centroids and each word's mean frame).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import keras
import numpy as np

from experiments import harness
from vitlib import tokens
from vitlib.course_files import CLASSIFIER, sha256
from vitlib.data import load_fashion_mnist
from vitlib.model import load_model
from vitlib.train import build_optimizer, cosine_schedule

MODULE = "experiments.videobert"
CLASSIFIER_PATH = f"data/{CLASSIFIER}"
#: The task and recipe of the shipped model (the command's defaults).
SETTINGS = {
    "frames": 8, "frame_size": 28, "factor": 2, "max_speed": 2, "train_clips": 4000,
    "val_clips": 500, "test_clips": 1000, "notebook_test_clips": 200, "held_out_images": 10000,
    "words": 32, "kmeans_seed": 0, "clip_seeds": {"train": 0, "val": 1, "test": 2},
    "dim": 64, "depth": 2, "num_heads": 4, "mlp_dim": 128, "dropout": 0.1, "epochs": 15,
    "batch_size": 256, "peak_learning_rate": 1e-3, "weight_decay": 0.01, "warmup_fraction": 0.05,
}


def clips(settings, data=None) -> dict:
    """The training, validation and test clips of ``settings`` (:class:`vitlib.tokens.Clips`):
    training clips from the first 60,000 - held_out training images, validation clips from the
    held-out ones, test clips from the test images."""
    data = load_fashion_mnist() if data is None else data
    cut = len(data.x_train) - settings["held_out_images"]
    pools = {"train": data.x_train[:cut], "val": data.x_train[cut:], "test": data.x_test}
    return {split: tokens.make_clips(pools[split], settings[f"{split}_clips"],
                                     frames=settings["frames"], size=settings["frame_size"],
                                     factor=settings["factor"], max_speed=settings["max_speed"],
                                     seed=settings["clip_seeds"][split])
            for split in ("train", "val", "test")}


def make_model(settings, feature_dim: int) -> tokens.VideoBERT:
    return tokens.VideoBERT(vocab_size=settings["words"], length=settings["frames"],
                            dim=settings["dim"], depth=settings["depth"],
                            num_heads=settings["num_heads"], mlp_dim=settings["mlp_dim"],
                            dropout=settings["dropout"], feature_dim=feature_dim,
                            frame_size=settings["frame_size"])


class _KeepBest(keras.callbacks.Callback):
    """After each epoch: masked-word accuracy on the validation clips; keeps the best weights."""

    def __init__(self, val_words):
        super().__init__()
        self.val, self.scores, self.best = val_words, [], None

    def on_epoch_end(self, epoch, logs=None):
        score = tokens.accuracy(tokens.masked_predictions(self.model, self.val), self.val)
        self.scores.append(round(score, 4))
        if self.best is None or score > max(self.scores[:-1], default=-1.0):
            self.best = (epoch + 1, [w.copy() for w in self.model.get_weights()])


def train_one(seed: int, words: dict, vocabulary, settings, feature_dim: int, verbose=0):
    """Train one seed on the training words; returns (model at its best epoch, summary)."""
    keras.utils.set_random_seed(seed)
    model = make_model(settings, feature_dim)
    model.build()
    model.set_vocabulary(*vocabulary)
    x, y, w = tokens.masked_inputs(words["train"], model.mask_token)
    steps = settings["epochs"] * -(-len(x) // settings["batch_size"])
    schedule = cosine_schedule(settings["peak_learning_rate"],
                               int(settings["warmup_fraction"] * steps), steps)
    model.compile(optimizer=keras.optimizers.AdamW(schedule,
                                                   weight_decay=settings["weight_decay"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=True)
    build_optimizer(model)
    keep = _KeepBest(words["val"])
    start, cpu = time.perf_counter(), time.process_time()
    history = model.fit(x, y, sample_weight=w, batch_size=settings["batch_size"],
                        epochs=settings["epochs"], shuffle=True, verbose=verbose,
                        callbacks=[keep])
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    best_epoch, weights = keep.best
    model.set_weights(weights)
    predicted = tokens.masked_predictions(model, words["test"])
    n_nb = settings["notebook_test_clips"]
    summary = {
        "seed": seed, "parameters": model.count_params(),
        "training_seconds": round(seconds, 1), "training_cpu_seconds": round(cpu, 1),
        "train_loss": [round(v, 4) for v in history.history["loss"]],
        "val_accuracy": keep.scores, "best_epoch": best_epoch,
        "test_accuracy": round(tokens.accuracy(predicted, words["test"]), 4),
        f"test_accuracy_first_{n_nb}": round(tokens.accuracy(predicted[:n_nb],
                                                             words["test"][:n_nb]), 4),
        "test_accuracy_by_frame": [round(tokens.accuracy(predicted[:, j], words["test"][:, j]), 4)
                                   for j in range(settings["frames"])],
    }
    print(f"seed {seed}: best epoch {best_epoch}, validation {max(keep.scores):.4f}, test "
          f"{summary['test_accuracy']:.4f} ({seconds:.0f} s)", flush=True)
    return model, summary


def run(seeds=(0,), settings=SETTINGS, encoder=CLASSIFIER_PATH, command="", verbose=0):
    """Make the clips and words, train every seed; returns (the first seed's model, record)."""
    keras.utils.set_random_seed(0)
    data = clips(settings)
    classifier = load_model(encoder)
    start = time.perf_counter()
    features = {split: tokens.frame_features(classifier, c.x) for split, c in data.items()}
    feature_seconds = time.perf_counter() - start
    dim = features["train"].shape[-1]
    centroids, train_words, inertia = tokens.kmeans(features["train"].reshape(-1, dim),
                                                    settings["words"], seed=settings["kmeans_seed"])
    frames = data["train"].x.reshape(-1, settings["frame_size"], settings["frame_size"])
    vocabulary = (centroids, tokens.word_images(frames, train_words, settings["words"]))
    words = {"train": train_words.reshape(settings["train_clips"], settings["frames"])}
    for split in ("val", "test"):
        words[split] = tokens.assign(features[split].reshape(-1, dim), centroids).reshape(
            settings[f"{split}_clips"], settings["frames"])
    test, n_nb = words["test"], settings["notebook_test_clips"]
    baselines = {}
    for name, predicted in [
            ("most_frequent_word", tokens.most_frequent_baseline(words["train"], test)),
            ("copy_previous_frame", tokens.copy_baseline(test)),
            ("neighbour_counts", tokens.neighbour_count_baseline(words["train"], test))]:
        baselines[name] = {"test_accuracy": round(tokens.accuracy(predicted, test), 4),
                           f"test_accuracy_first_{n_nb}": round(tokens.accuracy(predicted[:n_nb],
                                                                                test[:n_nb]), 4),
                           "test_accuracy_by_frame": [round(tokens.accuracy(predicted[:, j],
                                                                            test[:, j]), 4)
                                                      for j in range(settings["frames"])]}
    record = harness.header(command)
    runs, shipped = [], None
    for seed in seeds:
        model, summary = train_one(seed, words, vocabulary, settings, dim, verbose)
        runs.append(summary)
        if shipped is None:
            shipped = model
    scores = [r["test_accuracy"] for r in runs]
    usage = np.bincount(words["train"].ravel(), minlength=settings["words"])
    record.update({
        "settings": settings, "seeds": list(seeds), "shipped_seed": seeds[0],
        "encoder": Path(encoder).name, "encoder_sha256": sha256(encoder),
        "split": (f"training clips from the first {60000 - settings['held_out_images']} "
                  f"training images, validation clips from the last "
                  f"{settings['held_out_images']} (best epoch), test clips from the test images"),
        "feature_seconds": round(feature_seconds, 1),
        "kmeans": {"inertia": round(inertia, 2), "train_frames_per_word": usage.tolist(),
                   "words_used_in_test": int(len(np.unique(test)))},
        f"test_words_first_{n_nb}": [" ".join(map(str, row)) for row in test[:n_nb]],
        "runs": runs,
        "test_accuracy": {"mean": round(float(np.mean(scores)), 4),
                          "std": round(float(np.std(scores)), 4),
                          "min": min(scores), "max": max(scores)},
        "baselines": baselines,
    })
    return shipped, harness.finish(record)


def main(argv=None) -> int:
    p = harness.parser(__doc__.split("\n\n")[0], "checkpoint path (.keras); its record beside it")
    p.add_argument("--seeds", type=harness.seed, nargs="+", default=[0],
                   help="one model per seed (same clips and words); the first seed's is shipped")
    p.add_argument("--encoder", default=CLASSIFIER_PATH,
                   help="the classifier whose class token gives the frame features")
    for key in ("train_clips", "val_clips", "test_clips", "words", "epochs", "batch_size", "dim",
                "depth", "num_heads", "mlp_dim"):
        p.add_argument("--" + key.replace("_", "-"), type=harness.positive_int,
                       default=SETTINGS[key])
    p.add_argument("--peak-learning-rate", type=harness.positive_float,
                   default=SETTINGS["peak_learning_rate"])
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    harness.check_out(p, args)
    if not Path(args.encoder).is_file():
        p.error(f"--encoder {args.encoder} is not a file (a classifier checkpoint, .keras).")
    if args.dim % args.num_heads:
        p.error(f"--num-heads {args.num_heads} must divide --dim {args.dim}.")
    settings = {**SETTINGS, **{k: getattr(args, k) for k in (
        "train_clips", "val_clips", "test_clips", "words", "epochs", "batch_size", "dim", "depth",
        "num_heads", "mlp_dim", "peak_learning_rate")}}
    settings["notebook_test_clips"] = min(settings["notebook_test_clips"], settings["test_clips"])
    model, record = run(tuple(args.seeds), settings, args.encoder,
                        harness.command_line(MODULE, argv))
    if args.out:
        harness.save_model(model, record, args.out, overwrite=args.overwrite)
    print({"test_accuracy": record["test_accuracy"],
           "baselines": {k: v["test_accuracy"] for k, v in record["baselines"].items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
