"""Checkers for notebook 07 (looking inside).

- :func:`check_local_head_prediction` (predict-then-run): ``prediction``, a number of pixels, the
  mean attention distance of a head that attends equally to each patch itself and its direct
  neighbours (up, down, left, right) on the 7x7 grid of 4x4-pixel patches. The checker builds
  that head's attention and measures it with :func:`vitlib.explain.mean_attention_distance`
  (3.07 px); right within 0.35 px; known slips: the answer in patches, 4 px (the self-weight at
  0 px forgotten), uniform attention's 14.4 px.
- :func:`check_deletion_answer` (interpret): ``answer``, a letter: which row of the deletion
  table of the notebook's "Common misconception" is the fair baseline for a map, and what it
  shows; every wrong letter is explained (without the table's machine-dependent percentages).
- :func:`check_rollout`: ``fn(attentions (layers, heads, T, T)) -> (T, T)``, attention rollout
  (Abnar and Zuidema 2020) for one image.
- :func:`check_rollout_residual` (transfer): ``fn(attentions, residual) -> (T, T)``, rollout with
  the identity's weight ``residual`` in [0, 1) instead of 0.5: A' = (1 - residual) A + residual I.
  Random cases never use 0.5, so Exercise 3's function pasted unchanged fails.
- :func:`check_rollout_reference_prediction` (predict-then-run): ``at_0``, ``at_09``, each one
  of ``"first layer"``, ``"mean of layers"``, ``"last layer"``: which head-averaged raw map of
  the class token the rollout map resembles most with residual weight 0 and 0.9. The checker
  runs the experiment on the notebook's ``maps`` (a list, one (images, heads, T, T) array per
  layer) with its own rollout and rank correlation (on the course checkpoint: first layer at 0,
  mean of layers at 0.9, by wide margins). Known slips: ``r0_last`` / ``r0_mean`` and
  ``r09_first`` / ``r09_last`` (the first wrong one is named).
- :func:`check_mean_attention_distance`: ``fn(attention (heads, T, T), grid, patch_size,
  num_prefix_tokens) -> (heads,)``, mean attention distance per head, in pixels.

The references below are written again here in plain NumPy, independently of :mod:`vitlib`
(except the predict-then-run experiment, which runs the notebook's own tool).
"""

from __future__ import annotations

import numpy as np

from ._core import Feedback, Mistake, check, choose, compare_prediction


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


# --- rollout with another residual weight (transfer) -----------------------------------------
# attentions (layers, heads, T, T) of ONE image, residual r in [0, 1) -> (T, T):
# A_l' = (1 - r) * mean_heads(A_l) + r * I (rows still sum to 1); R = A_L' ... A_1'.


def _rollout_r(attentions, residual, fusion=np.mean, left=True, mix=None):
    r = None
    for a in _fused(attentions, fusion):
        t = a.shape[-1]
        a = mix(a, residual) if mix else (1 - residual) * a + residual * np.eye(t)
        a = a / a.sum(axis=-1, keepdims=True)
        r = a if r is None else (a @ r if left else r @ a)
    return r


def _residual_reference(attentions, residual):
    return _rollout_r(attentions, residual)


RESIDUAL_MISTAKES = (
    Mistake("fixed_half", lambda a, r: _rollout_r(a, 0.5),
            "your result does not depend on `residual`: that is Exercise 3's rollout with 0.5 "
            "pasted unchanged. Mix with the given weight: (1 - residual) * A + residual * I."),
    Mistake("swapped", lambda a, r: _rollout_r(a, 1 - r),
            "the weights are swapped: `residual` is the weight of the IDENTITY (the part of each "
            "token that the residual connection carries past attention), so A' = "
            "(1 - residual) * A + residual * I."),
    Mistake("added_not_mixed", lambda a, r: _rollout_r(a, r, mix=lambda m, w: m + w * np.eye(len(m))),
            "you added residual * I to A and renormalised: that gives the identity the weight "
            "residual / (1 + residual), not residual. Mix instead: (1 - residual) * A + residual * I."),
    Mistake("reversed_order", lambda a, r: _rollout_r(a, r, left=False),
            "the product is in the wrong order: multiply each new layer on the LEFT, R = A_l' @ R."),
    Mistake("heads_summed", lambda a, r: _rollout_r(a, r, fusion=np.sum),
            "you summed the heads: fuse them with the mean (axis=1), so each row sums to 1."),
)


def _residual_case(rng):
    layers = int(rng.integers(2, 5))
    heads = int(rng.integers(2, 5))
    tokens = int(rng.integers(3, 8))
    residual = float(rng.choice([0.0, 0.1, 0.25, 0.7, 0.9]))  # never 0.5
    return _softmax_rows(rng, (layers, heads, tokens, tokens)), residual


def check_rollout_residual(fn, cases: int = 6, seed: int | None = None) -> Feedback:
    """Check ``fn(attentions (layers, heads, T, T), residual) -> (T, T)``: rollout with the
    identity's weight ``residual`` instead of 0.5."""
    return check(fn, _residual_reference, _residual_case, RESIDUAL_MISTAKES,
                 title="rollout_residual", cases=cases, atol=1e-6, seed=seed)


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


# --- Exercise 1 · predict-then-run: the mean attention distance of a local head ----------------

def local_head_attention(grid=(7, 7), num_prefix_tokens: int = 1) -> np.ndarray:
    """(1, 1, T, T): every patch attends equally to itself and to its direct neighbours (up,
    down, left, right; a patch at the border has fewer), like a small convolution; a prefix token
    attends evenly to every token. Patch queries give the prefix no weight."""
    rows, cols = grid
    n, p = rows * cols, num_prefix_tokens
    a = np.zeros((p + n, p + n))
    a[:p] = 1.0
    for q in range(n):
        r, c = divmod(q, cols)
        for dr, dc in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)):
            if 0 <= r + dr < rows and 0 <= c + dc < cols:
                a[p + q, p + (r + dr) * cols + c + dc] = 1.0
    return (a / a.sum(axis=-1, keepdims=True))[None, None]


def check_local_head_prediction(prediction) -> Feedback:
    """Compare ``prediction`` (pixels) with the measured mean attention distance of a local head
    on the 7x7 grid of 4x4-pixel patches with a class token (right within 0.35 px)."""
    from vitlib import explain  # the notebook's own tool runs the experiment

    grid, patch = (7, 7), 4
    measured = float(explain.mean_attention_distance(local_head_attention(grid), grid, patch, 1)[0])
    measured = round(measured, 2)
    why = ("A head that looks like a 3x3 convolution (itself and its 4 neighbours) sits near 3 px; "
           "0 px is a head that sees only itself, 14.4 px uniform attention. Now compare the "
           "trained heads in the next figure with this local reference.")
    return compare_prediction(
        prediction, measured, title="Exercise 1, a local head", unit="px", atol=0.35, why=why,
        mistakes=[
            ("in_patches", measured / patch,
             "That is the distance in patches. The paper (and Step 3) measures in PIXELS: "
             "multiply by the patch size, 4 px."),
            ("forgot_itself", 4.0,
             "4 px is the distance to each neighbour, but the query also attends to ITSELF, at "
             "0 px: an inner patch puts 1/5 of its weight there, so its mean is 4/5 of 4 px. Patches "
             "at the border have fewer neighbours, which lowers the mean a little more."),
            ("uniform", 14.4,
             "14.4 px is uniform attention over the whole grid (the dashed line). A head that only "
             "reads its neighbourhood looks much closer."),
        ])


# --- Exercise 2 · interpret: the deletion test -------------------------------------------------
# No percentages here: the table's shares move by 0.4 points per image between machines; the
# explanations point at the table's rows instead.

DELETION_OPTIONS = {
    "a": ("Random patches are the cleanest control only if every patch could matter. About 20 of "
          "an image's 49 patches are black background (the table's last line: 29 on the garment "
          "on average), which the model can lose without harm, and an attention map rarely ranks "
          "background highest. So 'random patches' is an easy baseline to beat: compare the map's "
          "row with the 'random garment patches' row instead, and the gap is gone."),
    "b": "",
    "c": ("The brightest patches are not a control but a competing rule for choosing patches. "
          "Losing to them does not make a map useless (a map can mark patches that matter and "
          "still not the ones that matter most), and beating them is not needed to show the map "
          "knows more than chance. The question is whether the map beats patches chosen with no "
          "knowledge of the model but on the same part of the image: the 'random garment "
          "patches' row."),
    "d": ("Comparing the two maps with each other shows that they disagree (a rank correlation "
          "well below 0.5), but not whether either one picks what the prediction relies on. And "
          "in the table the rollout's patches matter LESS than the raw map's (more predictions "
          "kept), so preferring it for 'following every layer' has no support here."),
}


def check_deletion_answer(answer) -> Feedback:
    """Multiple choice on the deletion test: the fair baseline for a map, and what it shows."""
    return choose(
        answer, options=DELETION_OPTIONS, correct="b", title="Exercise 2, the deletion test",
        why=("A map's top patches lie on the garment, so the baseline must delete garment patches "
             "too: random patches on the garment. Against that row neither map keeps fewer "
             "predictions by more than the spread of the random draws, so this test gives no "
             "evidence that the maps pick what the prediction relies on beyond 'the garment'. "
             "It does not prove the maps are useless either: one model, 256 images, one way of "
             "deleting."))


# --- Exercise 4 · predict-then-run: what rollout's residual weight does -------------------------

REFERENCE_NAMES = ("first layer", "mean of layers", "last layer")

ROLLOUT_REFERENCE_HINTS = {
    (0.0, "last layer"): ("r0_last", (
        "with r = 0 the last layer is applied last, but the class token's row of "
        "R = A_L ... A_1 is a weighted mix of the ROWS OF THE FIRST LAYER's matrix (the last "
        "factor of the product). Layer 1's rows are nearly alike (its query dependence is small, "
        "Step 3), so any mix of them looks like layer 1's map.")),
    (0.0, "mean of layers"): ("r0_mean", (
        "an average of the layers appears only when every factor is close to the identity "
        "(large r). With r = 0 nothing keeps the layers apart: the product's rows are mixes of "
        "the first layer's rows, so the map looks like layer 1's.")),
    (0.9, "first layer"): ("r09_first", (
        "with r = 0.9 every factor is 0.9 I + 0.1 A_l, close to the identity. Multiplied out, "
        "R is about I + 0.1 (A_1 - I) + ... + 0.1 (A_L - I): every layer enters with the same "
        "small weight, so the class token's row over the patches is close to the MEAN of the "
        "layers' rows, not to one layer's.")),
    (0.9, "last layer"): ("r09_last", (
        "with r = 0.9 every factor is 0.9 I + 0.1 A_l, close to the identity. Multiplied out, "
        "R is about I + 0.1 (A_1 - I) + ... + 0.1 (A_L - I): every layer enters with the same "
        "small weight, the last no more than the others, so the map is close to the MEAN of "
        "the layers' rows.")),
}


def _ranks(x):
    return np.argsort(np.argsort(x, axis=-1), axis=-1).astype(float)


def _rank_corr(a, b):
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(-1, keepdims=True), rb - rb.mean(-1, keepdims=True)
    return (ra * rb).sum(-1) / np.sqrt((ra ** 2).sum(-1) * (rb ** 2).sum(-1))


def _rollout_reference_correlations(maps, prefix):
    """(residual -> {reference name: mean rank correlation}) on the notebook's maps."""
    stack = np.stack([np.asarray(m, dtype=np.float64) for m in maps], axis=1)  # (n, L, H, T, T)
    fused = stack.mean(axis=2)  # (n, L, T, T)
    t = fused.shape[-1]

    def row(m):  # the class token's row over the patches, or the mean of the rows (mean pooling)
        return m[..., 0, prefix:] if prefix else m.mean(axis=-2)

    per_layer = row(fused)  # (n, L, patches)
    refs = dict(zip(REFERENCE_NAMES, (per_layer[:, 0], per_layer.mean(axis=1), per_layer[:, -1]),
                    strict=True))
    out = {}
    for r in (0.0, 0.9):
        result = np.broadcast_to(np.eye(t), fused[:, 0].shape)
        for layer in range(fused.shape[1]):
            a = (1 - r) * fused[:, layer] + r * np.eye(t)
            a = a / a.sum(axis=-1, keepdims=True)
            result = a @ result
        out[r] = {name: float(np.mean(_rank_corr(row(result), ref))) for name, ref in refs.items()}
    return out


def check_rollout_reference_prediction(at_0, at_09, maps, num_prefix_tokens: int = 1) -> Feedback:
    """Predict-then-run: which raw map the rollout map resembles with residual weight 0 and 0.9."""
    title = "Exercise 4, rollout's residual weight"
    if at_0 is None or at_09 is None:
        return Feedback(False, f"❓ {title}: not answered yet; set `at_0` and `at_09` to one of "
                               f"{', '.join(map(repr, REFERENCE_NAMES))}, then run this cell.")
    said = {}
    for r, value in ((0.0, at_0), (0.9, at_09)):
        if not isinstance(value, str) or value.strip().lower() not in REFERENCE_NAMES:
            return Feedback(False, f"❌ {title}: each prediction must be one of "
                                   f"{', '.join(map(repr, REFERENCE_NAMES))}; got {value!r}.",
                            mistake="not_an_option")
        said[r] = value.strip().lower()
    measured = _rollout_reference_correlations(maps, num_prefix_tokens)
    best = {r: max(c, key=c.get) for r, c in measured.items()}
    label = {"first layer": "the first layer's map", "mean of layers": "the mean of the layers' maps",
             "last layer": "the last layer's map"}
    lines = [f"with r = {r:g} the rollout map is closest to {label[best[r]]}" for r in (0.0, 0.9)]
    wrong = [r for r in (0.0, 0.9) if said[r] != best[r]]
    if not wrong:
        return Feedback(True, f"✅ {title}: both right. Measured: " + "; ".join(lines) + ". So a rollout "
                        "map depends on the assumed residual weight as much as on the model.")
    hints = [ROLLOUT_REFERENCE_HINTS.get((r, said[r]), (None, f"with r = {r:g} you said "
                                                        f"{said[r]!r}."))
             for r in wrong]
    return Feedback(False, f"❌ {title}: measured: " + "; ".join(lines) + ". Not quite: "
                    + " ".join(h for _, h in hints), mistake=hints[0][0])
