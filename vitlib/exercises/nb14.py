"""Checkers for notebook 14 (beyond classification, hands-on II: axial attention, attention on sets).

- :func:`check_axial_masks_3d` (transfer): ``fn(frames, rows, cols) -> (along_width,
  along_height, along_time)``, three (N, N) boolean masks for a video's tokens, N = frames * rows *
  cols numbered frame by frame, row by row: axial attention on a 3-D grid (Step 1 did 2-D).
- :func:`check_weights_ratio_prediction` (predict-then-run): ``prediction``, a number: how many
  times more attention weights full attention computes than axial attention on a 32 x 32 grid;
  the checker runs both (vitlib's layers, weights returned) and counts.
- :func:`check_cost_answer` (interpret): a letter, what "clearly faster" in the measured cost
  curves buys at the course's 14 x 14 grid (Step 2).
- :func:`check_control_answer` (interpret): a letter, what the ``full2`` control would have
  scored if the extra parameters explained axial attention's gain (Step 3).
- :func:`check_duplicates_prediction` (predict-then-run): ``prediction``, a number: the largest
  change of the shipped Set Transformer's logits when every item of a set is copied three times;
  the checker runs the model; the usual guesses (copies add evidence, or nudge the answer) get
  their own hint.
- :func:`check_sets_answer` (interpret): a letter, what the learning-rate trials say about
  comparing models at one shared, untuned learning rate (Step 7).

The references are written here in plain NumPy, independently of :mod:`vitlib.axial`.
"""

from __future__ import annotations

import numpy as np

from ._core import Feedback, Mistake, check, choose, compare_prediction

# --- Exercise 1 (transfer): axial masks for a video ----------------------------------------------
# Tokens of a (frames, rows, cols) grid, numbered frame by frame, then row by row:
# index = (f * rows + r) * cols + c. Axial attention on a video attends along one axis at a time:
# along the width (same frame, same row), the height (same frame, same column), time (same row,
# same column: the same pixel position in every frame).


def _coords(frames, rows, cols, order="frc"):
    idx = np.arange(frames * rows * cols)
    if order == "frc":  # the right numbering
        f, rest = np.divmod(idx, rows * cols)
        r, c = np.divmod(rest, cols)
    elif order == "rcf":  # frames last
        rest, f = np.divmod(idx, frames)
        r, c = np.divmod(rest, cols)
    else:  # "rows_for_cols": divmod by rows instead of cols
        f, rest = np.divmod(idx, rows * cols)
        r, c = np.divmod(rest, rows)
    return f, r, c


def _same(a):
    return a[:, None] == a[None, :]


def reference_axial_masks_3d(frames, rows, cols):
    """(along_width, along_height, along_time): (N, N) booleans, N = frames * rows * cols."""
    f, r, c = _coords(frames, rows, cols)
    return _same(f) & _same(r), _same(f) & _same(c), _same(r) & _same(c)


def _masks(frames, rows, cols, order="frc", frame_blind=False, time_as_frame=False):
    f, r, c = _coords(frames, rows, cols, order)
    width = _same(r) if frame_blind else _same(f) & _same(r)
    height = _same(c) if frame_blind else _same(f) & _same(c)
    time = _same(f) if time_as_frame else _same(r) & _same(c)
    return width, height, time


AXIAL_3D_MISTAKES = (
    Mistake("frame_blind", lambda f, r, c: _masks(f, r, c, frame_blind=True),
            "your width and height masks let a token attend to its row (or column) in EVERY "
            "frame. Along the width means the same frame AND the same row: combine the two "
            "conditions with &."),
    Mistake("time_as_frame", lambda f, r, c: _masks(f, r, c, time_as_frame=True),
            "your time mask holds the tokens of the same FRAME: that is a whole image, the full "
            "attention of one frame. Along time means the same position (same row AND same "
            "column) in every frame."),
    Mistake("frames_last", lambda f, r, c: _masks(f, r, c, order="rcf"),
            "your numbering puts the frame last (index = (r * cols + c) * frames + f). The tokens "
            "are numbered frame by frame: index = (f * rows + r) * cols + c, so f, rest = "
            "divmod(index, rows * cols) and r, c = divmod(rest, cols)."),
    Mistake("rows_for_cols", lambda f, r, c: _masks(f, r, c, order="rows_for_cols"),
            "inside a frame, the row of token `rest` is rest // cols and its column rest % cols "
            "(a row holds `cols` tokens); you divided by `rows`. The checker uses grids with rows "
            "!= cols, where this matters."),
    Mistake("width_height_swapped", lambda f, r, c: _masks(f, r, c)[1::-1] + (_masks(f, r, c)[2],),
            "your first two masks are swapped: along the WIDTH a token moves within its row (same "
            "row, any column); along the height within its column."),
)


def _case_3d(rng):
    rows = int(rng.integers(2, 5))
    cols = int(rng.choice([c for c in range(2, 6) if c != rows]))
    return int(rng.integers(2, 4)), rows, cols


def check_axial_masks_3d(fn, cases: int = 5, seed: int | None = None) -> Feedback:
    """``fn(frames, rows, cols)`` against :func:`reference_axial_masks_3d` on random non-square
    grids of 2-3 frames; the usual slips get their own hint."""
    def learner(f, r, c):
        out = fn(f, r, c)
        return out if out is None else tuple(np.asarray(m, dtype=bool) for m in out)

    return check(learner, reference_axial_masks_3d, _case_3d, AXIAL_3D_MISTAKES,
                 title="axial_masks_3d", cases=cases, atol=0, rtol=0, seed=seed)


# --- Exercise 2 (predict-then-run): how many more weights does full attention compute? -----------


def measure_weights_ratio(grid: int = 32, heads: int = 1) -> float:
    """Run full attention and the two halves of axial attention on one (grid x grid) image with
    the weights returned; the ratio of the number of weights (full / axial)."""
    import keras

    from ..attention import MultiHeadSelfAttention

    dim = 4 * heads
    x = np.random.default_rng(0).normal(size=(1, grid * grid, dim)).astype("float32")
    _, full = MultiHeadSelfAttention(heads)(x, return_attention_scores=True)  # (1, h, N, N)
    rows = x.reshape(grid, grid, dim)  # every row of the grid as a sequence: (grid, grid, dim)
    cols = rows.transpose(1, 0, 2)  # every column
    _, along_rows = MultiHeadSelfAttention(heads)(rows, return_attention_scores=True)
    _, along_cols = MultiHeadSelfAttention(heads)(cols, return_attention_scores=True)
    size = lambda w: int(np.prod(keras.ops.shape(w)))  # noqa: E731
    return size(full) / (size(along_rows) + size(along_cols))


def check_weights_ratio_prediction(prediction) -> Feedback:
    """Compare a predicted ratio (full / axial attention weights on a 32 x 32 grid) with the
    measured one (16), within 0.5."""
    measured = measure_weights_ratio(32)
    mistakes = [
        ("one_axis", 32.0,
         "32 is the ratio for ONE of the two steps: full attention has N^2 = 1024^2 weights, row "
         "attention N x 32. Axial attention does rows AND columns: N x (32 + 32), so the ratio is "
         "half of that."),
        ("linear", 1024.0,
         "That would be true if axial attention computed one weight per token (N). Each token "
         "still compares itself with the 32 tokens of its row and the 32 of its column: N x 64 "
         "weights, not N."),
        ("square_of_side", 1024.0 / 2, "That is N / 2. Count both: full N x N, axial N x (32 + 32)."),
    ]
    why = ("Full attention compares every pair: N^2 = 1024 x 1024 weights per head. Axial attention "
           "compares each token with its row (32) and its column (32): N x 64. The ratio is "
           "N / (R + C) = 1024 / 64 = 16, and it grows with the grid: 7 at 14 x 14, 32 at 64 x 64.")
    return compare_prediction(prediction, measured, title="Exercise 2 (full / axial weights)",
                              atol=0.5, why=why, mistakes=mistakes)


# --- Exercise 3 (interpret): what "clearly faster" buys at the segmenter's grid -------------------


def check_cost_answer(answer) -> Feedback:
    """Step 2's measurements (``data/axial_cost.json``, one run, 5 samples per point, the machine's
    1-minute load 1.8 at the start, 5.0 at the end): for one forward call, axial attention is
    clearly faster by CPU time (no overlap of the samples) from 14 x 14, but at 14 x 14 by 2% (full
    / axial CPU time 1.02), and by wall-clock time only from 20 x 20 (at 14 x 14 the samples
    overlap, medians 0.98); a training step there leans the other way (axial 1.23x full's CPU time,
    samples overlapping); Step 3's segmenters took 1.10x the CPU time with axial attention.
    The right answer is (c)."""
    options = {
        "a": "Memory and time are two measurements with two crossovers. XLA's plan for axial "
             "attention is smaller from 7 x 7 on, yet at 7 x 7 and 10 x 10 a training step with "
             "axial attention is clearly SLOWER (about 1.5x full attention's CPU time). At 14 x 14 "
             "the measured CPU ratio full / axial for a forward call is 1.02, not 4: the smaller "
             "plan did not make the call 4x faster.",
        "b": "Five samples per contender do say something: whatever the difference at 14 x 14, it "
             "is small. The medians are 2% apart by CPU time (ratio 1.02) and 2% the other way by "
             "wall-clock time (0.98): a large gain either way is ruled out, in this run. What they "
             "cannot settle is the sign of so small a gap: one run, on a machine whose load rose "
             "from 1.8 to 5.0 during it.",
        "c": "",
        "d": "A training step was measured too, and at 14 x 14 it is not faster: the medians put "
             "axial attention at 1.23x full attention's CPU time (the samples overlap), and Step 3's "
             "whole segmenters took 1.1x the CPU time to train with axial attention. What holds for "
             "the forward call need not hold for the backward pass: each was measured, and they "
             "differ.",
    }
    why = ("'Clearly' in the printout is about separation, not size: each of axial attention's 5 "
           "CPU-time samples beat each of full attention's, by a hair; the medians differ by 2% "
           "(ratio 1.02). And the lead is fragile: by wall-clock time the samples do not separate at "
           "14 x 14 (axial attention is clearly faster from 20 x 20 on), in one run on a machine "
           "whose load rose from 1.8 to 5.0. A training step at 14 x 14 is no faster (medians "
           "1.23x, samples overlapping), and the segmenters took 1.1x the CPU time to train with "
           "axial attention. At 14 x 14 the case for axial attention is memory (4x less) and, in "
           "Step 3, accuracy, not speed; the speed pays from about 20 x 20 (2x for a training step, "
           "19x at 64 x 64).")
    return choose(answer, options=options, correct="c", why=why,
                  title="Exercise 3 (clearly faster at 14 x 14?)")


# --- Exercise 4 (interpret): what the control would have shown -----------------------------------


def check_control_answer(answer) -> Feedback:
    """Step 3's record (``data/axial_segment.json``, 3 seeds each): mean IoU 0.267 (full,
    148,363 parameters), 0.257 (full2, 214,923), 0.358 (axial, 214,923). The question: if the
    extra parameters had caused axial attention's gain, what would full2 have scored? About
    0.36, like axial attention: (d)."""
    options = {
        "a": "About 0.27 is what full2 DID score (0.257), and that result rules the parameter "
             "explanation out: full2 has all the extra parameters and gained nothing from them. If "
             "parameters were the cause, having them would have been enough.",
        "b": "The equal parameter count is the point of the control: full2 keeps the parameters "
             "and drops the restriction. If it had matched axial attention, the parameters would "
             "suffice; it matched full attention instead, so the restriction is what differs.",
        "c": "A score below full attention's would say the extra parameters HURT full attention; it "
             "would not explain why the axial model, with the same parameters, gained. The question "
             "is what the parameter explanation predicts, and it predicts a gain.",
        "d": "",
    }
    why = ("If the extra parameters explained the gain, any model with them would get it: full2 "
           "would score about like axial attention (0.36). It scored 0.257, level with full "
           "attention (0.267) and behind axial attention in every seed, so the parameters alone "
           "did not help, and the row-and-column restriction is what made the difference, in this "
           "small model, on this task, with 2,000 steps. Why it helps, the records cannot say.")
    return choose(answer, options=options, correct="d", why=why, title="Exercise 4 (the control)")


# --- Exercise 6 (interpret): one learning rate for all ---------------------------------------------


def check_sets_answer(answer) -> Feedback:
    """Step 7's learning-rate trials (``data/sets.json``, seed 0, validation sets): Deep Sets
    0.658, 0.772, 0.823, 0.761 and SAB 0.780, 0.841, 0.842, 0.531 at peak learning rates 3e-4,
    1e-3, 3e-3, 1e-2. An earlier version trained every model at 1e-3, untuned: what does a shared
    rate do to the comparison? It can favour one model: (a)."""
    options = {
        "a": "",
        "b": "The trials contradict that: same steps, same sets, only the rate changed, and Deep "
             "Sets' validation accuracy went from 0.66 to 0.82 and down again to 0.76, while SAB "
             "collapsed at 1e-2 (0.53). With a fixed budget of steps, the rate decides where a model "
             "ends up.",
        "c": "A rate chosen on the test sets would make the test score the best of several tries, "
             "biased upwards: no longer an estimate for new sets. The validation sets exist for "
             "choosing; the test sets are used once, for the report.",
        "d": "The trials do not show that: Deep Sets peaked at 3e-3 and fell at 1e-2, so its best "
             "rate lies inside the grid. More tuning (other widths, more steps) could change either "
             "model; that would need a run, not a guess.",
    }
    why = ("At one shared rate the comparison measures, in part, how well that rate suits each model. "
           "1e-3 suited SAB (0.841, its best 0.842) but not Deep Sets (0.772, against its best 0.823): "
           "at that rate the validation gap was 0.07, at each model's own best rate 0.02. That is why "
           "Step 7 chooses each model's rate on the validation sets, from the same grid for all, "
           "before the 3 seeds: a fair baseline is a tuned baseline.")
    return choose(answer, options=options, correct="a", why=why, title="Exercise 6 (one rate for all)")


# --- Exercise 5 (predict-then-run): copy every item of a set ---------------------------------------


def measure_duplicates_change(model, features, copies: int = 3) -> float:
    """The largest |change| of ``model``'s logits when each element of the set ``features``
    (n, dim) is repeated ``copies`` times (n * copies elements)."""
    from keras import ops

    x = np.asarray(features, np.float32)[None]
    repeated = np.repeat(x, copies, axis=1)
    before = ops.convert_to_numpy(model(x))
    after = ops.convert_to_numpy(model(repeated))
    return float(np.abs(after - before).max())


def check_duplicates_prediction(prediction, model, features) -> Feedback:
    """Compare a predicted largest logit change (every item of the set copied 3 times) with the
    change measured on ``model``, within 0.01; a large guess (copies as more evidence) and a small
    non-zero guess (copies nudge the answer) get their own hints."""
    measured = measure_duplicates_change(model, features)
    shown = round(measured, 2) + 0.0  # -0.0 -> 0.0
    why = (f"The logits change by at most {shown:.2f}: nothing. Every attention here is a weighted "
           "MEAN: a key copied three times gets three weights that add up to the weight it had "
           "alone (each copy a third), so the outputs of SAB and PMA (and Deep Sets' mean) stay the "
           "same. Good for this task (copies add no class); a task that needs the number of items "
           "(how many in the set?) would need a sum, or the set size as an input.")
    feedback = compare_prediction(prediction, shown, title="Exercise 5 (copies)", atol=0.01, why=why)
    if feedback.passed or feedback.mistake or prediction is None:
        return feedback  # right, not a number, or not answered yet
    said = f"you predicted {prediction:,.6g}; the experiment measured {shown:,.6g}."
    if prediction < 0:
        name, hint = "negative", ("a largest ABSOLUTE difference cannot be negative. Predict how far "
                                  "the logits move, in either direction.")
    elif prediction >= 0.5:
        name, hint = "copies_add_evidence", (
            "you expected copies to move the answer a lot, as if three copies were three times the "
            "evidence, or three times as many items. Attention normalises its weights: the 12 keys "
            "share the same total weight 1 that the 4 keys shared, each copy getting a third of its "
            "original's, so every weighted mean stays the same. A SUM would grow 3x; a mean does not.")
    else:
        name, hint = "copies_nudge", (
            "you expected a small change, as if the copies nudged the answer. It is not small, it is "
            "nothing (up to float rounding): a weighted mean of the same items in the same "
            "proportions is the same vector, and nothing in this model sees the set size.")
    return Feedback(False, f"❌ Exercise 5 (copies): {said} {hint}", mistake=name)


__all__ = [
    "check_axial_masks_3d", "check_weights_ratio_prediction", "check_cost_answer",
    "check_control_answer", "check_duplicates_prediction", "check_sets_answer",
    "reference_axial_masks_3d", "measure_weights_ratio", "measure_duplicates_change",
    "choose",
]
