"""Checkers for notebook 02 (attention as a soft dictionary).

- :func:`check_masked_softmax` (Exercise 1): ``masked_softmax(x, mask, axis=-1)`` in NumPy:
  ``mask`` (booleans, the shape of ``x``, True = allowed); blocked entries get exactly 0, the
  allowed ones softmax weights summing to 1 along ``axis``, and a lane in which every entry is
  blocked all zeros (not nan). Stable for scores near 1000 (also when a blocked entry is far
  above the allowed ones). Recognised: the mask ignored, inverted, applied after the softmax or
  multiplied into the scores; the usual softmax slips (axis, normalisation, keepdims, overflow,
  a global max); nan and uniform weights on a fully blocked row (the -inf and the -1e9 recipe).
- :func:`check_softmax`: ``softmax(x, axis=-1)`` in NumPy, without a mask (the former
  Exercise 1, which Step 2's cell answered; kept for ``tools/careless.py``).
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
- :func:`check_jacobian_answer` (interpret): ``answer``, one letter 'a'-'e': why, in Step 6's
  table, the softmax's Jacobian norm at d = 4 is larger without scaling (0.319) than with it
  (0.296); right: 'c' (the gradient is small for flat and for one-hot weights, largest in
  between). Each wrong choice gets its own explanation.

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


# ---------------------------------------------------------------- Exercise 1: masked softmax

def reference_masked_softmax(x, mask, axis=-1):
    """softmax of ``x`` along ``axis`` over the entries where ``mask`` is True; blocked entries
    get exactly 0, and a lane in which every entry is blocked gets all zeros (not nan)."""
    x, mask = np.asarray(x, dtype=np.float64), np.asarray(mask, dtype=bool)
    blocked = np.where(mask, x, -np.inf)
    top = blocked.max(axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)  # a fully blocked lane: its max is -inf
    e = np.where(mask, np.exp(blocked - top), 0.0)
    total = e.sum(axis=axis, keepdims=True)
    return e / np.where(total > 0, total, 1.0)


def _masked_cases():
    """Like the softmax cases (square first, then 3-D along every axis), each with a mask in
    which every lane along ``axis`` has at least one allowed and one blocked entry."""
    plan = iter([("square", -1), ("cube", -1), ("cube", 0), ("cube", 1), ("cube", -2),
                 ("rows", -1)])

    def make_case(rng):
        kind, axis = next(plan)
        shape = {"square": (4, 4), "cube": (2, 3, 5), "rows": (3, 7)}[kind]
        lanes = np.moveaxis(rng.random(shape) < 0.6, axis, -1).copy()
        flat = lanes.reshape(-1, lanes.shape[-1])
        for row in flat:  # one allowed and one blocked entry in every lane, at random places
            allowed, blocked = rng.choice(len(row), size=2, replace=False)
            row[allowed], row[blocked] = True, False
        mask = np.moveaxis(flat.reshape(lanes.shape), -1, axis)
        return rng.normal(0, 2, size=shape), mask, axis

    return make_case


def _ms(x, mask, axis=-1, *, use_mask=True, after=False, multiply=False, normalise="axis",
        keepdims=True, shift=True):
    """The masked softmax with one usual slip switched on (for the Mistakes below); ``shift``:
    the max along ``axis`` subtracted first (as in Step 2's softmax) or not."""
    x, mask = np.asarray(x, np.float64), np.asarray(mask, bool)
    if multiply:
        return reference_softmax(x * mask, axis=axis)
    if after:
        return reference_softmax(x, axis=axis) * mask
    e = np.exp(x - x.max(axis=axis, keepdims=True)) if shift else np.exp(x)
    if use_mask:
        e = np.where(mask, e, 0.0)
    if normalise == "none":
        return e
    if normalise == "all":
        return e / e.sum()
    return e / e.sum(axis=axis, keepdims=keepdims)


_MASKED_MISTAKES = [
    Mistake("mask_ignored", lambda x, m, axis=-1: reference_softmax(x, axis=axis),
            "your weights ignore the mask: blocked entries still get weight. Set them to -inf "
            "(or exclude them) BEFORE the softmax: `np.where(mask, x, -np.inf)`."),
    Mistake("mask_inverted", lambda x, m, axis=-1: reference_masked_softmax(x, ~np.asarray(m, bool), axis),
            "your mask is the wrong way round: True means 'allowed' (as in vitlib), so keep the "
            "entries where mask is True and block them where it is False."),
    Mistake("mask_after_softmax", lambda x, m, axis=-1: _ms(x, m, axis, after=True),
            "you zeroed the blocked weights AFTER the softmax, so each row no longer sums to 1. "
            "Block the scores BEFORE the softmax (-inf gives weight 0 and the rest still sums to "
            "1), or divide by the sum of the allowed entries only."),
    Mistake("mask_multiplied", lambda x, m, axis=-1: _ms(x, m, axis, multiply=True),
            "you multiplied the scores by the mask. A blocked score of 0 still gets weight "
            "e^0 > 0 in the softmax; replace blocked scores by -inf with `np.where`."),
    Mistake("ignored_axis", lambda x, m, axis=-1: reference_masked_softmax(x, m, axis=-1),
            "you always normalise over the last axis. Use the `axis` argument in both "
            "`max`/`sum` calls: `np.sum(e, axis=axis, keepdims=True)`."),
    Mistake("first_axis", lambda x, m, axis=-1: reference_masked_softmax(x, m, axis=0),
            "you normalise over axis 0 (down the columns). Pass `axis=axis` to the max and the "
            "sum."),
]



def _slip(kw, shift):
    return lambda x, m, axis=-1: _ms(x, m, axis, shift=shift, **kw)


_SOFTMAX_SLIPS = [
    ("no_normalisation", {"normalise": "none"},
     "you return the exponentials without dividing by their sum, so the weights do not sum to 1."),
    ("sum_over_everything", {"normalise": "all"},
     "you divide by the sum over the whole array. Sum only along `axis`, so that each row of "
     "weights sums to 1 on its own."),
    ("no_keepdims", {"keepdims": False},
     "the sum lost its axis, so the division broadcast along the wrong axis. Use "
     "`keepdims=True` in the sum (and in the max)."),
]
# each with and without the max subtracted first: both are common
_MASKED_MISTAKES += [Mistake(name, _slip(kw, shift), hint)
                     for shift in (True, False) for name, kw, hint in _SOFTMAX_SLIPS]

_MASKED_OVERFLOW_HINT = (
    "❌ masked_softmax: correct on ordinary scores, but scores near 1000 give nan: exp(1000) "
    "overflows. Subtract the maximum of the allowed entries first (the result does not change, "
    "since softmax(x - c) = softmax(x)).")
_BLOCKED_MAX_HINT = (
    "❌ masked_softmax: nan (or zeros) when a BLOCKED entry is far larger than the allowed ones "
    "(scores [0, 1000], the 1000 blocked): you subtracted the max over all entries, blocked ones "
    "included, so every allowed exp underflows to 0 and the row becomes 0 / 0. Take the max over the "
    "allowed entries only: set the blocked ones to -inf first.")
_MASKED_GLOBAL_MAX_HINT = (
    "❌ masked_softmax: stable when all scores are large, but nan (or zeros) when the rows have "
    "very different scales ([-1000, 0] and [0, 1000] in one array): you subtracted the maximum of "
    "the WHOLE array, so a row far below it underflows to 0 / 0. Subtract the max along `axis`, with "
    "keepdims.")
_EMPTY_NAN_HINT = (
    "❌ masked_softmax: right wherever a row has an allowed entry, but a row in which EVERY entry "
    "is blocked comes out as nan: with -inf everywhere the max is -inf, and -inf - (-inf) is nan "
    "(or the sum is 0 and you divide 0 / 0). A query with no key it may use must get all zeros: "
    "replace a max of -inf by 0 before subtracting, and divide only where the sum is > 0 "
    "(`np.where`).")
_EMPTY_UNIFORM_HINT = (
    "❌ masked_softmax: right wherever a row has an allowed entry, but a row in which every entry "
    "is blocked gets equal weights (1/n each): with a large negative number instead of -inf, the "
    "blocked scores all tie and the softmax spreads the weight over keys the query may not use. "
    "Give blocked entries exactly 0 (`np.where(mask, ..., 0.0)`), so that such a row is all "
    "zeros.")


def _run_special(fn, x, mask, axis):
    """The learner's output on one special case as float64, or the exception it raised."""
    with np.errstate(all="ignore"):
        try:
            return np.asarray(fn(x, mask, axis), dtype=np.float64)
        except Exception as e:  # reported in plain words by the caller
            return e


def check_masked_softmax(masked_softmax) -> Feedback:
    """Check ``masked_softmax(x, mask, axis=-1)`` on random arrays, masks and axes; then on large
    scores (overflow, a huge blocked entry, rows of different scales); then on a fully blocked
    row, which must come out as zeros (nan and uniform weights each get their own hint)."""
    fb = check(masked_softmax, reference_masked_softmax, _masked_cases(), _MASKED_MISTAKES,
               title="masked_softmax", cases=6, seed=2)
    if not fb:
        return fb
    big = np.array([[1000.0, 1001.0, 1002.0], [1001.0, 1000.0, 999.0]])
    big_mask = np.array([[True, True, False], [False, True, True]])
    huge_blocked = np.array([[0.0, 1000.0], [5.0, -3.0]])
    huge_mask = np.array([[True, False], [True, True]])
    mixed = np.array([[-1000.0, 0.0], [0.0, 1000.0]])
    mixed_mask = np.ones((2, 2), bool)
    for x, mask, axis, name, hint in [
            (big, big_mask, -1, "overflow", _MASKED_OVERFLOW_HINT),
            (huge_blocked, huge_mask, -1, "blocked_max", _BLOCKED_MAX_HINT),
            (mixed, mixed_mask, -1, "global_max", _MASKED_GLOBAL_MAX_HINT),
            (mixed.T.copy(), mixed_mask, 0, "global_max", _MASKED_GLOBAL_MAX_HINT)]:
        got = _run_special(masked_softmax, x, mask, axis)
        if isinstance(got, Exception) or got.shape != x.shape or not np.all(np.isfinite(got)):
            return Feedback(False, hint, mistake=name)
        if not np.allclose(got, reference_masked_softmax(x, mask, axis), atol=1e-6):
            if name in ("blocked_max", "global_max"):  # an underflow: zeros instead of nan
                return Feedback(False, hint, mistake=name)
            return Feedback(False, "❌ masked_softmax: correct on ordinary scores, but wrong on "
                                   f"scores near ±1000 along axis {axis}.")
    rng = np.random.default_rng(7)
    x = rng.normal(0, 2, size=(3, 4))
    mask = np.array([[True, False, True, True], [False] * 4, [False, True, False, True]])
    for xs, ms, axis in [(x, mask, -1), (x.T.copy(), mask.T.copy(), 0)]:
        want = reference_masked_softmax(xs, ms, axis)
        got = _run_special(masked_softmax, xs, ms, axis)
        if isinstance(got, Exception):
            return Feedback(False, f"❌ masked_softmax: your function raised "
                                   f"{type(got).__name__}: {got} on a fully blocked row.")
        if got.shape != xs.shape:
            return Feedback(False, f"❌ masked_softmax: wrong shape on a fully blocked row: got "
                                   f"{got.shape}, expected {xs.shape}.")
        empty = ~ms.any(axis=axis)  # the fully blocked lane(s)
        lane = np.moveaxis(got, axis, -1)[empty]
        others = np.moveaxis(got, axis, -1)[~empty]
        if not np.allclose(others, np.moveaxis(want, axis, -1)[~empty], atol=1e-6):
            return Feedback(False, "❌ masked_softmax: wrong on the rows that have allowed "
                                   "entries when another row is fully blocked.")
        if np.any(np.isnan(lane)):
            return Feedback(False, _EMPTY_NAN_HINT, mistake="nan_on_empty_row")
        if np.allclose(lane, 1.0 / lane.shape[-1], atol=1e-6):
            return Feedback(False, _EMPTY_UNIFORM_HINT, mistake="uniform_on_empty_row")
        if not np.allclose(lane, 0.0, atol=1e-12):
            return Feedback(False, "❌ masked_softmax: a fully blocked row must be all zeros "
                                   f"(the query may use no key); yours is {lane.round(3)}.")
    return Feedback(True, "✅ masked_softmax: correct on 6 random cases, stable for large "
                          "scores, and all zeros for a fully blocked row.")


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

STEP6_KEYS = 16  # Step 6's table: 16 keys, 500 queries


def jacobian_norm_uniform(keys: int = STEP6_KEYS) -> float:
    """Frobenius norm of the softmax's Jacobian diag(p) - p p^T for flat weights p = 1/keys
    (all scores equal): sqrt(keys - 1) / keys."""
    p = np.full(keys, 1.0 / keys)
    return float(np.linalg.norm(np.diag(p) - np.outer(p, p)))


JACOBIAN_OPTIONS = {
    "a": ("Both columns come from the same draw: at each d the same 500 queries and 16 keys, the "
          "scaled scores being the unscaled ones divided by sqrt(d) (by 2 at d = 4). So the "
          "difference is not noise between two draws; it is what dividing by 2 does."),
    "b": ("Dividing every score by the same positive number keeps their order, so the top key "
          "stays the top key. What changes is how much weight it takes: 0.43 unscaled against "
          "0.24 scaled at d = 4 (the max weight column)."),
    "c": "",  # the right answer
    "d": ("The aim of dividing by sqrt(d) is a scale that does not depend on d: score std about "
          "1, max weight about 0.24 and Jacobian about 0.30 at EVERY d, so that one initialisation "
          "and one learning rate suit any width. 0.296 against 0.319 is a small loss at d = 4, "
          "while without scaling the Jacobian falls to 0.184 at d = 64 (ViT-Base's width per "
          "head) and 0.059 at d = 1024."),
    "e": ("The unscaled column contradicts it: from d = 16 on, the spread of the scores keeps "
          "growing (std 4.0, 7.9, 16.2, 31.4) while the Jacobian falls (0.273, 0.184, 0.084, "
          "0.059): once the weights are nearly one-hot, the gradient through the softmax "
          "vanishes."),
}


def check_jacobian_answer(answer) -> Feedback:
    """Step 6's table (16 keys, 500 queries): at d = 4 the unscaled Jacobian norm (0.319) is above
    the scaled one (0.296), at every larger d below it. Why? Right answer: (c), the Jacobian is
    small for flat weights and for one-hot weights and largest in between."""
    flat = jacobian_norm_uniform()
    why = (f"Flat weights (all scores equal) give a Jacobian norm of {flat:.3f} for 16 keys, below "
           "both numbers at d = 4, and one-hot weights give 0: the gradient through the softmax is "
           "largest in between. At d = 4 the unscaled scores (std 2.0, max weight 0.43) are "
           "nearer that peak than the scaled ones (std 1.0, max weight 0.24); from d = 16 on they "
           "overshoot it and saturate. Dividing by sqrt(d) does not maximise the gradient at one "
           "d; it keeps it about the same (0.30) at every d.")
    return choose(answer, options=JACOBIAN_OPTIONS, correct="c", why=why,
                  title="Exercise 5 (the Jacobian at d = 4)")


__all__ = ["check_attention", "check_jacobian_answer", "check_local_mask", "check_masked_softmax",
           "check_sharpen_prediction", "check_softmax", "jacobian_norm_uniform",
           "measure_sharpened_weight", "reference_attention", "reference_local_mask",
           "reference_masked_softmax", "reference_softmax"]
