"""Axial against full attention in a per-patch segmenter trained from scratch (notebook 14).

    python -m experiments.axial_segment --out data/axial_segment.json

The task, the data and the scores are :mod:`vitlib.segment`'s (notebook 10): 2-3 Fashion-MNIST
items on a 56x56 canvas, one label per 4x4 patch (14x14 grid, 11 labels), per-patch accuracy and
mean IoU on 300 canvases of TEST images. Three models that differ only in the attention layer of
their encoder blocks (:func:`build_segmenter`):

- ``full``: ``vitlib.MultiHeadSelfAttention`` over all 196 patch tokens (196^2 scores per head);
- ``axial``: ``vitlib.axial.AxialAttention``, along each row then each column (196 x 28).

- ``full2``: two ``MultiHeadSelfAttention`` layers in a row, over all tokens: the axial layer's
  parameters exactly (it is two attention layers), without its row and column restriction. The
  control that separates "attention along the axes" from "twice the attention parameters".

All are built here as a small functional encoder from vitlib's layers (patch embedding, learned
position embedding, pre-norm blocks, a Dense head on every token), not as ``vitlib.ViT``: a ViT's
blocks always use full attention, and its class token would not fit on the grid that axial
attention needs. Equal budget: the same steps, data order, recipe (``vitlib.segment.RECIPE``:
AdamW, warm-up + cosine, 2 epochs of 8,000 canvases, batch 8) and seeds; axial attention has two
attention layers per block, so more parameters than ``full`` (the record states every count) and
exactly as many as ``full2``. Nothing is chosen on the test canvases: the recipe is notebook 10's,
fixed before these runs.

Writes the record (``--out``, JSON: command, settings, per-seed scores, mean and spread, paired
differences) and, beside it, the seed-0 checkpoints of ``full`` and ``axial`` (``*_full.keras``,
``*_axial.keras``); refuses to replace any of them without ``--overwrite``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import keras
import numpy as np
from keras import layers

from experiments import harness
from vitlib.attention import MultiHeadSelfAttention
from vitlib.axial import AxialAttention
from vitlib.data import load_fashion_mnist
from vitlib.embeddings import PositionEmbedding
from vitlib.encoder import MLP
from vitlib.patches import PatchEmbedding
from vitlib.segment import NUM_LABELS, RECIPE, make_task, predict_labels, scores

MODULE = "experiments.axial_segment"
KINDS = ("full", "axial", "full2")
#: The kinds whose seed-0 model ships as a checkpoint (notebook 14 shows their predictions).
SHIPPED = ("full", "axial")
#: The encoder of both models: small enough for a few minutes per run on two CPU cores.
ARCHITECTURE = {"image_size": 56, "patch_size": 4, "dim": 64, "depth": 4, "num_heads": 4,
                "mlp_dim": 128}


def build_segmenter(attention: str, image_size: int = 56, patch_size: int = 4, dim: int = 64,
                    depth: int = 4, num_heads: int = 4, mlp_dim: int = 128,
                    num_labels: int = NUM_LABELS, channels: int = 1) -> keras.Model:
    """A per-patch segmenter whose blocks use ``attention`` = ``"full"``, ``"axial"`` or
    ``"full2"`` (two full attention layers in a row: the axial layer's parameters, no masks).

    images (batch, image_size, image_size, channels) -> logits (batch, rows, rows, num_labels),
    rows = image_size / patch_size. Patch embedding (Eq. 1 of the ViT paper, no class token),
    a learned position embedding, ``depth`` pre-norm blocks ``x + Attn(LN(x))``, ``x + MLP(LN(x))``
    (Eq. 2-3), a final LayerNorm and the same Dense head on every patch token. A functional model
    of registered vitlib and Keras layers only: ``.keras`` files load with ``safe_mode=True``
    without importing this module.
    """
    if attention not in KINDS:
        raise ValueError(f"`attention` must be one of {KINDS}, got {attention!r}.")
    if image_size % patch_size:
        raise ValueError(f"`patch_size`={patch_size} must divide `image_size`={image_size}.")
    rows = image_size // patch_size
    inputs = keras.Input((image_size, image_size, channels), name="images")
    x = PatchEmbedding(patch_size, dim, name="patch_embedding")(inputs)  # (batch, rows*rows, dim)
    x = PositionEmbedding((rows, rows), kind="learned", num_prefix_tokens=0,
                          name="position_embedding")(x)
    for i in range(depth):
        h = layers.LayerNormalization(epsilon=1e-6, name=f"block_{i}_norm1")(x)
        if attention == "full":
            h = MultiHeadSelfAttention(num_heads, name=f"block_{i}_attention")(h)
        elif attention == "full2":
            h = MultiHeadSelfAttention(num_heads, name=f"block_{i}_attention_a")(h)
            h = MultiHeadSelfAttention(num_heads, name=f"block_{i}_attention")(h)
        else:
            h = AxialAttention(num_heads, (rows, rows), name=f"block_{i}_attention")(h)
        x = layers.Add(name=f"block_{i}_add1")([x, h])
        h = layers.LayerNormalization(epsilon=1e-6, name=f"block_{i}_norm2")(x)
        h = MLP(mlp_dim, name=f"block_{i}_mlp")(h)
        x = layers.Add(name=f"block_{i}_add2")([x, h])
    x = layers.LayerNormalization(epsilon=1e-6, name="norm")(x)
    logits = layers.Dense(num_labels, name="head")(x)  # the same Dense on every patch token
    logits = layers.Reshape((rows, rows, num_labels), name="grid")(logits)
    return keras.Model(inputs, logits, name=f"{attention}_segmenter")


def compile_segmenter(model, steps: int, recipe=RECIPE):
    """notebook 10's recipe: AdamW, warm-up + cosine, cross-entropy on every patch, XLA."""
    from experiments.segment import compile_segmenter as compile_like_notebook_10

    return compile_like_notebook_10(model, steps, recipe)


def train_one(attention: str, seed: int, x, y, x_test, y_test, recipe=RECIPE,
              architecture=ARCHITECTURE, verbose=2) -> tuple[keras.Model, dict]:
    """Train one model from scratch with ``seed`` (weights and data order); its scores on test."""
    keras.utils.set_random_seed(seed)
    model = build_segmenter(attention, **architecture)
    steps = recipe["epochs"] * -(-len(x) // recipe["batch_size"])
    compile_segmenter(model, steps, recipe)
    start, cpu = time.perf_counter(), time.process_time()
    history = model.fit(x, y, batch_size=recipe["batch_size"], epochs=recipe["epochs"],
                        shuffle=True, verbose=verbose)
    result = {
        "attention": attention, "seed": seed, "parameters": model.count_params(), "steps": steps,
        "training_seconds": round(time.perf_counter() - start, 1),
        "training_cpu_seconds": round(time.process_time() - cpu, 1),
        "train_loss": [round(v, 4) for v in history.history["loss"]],
        "test": scores(y_test, predict_labels(model, x_test)),
    }
    return model, result


def summarise(runs: list[dict]) -> dict:
    """Per model: mean, sample standard deviation, min and max over seeds of the test scores; and
    the paired differences axial - full and axial - full2 (the same seed: same canvases, same
    order)."""
    out = {}
    kinds = [k for k in KINDS if any(r["attention"] == k for r in runs)]
    for kind in kinds:
        mine = [r for r in runs if r["attention"] == kind]
        out[kind] = {"parameters": mine[0]["parameters"], "seeds": [r["seed"] for r in mine],
                     "training_seconds_mean": round(float(np.mean([r["training_seconds"] for r in mine])), 1)}
        for key in ("patch_accuracy", "mean_iou"):
            v = np.array([r["test"][key] for r in mine])
            out[kind][key] = {"mean": round(float(v.mean()), 4),
                              "std": round(float(v.std(ddof=1)), 4) if len(v) > 1 else None,
                              "min": round(float(v.min()), 4), "max": round(float(v.max()), 4)}
    by = {(r["attention"], r["seed"]): r for r in runs}
    for other in ("full", "full2"):
        seeds = sorted({r["seed"] for r in runs
                        if (other, r["seed"]) in by and ("axial", r["seed"]) in by})
        if not seeds:
            continue
        out[f"axial_minus_{other}"] = {
            key: [round(by["axial", s]["test"][key] - by[other, s]["test"][key], 4) for s in seeds]
            for key in ("patch_accuracy", "mean_iou")}
        out[f"axial_minus_{other}"]["seeds"] = seeds
    return out


def checkpoint_paths(out) -> dict:
    """``data/axial_segment.json`` -> {kind: ``data/axial_segment_<kind>.keras``} (shipped kinds)."""
    out = Path(out)
    return {kind: out.with_name(f"{out.stem}_{kind}.keras") for kind in SHIPPED}


def save_clean(model, path) -> None:
    """``model`` without its optimizer state (a fresh copy with the same weights)."""
    clean = keras.Model.from_config(model.get_config())
    clean.set_weights(model.get_weights())
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    clean.save(path)


def run(seeds=(0, 1, 2), recipe=RECIPE, architecture=ARCHITECTURE, command="", verbose=2):
    """Train both models with every seed; returns ({kind: seed-0 model}, record)."""
    data = load_fashion_mnist()
    patch = architecture["patch_size"]
    x, y = make_task(data, "train", recipe, patch)
    x_test, y_test = make_task(data, "test", recipe, patch)
    record = harness.header(command)
    runs, first = [], {}
    for seed in seeds:
        for kind in KINDS:
            model, result = train_one(kind, seed, x, y, x_test, y_test, recipe, architecture, verbose)
            runs.append(result)
            print({k: result[k] for k in ("attention", "seed", "training_seconds")},
                  {k: result["test"][k] for k in ("patch_accuracy", "mean_iou")}, flush=True)
            first.setdefault(kind, model)
    background = scores(y_test, np.zeros_like(y_test))
    record.update({
        "what": "A per-patch segmenter (notebook 10's task) trained from scratch with full or "
                "axial attention in its encoder blocks: same steps, recipe, data order and seeds.",
        "recipe": recipe, "architecture": architecture, "seeds": list(seeds),
        "train_canvases": len(x), "test_canvases": len(x_test),
        "checkpoints": {k: p.name for k, p in checkpoint_paths("axial_segment.json").items()},
        "checkpoint_seed": seeds[0],
        "all_background": {k: background[k] for k in ("patch_accuracy", "mean_iou")},
        "runs": runs, "summary": summarise(runs),
    })
    return first, harness.finish(record)


def main(argv=None) -> int:
    p = harness.parser(__doc__.split("\n\n")[0], "the record (.json); checkpoints beside it",
                       "data/axial_segment.json")
    p.add_argument("--seeds", type=harness.seed, nargs="+", default=[0, 1, 2])
    for key in ("train_canvases", "epochs"):
        p.add_argument("--" + key.replace("_", "-"), type=harness.positive_int, default=RECIPE[key])
    p.add_argument("--no-checkpoints", action="store_true", help="write the record only")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    paths = [args.out] + ([] if args.no_checkpoints else list(checkpoint_paths(args.out).values()))
    message = harness.existing(paths, args.overwrite)
    if message:
        p.error(f"--out {message}")
    if len(set(args.seeds)) != len(args.seeds):
        p.error(f"--seeds must be different, got {args.seeds}")
    recipe = {**RECIPE, "train_canvases": args.train_canvases, "epochs": args.epochs}
    models, record = run(tuple(args.seeds), recipe, command=harness.command_line(MODULE, argv))
    record["checkpoints"] = ({} if args.no_checkpoints else
                             {k: p.name for k, p in checkpoint_paths(args.out).items()})
    if not args.no_checkpoints:
        for kind, path in checkpoint_paths(args.out).items():
            save_clean(models[kind], path)
    harness.write_record(record, args.out, overwrite=args.overwrite)
    for kind in KINDS:
        s = record["summary"][kind]
        print(kind, s["parameters"], "parameters; mean IoU", s["mean_iou"], "accuracy",
              s["patch_accuracy"])
    print("axial - full:", record["summary"]["axial_minus_full"])
    print("axial - full2:", record["summary"]["axial_minus_full2"])
    return 0


if __name__ == "__main__":
    harness.setdefault_env()
    sys.exit(main())
