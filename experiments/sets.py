"""Set Transformer against Deep Sets: count the distinct classes in a set of items (notebook 14).

    python -m experiments.sets --out data/sets.json

The task and the models are :mod:`vitlib.set_tasks`'s. The elements are the course's classifier's
frozen class tokens (``data/vit_fashion_medium.keras``): training sets are drawn from its 55,000
training images, validation sets from its 5,000 validation images (the course's seeded split,
``experiments.train.validation_split``), test sets from the first 2,000 test images (notebook 14
recomputes their features in seconds). Three models of about the same size (about 75k parameters),
each trained with the same recipe, the same number of steps and the same sets (``SetBatches`` is
seeded by the run's seed), for every seed:

- ``deep_sets``: per-element MLP, mean pooling, MLP (Zaheer et al. 2017), the baseline;
- ``set_transformer_sab``: two SAB blocks + PMA (Lee et al. 2019);
- ``set_transformer_isab``: one ISAB block (8 inducing points) + PMA.

Two references without learning: the most frequent count of each set size in the validation
sets, and the classifier's own rule, "classify each item, count the distinct predicted classes".
One learning rate for every model, fixed before the runs (not tuned: ``--learning-rates`` with
several rates would run each model with each rate on seed 0 and keep each model's best on the
VALIDATION sets; the test sets are never used to choose). The validation scores are recorded too.

Writes the record (``--out``) and, beside it, each model's seed-0 checkpoint
(``sets_<model>.keras``); refuses to replace any of them without ``--overwrite``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import keras
import numpy as np

from experiments import harness
from experiments.train import validation_split
from vitlib import set_tasks
from vitlib.course_files import CLASSIFIER, sha256
from vitlib.data import load_fashion_mnist
from vitlib.model import load_model
from vitlib.train import build_optimizer, cosine_schedule, jit_for_backend

MODULE = "experiments.sets"
CLASSIFIER_PATH = f"data/{CLASSIFIER}"
#: The task and the training recipe (the command's defaults).
RECIPE = {"sizes": list(set_tasks.SIZES), "steps": 3000, "batch_size": 64,
          "peak_learning_rate": 1e-3, "weight_decay": 1e-4, "warmup_fraction": 0.05,
          "eval_sets_per_size": 200, "val_seed": 1, "test_seed": 2, "test_pool": 2000}


def pools(classifier_path=CLASSIFIER_PATH, recipe=RECIPE, cache=None, log=print) -> dict:
    """Features (frozen class tokens), labels and the classifier's predicted classes of the three
    pools of items: ``{"train"|"val"|"test": (features, labels, predicted)}``.

    ``cache``: an ``.npz`` file; read if it holds this classifier's (same SHA-256) features of
    the same pools, else written after computing them (minutes for the 55,000 training items)."""
    digest = sha256(classifier_path)
    if cache and Path(cache).is_file():
        with np.load(cache) as z:
            if str(z["classifier_sha256"]) == digest and int(z["test_pool"]) == recipe["test_pool"]:
                log(f"features from {cache}", flush=True)
                return {k: (z[f"{k}_features"], z[f"{k}_labels"], z[f"{k}_predicted"])
                        for k in ("train", "val", "test")}
    out = _compute_pools(classifier_path, recipe, log)
    if cache:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, classifier_sha256=digest, test_pool=recipe["test_pool"],
                 **{f"{k}_{part}": v[i] for k, v in out.items()
                    for i, part in enumerate(("features", "labels", "predicted"))})
    return out


def _compute_pools(classifier_path, recipe, log) -> dict:
    classifier = load_model(classifier_path)
    data = load_fashion_mnist()
    train_idx, val_idx = validation_split(len(data.y_train), 5000, seed=0)
    w, b = (keras.ops.convert_to_numpy(v) for v in classifier.head.weights)
    out = {}
    for name, images, labels in (
            ("train", data.x_train[train_idx], data.y_train[train_idx]),
            ("val", data.x_train[val_idx], data.y_train[val_idx]),
            ("test", data.x_test[:recipe["test_pool"]], data.y_test[:recipe["test_pool"]])):
        start = time.perf_counter()
        features = set_tasks.class_token_features(classifier, images)
        out[name] = (features, labels, (features @ w + b).argmax(-1))
        log(f"{name}: {len(images)} items, features in {time.perf_counter() - start:.0f} s", flush=True)
    return out


def compile_model(model, recipe=RECIPE):
    """AdamW on the course's warm-up + cosine schedule; cross-entropy over the counts."""
    steps = recipe["steps"]
    schedule = cosine_schedule(recipe["peak_learning_rate"],
                               int(recipe["warmup_fraction"] * steps), steps)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=recipe["weight_decay"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                  jit_compile=jit_for_backend(False))  # no XLA on TensorFlow: 9 set sizes, 9 traces
    return build_optimizer(model)


def train_one(name: str, seed: int, data: dict, evaluation: dict, recipe=RECIPE, verbose=0):
    """Train model ``name`` with ``seed`` (weights and the training sets); its scores.
    ``verbose``: print the mean loss every ``verbose`` steps (0: never)."""
    keras.utils.set_random_seed(seed)
    features, labels, _ = data["train"]
    model = set_tasks.MODELS[name](features.shape[-1])
    compile_model(model, recipe)
    batches = set_tasks.SetBatches(features, labels, recipe["batch_size"], recipe["steps"],
                                   seed=seed, sizes=recipe["sizes"])
    start, cpu = time.perf_counter(), time.process_time()
    losses = set_tasks.train_by_size(model, batches, log_every=verbose)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    tenth = max(1, len(losses) // 10)
    result = {"model": name, "seed": seed, "parameters": model.count_params(),
              "peak_learning_rate": recipe["peak_learning_rate"],
              "training_seconds": round(seconds, 1), "training_cpu_seconds": round(cpu, 1),
              "train_loss_by_tenth": [round(float(np.mean(losses[i:i + tenth])), 4)
                                      for i in range(0, tenth * 10, tenth)]}
    for split in ("val", "test"):
        result[split] = set_tasks.count_scores(
            evaluation[split], set_tasks.predict_counts(model, data[split][0], evaluation[split]))
    return model, result


def references(data: dict, evaluation: dict) -> dict:
    """Scores without learning: the most frequent count per size in the VALIDATION sets, and the
    classifier's rule (distinct predicted classes)."""
    common = {n: np.bincount(t).argmax() for n, (_, t) in evaluation["val"].items()}
    out = {}
    for split in ("val", "test"):
        sets = evaluation[split]
        out[split] = {
            "most_frequent_count": set_tasks.count_scores(
                sets, {n: np.full(len(t), common[n]) for n, (_, t) in sets.items()}),
            "classify_then_count": set_tasks.count_scores(
                sets, set_tasks.distinct_predicted_classes(data[split][2], sets)),
            "item_accuracy": round(float(np.mean(data[split][2] == data[split][1])), 4),
        }
    return out


def summarise(runs: list[dict]) -> dict:
    """Per model: mean, sample standard deviation, min and max over seeds of each score."""
    out = {}
    for name in dict.fromkeys(r["model"] for r in runs):
        mine = [r for r in runs if r["model"] == name]
        out[name] = {"parameters": mine[0]["parameters"], "seeds": [r["seed"] for r in mine],
                     "peak_learning_rate": mine[0]["peak_learning_rate"]}
        for split in ("val", "test"):
            for key in ("accuracy", "mean_absolute_error"):
                v = np.array([r[split][key] for r in mine])
                out[name][f"{split}_{key}"] = {
                    "mean": round(float(v.mean()), 4),
                    "std": round(float(v.std(ddof=1)), 4) if len(v) > 1 else None,
                    "min": round(float(v.min()), 4), "max": round(float(v.max()), 4)}
    return out


def checkpoint_paths(out, names=tuple(set_tasks.MODELS)) -> dict:
    """``data/sets.json`` -> {name: ``data/sets_<name>.keras``}."""
    out = Path(out)
    return {name: out.with_name(f"{out.stem}_{name}.keras") for name in names}


def save_clean(model, path) -> None:
    """``model`` without its optimizer state (a fresh copy with the same weights)."""
    clean = keras.Model.from_config(model.get_config())
    clean.set_weights(model.get_weights())
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    clean.save(path)


def run(seeds=(0, 1, 2), names=tuple(set_tasks.MODELS), learning_rates=None, recipe=RECIPE,
        classifier_path=CLASSIFIER_PATH, command="", cache=None, verbose=0):
    """Choose each model's learning rate on validation (seed 0), then train every model with every
    seed; returns ({name: seed-0 model}, record)."""
    record = harness.header(command)
    data = pools(classifier_path, recipe, cache)
    lo, hi = recipe["sizes"]
    evaluation = {"val": set_tasks.fixed_sets(data["val"][1], recipe["eval_sets_per_size"],
                                              recipe["val_seed"], (lo, hi)),
                  "test": set_tasks.fixed_sets(data["test"][1], recipe["eval_sets_per_size"],
                                               recipe["test_seed"], (lo, hi))}
    chosen, trials = {}, []
    for name in names:
        rates = learning_rates or [recipe["peak_learning_rate"]]
        if len(rates) == 1:
            chosen[name] = rates[0]
            continue
        for rate in rates:
            _, result = train_one(name, seeds[0], data, evaluation,
                                  {**recipe, "peak_learning_rate": rate}, verbose)
            trials.append({k: result[k] for k in ("model", "seed", "peak_learning_rate")}
                          | {"val_accuracy": result["val"]["accuracy"]})
            print(trials[-1], flush=True)
        mine = [t for t in trials if t["model"] == name]
        chosen[name] = max(mine, key=lambda t: t["val_accuracy"])["peak_learning_rate"]
    runs, first = [], {}
    for seed in seeds:
        for name in names:
            model, result = train_one(name, seed, data, evaluation,
                                      {**recipe, "peak_learning_rate": chosen[name]}, verbose)
            runs.append(result)
            first.setdefault(name, model)
            print({k: result[k] for k in ("model", "seed", "training_seconds")},
                  {s: result[s]["accuracy"] for s in ("val", "test")}, flush=True)
    record.update({
        "what": "Count the distinct classes in sets of 2-10 Fashion-MNIST items (the classifier's "
                "frozen class tokens): Set Transformer (SAB or ISAB + PMA) against Deep Sets "
                "(mean pooling), about the same parameters, same steps, same sets, several seeds.",
        "classifier": Path(classifier_path).name, "classifier_sha256": sha256(classifier_path),
        "recipe": recipe, "seeds": list(seeds), "models": list(names),
        "pools": {k: len(v[1]) for k, v in data.items()},
        "evaluation_sets": {k: sum(len(t) for _, t in v.values()) for k, v in evaluation.items()},
        "learning_rate_trials": trials, "chosen_learning_rates": chosen,
        "references": references(data, evaluation),
        "checkpoint_seed": seeds[0],
        "runs": runs, "summary": summarise(runs),
    })
    return first, harness.finish(record)


def main(argv=None) -> int:
    p = harness.parser(__doc__.split("\n\n")[0], "the record (.json); checkpoints beside it",
                       "data/sets.json")
    p.add_argument("--seeds", type=harness.seed, nargs="+", default=[0, 1, 2])
    p.add_argument("--models", nargs="+", choices=list(set_tasks.MODELS), default=list(set_tasks.MODELS))
    p.add_argument("--steps", type=harness.positive_int, default=RECIPE["steps"])
    p.add_argument("--learning-rates", type=harness.positive_float, nargs="+",
                   default=[RECIPE["peak_learning_rate"]],
                   help="peak learning rates; with several, each is tried on seed 0 and each model "
                        "keeps its best on the validation sets")
    p.add_argument("--classifier", default=CLASSIFIER_PATH, help="the classifier checkpoint (.keras)")
    p.add_argument("--no-checkpoints", action="store_true", help="write the record only")
    p.add_argument("--features-cache", default=None,
                   help="an .npz file for the items' features: read if it matches, else written")
    p.add_argument("--log-every", type=int, default=0, help="print the loss every N steps")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    paths = [args.out] + ([] if args.no_checkpoints else
                          list(checkpoint_paths(args.out, args.models).values()))
    message = harness.existing(paths, args.overwrite)
    if message:
        p.error(f"--out {message}")
    if len(set(args.seeds)) != len(args.seeds):
        p.error(f"--seeds must be different, got {args.seeds}")
    if not Path(args.classifier).is_file():
        p.error(f"--classifier {args.classifier} is not a file (a classifier checkpoint, .keras).")
    models, record = run(tuple(args.seeds), tuple(args.models), args.learning_rates,
                         {**RECIPE, "steps": args.steps}, args.classifier,
                         command=harness.command_line(MODULE, argv), cache=args.features_cache,
                         verbose=args.log_every)
    paths = {} if args.no_checkpoints else checkpoint_paths(args.out, args.models)
    record["checkpoints"] = {k: p.name for k, p in paths.items()}
    for name, path in paths.items():
        save_clean(models[name], path)
    harness.write_record(record, args.out, overwrite=args.overwrite)
    for name, s in record["summary"].items():
        print(f"{name}: {s['parameters']} parameters, test accuracy {s['test_accuracy']}")
    print("references (test):", {k: v["accuracy"] if isinstance(v, dict) else v
                                 for k, v in record["references"]["test"].items()})
    return 0


if __name__ == "__main__":
    harness.setdefault_env()
    sys.exit(main())
