"""Multi-head self-attention speed and memory: vitlib vs keras.layers.MultiHeadAttention.

    .venv/bin/python benchmarks/attention.py [--tokens 16 32 ... 1024] [--dim 64 --heads 4 --batch 8]

Four contenders, two pairs that compute the same math with the SAME weights (checked first):

- ``keras``: ``keras.layers.MultiHeadAttention(heads, key_dim=dim // heads)(x, x)``, which calls
  the fused ``keras.ops.dot_product_attention``; against ``fused``: ``vitlib.MultiHeadSelfAttention``
  without weights requested (the same fused op).
- ``keras+scores``: the Keras layer with ``return_attention_scores=True`` (its explicit path);
  against ``weights``: vitlib with ``return_attention_scores=True`` (its explicit path, the one
  notebooks 02, 03 and 07 use).

Each is a forward pass (inference) timed in two modes: ``eager`` (one call at a time, as a notebook
cell runs it) and ``xla`` (compiled with XLA: ``tf.function(jit_compile=True)`` on TensorFlow,
``jax.jit`` on JAX; as training runs it). For every number of tokens the contenders are timed
interleaved, in one process, on the same input; each sample repeats the call enough times to last
at least 50 ms, and the median of ``--repeats`` samples is kept, so the ratios stay meaningful on
a noisy, shared machine even where absolute times drift.

Peak memory is measured in a child process (Linux): for each case, after a warm-up call, the
process's peak resident memory is reset (``/proc/self/clear_refs``), one call is made and its
output converted to NumPy, and the growth of the peak over the resident memory before the call is
recorded. The child runs with glibc's mmap threshold fixed at 64 KiB, so that freed tensors go back
to the system and each case starts from the same state.

Writes ``benchmarks/results/attention.json`` and the plot ``benchmarks/attention.png`` (both
refused if they exist, unless ``--overwrite``); ``render`` turns the JSON into the section of
``RESULTS.md`` (``benchmarks/report.py``).
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
from pathlib import Path

import common  # noqa: F401  (puts the repository root on sys.path)

from experiments import harness

harness.setdefault_env()

CONTENDERS = ("keras", "fused", "keras+scores", "weights")
PAIRS = (("fused", "keras"), ("weights", "keras+scores"))  # (vitlib, its Keras counterpart)
LABELS = {"keras": "Keras MHA", "fused": "vitlib fused", "keras+scores": "Keras MHA + scores",
          "weights": "vitlib with weights"}
OUT = common.RESULTS_DIR / "attention.json"
PLOT = common.HERE / "attention.png"
MIN_SAMPLE_SECONDS = 0.05


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def build_layers(x, heads: int):
    """A Keras MultiHeadAttention and a vitlib MultiHeadSelfAttention with the same weights."""
    import keras
    import numpy as np

    import vitlib

    dim = x.shape[-1]
    mha = keras.layers.MultiHeadAttention(heads, key_dim=dim // heads)
    mha(x, x)
    ours = vitlib.MultiHeadSelfAttention(heads)
    ours.build(x.shape)
    ours.set_weights(mha.get_weights())
    ref, ref_w = (np.asarray(t) for t in mha(x, x, return_attention_scores=True))
    y, w = (np.asarray(t) for t in ours(x, return_attention_scores=True))
    for name, got, want in (("fused", np.asarray(ours(x)), ref), ("weights", y, ref),
                            ("attention weights", w, ref_w)):
        diff = float(np.abs(got - want).max())
        if diff > 1e-4:
            raise AssertionError(f"vitlib {name} differs from Keras' layer by {diff:g}")
    return mha, ours


def make_call(name: str, mha, ours, x, mode: str):
    """A function of no arguments that runs one forward pass and returns NumPy output(s)."""
    import keras

    fns = {
        "keras": lambda z: mha(z, z),
        "fused": lambda z: ours(z),
        "keras+scores": lambda z: mha(z, z, return_attention_scores=True),
        "weights": lambda z: ours(z, return_attention_scores=True),
    }
    fn = fns[name]
    if mode == "xla":
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            fn = tf.function(fn, jit_compile=True, autograph=False)
            x = tf.constant(x)
        elif keras.backend.backend() == "jax":
            import jax

            fn = jax.jit(fn)
        else:
            raise ValueError(f"mode 'xla' needs the TensorFlow or JAX backend, not "
                             f"{keras.backend.backend()!r}.")
    to_numpy = keras.ops.convert_to_numpy

    def call():
        out = fn(x)
        return tuple(to_numpy(t) for t in out) if isinstance(out, tuple) else to_numpy(out)

    return call


def time_cases(calls: dict, repeats: int) -> dict:
    """Median seconds per call of each function in ``calls``, sampled interleaved."""
    import numpy as np

    per_sample = {}
    for name, call in calls.items():
        call()  # warm-up: tracing, compilation, allocation
        start = time.perf_counter()
        call()
        once = time.perf_counter() - start
        per_sample[name] = max(1, min(1000, math.ceil(MIN_SAMPLE_SECONDS / max(once, 1e-6))))
    samples = {name: [] for name in calls}
    names = list(calls)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotate the order
            k = per_sample[name]
            start = time.perf_counter()
            for _ in range(k):
                calls[name]()
            samples[name].append((time.perf_counter() - start) / k)
    return {name: {"seconds": float(np.median(s)), "calls_per_sample": per_sample[name],
                   "samples": [round(v, 7) for v in s]} for name, s in samples.items()}


def input_tokens(batch: int, n: int, dim: int):
    import numpy as np

    return np.random.default_rng(0).normal(size=(batch, n, dim)).astype("float32")


def measure_speed(args, log=print) -> list[dict]:
    import keras

    results = []
    for n in args.tokens:
        keras.utils.set_random_seed(0)
        x = input_tokens(args.batch, n, args.dim)
        mha, ours = build_layers(x, args.heads)
        for mode in args.modes:
            calls = {c: make_call(c, mha, ours, x, mode) for c in CONTENDERS}
            for name, t in time_cases(calls, args.repeats).items():
                point = {"tokens": n, "mode": mode, "contender": name,
                         "seconds": round(t["seconds"], 7),
                         "tokens_per_second": round(args.batch * n / t["seconds"], 1),
                         "calls_per_sample": t["calls_per_sample"], "samples": t["samples"]}
                results.append(point)
                log(json.dumps({k: v for k, v in point.items() if k != "samples"}))
    return results


def memory_child(args) -> None:
    """Run in the child process: one JSON line per case with the peak growth in MB."""
    import keras

    for n in sorted(args.tokens):
        keras.utils.set_random_seed(0)
        x = input_tokens(args.batch, n, args.dim)
        mha, ours = build_layers(x, args.heads)
        for mode in args.modes:
            for name in CONTENDERS:
                call = make_call(name, mha, ours, x, mode)
                call()  # warm-up: compilation and caches are not the call's memory
                gc.collect()
                peak_mb = None
                if _reset_peak():
                    before = _status_kb("VmRSS")
                    out = call()
                    peak = _status_kb("VmHWM")
                    del out
                    if before is not None and peak is not None:
                        peak_mb = round((peak - before) / 1024, 1)
                del call
                gc.collect()
                print(json.dumps({"tokens": n, "mode": mode, "contender": name,
                                  "peak_mb": peak_mb}), flush=True)


def measure_memory(args, argv) -> dict:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536",
           "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"}
    child = subprocess.run([sys.executable, __file__, *argv, "--memory-child"], env=env,
                           capture_output=True, text=True, check=False)
    if child.returncode:
        raise RuntimeError(f"the memory child failed:\n{child.stderr[-3000:]}")
    out = {}
    for line in child.stdout.splitlines():
        if line.startswith("{"):
            p = json.loads(line)
            out[p["tokens"], p["mode"], p["contender"]] = p["peak_mb"]
    return out


def plot(record: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = record["config"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    styles = {"eager": "--", "xla": "-"}
    markers = {"keras": "o", "fused": "s", "keras+scores": "^", "weights": "D"}
    colors = {"keras": "C0", "fused": "C1", "keras+scores": "C2", "weights": "C3"}
    for mode in cfg["modes"]:
        for name in CONTENDERS:
            pts = sorted((p["tokens"], p) for p in record["results"]
                         if p["mode"] == mode and p["contender"] == name)
            n = [t for t, _ in pts]
            label = f"{LABELS[name]} ({mode})"
            axes[0].plot(n, [p["tokens_per_second"] for _, p in pts], styles[mode],
                         marker=markers[name], color=colors[name], label=label)
            mem = [(t, p.get("peak_mb")) for t, p in pts if p.get("peak_mb") is not None]
            if mem:
                axes[1].plot([t for t, _ in mem], [max(m, 0.1) for _, m in mem], styles[mode],
                             marker=markers[name], color=colors[name], label=label)
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xticks(cfg["tokens"], [str(t) for t in cfg["tokens"]])
        ax.set_yscale("log")
        ax.set_xlabel("tokens (sequence length)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("throughput (tokens / s)")
    axes[0].set_title("Forward-pass throughput")
    axes[1].set_ylabel("peak memory of one call (MiB)")
    axes[1].set_title("Peak memory growth (tokens$^2$ for the scores)")
    axes[1].legend(fontsize=7, loc="upper left", title="dashed: eager, solid: XLA",
                   title_fontsize=7)
    fig.suptitle(f"Multi-head self-attention: batch {cfg['batch']}, dim {cfg['dim']}, "
                 f"{cfg['heads']} heads, {record['versions']['backend']} backend, "
                 f"{record['machine']['cpu_count']} CPU cores", fontsize=10)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def ratios(record: dict) -> list[dict]:
    """Per tokens and mode: speed ratio (Keras time / vitlib time: > 1 = vitlib faster) and memory
    ratio (vitlib / Keras: < 1 = vitlib uses less) of each pair."""
    by = {(p["tokens"], p["mode"], p["contender"]): p for p in record["results"]}
    rows = []
    for n in record["config"]["tokens"]:
        for mode in record["config"]["modes"]:
            row = {"tokens": n, "mode": mode}
            for ours, theirs in PAIRS:
                a, b = by[n, mode, ours], by[n, mode, theirs]
                row[f"{ours}_speed"] = b["seconds"] / a["seconds"]
                # beyond the noise: even vitlib's fastest sample is slower than Keras' slowest
                row[f"{ours}_clearly_slower"] = min(a["samples"]) > max(b["samples"])
                ma, mb = a.get("peak_mb"), b.get("peak_mb")
                row[f"{ours}_memory"] = (ma / mb if ma is not None and mb is not None
                                         and mb >= 1.0 else None)  # below 1 MiB: noise
            rows.append(row)
    return rows


def render(record: dict) -> str:
    """The ``RESULTS.md`` section of a record written by this script."""
    cfg = record["config"]
    by = {(p["tokens"], p["mode"], p["contender"]): p for p in record["results"]}
    lines = [
        "## Multi-head self-attention: vitlib vs `keras.layers.MultiHeadAttention`",
        "",
        f"Forward pass, batch {cfg['batch']}, dim {cfg['dim']}, {cfg['heads']} heads, the same "
        "weights; `eager` = one call at a time (as in a notebook), `xla` = compiled with XLA (as in "
        f"training). Throughput = tokens/s, median of {cfg['repeats']} interleaved samples; "
        "**speed ratio** = Keras' time / vitlib's time (above 1: vitlib is faster). Peak memory = "
        "growth of the peak resident memory during one call, in MiB; **memory ratio** = vitlib / "
        "Keras (below 1: vitlib uses less; not given below 1 MiB). Pairs with the same math: "
        "*fused* (no weights returned) vs Keras' layer, and *weights* (returned) vs Keras' layer "
        "with `return_attention_scores=True`.",
        "",
        harness.describe_run(record),
        "",
        "![attention throughput and memory](attention.png)",
        "",
        "| tokens | mode | Keras MHA (tok/s) | vitlib fused (tok/s) | speed ratio | Keras MHA "
        "(MiB) | memory ratio | Keras + scores (tok/s) | vitlib with weights (tok/s) | speed ratio "
        "| Keras + scores (MiB) | memory ratio |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def fmt(value, spec):
        return "n/a" if value is None else format(value, spec)

    slower, noisy = [], []
    for row in ratios(record):
        n, mode = row["tokens"], row["mode"]
        cells = [str(n), mode]
        for ours, theirs in PAIRS:
            a, b = by[n, mode, ours], by[n, mode, theirs]
            cells += [f"{b['tokens_per_second']:,.0f}", f"{a['tokens_per_second']:,.0f}",
                      f"{row[f'{ours}_speed']:.2f}", fmt(b.get("peak_mb"), ".1f"),
                      fmt(row[f"{ours}_memory"], ".2f")]
            where = f"{ours} at {n} tokens ({mode}): {row[f'{ours}_speed']:.2f}"
            if row[f"{ours}_speed"] < 1.0 and row[f"{ours}_clearly_slower"]:
                slower.append(where)
            elif row[f"{ours}_speed"] < 0.95:
                noisy.append(where)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if slower:
        lines.append("**vitlib is slower than Keras' layer** beyond the timing noise (every vitlib "
                     "sample slower than every Keras sample) in: " + "; ".join(slower) + ".")
    else:
        lines.append("vitlib is nowhere slower than Keras' layer beyond the timing noise (no case "
                     "where every vitlib sample is slower than every Keras sample).")
    if noisy:
        lines.append("Speed ratios below 0.95 within the noise (the samples overlap): "
                     + "; ".join(noisy) + ".")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = harness.parser(__doc__.split("\n\n")[0], "results file (.json)", OUT)
    parser.add_argument("--dim", type=harness.positive_int, default=64)
    parser.add_argument("--heads", type=harness.positive_int, default=4)
    parser.add_argument("--batch", type=harness.positive_int, default=8)
    parser.add_argument("--tokens", type=harness.positive_int, nargs="+", default=[16, 32, 64, 128, 256, 512, 1024])
    parser.add_argument("--modes", nargs="+", choices=["eager", "xla"], default=["eager", "xla"])
    parser.add_argument("--repeats", type=harness.positive_int, default=7)
    parser.add_argument("--no-memory", action="store_true", help="skip the memory child")
    parser.add_argument("--plot", default=str(PLOT), help="plot file (.png)")
    parser.add_argument("--note", default="", help="a remark stored in the results")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.dim % args.heads:
        parser.error(f"--heads {args.heads} must divide --dim {args.dim}")
    if args.memory_child:
        memory_child(args)
        return 0
    harness.refuse_existing([args.out, args.plot], args.overwrite)
    record = harness.header(harness.script_line([sys.argv[0], *argv]))
    start = time.perf_counter()
    results = measure_speed(args)
    memory = {} if args.no_memory else measure_memory(args, argv)
    for p in results:
        p["peak_mb"] = memory.get((p["tokens"], p["mode"], p["contender"]))
    record.update({
        "what": "Forward-pass throughput and peak memory of multi-head self-attention: vitlib "
                "(fused path, and the explicit path that returns the weights) vs "
                "keras.layers.MultiHeadAttention with the same weights.",
        "config": {"dim": args.dim, "heads": args.heads, "batch": args.batch,
                   "tokens": args.tokens, "modes": args.modes, "repeats": args.repeats,
                   "min_sample_seconds": MIN_SAMPLE_SECONDS},
        "note": args.note,
        "total_seconds": round(time.perf_counter() - start, 1),
        "results": results,
    })
    record = harness.finish(record)
    record["ratios"] = ratios(record)
    harness.write_record(record, args.out, args.overwrite)
    plot(record, args.plot)
    print(render(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
