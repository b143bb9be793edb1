"""Checkers for notebook 02 (attention as a soft dictionary).

- :func:`check_softmax`: ``softmax(x, axis=-1)`` in NumPy.
- :func:`check_attention`: ``attention(q, k, v, mask)`` for one sequence with a mask:
  q (queries, d), k (keys, d), v (keys, d_v), mask (queries, keys) booleans, True = may attend
  -> (queries, d_v): Vaswani et al. 2017, Eq. 1, with blocked scores set to -inf (or a large
  negative number) before the softmax.
- :func:`check_sharpen_prediction` (predict-then-run): ``prediction``, a number: the weight of
  "green" in Step 2's soft lookup when the query is multiplied by 10 (measured: 0.993; right
  within 0.02); the weight before (0.574) and the uniform 1/3 get their own hints.
- :func:`check_local_mask` (transfer): ``local_mask(grid_h, grid_w, radius)`` -> (N, N)
  booleans (0/1 accepted), N = grid_h * grid_w patches numbered row by row, True where the key
  patch is at most ``radius`` rows and ``radius`` columns from the query patch; non-square grids.
- :func:`check_scaling_answer` (interpret): ``answer``, one letter 'a'-'d', about Step 6's
  table (why divide by sqrt(d)); right: 'b'.

The prediction and multiple-choice checkers read None as "not answered yet".
"""

from __future__ import annotations

import numpy as np

from ._core import Feedback, Mistake, check, choose, compare_prediction

_BLOCKED = -1e9  # a blocked score; exp(-1e9 - max) is exactly 0, as with -inf


def reference_softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along ``axis``, computed stably (max subtracted first)."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def reference_attention(q, k, v, mask=None):
    """softmax(q k^T / sqrt(d), blocked where mask is False) v for q (queries, d), k (keys, d),
    v (keys, d_v), mask (queries, keys) or None."""
    q, k, v = (np.asarray(t, dtype=np.float64) for t in (q, k, v))
    scores = q @ k.T / np.sqrt(q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, _BLOCKED)
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


_OVERFLOW_HINT = ("❌ softmax: correct on ordinary scores, but scores near 1000 give nan: exp(1000) "
                  "overflows. Subtract the maximum first: `np.exp(x - x.max(axis=axis, "
                  "keepdims=True))` (the result does not change, since softmax(x - c) = softmax(x)).")
_GLOBAL_MAX_HINT = ("❌ softmax: stable when all scores are large, but nan when the rows have very "
                    "different scales ([-1000, 0] and [0, 1000] in one array): you subtracted the "
                    "maximum of the WHOLE array, so a row far below it underflows to 0 / 0. Subtract "
                    "the max along `axis`, with keepdims: `x - x.max(axis=axis, keepdims=True)`.")


def _stability_problem(softmax, x, axis):
    """None if ``softmax(x, axis)`` is finite and right, else 'nan' or 'wrong'."""
    with np.errstate(all="ignore"):
        try:
            got = np.asarray(softmax(x, axis), dtype=np.float64)
        except Exception:  # reported as not finite: the learner sees the stability hint
            return "nan"
    if got.shape != x.shape or not np.all(np.isfinite(got)):
        return "nan"
    return None if np.allclose(got, reference_softmax(x, axis), atol=1e-6) else "wrong"


def check_softmax(softmax) -> Feedback:
    """Check ``softmax(x, axis=-1)`` on random arrays and axes, then on very large scores:
    all large (catches a missing max subtraction), then rows of very different scales (catches
    a max taken over the whole array instead of along ``axis``)."""
    fb = check(softmax, reference_softmax, _softmax_cases(), _SOFTMAX_MISTAKES,
               title="softmax", cases=6, seed=2)
    if not fb:
        return fb
    big = np.array([[1000.0, 1001.0, 1002.0], [1001.0, 1000.0, 999.0]])
    mixed = np.array([[-1000.0, 0.0], [0.0, 1000.0]])
    for x, axis, name, hint in [(big, -1, "overflow", _OVERFLOW_HINT),
                                (mixed, -1, "global_max", _GLOBAL_MAX_HINT),
                                (mixed.T.copy(), 0, "global_max", _GLOBAL_MAX_HINT)]:
        problem = _stability_problem(softmax, x, axis)
        if problem == "nan":
            return Feedback(False, hint, mistake=name)
        if problem == "wrong":
            return Feedback(False, "❌ softmax: correct on ordinary scores, but wrong on scores "
                                   f"near ±1000 along axis {axis}.")
    return Feedback(True, "✅ softmax: correct on 6 random cases and stable for large scores.")


# ---------------------------------------------------------------- attention

def _mask(rng, nq, nk):
    """Random booleans where every row and every column has at least one True and one False."""
    while True:
        m = rng.random((nq, nk)) < 0.6
        if m.any(0).all() and m.any(1).all() and (~m).any(0).all() and (~m).any(1).all():
            return m


def _attention_cases():
    """(queries, keys, d, d_v). Case 1 has keys == d, so that `q @ k` runs silently; the
    sizes differ from case to case so that dividing by sqrt(d_v), sqrt(keys) or sqrt(queries)
    each differ from sqrt(d) somewhere."""
    plan = iter([(3, 4, 4, 2), (4, 5, 5, 3), (6, 4, 3, 5), (2, 7, 8, 7), (5, 6, 6, 3)])

    def make_case(rng):
        nq, nk, d, dv = next(plan)
        return (rng.normal(size=(nq, d)) * 2, rng.normal(size=(nk, d)) * 2,
                rng.normal(size=(nk, dv)), _mask(rng, nq, nk))

    return make_case


def _weights(q, k, mask, scale=None, axis=-1, transpose=True, use_mask=True):
    q, k = np.asarray(q, np.float64), np.asarray(k, np.float64)
    scale = np.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ (k.T if transpose else k) / scale
    if use_mask:
        scores = np.where(mask, scores, _BLOCKED)
    return reference_softmax(scores, axis=axis)


def _scaled(scale_of):
    return lambda q, k, v, m: _weights(q, k, m, scale=scale_of(q, k, v)) @ v


_ATTENTION_MISTAKES = [
    Mistake("mask_ignored", lambda q, k, v, m: _weights(q, k, m, use_mask=False) @ v,
            "your output ignores the mask: every query still uses every key. Set the blocked "
            "scores to -inf before the softmax: `scores = np.where(mask, scores, -np.inf)`."),
    Mistake("mask_inverted", lambda q, k, v, m: _weights(q, k, ~m) @ v,
            "your mask is the wrong way round: True means 'may attend' (as in vitlib), so keep "
            "the scores where mask is True and block them where it is False."),
    Mistake("mask_after_softmax", lambda q, k, v, m: (_weights(q, k, m, use_mask=False) * m) @ v,
            "you zeroed the blocked weights AFTER the softmax, so each row no longer sums to 1. "
            "Block the scores BEFORE the softmax (-inf gives weight 0 and the rest still sums "
            "to 1)."),
    Mistake("mask_multiplied",
            lambda q, k, v, m: reference_softmax(q @ k.T / np.sqrt(q.shape[-1]) * m) @ v,
            "you multiplied the scores by the mask. A blocked score of 0 still gets weight "
            "e^0 > 0 in the softmax; replace blocked scores by -inf (or -1e9) with `np.where`."),
    Mistake("no_scale", _scaled(lambda q, k, v: 1.0),
            "you forgot to divide the scores by sqrt(d). Without it the scores grow with d, "
            "the softmax saturates and its gradients vanish: `scores = q @ k.T / np.sqrt(d)`."),
    Mistake("divided_by_d", _scaled(lambda q, k, v: q.shape[-1]),
            "you divided the scores by d; divide by sqrt(d) (`np.sqrt(q.shape[-1])`). "
            "The dot product of d unit-variance numbers has standard deviation sqrt(d), not d."),
    Mistake("divided_by_sqrt_dv", _scaled(lambda q, k, v: np.sqrt(v.shape[-1])),
            "you divided by the square root of the VALUES' width d_v. The scale comes from the "
            "dot product q . k, a sum over the d features of the queries and keys: "
            "divide by `np.sqrt(q.shape[-1])`."),
    Mistake("divided_by_sqrt_keys", _scaled(lambda q, k, v: np.sqrt(k.shape[0])),
            "you divided by the square root of the number of keys (`k.shape[0]`). The scale is "
            "the square root of the feature size d, the last axis: `np.sqrt(q.shape[-1])`."),
    Mistake("divided_by_sqrt_queries", _scaled(lambda q, k, v: np.sqrt(q.shape[0])),
            "you divided by the square root of the number of queries (`q.shape[0]`). The scale "
            "is the square root of the feature size d, the LAST axis: `np.sqrt(q.shape[-1])`."),
    Mistake("softmax_over_queries", lambda q, k, v, m: _weights(q, k, m, axis=0) @ v,
            "your softmax normalises over the queries (axis 0 of the scores). Each query's row "
            "of weights must sum to 1 over the keys: `softmax(scores, axis=-1)`."),
    Mistake("keys_not_transposed", lambda q, k, v, m: _weights(q, k, m, transpose=False) @ v,
            "the keys are not transposed: `q @ k` only ran because k happened to be square. "
            "The scores are `q @ k.T`, shape (queries, keys)."),
    Mistake("returned_weights", lambda q, k, v, m: _weights(q, k, m),
            "you returned the attention weights (queries, keys). Return the weighted average "
            "of the values: `weights @ v`, shape (queries, d_v)."),
    Mistake("returned_tuple", lambda q, k, v, m: (_weights(q, k, m) @ v, _weights(q, k, m)),
            "you returned (output, weights), like `vitlib.scaled_dot_product_attention`; this "
            "exercise asks for the output only."),
    Mistake("no_softmax",
            lambda q, k, v, m: np.where(m, q @ k.T / np.sqrt(q.shape[-1]), 0.0) @ v,
            "the scores go straight into the values without a softmax: the weights must be "
            "positive and sum to 1 for each query."),
]


def check_attention(attention) -> Feedback:
    """Check ``attention(q, k, v, mask) -> softmax(mask(q k^T / sqrt(d))) v`` on random 2-D
    cases, each with a mask that blocks some keys of every query."""
    return check(attention, reference_attention, _attention_cases(), _ATTENTION_MISTAKES,
                 title="attention", cases=5, seed=3)


# ---------------------------------------------------------------- Exercise 3: predict-then-run

# Step 2's soft lookup: keys "red", "green", "blue" (one-hot), the query [0, 2, 1.5].
STEP2_KEYS = np.eye(3)
STEP2_QUERY = np.array([0.0, 2.0, 1.5])


def measure_sharpened_weight(factor: float = 10.0) -> float:
    """The weight of "green" in Step 2's soft lookup when the query is multiplied by ``factor``
    (the experiment the prediction is compared with)."""
    return float(reference_softmax(STEP2_KEYS @ (factor * STEP2_QUERY))[1])


def check_sharpen_prediction(prediction) -> Feedback:
    """Compare a predicted weight of "green" for the query 10 x [0, 2, 1.5] (scores [0, 20, 15])
    with the measured one (0.993), within 0.02."""
    before, after = measure_sharpened_weight(1.0), measure_sharpened_weight(10.0)
    mistakes = [
        ("unchanged", before,
         f"That is the weight before ({before:.3f}). The softmax does not change when you ADD "
         "the same number to every score, but it does when you MULTIPLY them: the gap between "
         "green and blue grows from 0.5 to 5, and e^5 is about 148. (Weights proportional to "
         "the scores, 20 / 35 = 0.57, would not change either; the softmax exponentiates.)"),
        ("uniform", 1 / 3,
         "Larger scores make the weights more peaked, not flatter. Dividing the scores by a "
         "large number would flatten them towards 1/3 each."),
    ]
    why = ("Multiplying the query by 10 multiplies every score by 10: [0, 20, 15]. Green now "
           "beats blue by 5 instead of 0.5, so it takes almost all the weight: the lookup becomes "
           "nearly hard. Scores that grow with d do the same, which is why Step 6 divides by "
           "sqrt(d).")
    return compare_prediction(prediction, after, title="Exercise 3 (sharper query)",
                              atol=0.02, why=why, mistakes=mistakes)


# ---------------------------------------------------------------- Exercise 4: transfer

def reference_local_mask(grid_h: int, grid_w: int, radius: int):
    """(N, N) booleans, N = grid_h * grid_w patches numbered row by row: True where the key
    patch is at most ``radius`` rows AND at most ``radius`` columns from the query patch."""
    rows, cols = np.divmod(np.arange(grid_h * grid_w), grid_w)
    return ((np.abs(rows[:, None] - rows[None, :]) <= radius)
            & (np.abs(cols[:, None] - cols[None, :]) <= radius))


def _mask_from_distance(grid_h, grid_w, distance):
    rows, cols = np.divmod(np.arange(grid_h * grid_w), grid_w)
    return distance(np.abs(rows[:, None] - rows[None, :]), np.abs(cols[:, None] - cols[None, :]))


_LOCAL_MASK_MISTAKES = [
    Mistake("swapped_grid", lambda gh, gw, r: reference_local_mask(gw, gh, r),
            "you numbered the patches as if each row had grid_h patches. Patches are numbered "
            "row by row, and a row has grid_w patches: patch k is at row k // grid_w, column "
            "k % grid_w."),
    Mistake("sequence_distance",
            lambda gh, gw, r: np.abs(np.arange(gh * gw)[:, None] - np.arange(gh * gw)[None, :]) <= r,
            "you measured the distance along the sequence (|i - j| <= radius). Tokens that are "
            "neighbours in the IMAGE can be far apart in the sequence: the patch below patch k "
            "is patch k + grid_w. Convert each token number to (row, column) first."),
    Mistake("manhattan", lambda gh, gw, r: _mask_from_distance(gh, gw, lambda dr, dc: dr + dc <= r),
            "your window is a diamond (rows + columns apart <= radius). The window is a square, "
            "like a convolution's: at most `radius` rows apart AND at most `radius` columns "
            "apart."),
    Mistake("strict", lambda gh, gw, r: _mask_from_distance(gh, gw, lambda dr, dc: (dr < r) & (dc < r)),
            "you used < instead of <=: a radius of 1 must include the 8 neighbours (a 3x3 "
            "window), and a radius of 0 the patch itself."),
    Mistake("self_excluded", lambda gh, gw, r: reference_local_mask(gh, gw, r) & ~np.eye(gh * gw, dtype=bool),
            "you blocked each patch from itself. The window includes its centre: with radius 0 "
            "each patch sees only itself, and a query with no key at all would have no softmax "
            "to take."),
]


def _local_mask_cases():
    """A non-square grid first (rows != columns), radius 1 or 2; then random ones, radius 0-2."""
    first = iter([(3, 5, 1), (4, 3, 2)])

    def make_case(rng):
        try:
            return next(first)
        except StopIteration:
            gh, gw = (int(v) for v in rng.choice(np.arange(2, 7), size=2, replace=False))
            return gh, gw, int(rng.integers(0, 3))

    return make_case


def check_local_mask(local_mask, seed: int | None = None) -> Feedback:
    """Check ``local_mask(grid_h, grid_w, radius)`` -> (N, N) booleans on non-square grids.
    Booleans or 0/1 numbers are accepted."""
    def reference(gh, gw, r):  # as numbers: booleans and 0/1 compare equal to them
        return reference_local_mask(gh, gw, r).astype(float)

    mistakes = [Mistake(m.name, (lambda f: lambda *a: f(*a).astype(float))(m.fn), m.hint)
                for m in _LOCAL_MASK_MISTAKES]
    return check(local_mask, reference, _local_mask_cases(), mistakes,
                 title="Exercise 4 (local_mask)", cases=6, seed=seed, atol=0, rtol=0)


# ---------------------------------------------------------------- Exercise 5: interpret

SCALING_OPTIONS = {
    "a": ("Dividing every score by the same positive number never changes their order, so the "
          "top key stays the top key: in the table only the max weight and the Jacobian change, "
          "not which key wins."),
    "b": "",  # the right answer
    "c": ("Overflow is a different problem, and the stable softmax already solves it by "
          "subtracting the maximum (Exercise 1): no nan appears in the table at any d. The table "
          "shows saturation: the weights go one-hot (max weight 0.96 at d = 1024) and the "
          "softmax's Jacobian shrinks (0.059 against 0.304)."),
    "d": ("The scaled column stays flat for every d (score std about 1, max weight about 0.24, "
          "Jacobian about 0.30): dividing by sqrt(d) removes the effect of d, it does not just "
          "postpone it. The unscaled column is the one that degrades as d grows."),
}


def check_scaling_answer(answer) -> Feedback:
    """Step 6's table (16 keys, 500 queries): without scaling, at d = 1024 the score std is about
    31, the mean max weight 0.96 and the Jacobian norm 0.059 (0.304 scaled). Right answer: (b)."""
    return choose(answer, options=SCALING_OPTIONS, correct="b", title="Exercise 5 (why sqrt(d))",
                  why="Without scaling the scores' spread grows like sqrt(d), the softmax saturates "
                      "(nearly one-hot) and the gradient through it is about 5x smaller at "
                      "d = 1024 than with scaling: training starts slowly. Dividing by sqrt(d) "
                      "keeps all three columns the same for every d.")


__all__ = ["check_attention", "check_local_mask", "check_scaling_answer", "check_sharpen_prediction",
           "check_softmax", "measure_sharpened_weight", "reference_attention", "reference_local_mask",
           "reference_softmax"]
