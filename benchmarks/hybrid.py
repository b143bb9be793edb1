"""The course's pure ViT vs the paper's hybrid (Section 3.1), trained by the same command.

    .venv/bin/python benchmarks/hybrid.py --epochs 8 --recipe label_smoothing=0 max_shift=0
    .venv/bin/python benchmarks/hybrid.py --epochs 8 \
        --pure benchmarks/results/vit_10_epochs_checkpoint.json \
        --out benchmarks/results/hybrid_course_recipe.json        # the course recipe as it is

The course's ViT is pure: each 4x4 patch is projected linearly (Eq. 1). The paper's hybrid forms
the tokens from a CNN's feature map instead: ``make_vit("fashion-small", patch_method="hybrid")``, two
3x3 convolutions of stride 2 (32 and 64 channels, batch normalisation, ReLU) to the same 7x7
grid, then a 1x1 convolution (the paper's patches "of spatial size 1x1") to 64-dimensional
tokens. Everything else (class token, position embedding, 4 blocks, head, and the training by
``experiments.train``: seed, images, recipe with the ``--recipe`` changes, epochs) is the same.

The record (refused if it exists, unless ``--overwrite``) keeps the command, machine, versions, load
average, the recipe, the training time, the per-epoch test accuracy, and for comparison the record
of a pure ViT trained with the same recipe and epochs (``--pure``). ``render`` writes its section
of ``RESULTS.md``."""

from __future__ import annotations

import json
import sys

import common  # noqa: F401  (puts the repository root on sys.path)

from experiments import harness

harness.setdefault_env()

OUT = common.RESULTS_DIR / "hybrid.json"
WHAT = ("The ViT paper's hybrid (Section 3.1): fashion-small with a convolutional stem instead of the "
        "linear patch embedding, trained by vitlib.train with the same seed and images as the pure "
        "ViT records below.")
COURSE_RECIPE_OUT = common.RESULTS_DIR / "hybrid_course_recipe.json"  # the same, with RECIPE as is
CHECKPOINT_RECORD = common.ROOT / "data" / "vit_fashion_medium.json"
PURE_RECORD = common.RESULTS_DIR / "vit_8_epochs_no_smoothing_no_shifts.json"
_KEEP = ("command", "epochs", "train_images", "recipe", "parameters", "training_seconds", "test_accuracy",
         "test_accuracy_per_epoch")


def hybrid_vit(stem_width: int = 32, name: str = "fashion-small"):
    """``vitlib.make_vit(name, patch_method="hybrid")``: the paper's CNN stem instead of the linear patch
    embedding. images (batch, 28, 28, 1) -> logits (batch, 10); 49 + 1 tokens as in the pure ViT."""
    from vitlib.model import make_vit

    return make_vit(name, patch_method="hybrid", stem_width=stem_width)


def _summary(path) -> dict | None:
    record = harness.read_record(path)
    return record and {k: record.get(k) for k in _KEEP}


def run(epochs: int, recipe_changes: dict, stem_width: int = 32, command: str = "",
        pure=PURE_RECORD, limit: int | None = None) -> dict:
    from experiments.train import run as train_run
    from vitlib import train as vtrain

    record = harness.header(command)
    record["course_recipe"] = dict(vtrain.RECIPE)
    recipe = {**vtrain.RECIPE, **recipe_changes}
    # The pure ViT's command (experiments.train) seeds, loads the data, trains and tests; the
    # hybrid goes through the same call so that nothing else differs.
    _, result = train_run("fashion-small", epochs, limit=limit, recipe=recipe, curves=True,
                          model=hybrid_vit(stem_width), patch_method="hybrid",
                          stem_width=stem_width)
    result["model"] = f"fashion-small with a conv stem (width {stem_width}) instead of patches"
    result.pop("command", None)
    record.update({
        "what": WHAT,
        "hybrid": result,
        "pure_vit_same_recipe": _summary(pure),
        "shipped_checkpoint": _summary(CHECKPOINT_RECORD),
    })
    return harness.finish(record)


def _changes(recipe: dict, course: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in recipe.items() if course.get(k) != v) or "none"


def render(record: dict) -> str:
    """The ``RESULTS.md`` section of a record written by this script."""
    h, course = record["hybrid"], record["course_recipe"]
    pure, shipped = record.get("pure_vit_same_recipe"), record.get("shipped_checkpoint")
    rows = [("hybrid (conv stem)", h)]
    if pure and pure != shipped:
        alike = pure["recipe"] == h["recipe"] and pure["epochs"] == h["epochs"]
        rows.append(("pure ViT, same recipe and epochs" if alike else "pure ViT (--pure)", pure))
    if shipped:
        rows.append(("pure ViT, shipped checkpoint", shipped))
    lines = [f"## The paper's hybrid against the pure ViT, {h['epochs']} epochs, recipe changes: "
             f"{_changes(h['recipe'], course)}", "",
             WHAT, "", harness.describe_run(record), "",
             "| model | parameters | epochs x images | recipe (changes to vitlib.train.RECIPE) "
             "| training (s) | test accuracy | test accuracy per epoch |",
             "|---|---:|---:|---|---:|---:|---|"]
    for name, r in rows:
        curve = ", ".join(f"{a:.3f}" for a in r.get("test_accuracy_per_epoch") or [])
        images = f"{r['train_images']:,}" if r.get("train_images") else "?"
        lines.append(f"| {name} | {r['parameters']:,} | {r['epochs']} x {images} "
                     f"| {_changes(r['recipe'], course)} | {r['training_seconds']:,.0f} "
                     f"| {r['test_accuracy']:.4f} | {curve} |")
    lines += ["", "The pure ViT records were written by `python -m experiments.train` (or its "
              "earlier name `python -m vitlib.train`; commands in `data/` and "
              "`benchmarks/results/`); only the shipped run's checkpoint was kept."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from vitlib.train import RECIPE

    parser = harness.parser(__doc__.split("\n\n")[0], "results file (.json)", OUT)
    parser.add_argument("--epochs", type=harness.positive_int, default=8)
    parser.add_argument("--recipe", nargs="*", default=[], metavar="KEY=VALUE",
                        help="changes to vitlib.train.RECIPE, e.g. label_smoothing=0 max_shift=0")
    parser.add_argument("--stem-width", type=harness.positive_int, default=32, help="channels of the first conv")
    parser.add_argument("--limit", type=harness.positive_int, default=None,
                        help="use only the first N training images (quick checks, not results)")
    parser.add_argument("--pure", default=str(PURE_RECORD),
                        help="record of the pure ViT trained with the same recipe (vitlib.train)")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}.")
    harness.refuse_existing([args.out], args.overwrite)
    try:
        changes = harness.changes(args.recipe, RECIPE)
    except ValueError as error:
        parser.error(str(error))
    record = run(args.epochs, changes, args.stem_width,
                 command=harness.script_line([sys.argv[0], *argv]), pure=args.pure, limit=args.limit)
    harness.write_record(record, args.out, args.overwrite)
    print(render(record))
    print(json.dumps({k: record["hybrid"][k] for k in ("test_accuracy", "training_seconds")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
