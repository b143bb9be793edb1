"""Training recipes at equal wall-clock time: the course's ViT recipe vs the keras.io ViT example's
recipe vs a small CNN, on Fashion-MNIST.

    .venv/bin/python benchmarks/recipes.py --budgets 300 900 [--out benchmarks/results/recipes.json]

Contenders (all about 140k parameters, trained on the same images from the same seed):

- ``course``: ``vitlib.make_vit("fashion-small")`` with :data:`vitlib.train.RECIPE` (read at run time),
  trained exactly as ``vitlib.compare`` trains it: AdamW, label smoothing, shifts and flips made in
  NumPy, full batches in one endless epoch, XLA, and the warm-up + cosine schedule **clocked in
  training time** so that it reaches 0 when the budget is spent.
- ``keras.io``: a model and recipe in the style of the keras.io example "Image classification with
  Vision Transformer" (Khalid Salama), adapted to 28x28x1: patches of 4 (49 tokens), a patch encoder
  = Dense projection + learned position embedding and **no class token**, pre-norm blocks with
  ``keras.layers.MultiHeadAttention`` (``key_dim`` = projection_dim, dropout 0.1, as the example),
  an MLP of [2 * dim, dim] with GELU, then LayerNorm, Flatten, Dropout(0.5), an MLP head and
  Dense(10). AdamW(learning_rate=1e-3, weight_decay=1e-4) with **no schedule**, batch 256, plain
  cross-entropy, its augmentation (horizontal flip, rotation 0.02 turns, zoom 0.2) and its
  Normalization layer (mean and variance of the training images). Only the resizing to 72x72 is
  left out (28x28 with patches of 4 instead). The augmentation runs in the data pipeline rather
  than inside the model, so that the model compiles with XLA like the others (Keras refuses
  ``jit_compile`` for models that contain RandomRotation or RandomZoom): the comparison is of the
  recipes, not of XLA.
- ``cnn``: ``vitlib.cnn.small_cnn()`` trained as ``vitlib.compare`` trains it (the course recipe).

For each budget (seconds of training, XLA compilation not counted) the three run one after the
other, in an order rotated from one budget to the next, in one process; each is then tested on
the 10,000 test images. The JSON record (refused if it exists, unless ``--overwrite``) keeps the
command, machine, date, versions, load average, parameter counts and per-run steps; ``render``
turns it into the section of ``RESULTS.md`` (``benchmarks/report.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import common  # noqa: F401  (puts the repository root on sys.path)

from experiments import harness

harness.setdefault_env()

CONTENDERS = ("course", "keras.io", "cnn")
OUT = common.RESULTS_DIR / "recipes.json"

#: The keras.io example's recipe, adapted to 28x28x1 (see the module docstring).
KERAS_IO = {
    "image_size": 28, "patch_size": 4, "projection_dim": 32, "num_heads": 4,
    "transformer_layers": 4, "mlp_head_units": [32], "dropout": 0.1, "head_dropout": 0.5,
    "batch_size": 256, "learning_rate": 1e-3, "weight_decay": 1e-4, "schedule": None,
    "flip": "horizontal", "rotation": 0.02, "zoom": 0.2, "label_smoothing": 0.0,
}


def keras_io_vit(mean: float = 0.0, variance: float = 1.0, config=None):
    """The keras.io-style ViT: images (batch, 28, 28, 1) -> logits (batch, 10). A functional model
    of stock Keras layers (this benchmark never saves it)."""
    import keras
    from keras import layers, ops

    c = {**KERAS_IO, **(config or {})}
    p, dim = c["patch_size"], c["projection_dim"]
    num_patches = (c["image_size"] // p) ** 2

    class Patches(layers.Layer):  # (batch, H, W, C) -> (batch, patches, p * p * C)
        def call(self, images):
            patches = ops.image.extract_patches(images, size=p)
            return ops.reshape(patches, (ops.shape(patches)[0], num_patches, patches.shape[-1]))

    class PatchEncoder(layers.Layer):  # Dense projection + learned position embedding, no class token
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.projection = layers.Dense(dim)
            self.position_embedding = layers.Embedding(num_patches, dim)

        def call(self, patches):
            positions = ops.expand_dims(ops.arange(num_patches), axis=0)
            return self.projection(patches) + self.position_embedding(positions)

    def mlp(x, units, rate):
        for u in units:
            x = layers.Dense(u, activation=keras.activations.gelu)(x)
            x = layers.Dropout(rate)(x)
        return x

    inputs = keras.Input((c["image_size"], c["image_size"], 1))
    x = layers.Normalization(mean=mean, variance=variance)(inputs)
    encoded = PatchEncoder()(Patches()(x))
    for _ in range(c["transformer_layers"]):
        x1 = layers.LayerNormalization(epsilon=1e-6)(encoded)
        attention = layers.MultiHeadAttention(c["num_heads"], key_dim=dim,
                                              dropout=c["dropout"])(x1, x1)
        x2 = layers.Add()([attention, encoded])
        x3 = layers.LayerNormalization(epsilon=1e-6)(x2)
        x3 = mlp(x3, [2 * dim, dim], c["dropout"])
        encoded = layers.Add()([x3, x2])
    representation = layers.LayerNormalization(epsilon=1e-6)(encoded)
    representation = layers.Dropout(c["head_dropout"])(layers.Flatten()(representation))
    features = mlp(representation, c["mlp_head_units"], c["head_dropout"])
    return keras.Model(inputs, layers.Dense(10)(features), name="keras_io_vit")


def keras_io_batches(x, y, seed: int, config=None):
    """Endless full batches (one-hot labels) with the keras.io augmentation applied to each."""
    import keras
    from keras import layers, ops

    from vitlib.compare import EndlessBatches

    c = {**KERAS_IO, **(config or {})}

    class Augmented(EndlessBatches):
        def __init__(self):
            super().__init__(x, y, c["batch_size"], max_shift=0, flip=False, seed=seed)
            self.augment = keras.Sequential([
                layers.RandomFlip(c["flip"], seed=seed),
                layers.RandomRotation(c["rotation"], seed=seed + 1),
                layers.RandomZoom(c["zoom"], c["zoom"], seed=seed + 2),
            ])

        def __getitem__(self, i):
            xb, yb = super().__getitem__(i)
            return ops.convert_to_numpy(self.augment(xb, training=True)), yb

    return Augmented()


def train_keras_io(x, y, seconds: float, seed: int, config=None):
    """Train a fresh keras.io-style ViT for ``seconds`` of training time (constant learning rate).
    Returns ``(model, budget)`` like ``vitlib.compare.train_with_budget``."""
    import keras

    from vitlib.compare import TimeBudget

    c = {**KERAS_IO, **(config or {})}
    keras.utils.set_random_seed(seed)
    model = keras_io_vit(float(x.mean()), float(x.var()), c)
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=c["learning_rate"],
                                         weight_decay=c["weight_decay"]),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=True,
    )
    budget = TimeBudget(seconds)  # no schedule: the rate stays at 1e-3
    model.fit(keras_io_batches(x, y, seed, c), epochs=1, verbose=0, shuffle=False,
              callbacks=[budget])
    return model, budget


def train(contender: str, x, y, seconds: float, recipe: dict):
    from vitlib.compare import train_with_budget

    if contender == "course":
        return train_with_budget("vit", x, y, seconds, recipe)
    if contender == "cnn":
        return train_with_budget("cnn", x, y, seconds, recipe)
    if contender == "keras.io":
        return train_keras_io(x, y, seconds, recipe["seed"])
    raise ValueError(f"`contender` must be one of {CONTENDERS}, got {contender!r}.")


def describe_models(recipe: dict) -> dict:
    import numpy as np

    import vitlib
    from vitlib.cnn import small_cnn

    models = {"course": vitlib.make_vit("fashion-small"), "keras.io": keras_io_vit(),
              "cnn": small_cnn()}
    names = {"course": 'vitlib.make_vit("fashion-small")', "keras.io": "keras_io_vit() (this file)",
             "cnn": "vitlib.cnn.small_cnn()"}
    return {k: {"model": names[k], "parameters": m.count_params(),
                "trainable": sum(int(np.prod(v.shape)) for v in m.trainable_weights),
                "batch_size": KERAS_IO["batch_size"] if k == "keras.io" else recipe["batch_size"]}
            for k, m in models.items()}


def run(budgets, train_images: int = 60_000, command: str = "", note: str = "",
        log=print) -> dict:
    """Train every contender for every budget (interleaved) and return the record."""
    import keras

    from experiments.harness import load_average
    from vitlib import train as vtrain
    from vitlib.compare import training_set
    from vitlib.data import load_fashion_mnist

    budgets = [float(b) for b in budgets]
    if not budgets or any(not b > 0 for b in budgets) or len(set(budgets)) < len(budgets):
        raise ValueError(f"`budgets` must be different numbers of seconds > 0, got {budgets!r}.")
    if not 1 <= train_images <= 60_000:
        raise ValueError(f"`train_images` must be between 1 and 60000, got {train_images!r}.")
    recipe = dict(vtrain.RECIPE)  # read now: the course may change its recipe
    record = harness.header(command)
    models = describe_models(recipe)  # builds every model once: fails early, before any training
    start = time.perf_counter()
    data = load_fashion_mnist()
    x, y = training_set(data, train_images, recipe["seed"])
    results = []
    for i, seconds in enumerate(budgets):
        order = CONTENDERS[i % 3:] + CONTENDERS[:i % 3]  # rotated from one budget to the next
        for contender in order:
            load = load_average()
            model, budget = train(contender, x, y, seconds, recipe)
            accuracy = vtrain.accuracy(model, vtrain.to_inputs(data.x_test), data.y_test)
            batch = KERAS_IO["batch_size"] if contender == "keras.io" else recipe["batch_size"]
            images_seen = budget.steps * min(len(x), batch)
            point = {"contender": contender, "budget_seconds": seconds,
                     "test_accuracy": round(accuracy, 4), "steps": budget.steps,
                     "images_seen": images_seen, "epochs": round(images_seen / len(x), 2),
                     "train_seconds": round(budget.seconds, 1),
                     "first_step_seconds": round(budget.first_step_seconds, 1),
                     "load_average_at_start": load}
            results.append(point)
            log(json.dumps(point))
            del model  # each run starts from a clean Keras state (no earlier graphs kept)
            keras.backend.clear_session()
    record.update({
        "what": "Test accuracy (10,000 Fashion-MNIST test images) of three recipes trained for the "
                "same wall-clock time on the same images: the course's ViT recipe, the keras.io "
                "ViT example's recipe (adapted to 28x28x1) and a small CNN with the course recipe.",
        "budgets_seconds": budgets,
        "train_images": len(x),
        "order": "one after the other, rotated per budget: course, keras.io, cnn; then keras.io, "
                 "cnn, course; ...",
        "models": models,
        "course_recipe": recipe,
        "course_schedule": "cosine clocked in training time (vitlib.compare): warm-up over "
                           "the first 10% of the budget, cosine to 0 at its end",
        "keras_io_recipe": KERAS_IO,
        "note": note,
        "total_seconds": round(time.perf_counter() - start, 1),
        "results": results,
    })
    return harness.finish(record)


def render(record: dict) -> str:
    """The ``RESULTS.md`` section of a record written by this script."""
    points = {(p["contender"], p["budget_seconds"]): p for p in record["results"]}
    models = record["models"]
    lines = [
        "## Training recipes at equal wall-clock time",
        "",
        record["what"] + " Each budget is training time after the first (compiling) step; "
        "the three contenders ran one after the other, interleaved, in one process, on the first "
        f"{record['train_images']:,} images of one seeded permutation of the training set.",
        "",
        harness.describe_run(record),
        "",
        "| contender | model | parameters | batch | recipe |",
        "|---|---|---:|---:|---|",
    ]
    r, k = record["course_recipe"], record["keras_io_recipe"]
    course = (f"AdamW peak {r['peak_learning_rate']:g}, weight decay {r['weight_decay']:g}, "
              f"warm-up + cosine clocked in time, label smoothing {r['label_smoothing']:g}, "
              f"shifts {r['max_shift']} px" + (", flips" if r["flip"] else "") + ", XLA")
    kio = (f"AdamW {k['learning_rate']:g}, weight decay {k['weight_decay']:g}, no schedule, no "
           f"label smoothing, flip + rotation {k['rotation']:g} + zoom {k['zoom']:g}, XLA")
    for name, text in (("course", course), ("keras.io", kio), ("cnn", "the course's, as above")):
        m = models[name]
        lines.append(f"| {name} | {m['model']} | {m['parameters']:,} | {m['batch_size']} | {text} |")
    lines += ["", "| budget (s) | course | keras.io | cnn | keras.io / course | cnn / course "
                  "| steps (course, keras.io, cnn) |",
              "|---:|---:|---:|---:|---:|---:|---|"]
    leads = []
    for b in record["budgets_seconds"]:
        acc = {c: points[c, b]["test_accuracy"] for c in CONTENDERS}
        steps = ", ".join(f"{points[c, b]['steps']:,}" for c in CONTENDERS)
        lines.append(f"| {b:g} | {acc['course']:.4f} | {acc['keras.io']:.4f} | {acc['cnn']:.4f} "
                     f"| {acc['keras.io'] / acc['course']:.3f} | {acc['cnn'] / acc['course']:.3f} "
                     f"| {steps} |")
        leads.append((b, max(CONTENDERS, key=lambda c: acc[c]), acc))
    lines.append("")
    verdicts = []
    for b, _, acc in leads:
        gap = 100 * (acc["course"] - acc["keras.io"])
        text = (f"at {b:g} s the course recipe leads the keras.io recipe by {gap:.1f} points"
                if gap > 0 else f"at {b:g} s the course recipe does NOT lead the keras.io recipe "
                f"({-gap:.1f} points behind)")
        cnn = 100 * (acc["cnn"] - acc["course"])
        text += (f", and the CNN is {abs(cnn):.1f} points "
                 f"{'ahead of' if cnn > 0 else 'behind'} the course's ViT")
        verdicts.append(text)
    verdict = "; ".join(verdicts)
    lines.append("Test accuracy on the 10,000 test images; ratios are accuracy / the course "
                 "recipe's accuracy. " + verdict[:1].upper() + verdict[1:] + ".")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", type=float, nargs="+", default=[300.0, 900.0],
                        help="training time per contender, in seconds (one run per budget)")
    parser.add_argument("--train-images", type=int, default=60_000,
                        help="use the first N images of the seeded permutation (quick checks)")
    parser.add_argument("--out", default=str(OUT), help="results file (.json)")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--note", default="", help="a remark stored in the results")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    harness.refuse_existing([args.out], args.overwrite)
    record = run(args.budgets, args.train_images, note=args.note,
                 command=harness.script_line([sys.argv[0], *argv]))
    harness.write_record(record, args.out, args.overwrite)
    print(render(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
