"""Checkers for notebook 15 (generating pixels and predicting video words).

- :func:`check_changed_predictions` (predict-then-run): ``prediction``, a whole number: with a
  local causal window of 28 positions in each of the pixel model's blocks, how many of the
  pixels before pixel 105 can change its prediction; the checker runs ``model``'s own weights
  with that mask, changes each earlier pixel of ``pixels`` in turn and counts
  (:func:`measure_reach`).
- :func:`check_local_causal_mask` (transfer): ``fn(tokens, window) -> (tokens, tokens)``
  booleans, the Image Transformer's idea of a LOCAL causal mask in one dimension: query i may
  attend to key j when i - window < j <= i (itself and the window - 1 pixels before it); the
  notebook's ``causal_mask`` has no window.
- :func:`check_bits_answer` (interpret): a letter, where the pixel model gains most over the
  per-pixel marginal (the map of bits per pixel); each wrong letter gets its own explanation.
- :func:`check_video_answer` (interpret): a letter, what the masked-word accuracies by frame say
  about the toy VideoBERT against copying the previous frame's word; each wrong letter gets its
  own explanation.

The references are written again here in plain NumPy, independently of :mod:`vitlib.tokens`.
"""

from __future__ import annotations

import numpy as np

from ._core import Feedback, Mistake, check, choose, compare_prediction

# --- predict-then-run: how far back a LOCAL causal mask reaches through the blocks -----------
# With a window of w in every block, position i reads positions i - w + 1 .. i in each block, so
# through `depth` blocks it reaches back depth * (w - 1) positions: positions
# i - depth * (w - 1) .. i, which hold pixels i - depth * (w - 1) - 1 .. i - 1 (the input is
# shifted right by one). For the notebook (pixel 105, window 28, 3 blocks): pixels 23..104, 82.

QUERY_PIXEL, WINDOW = 105, 28


def _local_causal(tokens: int, window: int) -> np.ndarray:
    i = np.arange(tokens)[:, None]
    j = np.arange(tokens)[None, :]
    return (j <= i) & (i - j < window)


def _logits_with_mask(model, pixels, mask):
    """The pixel model's forward pass (start token + shift, position embedding, its blocks,
    LayerNorm, head), with ``mask`` (tokens, tokens) in every block instead of the full causal
    mask: the same weights, a different set of pixels each prediction can read."""
    from keras import ops

    x = model.embed(model.shift(pixels)) + model.position[:pixels.shape[1]]
    m = ops.convert_to_tensor(mask)
    for block in model.blocks:
        x = block(x, mask=m)
    return ops.convert_to_numpy(model.head(model.norm(x)))


def measure_reach(model, pixels, query: int = QUERY_PIXEL, window: int = WINDOW,
                  atol: float = 1e-7) -> np.ndarray:
    """The earlier pixels whose change moves the prediction of pixel ``query`` when every block
    of ``model`` (a :class:`vitlib.tokens.PixelTransformer`) attends only within a local causal
    window of ``window`` positions. Each pixel j < query of ``pixels`` (1, tokens) is changed in
    turn to each other level (one batch); returns the sorted indices j whose largest change of
    the logits of ``query`` exceeds ``atol`` (unreachable pixels change them by exactly 0)."""
    x = np.asarray(pixels).reshape(1, -1)
    mask = _local_causal(x.shape[1], window)
    base = _logits_with_mask(model, x, mask)[0, query]
    moved = np.zeros(query)
    for step in range(1, model.levels):
        y = np.repeat(x, query, axis=0)
        y[np.arange(query), np.arange(query)] = (x[0, :query] + step) % model.levels
        out = _logits_with_mask(model, y, mask)[:, query]
        moved = np.maximum(moved, np.abs(out - base).max(-1))
    return np.flatnonzero(moved > atol)


def check_changed_predictions(prediction, model, pixels, query: int = QUERY_PIXEL,
                              window: int = WINDOW) -> Feedback:
    """How many of the pixels before ``query`` can change its prediction when every block of
    ``model`` attends only within a local causal window of ``window`` positions? The checker
    measures it (:func:`measure_reach`) with the model's own weights and compares with
    ``prediction``."""
    reach = measure_reach(model, pixels, query, window)
    measured = len(reach)
    depth = len(model.blocks)
    span = f"pixels {reach[0]}..{reach[-1]}" if measured else "no pixel"
    why = (f"In one block, position {query} attends to positions {query - window + 1}..{query} "
           f"(the window of {window}). Each of those attended to {window - 1} earlier positions "
           f"in the block before, so every block adds {window - 1} positions: through {depth} "
           f"blocks, positions {query - depth * (window - 1)}..{query}. The input is shifted by "
           f"one, so they hold {span}: {measured} pixels. Depth widens the reach, as stacked "
           "3x3 convolutions widen a CNN's receptive field; that is how the paper's local "
           "attention still sees far.")
    one_block = window
    mistakes = [
        ("one_block", one_block,
         f"{one_block} is what ONE block reads (positions {query - window + 1}..{query}, pixels "
         f"{query - window}..{query - 1}). The next block attends to those positions, which "
         "already carry what THEY read in the block before: the reach grows with every block."),
        ("one_block_no_shift", one_block - 1,
         f"That is one block's window without position {query} itself, and one block only: "
         "each block passes on what the positions it reads have read before."),
        ("overlap_counted", depth * window,
         f"{depth} x {window} counts the query's own position in every block. The windows "
         f"overlap there: each block adds {window - 1} NEW positions, not {window}."),
        ("forgot_shift_pixel", measured - 1,
         f"One short: position {query} itself holds pixel {query - 1} (the input is shifted "
         "right by the start token), and it is read in every block. Count positions, then "
         "turn them into pixels."),
        ("one_too_many", measured + 1,
         f"One too many: pixel {query} itself never reaches its own prediction (the shift), "
         "and the earliest pixel reached is the one held by the earliest position reached."),
        ("all", query,
         f"All {query} earlier pixels is the FULL causal mask of the shipped model. A window "
         f"of {window} per block stops the reach at {depth} x {window - 1} positions back."),
        ("none", 0, "The window does not hide everything: each block reads its window."),
    ]
    seen, kept = {measured}, []
    for m in mistakes:  # with other sizes two mistakes can give the same number: keep the first
        if m[1] not in seen:
            kept.append(m)
            seen.add(m[1])
    return compare_prediction(prediction, measured, title="pixels that can change the prediction",
                              why=why, mistakes=kept)


# --- transfer: a local causal mask --------------------------------------------------------------
# mask[i, j] = True when i - window < j <= i: the query itself and the window - 1 keys before it.


def _local(tokens, window, lo_offset=0, causal=True, include_self=True, transpose=False):
    i = np.arange(tokens)[:, None]
    j = np.arange(tokens)[None, :]
    near = (i - j < window + lo_offset) if causal else (np.abs(i - j) < window)
    past = (j <= i) if include_self else (j < i)
    out = near & past if causal else near
    return out.T if transpose else out


def _ref_local_mask(tokens, window):
    return _local(tokens, window)


LOCAL_MISTAKES = (
    Mistake("no_window", lambda t, w: _local(t, t + 1),
            "that is the full causal mask (notebook's causal_mask): every earlier pixel. Keep only "
            "the last `window` positions: i - window < j <= i."),
    Mistake("both_sides", lambda t, w: _local(t, w, causal=False),
            "your window reaches FORWARD too (|i - j| < window): pixel i would see pixels it has "
            "not generated yet. Keep j <= i."),
    Mistake("one_too_many", lambda t, w: _local(t, w, lo_offset=1),
            "one key too many: each query must see `window` keys in all, itself included "
            "(j from i - window + 1 to i), not window + 1."),
    Mistake("one_too_few", lambda t, w: _local(t, w, lo_offset=-1),
            "one key too few: each query sees `window` keys, itself included: j from "
            "i - window + 1 to i."),
    Mistake("excludes_self", lambda t, w: _local(t, w, include_self=False),
            "query i must see key i too (its own input is the PREVIOUS pixel, shifted in by the "
            "start token; the mask is on positions). Use j <= i, not j < i."),
    Mistake("shifted_back", lambda t, w: _local(t, w, lo_offset=1, include_self=False),
            "your window is the `window` keys BEFORE i (i - window <= j < i). Position i must see "
            "itself (its input is the previous pixel): i - window < j <= i."),
    Mistake("transposed", lambda t, w: _local(t, w, transpose=True),
            "rows are queries, columns are keys: row i must be True for keys j <= i. Yours is the "
            "transpose (the future instead of the past)."),
)


def _local_case(rng):
    tokens = int(rng.integers(6, 15))
    return tokens, int(rng.integers(2, tokens - 2))


def check_local_causal_mask(fn, cases: int = 5, seed: int | None = None) -> Feedback:
    """Check ``fn(tokens, window) -> (tokens, tokens)`` booleans against the local causal mask."""
    return check(fn, _ref_local_mask, _local_case, LOCAL_MISTAKES, title="local_causal_mask",
                 cases=cases, atol=0, rtol=0, seed=seed)


# --- interpret: where the pixel model gains ----------------------------------------------------

BITS_OPTIONS = {
    "a": ("The corners are background in almost every image, so BOTH models pay nearly nothing "
          "there: the gain map is dark in the corners. There is nothing left to gain where the "
          "marginal is already sure."),
    "b": "",
    "c": ("The model's own map is not flat: it pays about 1 bit per pixel in the middle rows, "
          "where widths, holes and textures differ from item to item, about 0.7 in the upper "
          "body (rows 2-4), up to 1.5 at the top centre where an item begins, under 0.5 at the "
          "edges and nothing in the corners."),
    "d": ("Where clothes usually are is exactly what the per-pixel marginal already knows: each "
          "position has its own table of levels. The gain over it cannot come from that; it comes "
          "from the other pixels of the SAME image, which the marginal ignores."),
}
BITS_WHY = ("The gain map is bright inside the garment area and dark in the corners. Across the "
            "garment area the per-pixel marginal pays 1.5 to 2 bits per pixel, nearly a uniform "
            "guess: some items have ink there and others not. The model saves about 1 bit per "
            "pixel there (up to about 1.3 in the upper rows 2-4 and the lower rows 9-12, about "
            "0.9-1 in the middle rows, where widths, holes and textures differ from item to item) "
            "because the pixels already drawn, above and to the left, tell it whether this item "
            "continues and how dark it is. In the corners both pay almost nothing, so there is "
            "nothing to gain. That is the whole difference between the two models: the marginal "
            "treats pixels as independent, the Transformer conditions on the past.")
BITS_CORRECT = "b"


def check_bits_answer(answer) -> Feedback:
    """Multiple choice on the map of bits per pixel (Step 3); the answer is ``"b"``."""
    return choose(answer, options=BITS_OPTIONS, correct=BITS_CORRECT, why=BITS_WHY,
                  title="Reading the bits per pixel")


# --- interpret: the toy VideoBERT against copying ----------------------------------------------

VIDEO_OPTIONS = {
    "a": "",
    "b": ("About half is far above what the table of the two neighbours gets (0.455) and copying "
          "(0.388), and 4 times the most frequent word (0.132): with 32 words, 0.54 is not a coin "
          "flip. Judge a score by its baselines, not by how round it sounds."),
    "c": ("Look at frames 0 and 7 in the figure: there the model (about 0.55) is about 9 points "
          "above copying (0.46) and the table, which see one neighbour only; the model still "
          "reads the other seven frames."),
    "d": ("The five seeds lie between 0.533 and 0.539 (standard deviation 0.002), while the best "
          "baseline is at 0.455: the gap is 40 times the spread, and every seed is above it."),
}
VIDEO_WHY = ("All five seeds (0.533-0.539) beat the neighbour-count table (0.455), and the figure "
             "shows the model above all three baselines at every frame, ends included. That is "
             "CONSISTENT WITH attention using more of the clip than the two neighbours (where the "
             "item came from and where it goes), but it does not isolate the cause: the table has "
             "up to 1,024 pairs of neighbours for 24,000 inner training frames, many of them "
             "rare, and a model that shares what it learns across similar pairs (smoothing) "
             "could gain from that alone. Training the same model with attention limited to "
             "+-1 frame would settle it; that run was not made.")
VIDEO_CORRECT = "a"


def check_video_answer(answer) -> Feedback:
    """Multiple choice on the masked-word accuracies by frame (Step 7); the answer is ``"a"``."""
    return choose(answer, options=VIDEO_OPTIONS, correct=VIDEO_CORRECT, why=VIDEO_WHY,
                  title="Reading the masked-word accuracies")
