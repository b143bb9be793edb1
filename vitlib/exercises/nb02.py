"""Checkers for notebook 02 (attention as a soft dictionary).

- :func:`check_softmax`: ``softmax(x, axis=-1)`` in NumPy.
- :func:`check_attention`: ``attention(q, k, v)`` for one sequence: q (queries, d),
  k (keys, d), v (keys, d_v) -> (queries, d_v), Vaswani et al. 2017, Eq. 1.
"""

from __future__ import annotations

import numpy as np

from ._core import Feedback, Mistake, check

__all__ = ["check_attention", "check_softmax", "reference_attention", "reference_softmax"]


def reference_softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along ``axis``, computed stably (max subtracted first)."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def reference_attention(q, k, v):
    """softmax(q k^T / sqrt(d)) v for q (queries, d), k (keys, d), v (keys, d_v)."""
    q, k, v = (np.asarray(t, dtype=np.float64) for t in (q, k, v))
    scores = q @ k.T / np.sqrt(q.shape[-1])
    return reference_softmax(scores, axis=-1) @ v


# ---------------------------------------------------------------- softmax

def _softmax_cases():
    """Case 0 is square (so a missing keepdims broadcasts silently); then 3-D, every axis."""
    plan = iter([("square", -1), ("cube", -1), ("cube", 0), ("cube", 1), ("cube", -2),
                 ("rows", -1)])

    def make_case(rng):
        kind, axis = next(plan)
        shape = {"square": (4, 4), "cube": (2, 3, 5), "rows": (3, 7)}[kind]
        return rng.normal(0, 2, size=shape), axis

    return make_case


_SOFTMAX_MISTAKES = [
    Mistake("ignored_axis", lambda x, axis=-1: reference_softmax(x, axis=-1),
            "you always normalise over the last axis. Use the `axis` argument in both "
            "`max`/`sum` calls: `np.sum(e, axis=axis, keepdims=True)`."),
    Mistake("first_axis", lambda x, axis=-1: reference_softmax(x, axis=0),
            "you normalise over axis 0 (down the columns). Pass `axis=axis` to the sum."),
    Mistake("no_normalisation", lambda x, axis=-1: np.exp(x),
            "you return exp(x) without dividing by the sum, so the weights do not sum to 1."),
    Mistake("sum_over_everything", lambda x, axis=-1: np.exp(x) / np.exp(x).sum(),
            "you divide by the sum over the whole array. Sum only along `axis`, so that each "
            "row of weights sums to 1 on its own."),
    Mistake("no_keepdims",
            lambda x, axis=-1: np.exp(x) / np.exp(x).sum(axis=axis),
            "the sum lost its axis, so the division broadcast along the wrong axis. Use "
            "`keepdims=True` in the sum (and in the max)."),
]


def check_softmax(softmax) -> Feedback:
    """Check ``softmax(x, axis=-1)`` on random arrays and axes, then on very large scores."""
    fb = check(softmax, reference_softmax, _softmax_cases(), _SOFTMAX_MISTAKES,
               title="softmax", cases=6, seed=2)
    if not fb:
        return fb
    big = np.array([[1000.0, 1001.0, 1002.0], [-5.0, 0.0, 5.0]])
    with np.errstate(all="ignore"):
        got = np.asarray(softmax(big, -1), dtype=np.float64)
    if not np.all(np.isfinite(got)):
        return Feedback(False, "❌ softmax: correct on ordinary scores, but scores near 1000 give "
                               "nan: exp(1000) overflows. Subtract the maximum first: "
                               "`np.exp(x - x.max(axis=axis, keepdims=True))` (the result does "
                               "not change, since softmax(x - c) = softmax(x)).",
                        mistake="overflow")
    return Feedback(True, "✅ softmax: correct on 6 random cases and stable for large scores.")


# ---------------------------------------------------------------- attention

def _attention_cases():
    """(queries, keys, d, d_v). The square cases (keys == d) let `q @ k` run silently."""
    plan = iter([(4, 4, 4, 4), (3, 5, 5, 2), (6, 4, 3, 5), (2, 7, 8, 7), (5, 6, 6, 3)])

    def make_case(rng):
        nq, nk, d, dv = next(plan)
        return (rng.normal(size=(nq, d)) * 2, rng.normal(size=(nk, d)) * 2,
                rng.normal(size=(nk, dv)))

    return make_case


def _weights(q, k, v, scale=None, axis=-1, transpose=True):
    q, k = np.asarray(q, np.float64), np.asarray(k, np.float64)
    scale = np.sqrt(q.shape[-1]) if scale is None else scale
    return reference_softmax(q @ (k.T if transpose else k) / scale, axis=axis)


_ATTENTION_MISTAKES = [
    Mistake("no_scale", lambda q, k, v: _weights(q, k, v, scale=1.0) @ v,
            "you forgot to divide the scores by sqrt(d). Without it the scores grow with d, "
            "the softmax saturates and its gradients vanish: `scores = q @ k.T / np.sqrt(d)`."),
    Mistake("divided_by_d", lambda q, k, v: _weights(q, k, v, scale=q.shape[-1]) @ v,
            "you divided the scores by d; divide by sqrt(d) (`np.sqrt(q.shape[-1])`). "
            "The dot product of d unit-variance numbers has standard deviation sqrt(d), not d."),
    Mistake("softmax_over_queries", lambda q, k, v: _weights(q, k, v, axis=0) @ v,
            "your softmax normalises over the queries (axis 0 of the scores). Each query's row "
            "of weights must sum to 1 over the keys: `softmax(scores, axis=-1)`."),
    Mistake("keys_not_transposed", lambda q, k, v: _weights(q, k, v, transpose=False) @ v,
            "the keys are not transposed: `q @ k` only ran because k happened to be square. "
            "The scores are `q @ k.T`, shape (queries, keys)."),
    Mistake("returned_weights", lambda q, k, v: _weights(q, k, v),
            "you returned the attention weights (queries, keys). Return the weighted average "
            "of the values: `weights @ v`, shape (queries, d_v)."),
    Mistake("returned_tuple", lambda q, k, v: (_weights(q, k, v) @ v, _weights(q, k, v)),
            "you returned (output, weights), like `vitlib.scaled_dot_product_attention`; this "
            "exercise asks for the output only."),
    Mistake("no_softmax", lambda q, k, v: (q @ k.T / np.sqrt(q.shape[-1])) @ v,
            "the scores go straight into the values without a softmax: the weights must be "
            "positive and sum to 1 for each query."),
]


def check_attention(attention) -> Feedback:
    """Check ``attention(q, k, v) -> softmax(q k^T / sqrt(d)) v`` on random 2-D cases."""
    return check(attention, reference_attention, _attention_cases(), _ATTENTION_MISTAKES,
                 title="attention", cases=5, seed=3)
