"""Training step time against the number of VIRTUAL devices (keras.distribution, JAX backend).

    .venv/bin/python benchmarks/distribution.py [--devices 1 2 4 8] [--model fashion-small]
        [--batch 64] [--steps 10] [--out FILE] [--overwrite]

On one CPU, ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` gives JAX N virtual devices:
threads of the same cores, sharing one memory, whose "communication" is a copy in memory. This
records how long one training step (AdamW, cross-entropy, ``train_on_batch``) of a course ViT takes
on 1, 2, 4 and 8 of them: on one device (``none``), data parallel (``data``) and model parallel
(``model``, a (N / m, m) mesh with m the largest model axis that divides N, the heads and the MLP
width; ``vitlib.distribute``). The record is labelled VIRTUAL: it is NOT a speed-up measurement
(the devices share the same cores) and says nothing about TPUs or GPUs; notebook 12 says why.

Each device count runs in its own process (JAX fixes its devices when it starts). Every run starts
from the same weights and batch; after one warm-up step (compilation), the median of ``--steps``
timed steps is kept, and the first step's loss is checked against the one-device loss
(``distribute.TOLERANCE``), so a timing never comes from a wrong computation.

Writes ``benchmarks/results/distribution.json`` (refused if it exists, unless ``--overwrite``);
``render`` turns it into the section of ``RESULTS.md`` (``benchmarks/report.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time

import common  # noqa: F401  (puts the repository root on sys.path)

from experiments import harness

OUT = common.RESULTS_DIR / "distribution.json"
LABEL = ("VIRTUAL devices: N threads of one CPU (XLA_FLAGS=--xla_force_host_platform_device_count"
         "=N), sharing its cores and memory. Step times show the cost of splitting on one CPU, "
         "not a speed-up, and predict nothing about TPUs or GPUs.")


def child(args) -> None:
    """In a process with ``args.child`` virtual devices: one JSON line per kind."""
    import keras
    import numpy as np

    import vitlib
    from vitlib import distribute

    devices = keras.distribution.list_devices()
    config = vitlib.vit_config(args.model)
    rng = np.random.default_rng(0)
    size, channels = config["image_size"], config["channels"]
    x = rng.random((args.batch, size, size, channels), dtype=np.float32)
    y = keras.utils.to_categorical(rng.integers(0, config["num_classes"], args.batch),
                                   config["num_classes"])
    keras.utils.set_random_seed(0)
    start = vitlib.ViT(**config)
    start.build()
    weights = start.get_weights()
    kinds = {"none": None}
    if len(devices) > 1:
        kinds["data"] = distribute.data_parallel(devices)
        kinds["model"] = distribute.model_parallel(config, None, devices)
    reference = None
    for kind, distribution in kinds.items():
        scope = distribution.scope() if distribution is not None else contextlib.nullcontext()
        with scope:
            model = vitlib.ViT(**config)
            model.build()
            model.set_weights(weights)
            model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.05),
                          loss=keras.losses.CategoricalCrossentropy(from_logits=True))
            loss = float(model.train_on_batch(x, y))  # warm-up: compiles the step
            reference = loss if reference is None else reference
            seconds = []
            for _ in range(args.steps):
                t0 = time.perf_counter()
                model.train_on_batch(x, y)
                seconds.append(time.perf_counter() - t0)
        mesh = None if distribution is None else [int(n) for n in distribution.device_mesh.shape]
        print(json.dumps({
            "devices": len(devices), "kind": kind, "mesh": mesh,
            "median_seconds": round(float(np.median(seconds)), 4),
            "seconds": [round(s, 4) for s in seconds],
            "first_loss_matches_one_device":
                abs(loss - reference) <= distribute.TOLERANCE["loss"] * abs(reference),
        }), flush=True)


def measure(args, log=print) -> list[dict]:
    results = []
    for n in args.devices:
        env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2",
               "XLA_FLAGS": f"--xla_force_host_platform_device_count={n}"}
        done = subprocess.run([sys.executable, __file__, "--child", str(n), "--model", args.model,
                               "--batch", str(args.batch), "--steps", str(args.steps)],
                              env=env, capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"{n} devices: the child failed:\n{done.stderr[-2000:]}")
        for line in done.stdout.splitlines():
            if line.startswith("{"):
                point = json.loads(line)
                results.append(point)
                log(json.dumps({k: v for k, v in point.items() if k != "seconds"}))
    return results


def render(record: dict) -> str:
    """The section of RESULTS.md."""
    lines = ["## Training step time on VIRTUAL devices (keras.distribution)\n",
             f"**{record['label']}**\n",
             f"Model `{record['model']}`, batch {record['batch']}, median of {record['steps']} "
             "steps after one warm-up step (milliseconds); 'one device' is the same step without "
             "a distribution, in the same process; `mesh` is (batch, model) for model parallel. "
             "Every run's first loss equals the one-device loss within "
             "`vitlib.distribute.TOLERANCE`. On a shared machine (see the load average) the "
             "times move by tens of percent from one process to the next.\n",
             "| devices | one device | data parallel | model parallel (mesh) |", "|---|---|---|---|"]
    by = {}
    for r in record["results"]:
        by.setdefault(r["devices"], {})[r["kind"]] = r
    for n, kinds in sorted(by.items()):
        def ms(kind, kinds=kinds):
            return f"{1000 * kinds[kind]['median_seconds']:.0f}" if kind in kinds else "-"
        mesh = "x".join(map(str, kinds["model"]["mesh"])) if "model" in kinds else ""
        lines.append(f"| {n} | {ms('none')} | {ms('data')} | {ms('model')}"
                     f"{f' ({mesh})' if mesh else ''} |")
    lines += ["", harness.describe_run(record), ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=harness.positive_int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--model", default="fashion-small", help="a name of vitlib.CONFIGS")
    p.add_argument("--batch", type=harness.positive_int, default=64)
    p.add_argument("--steps", type=harness.positive_int, default=10)
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    if args.child is not None:
        child(args)
        return 0
    bad = [n for n in args.devices if args.batch % n]
    if bad:
        p.error(f"--batch {args.batch} must split evenly over every device count; not over {bad}.")
    harness.refuse_existing([args.out], args.overwrite)
    harness.setdefault_env()
    os.environ["KERAS_BACKEND"] = "jax"  # the record's versions name the backend measured
    record = harness.header(harness.script_line([__file__, *(sys.argv[1:] if argv is None
                                                            else argv)]))
    record.update({"label": LABEL, "virtual_devices": True, "model": args.model,
                   "batch": args.batch, "steps": args.steps, "results": measure(args)})
    harness.write_record(harness.finish(record), args.out, overwrite=args.overwrite)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
