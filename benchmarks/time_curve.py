"""Test accuracy against training time: the pure ViT, the paper's hybrid and the CNN.

    .venv/bin/python benchmarks/time_curve.py --budgets 60 180 --seeds 0 1 2 \
        --out data/accuracy_vs_time.json

Three models of about the same size, trained on all 60,000 training images with the course's
recipe (``vitlib.train.RECIPE``; the learning-rate schedule clocked in training time, as in
``vitlib.compare``) for a fixed number of seconds each, then tested on the 10,000 test images:

- ``vit``: the pure ViT the course teaches (``vitlib.make_vit("fashion-small")``);
- ``hybrid``: the same ViT with the paper's convolutional stem instead of the linear patch
  embedding (Section 3.1; ``benchmarks/hybrid.py``);
- ``cnn``: the small CNN of notebook 08 (``vitlib.cnn.small_cnn``).

Short budgets are repeated over several seeds (mean and spread), interleaved and rotated so that
a slow moment of the machine does not hit one model only. Longer runs take tens of minutes each,
so they are one seed each and come from their own records, listed in the record under
``long_runs`` (the shipped checkpoint, the earlier 10-epoch checkpoint, the hybrid's 8 epochs).
The record goes to ``data/`` because notebook 06 draws it; ``render`` writes its section of
``RESULTS.md``.
"""

from __future__ import annotations

import argparse
import sys

import common  # noqa: F401  (puts the repository root on sys.path)

from experiments import harness

harness.setdefault_env()

OUT = common.ROOT / "data" / "accuracy_vs_time.json"
CONTENDERS = ("vit", "hybrid", "cnn")
WHAT = ("Test accuracy (10,000 Fashion-MNIST test images) after a fixed training time on all 60,000 "
        "training images, same recipe, for the pure ViT, the paper's hybrid and the small CNN.")
#: Longer runs (one seed each), from their own records: (model, label, record, how to read it).
LONG_RUNS = [
    ("vit", "shipped, fashion-medium (307k)", "data/vit_fashion_medium.json", None),
    ("vit", "fashion-small (139k)", "benchmarks/results/vit_fashion_small_50_epochs.json", None),
    ("vit", "fashion-small, 10-epoch schedule", "benchmarks/results/vit_10_epochs_checkpoint.json",
     None),
    ("hybrid", "8 epochs, course recipe", "benchmarks/results/hybrid_course_recipe.json", "hybrid"),
]


def _builders():
    import hybrid

    from vitlib.cnn import small_cnn
    from vitlib.model import make_vit

    return {"vit": lambda: make_vit("fashion-small"), "hybrid": hybrid.hybrid_vit, "cnn": small_cnn}


def long_runs() -> list[dict]:
    """The single-seed long runs, read from their records (missing records are skipped)."""
    runs = []
    for model, label, path, key in LONG_RUNS:
        record = harness.read_record(common.ROOT / path)
        if record is None:
            continue
        r = record[key] if key else record
        runs.append({"model": model, "label": label, "record": path, "epochs": r["epochs"],
                     "training_seconds": r["training_seconds"], "test_accuracy": r["test_accuracy"],
                     "train_images": r["train_images"]})
    return runs


def run(budgets, seeds, command: str = "", limit: int | None = None, log=print) -> dict:
    from vitlib.compare import train_with_budget
    from vitlib.data import load_fashion_mnist
    from vitlib.train import RECIPE, accuracy, to_inputs

    budgets, seeds = [float(b) for b in budgets], [int(s) for s in seeds]
    if not budgets or any(not b > 0 for b in budgets):
        raise ValueError(f"`budgets` must be seconds > 0, got {budgets!r}.")
    if not seeds:
        raise ValueError("`seeds` must name at least one seed.")
    record = harness.header(command)
    data = load_fashion_mnist()
    x, y = to_inputs(data.x_train), data.y_train
    if limit:
        x, y = x[:limit], y[:limit]
    builders = _builders()
    record["models"] = {k: {"parameters": builders[k]().count_params()} for k in CONTENDERS}
    results, turn = [], 0
    for seconds in budgets:
        for seed in seeds:
            order = CONTENDERS[turn % 3:] + CONTENDERS[:turn % 3]  # rotated from run to run
            turn += 1
            for model_name in order:
                recipe = {**RECIPE, "seed": seed}
                model, budget = train_with_budget(model_name, x, y, seconds, recipe,
                                                  build=builders[model_name])
                score = accuracy(model, to_inputs(data.x_test), data.y_test)
                results.append({"model": model_name, "budget_seconds": seconds, "seed": seed,
                                "test_accuracy": round(score, 4), "steps": budget.steps,
                                "train_seconds": round(budget.seconds, 1)})
                log(f"{model_name:7s} {seconds:6.0f} s  seed {seed}: test accuracy {score:.4f} "
                    f"({budget.steps} steps)")
    record.update({"what": WHAT, "budgets_seconds": budgets, "seeds": seeds,
                   "train_images": len(x), "recipe": dict(RECIPE), "results": results,
                   "long_runs": long_runs()})
    return harness.finish(record)


def summary(record: dict) -> dict:
    """``{(model, budget): (mean, min, max)}`` of the test accuracy over the seeds."""
    out = {}
    for r in record["results"]:
        out.setdefault((r["model"], r["budget_seconds"]), []).append(r["test_accuracy"])
    return {k: (sum(v) / len(v), min(v), max(v)) for k, v in out.items()}


def render(record: dict) -> str:
    """The ``RESULTS.md`` section of a record written by this script."""
    lines = ["## Accuracy against training time: pure ViT, hybrid, CNN", "", WHAT, "",
             harness.describe_run(record), "",
             f"Short budgets, seeds {record['seeds']}: mean (min-max) test accuracy.", "",
             "| model | parameters | " + " | ".join(f"{b:.0f} s" for b in record["budgets_seconds"])
             + " |", "|---|---:|" + "---:|" * len(record["budgets_seconds"])]
    stats = summary(record)
    for model in CONTENDERS:
        cells = [f"{m:.3f} ({lo:.3f}-{hi:.3f})" for m, lo, hi in
                 (stats[model, b] for b in record["budgets_seconds"])]
        lines.append(f"| {model} | {record['models'][model]['parameters']:,} | " + " | ".join(cells) + " |")
    lines += ["", "Long runs (one seed each, from their records):", "",
              "| model | run | epochs x images | training (s) | test accuracy |", "|---|---|---:|---:|---:|"]
    for r in record["long_runs"]:
        lines.append(f"| {r['model']} | {r['label']} (`{r['record']}`) | {r['epochs']} x "
                     f"{r['train_images']:,} | {r['training_seconds']:,.0f} | {r['test_accuracy']:.4f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", type=float, nargs="+", default=[60, 180])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first N training images (quick checks, not results)")
    parser.add_argument("--out", default=str(OUT), help="results file (.json)")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--refresh-long-runs", action="store_true",
                        help="only re-read the long runs' records into --out (no training)")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.refresh_long_runs:
        record = harness.read_record(args.out)
        if record is None:
            parser.error(f"--out {args.out} does not exist: there is nothing to refresh.")
        record["long_runs"] = long_runs()
        harness.write_record(record, args.out, overwrite=True)
        print(render(record))
        return 0
    harness.refuse_existing([args.out], args.overwrite)
    record = run(args.budgets, args.seeds, harness.script_line([sys.argv[0], *argv]), args.limit)
    harness.write_record(record, args.out, args.overwrite)
    print(render(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
