"""Axial against full self-attention: time and memory as the grid of tokens grows (notebook 14).

    .venv/bin/python benchmarks/axial_cost.py [--grids 4 7 10 14 20 28 40 56 64] [--dim 64 --heads 4 --batch 2]

Two layers on a square grid of R x R tokens (row-major, width ``--dim``):

- ``full``: ``vitlib.MultiHeadSelfAttention`` over all N = R^2 tokens: N^2 scores per head;
- ``axial``: ``vitlib.axial.AxialAttention``, along each row, then each column: N (R + R) scores
  per head, but two attention layers (twice the projections and parameters).

Time, two modes, both compiled with XLA (as in training): ``forward`` (one call) and ``train``
(forward and backward: the gradients of a fixed linear function of the output with respect to the
input and every weight). For each grid the two layers are timed interleaved, in one process, on the
same input: each sample repeats the call for at least 50 ms of CPU time, and the median of
``--repeats`` samples is kept (``benchmarks/attention.py``'s method), as wall-clock time and as the
process's CPU time (all threads). On a machine shared with other work, a call waits for a core now
and then: that inflates its wall-clock time, not its CPU time, so the CPU time is the steadier
measure of the work each layer does.

Memory, two ways:

- exact arithmetic, the attention weights alone, in float32 bytes: ``batch x heads x N^2`` (full)
  against ``batch x heads x N (R + R)`` (axial);
- XLA's memory plan: the temporary memory the compiled call allocates (its buffer assignment,
  ``memory_analysis().temp_size_in_bytes`` of the JAX-compiled call, in a child process on the JAX
  backend): projections, scores, softmax and, in ``train``, the saved activations and the
  gradients' work space. It is what the call needs, whatever else runs on the machine. (The growth
  of the process's peak resident memory, ``benchmarks/attention.py``'s method, does not work here:
  TensorFlow keeps the warm-up call's buffers in its pool and reuses them, so a second call grows
  by almost nothing.)

The crossover of each measurement is the smallest grid from which axial attention is cheaper at
every larger grid measured. Writes ``data/axial_cost.json`` (notebook 14 draws it, so it ships in
``data/`` like ``data/accuracy_vs_time.json``); refuses to replace it without ``--overwrite``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import subprocess
import sys
import time

import common  # noqa: F401  (puts the repository root on sys.path)

from experiments import harness

harness.setdefault_env()

OUT = common.ROOT / "data" / "axial_cost.json"
CONTENDERS = ("full", "axial")
MODES = ("forward", "train")
MIN_SAMPLE_SECONDS = 0.05


def weight_bytes(grid: int, heads: int, batch: int) -> dict:
    """Exact float32 bytes of the attention weights (the scores after softmax) of one call."""
    n = grid * grid
    return {"full": 4 * batch * heads * n * n, "axial": 4 * batch * heads * n * (grid + grid)}


def build(grid: int, dim: int, heads: int, seed: int = 0):
    """The two layers, built for a (grid x grid) input of width ``dim``."""
    import keras

    from vitlib.attention import MultiHeadSelfAttention
    from vitlib.axial import AxialAttention

    keras.utils.set_random_seed(seed)
    full = MultiHeadSelfAttention(heads, name="full")
    full.build((None, grid * grid, dim))
    axial = AxialAttention(heads, (grid, grid), name="axial")
    axial.build((None, grid * grid, dim))
    return {"full": full, "axial": axial}


def make_call(layer, x, mode: str):
    """A function of no arguments: one compiled forward (``forward``) or forward + backward
    (``train``) call of ``layer`` on ``x``, its results converted to NumPy."""
    import keras
    import numpy as np

    upstream = np.random.default_rng(1).normal(size=x.shape).astype("float32")
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        xt, gt = tf.constant(x), tf.constant(upstream)

        def forward(z):
            return layer(z)

        def train(z):
            with tf.GradientTape() as tape:
                tape.watch(z)
                loss = tf.reduce_sum(layer(z) * gt)
            return tape.gradient(loss, [z, *layer.trainable_variables])

        fn = tf.function(forward if mode == "forward" else train, jit_compile=True, autograph=False)
        return lambda: [t.numpy() for t in tf.nest.flatten(fn(xt))]
    if backend == "jax":
        import jax

        weights = [v.value for v in layer.trainable_variables]

        def loss(w, z):
            y, _ = layer.stateless_call(w, [], z)
            return (y * upstream).sum(), y

        if mode == "forward":
            fn = jax.jit(lambda w, z: loss(w, z)[1])
        else:
            fn = jax.jit(jax.grad(lambda w, z: loss(w, z)[0], argnums=(0, 1)))
        return lambda: [np.asarray(t) for t in jax.tree_util.tree_leaves(fn(weights, x))]
    raise ValueError(f"needs the TensorFlow or JAX backend, not {backend!r}.")


def tokens(batch: int, grid: int, dim: int):
    import numpy as np

    return np.random.default_rng(0).normal(size=(batch, grid * grid, dim)).astype("float32")


def check_same_math(layers_, dim: int) -> float:
    """AxialAttention = full attention with the same-row, then the same-column mask (largest
    difference on a 4 x 4 grid); raises if they differ: the benchmark times the right thing."""
    import numpy as np
    from keras import ops

    from vitlib.attention import MultiHeadSelfAttention
    from vitlib.axial import AxialAttention, axial_masks

    axial = AxialAttention(layers_["axial"].num_heads, (4, 4))
    x = tokens(2, 4, dim)
    got = ops.convert_to_numpy(axial(x))
    rows, cols = MultiHeadSelfAttention(axial.num_heads), MultiHeadSelfAttention(axial.num_heads)
    for masked, part in ((rows, axial.row_attention), (cols, axial.column_attention)):
        masked.build(x.shape)
        masked.set_weights(part.get_weights())
    same_row, same_col = axial_masks(4, 4)
    want = ops.convert_to_numpy(cols(rows(x, mask=same_row[None]), mask=same_col[None]))
    diff = float(np.abs(got - want).max())
    if diff > 1e-4:
        raise AssertionError(f"axial attention differs from masked full attention by {diff:g}")
    return diff


def time_cases(calls: dict, repeats: int) -> dict:
    """Median wall-clock and CPU seconds per call of each function in ``calls``, sampled
    interleaved (the order rotates); each sample repeats the call for at least 50 ms of CPU time.

    CPU time is the process's (all threads together): on a machine shared with other work a call
    can wait for a core, which adds to its wall-clock time but not to its CPU time."""
    import numpy as np

    per_sample = {}
    for name, call in calls.items():
        call()  # warm-up: tracing, compilation, allocation
        start = time.process_time()
        call()
        once = time.process_time() - start
        per_sample[name] = max(1, min(1000, math.ceil(MIN_SAMPLE_SECONDS / max(once, 1e-5))))
    wall = {name: [] for name in calls}
    cpu = {name: [] for name in calls}
    names = list(calls)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            k = per_sample[name]
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(k):
                calls[name]()
            wall[name].append((time.perf_counter() - start) / k)
            cpu[name].append((time.process_time() - start_cpu) / k)
    return {name: {"seconds": float(np.median(wall[name])), "cpu_seconds": float(np.median(cpu[name])),
                   "calls_per_sample": per_sample[name],
                   "samples": [round(v, 7) for v in wall[name]],
                   "cpu_samples": [round(v, 7) for v in cpu[name]]} for name in calls}


def measure_speed(args, log=print) -> list[dict]:
    results = []
    for grid in args.grids:
        layers_ = build(grid, args.dim, args.heads)
        x = tokens(args.batch, grid, args.dim)
        for mode in args.modes:
            calls = {name: make_call(layers_[name], x, mode) for name in CONTENDERS}
            for name, t in time_cases(calls, args.repeats).items():
                point = {"grid": grid, "tokens": grid * grid, "mode": mode, "contender": name,
                         "seconds": round(t["seconds"], 7), "cpu_seconds": round(t["cpu_seconds"], 7),
                         "calls_per_sample": t["calls_per_sample"], "samples": t["samples"],
                         "cpu_samples": t["cpu_samples"]}
                results.append(point)
                log(json.dumps({k: v for k, v in point.items() if "samples" not in k}), flush=True)
            del calls
            gc.collect()
    return results


def memory_child(args) -> None:
    """In the child process (JAX backend): one JSON line per case with XLA's memory plan in MiB."""
    import jax

    for grid in sorted(args.grids):
        layers_ = build(grid, args.dim, args.heads)
        x = tokens(args.batch, grid, args.dim)
        for mode in args.modes:
            for name in CONTENDERS:
                layer = layers_[name]
                weights = [v.value for v in layer.trainable_variables]

                def forward(w, z, layer=layer):
                    return layer.stateless_call(w, [], z)[0]

                fn = forward if mode == "forward" else jax.grad(
                    lambda w, z, forward=forward: forward(w, z).sum(), argnums=(0, 1))
                stats = jax.jit(fn).lower(weights, x).compile().memory_analysis()
                print(json.dumps({"grid": grid, "mode": mode, "contender": name,
                                  "temp_mib": round(stats.temp_size_in_bytes / 2**20, 3),
                                  "output_mib": round(stats.output_size_in_bytes / 2**20, 3)}),
                      flush=True)


def measure_memory(args, argv) -> dict:
    """XLA's memory plan of every case, from a child process on the JAX backend (any machine
    gives the same numbers: they are the compiler's buffer assignment, not a measurement of the
    process, which a shared machine and TensorFlow's memory pool would blur)."""
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    child = subprocess.run([sys.executable, __file__, *argv, "--memory-child"], env=env,
                           capture_output=True, text=True, check=False)
    if child.returncode:
        raise RuntimeError(f"the memory child failed:\n{child.stderr[-3000:]}")
    out = {}
    for line in child.stdout.splitlines():
        if line.startswith("{"):
            p = json.loads(line)
            out[p["grid"], p["mode"], p["contender"]] = {k: p[k] for k in ("temp_mib", "output_mib")}
    return out


def crossover(grids, cheaper) -> int | None:
    """The smallest grid from which ``cheaper(grid)`` (axial is cheaper) holds at every larger
    grid measured; None if it does not hold at the largest."""
    found = None
    for grid in sorted(grids, reverse=True):
        if not cheaper(grid):
            break
        found = grid
    return found


def analyse(record: dict) -> dict:
    """Per mode: the time ratio full / axial per grid (above 1: axial faster), whether the two
    layers' samples do not overlap, and the crossovers of time, measured memory and the
    attention weights' size."""
    cfg = record["config"]
    by = {(p["grid"], p["mode"], p["contender"]): p for p in record["results"]}
    out = {"rows": [], "crossover": {}}
    for mode in cfg["modes"]:
        for grid in cfg["grids"]:
            f, a = by[grid, mode, "full"], by[grid, mode, "axial"]
            row = {"grid": grid, "tokens": grid * grid, "mode": mode,
                   "time_ratio_full_over_axial": round(f["seconds"] / a["seconds"], 3),
                   "cpu_ratio_full_over_axial": round(f["cpu_seconds"] / a["cpu_seconds"], 3),
                   "axial_clearly_faster": max(a["samples"]) < min(f["samples"]),
                   "axial_clearly_slower": min(a["samples"]) > max(f["samples"]),
                   "axial_cpu_clearly_faster": max(a["cpu_samples"]) < min(f["cpu_samples"]),
                   "axial_cpu_clearly_slower": min(a["cpu_samples"]) > max(f["cpu_samples"]),
                   "weights_bytes": weight_bytes(grid, cfg["heads"], cfg["batch"]),
                   "xla_temp_mib": {"full": (f.get("xla_memory") or {}).get("temp_mib"),
                                    "axial": (a.get("xla_memory") or {}).get("temp_mib")}}
            out["rows"].append(row)
        rows = {r["grid"]: r for r in out["rows"] if r["mode"] == mode}

        def measured_less(g, rows=rows):
            full, axial = rows[g]["xla_temp_mib"]["full"], rows[g]["xla_temp_mib"]["axial"]
            return full is not None and axial is not None and axial < full

        out["crossover"][mode] = {
            "time": crossover(cfg["grids"], lambda g, rows=rows: rows[g]["time_ratio_full_over_axial"] > 1),
            "time_clearly": crossover(cfg["grids"], lambda g, rows=rows: rows[g]["axial_clearly_faster"]),
            "cpu_time": crossover(cfg["grids"], lambda g, rows=rows: rows[g]["cpu_ratio_full_over_axial"] > 1),
            "cpu_time_clearly": crossover(cfg["grids"],
                                          lambda g, rows=rows: rows[g]["axial_cpu_clearly_faster"]),
            "xla_memory": crossover(cfg["grids"], measured_less),
        }
    out["crossover"]["attention_weights"] = crossover(
        cfg["grids"], lambda g: weight_bytes(g, 1, 1)["axial"] < weight_bytes(g, 1, 1)["full"])
    return out


def main(argv=None) -> int:
    parser = harness.parser(__doc__.split("\n\n")[0], "results file (.json)", OUT)
    parser.add_argument("--grids", type=harness.positive_int, nargs="+",
                        default=[4, 7, 10, 14, 20, 28, 40, 56, 64], help="grid sides R (R x R tokens)")
    parser.add_argument("--dim", type=harness.positive_int, default=64)
    parser.add_argument("--heads", type=harness.positive_int, default=4)
    parser.add_argument("--batch", type=harness.positive_int, default=2)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--repeats", type=harness.positive_int, default=5)
    parser.add_argument("--no-memory", action="store_true", help="skip XLA's memory plan (JAX child)")
    parser.add_argument("--note", default="", help="a remark stored in the results")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.dim % args.heads:
        parser.error(f"--heads {args.heads} must divide --dim {args.dim}")
    if len(set(args.grids)) != len(args.grids):
        parser.error(f"--grids must be different, got {args.grids}")
    args.grids = sorted(args.grids)
    if args.memory_child:
        memory_child(args)
        return 0
    harness.refuse_existing([args.out], args.overwrite)
    record = harness.header(harness.script_line([sys.argv[0], *argv]))
    start = time.perf_counter()
    same = check_same_math(build(4, args.dim, args.heads), args.dim)
    results = measure_speed(args)
    memory = {} if args.no_memory else measure_memory(args, argv)
    for p in results:
        p["xla_memory"] = memory.get((p["grid"], p["mode"], p["contender"]))
    record.update({
        "what": "Time (XLA-compiled forward, and forward + backward) and memory (attention "
                "weights by arithmetic; XLA's planned temporary memory) of full self-attention "
                "against axial attention on square grids of tokens.",
        "config": {"grids": args.grids, "dim": args.dim, "heads": args.heads, "batch": args.batch,
                   "modes": args.modes, "repeats": args.repeats, "min_sample_seconds": MIN_SAMPLE_SECONDS},
        "axial_equals_masked_full_max_diff": same,
        "parameters": {name: layer.count_params()
                       for name, layer in build(4, args.dim, args.heads).items()},
        "note": args.note,
        "total_seconds": round(time.perf_counter() - start, 1),
        "results": results,
    })
    record = harness.finish(record)
    record["analysis"] = analyse(record)
    harness.write_record(record, args.out, args.overwrite)
    for mode in args.modes:
        print(mode, record["analysis"]["crossover"][mode])
    print("attention weights:", record["analysis"]["crossover"]["attention_weights"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
