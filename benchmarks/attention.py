"""Multi-head self-attention speed: vitlib (explicit and fused paths) vs keras.layers.MultiHeadAttention.

Usage: .venv/bin/python benchmarks/attention.py [--dim 64 --heads 4 --batch 8]

All three compute the same function with the same weights (checked before timing). For each
number of tokens they are timed interleaved, in one process, on the same inputs (median of
several repeats), so the ratios are meaningful on a noisy machine even where absolute times drift.
Prints a Markdown table of tokens/s and the ratio to Keras' layer.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import vitlib  # noqa: E402


def timed(fn, repeats: int) -> float:
    fn()  # warm-up (tracing, allocation)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.asarray(fn())
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, nargs="+", default=[16, 64, 256, 1024])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    print(f"backend={keras.backend.backend()} dim={args.dim} heads={args.heads} batch={args.batch}\n")
    print("| tokens | Keras MHA (tokens/s) | vitlib fused | vitlib with weights | fused / Keras | weights / Keras |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in args.tokens:
        x = np.random.default_rng(0).normal(size=(args.batch, n, args.dim)).astype("float32")
        mha = keras.layers.MultiHeadAttention(args.heads, key_dim=args.dim // args.heads)
        mha(x, x)
        ours = vitlib.MultiHeadSelfAttention(args.heads)
        ours.build(x.shape)
        ours.set_weights(mha.get_weights())
        ref = np.asarray(mha(x, x))
        assert np.allclose(np.asarray(ours(x)), ref, atol=1e-4)
        t_keras = timed(lambda: mha(x, x), args.repeats)
        t_fused = timed(lambda: ours(x), args.repeats)
        t_weights = timed(lambda: ours(x, return_attention_scores=True)[0], args.repeats)
        rate = args.batch * n
        print(f"| {n} | {rate / t_keras:,.0f} | {rate / t_fused:,.0f} | {rate / t_weights:,.0f} "
              f"| {t_keras / t_fused:.2f} | {t_keras / t_weights:.2f} |", flush=True)


if __name__ == "__main__":
    main()
