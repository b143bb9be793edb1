"""Checkers for notebook 07 (looking inside).

- :func:`check_rollout`: attention rollout (Abnar and Zuidema 2020) for one image.
- :func:`check_mean_attention_distance`: mean attention distance per head, in pixels.

The references below are written again here in plain NumPy, independently of :mod:`vitlib`.
"""

from __future__ import annotations

import numpy as np

from ._core import Feedback, Mistake, check


def _softmax_rows(rng, shape, sharpness=2.0):
    x = rng.normal(size=shape) * sharpness
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# --- rollout -----------------------------------------------------------------------------------
# attentions (layers, heads, T, T) of ONE image, first layer first -> rollout (T, T):
# A_l = mean over heads; A_l' = (0.5 A_l + 0.5 I) with rows renormalised; R = A_L' ... A_1'.


def _fused(attentions, fusion=np.mean):
    return fusion(np.asarray(attentions, dtype=np.float64), axis=1)  # (layers, T, T)


def _with_identity(a):
    t = a.shape[-1]
    a = 0.5 * a + 0.5 * np.eye(t)
    return a / a.sum(axis=-1, keepdims=True)


def _rollout(attentions):
    r = None
    for a in _fused(attentions):
        a = _with_identity(a)
        r = a if r is None else a @ r
    return r


def _rollout_no_identity(attentions):
    r = None
    for a in _fused(attentions):
        r = a if r is None else a @ r
    return r


def _rollout_not_renormalised(attentions):
    r = None
    for a in _fused(attentions):
        a = a + np.eye(a.shape[-1])  # rows now sum to 2
        r = a if r is None else a @ r
    return r


def _rollout_reversed(attentions):
    r = None
    for a in _fused(attentions):
        a = _with_identity(a)
        r = a if r is None else r @ a  # A_1' A_2' ... A_L'
    return r


def _rollout_heads_summed(attentions):
    r = None
    for a in _fused(attentions, np.sum):
        a = _with_identity(a)
        r = a if r is None else a @ r
    return r


def _rollout_last_layer(attentions):
    return _with_identity(_fused(attentions)[-1])


def _rollout_averaged_layers(attentions):
    return np.mean([_with_identity(a) for a in _fused(attentions)], axis=0)


ROLLOUT_MISTAKES = (
    Mistake("no_identity", _rollout_no_identity,
            "you multiplied the raw attention matrices. Each block adds its input back (the residual "
            "connection), so mix in the identity first: A' = 0.5 * A + 0.5 * I."),
    Mistake("not_renormalised", _rollout_not_renormalised,
            "your rows no longer sum to 1: A + I has rows that sum to 2, and the product grows as "
            "2^layers. Renormalise each row after adding the identity (or use 0.5 * A + 0.5 * I)."),
    Mistake("reversed_order", _rollout_reversed,
            "the product is in the wrong order. Information flows from the first layer upward, so "
            "multiply each new layer on the LEFT: R = A_l' @ R, giving R = A_L' ... A_2' A_1'."),
    Mistake("heads_summed", _rollout_heads_summed,
            "you summed the heads. Fuse them with the mean (axis=1), so that each fused row still "
            "sums to 1 before the identity is mixed in."),
    Mistake("last_layer_only", _rollout_last_layer,
            "that is only the last layer. Rollout multiplies the (identity-mixed) attention of every "
            "layer, first to last."),
    Mistake("averaged_layers", _rollout_averaged_layers,
            "you averaged the layers. Rollout chains them: token mixing in layer 2 acts on the "
            "output of layer 1, so the matrices are multiplied, not averaged."),
)


def _rollout_case(rng):
    layers = int(rng.integers(2, 5))
    heads = int(rng.integers(2, 5))
    tokens = int(rng.integers(3, 8))
    return (_softmax_rows(rng, (layers, heads, tokens, tokens)),)


def check_rollout(fn, cases: int = 5, seed: int | None = None) -> Feedback:
    """Check ``fn(attentions (layers, heads, T, T)) -> (T, T)`` against Abnar and Zuidema's rollout."""
    return check(fn, _rollout, _rollout_case, ROLLOUT_MISTAKES, title="rollout",
                 cases=cases, atol=1e-6, seed=seed)


# --- mean attention distance -------------------------------------------------------------------
# attention (heads, T, T) of ONE image and layer; grid (rows, cols); patch_size in pixels;
# prefix tokens (0 or 1) first. -> (heads,): for every patch query, the mean over patch keys of
# the distance between patch centres (in pixels), weighted by the attention renormalised over the
# patch keys; then the mean over the queries.


def _centres(rows, cols, patch_size, row_major=True):
    k = np.arange(rows * cols)
    r, c = np.divmod(k, cols) if row_major else np.divmod(k, rows)[::-1]
    return np.stack([r, c], axis=1) * float(patch_size)


def _distance(attention, grid, patch_size, prefix, *, scale=True, norm=2, renormalise=True,
              weighted=True, row_major=True, wrong_slice=False):
    rows, cols = grid
    a = np.asarray(attention, dtype=np.float64)
    n = rows * cols
    a = a[:, :n, :n] if wrong_slice else a[:, prefix:, prefix:]
    if not weighted:
        a = np.ones_like(a)
    if renormalise or not weighted:
        a = a / a.sum(axis=-1, keepdims=True)
    xy = _centres(rows, cols, patch_size if scale else 1, row_major)
    diff = xy[:, None] - xy[None]
    d = np.abs(diff).sum(-1) if norm == 1 else np.sqrt((diff**2).sum(-1))
    return (a * d).sum(-1).mean(-1)


def _mad(attention, grid, patch_size, prefix):
    return _distance(attention, grid, patch_size, prefix)


DISTANCE_MISTAKES = (
    Mistake("in_patches", lambda a, g, p, k: _distance(a, g, p, k, scale=False),
            "your distances are in patches. The paper reports pixels: multiply the patch "
            "coordinates (or the distances) by `patch_size`."),
    Mistake("class_token_kept", lambda a, g, p, k: _distance(a, g, p, k, wrong_slice=True),
            "you took the first rows*cols tokens, which still include the class token and drop the "
            "last patch. Skip the prefix tokens: attention[:, prefix:, prefix:]."),
    Mistake("not_renormalised", lambda a, g, p, k: _distance(a, g, p, k, renormalise=False),
            "after dropping the class token the weights over the patch keys sum to less than 1. "
            "Our definition is a weighted MEAN: divide each query's patch weights by their sum."),
    Mistake("manhattan", lambda a, g, p, k: _distance(a, g, p, k, norm=1),
            "that is the city-block distance |dr| + |dc|. Use the Euclidean distance between patch "
            "centres, sqrt(dr**2 + dc**2)."),
    Mistake("column_major", lambda a, g, p, k: _distance(a, g, p, k, row_major=False),
            "your patch positions are column by column. Patches are listed row by row: patch k sits "
            "at row k // cols, column k % cols."),
    Mistake("unweighted", lambda a, g, p, k: _distance(a, g, p, k, weighted=False),
            "every head gets the same number: you averaged the distances without the attention "
            "weights. Weight each distance by how much the query attends to that key."),
)


def _distance_case(rng, prefix):
    rows = int(rng.integers(2, 6))
    cols = int(rng.integers(2, 6))
    while cols == rows:  # a non-square grid catches rows and columns mixed up
        cols = int(rng.integers(2, 6))
    heads = int(rng.integers(2, 5))
    t = prefix + rows * cols
    patch_size = int(rng.choice([2, 4, 7, 16]))
    return _softmax_rows(rng, (heads, t, t)), (rows, cols), patch_size, prefix


def check_mean_attention_distance(fn, cases: int = 6, seed: int | None = None) -> Feedback:
    """Check ``fn(attention (heads, T, T), grid (rows, cols), patch_size, num_prefix_tokens) -> (heads,)``."""
    prefixes = iter([1, 0] * cases)  # with and without a class token, alternating

    def make_case(rng):
        return _distance_case(rng, next(prefixes))

    return check(fn, _mad, make_case, DISTANCE_MISTAKES, title="mean_attention_distance",
                 cases=cases, atol=1e-6, seed=seed)
