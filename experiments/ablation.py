"""Which parts of the ViT matter? Position embeddings and the two sub-layers, measured (notebooks 04-05).

    python -m experiments.ablation --variants learned sincos none no-mlp no-attention \\
        --seeds 0 1 2 --epochs 3 --out data/ablation.json

Every variant is ``fashion-small`` (4x4 patches, D = 64, 4 blocks of 4 heads, MLP 128) with one
thing changed:

- ``learned``: the course model (learned position embedding, both sub-layers);
- ``sincos``: fixed sine-cosine position embedding (Transformer style, 2D);
- ``none``: no position embedding: the model sees a *set* of patches;
- ``no-mlp``: every block keeps only its attention sub-layer (Eq. 2), no MLP (Eq. 3);
- ``no-attention``: every block keeps only its MLP sub-layer; tokens never exchange
  information, so the class token could never see the image: this variant averages the patch
  tokens instead (a "bag of patches" classifier);
- ``mean-pooling``: the course model with the patch tokens averaged instead of a class token
  (``pooling="mean"``): the fair reference for ``no-attention``.

Each is trained with the course recipe (:data:`vitlib.train.RECIPE`, with the given seed for
weights, batches and augmentation) on 55,000 training images for ``--epochs``; 5,000 are held out
as a validation split (one seeded permutation, the same for every run). The record keeps, per
run, the validation accuracy, the test accuracy (10,000 images) and the test accuracy on
**patch-shuffled** test images (the 49 patches of every image put in a random order, seeded):
a model that uses where a patch is loses accuracy; one that cannot (``none``) keeps it exactly.
"""

from __future__ import annotations

import json
import sys
import time

import keras
import numpy as np

from experiments import harness
from experiments.train import split_inputs
from vitlib.attention import MultiHeadSelfAttention
from vitlib.configs import vit_config
from vitlib.embeddings import ClassToken, PositionEmbedding
from vitlib.encoder import MLP
from vitlib.model import make_vit
from vitlib.patches import PatchEmbedding
from vitlib.train import RECIPE, accuracy, train

MODULE = "experiments.ablation"
POSITION_VARIANTS = ("learned", "sincos", "none")
SUBLAYER_VARIANTS = ("no-mlp", "no-attention")
VARIANTS = POSITION_VARIANTS + SUBLAYER_VARIANTS + ("mean-pooling",)


class OneSublayerBlock(keras.layers.Layer):
    """A pre-norm residual block with only one sub-layer: x + sublayer(LN(x)).

    tokens (batch, tokens, dim) -> (batch, tokens, dim). ``sublayer`` is ``"attention"`` (Eq. 2
    alone) or ``"mlp"`` (Eq. 3 alone)."""

    def __init__(self, sublayer: str, num_heads: int, mlp_dim: int, **kwargs):
        super().__init__(**kwargs)
        if sublayer not in ("attention", "mlp"):
            raise ValueError(f"`sublayer` must be 'attention' or 'mlp', got {sublayer!r}.")
        self.sublayer, self.num_heads, self.mlp_dim = sublayer, num_heads, mlp_dim
        self.norm = keras.layers.LayerNormalization(epsilon=1e-6)
        self.inner = (MultiHeadSelfAttention(num_heads) if sublayer == "attention"
                      else MLP(mlp_dim))

    def call(self, x):
        return x + self.inner(self.norm(x))

    def get_config(self):
        return {**super().get_config(), "sublayer": self.sublayer, "num_heads": self.num_heads,
                "mlp_dim": self.mlp_dim}


def build(variant: str) -> keras.Model:
    """The ``fashion-small`` ViT with ``variant``'s change (see the module docstring)."""
    if variant in POSITION_VARIANTS:
        return make_vit("fashion-small", position=variant)
    if variant == "mean-pooling":
        return make_vit("fashion-small", pooling="mean")
    if variant not in SUBLAYER_VARIANTS:
        raise ValueError(f"`variant` must be one of {list(VARIANTS)}, got {variant!r}.")
    c = vit_config("fashion-small")
    cls = variant == "no-mlp"  # without attention the class token never sees the patches
    size = c["image_size"]
    h, w = (size, size) if isinstance(size, int) else size
    inputs = keras.Input((h, w, c["channels"]))
    x = PatchEmbedding(c["patch_size"], c["dim"])(inputs)
    if cls:
        x = ClassToken()(x)
    grid = (h // c["patch_size"], w // c["patch_size"])
    x = PositionEmbedding(grid, "learned", num_prefix_tokens=int(cls))(x)
    for i in range(c["depth"]):
        x = OneSublayerBlock("attention" if cls else "mlp", c["num_heads"], c["mlp_dim"],
                             name=f"block_{i}")(x)
    x = keras.layers.LayerNormalization(epsilon=1e-6)(x)
    x = x[:, 0] if cls else keras.ops.mean(x, axis=1)
    return keras.Model(inputs, keras.layers.Dense(c["num_classes"])(x), name=variant)


def shuffle_patches(images: np.ndarray, patch_size: int, seed: int = 0) -> np.ndarray:
    """images (n, H, W, C) -> the same images with their patches in a random order (a new
    order for every image, seeded). The pixels inside a patch keep their places."""
    n, h, w, c = images.shape
    gh, gw = h // patch_size, w // patch_size
    p = images.reshape(n, gh, patch_size, gw, patch_size, c).transpose(0, 1, 3, 2, 4, 5)
    p = p.reshape(n, gh * gw, patch_size, patch_size, c)
    rng = np.random.default_rng(seed)
    order = np.stack([rng.permutation(gh * gw) for _ in range(n)])
    p = np.take_along_axis(p, order[:, :, None, None, None], axis=1)
    p = p.reshape(n, gh, gw, patch_size, patch_size, c).transpose(0, 1, 3, 2, 4, 5)
    return p.reshape(n, h, w, c)


def summarise(runs: list[dict], variants) -> dict:
    """Per variant and measure: mean, sample standard deviation, min and max over the seeds."""
    out = {}
    for v in variants:
        rows = [r for r in runs if r["variant"] == v]
        out[v] = {"seeds": len(rows), "parameters": rows[0]["parameters"] if rows else None}
        for key in ("validation_accuracy", "test_accuracy", "shuffled_test_accuracy"):
            values = np.array([r[key] for r in rows])
            out[v][key] = {"mean": round(float(values.mean()), 4),
                           "std": round(float(values.std(ddof=1)), 4) if len(values) > 1 else 0.0,
                           "min": round(float(values.min()), 4),
                           "max": round(float(values.max()), 4)}
    return out


def run(variants, seeds, epochs: int, limit=None, command: str = "", log=print) -> dict:
    """Train every variant with every seed (see the module docstring); return the record."""
    record = harness.header(command)
    x, y, x_val, y_val, x_test, y_test = split_inputs(limit)
    x_shuffled = shuffle_patches(x_test, vit_config("fashion-small")["patch_size"], seed=0)
    runs = []
    for seed in seeds:
        for variant in variants:
            keras.utils.set_random_seed(seed)
            model = build(variant)
            start = time.perf_counter()
            train(model, x, y, epochs, {**RECIPE, "seed": seed}, verbose=0)
            row = {
                "variant": variant, "seed": seed, "parameters": model.count_params(),
                "training_seconds": round(time.perf_counter() - start, 1),
                "validation_accuracy": round(accuracy(model, x_val, y_val), 4),
                "test_accuracy": round(accuracy(model, x_test, y_test), 4),
                "shuffled_test_accuracy": round(accuracy(model, x_shuffled, y_test), 4),
            }
            runs.append(row)
            log(json.dumps(row), flush=True)
    record.update({
        "what": "fashion-small variants (position embedding: learned / sincos / none; blocks "
                "without their MLP or without attention) trained with the course recipe; "
                "accuracy on the validation split, the test set, and the test set with every "
                "image's 4x4 patches shuffled.",
        "epochs": epochs, "train_images": len(x), "validation_images": len(y_val),
        "validation_split": "seeded permutation of the 60,000 training images (seed 0), the same "
                            "for every run",
        "shuffle": "a new random order of the 49 patches for every test image (seed 0)",
        "recipe": {**RECIPE, "seed": "the run's seed"},
        "variants": list(variants), "seeds": list(seeds),
        "runs": runs, "summary": summarise(runs, variants),
    })
    return harness.finish(record)


def main(argv=None) -> int:
    p = harness.parser(__doc__.split("\n\n")[0])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--seeds", type=harness.seed, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=harness.positive_int, default=3)
    p.add_argument("--limit", type=harness.positive_int, default=None,
                   help="use only the first N training images (quick trials)")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    harness.check_out(p, args)
    record = run(args.variants, args.seeds, args.epochs, args.limit,
                 command=harness.command_line(MODULE, argv))
    if args.out:
        harness.write_record(record, args.out, overwrite=args.overwrite)
    for v, s in record["summary"].items():
        print(v, {k: s[k]["mean"] for k in ("validation_accuracy", "test_accuracy",
                                            "shuffled_test_accuracy")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
