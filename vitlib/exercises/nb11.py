"""Checkers for notebook 11 (your own images).

- :func:`check_crop_box`: the largest centred square of a ``width`` x ``height`` image, as the
  box ``(left, top, right, bottom)`` that ``PIL.Image.crop`` takes.
- :func:`check_validation_counts`: how many images of each class a stratified split holds out.
- :func:`check_stage1_prediction` (predict-then-run): ``prediction``, a whole number: how many
  parameters stage 1 of ``finetune.fit_in_two_stages`` trains (the head alone) when the
  notebook's encoder gets a new head for a folder of ``num_classes`` (5) classes. The checker
  builds that model (``finetune.with_new_head``), freezes its encoder as stage 1 does
  (``finetune.freeze_encoder``) and counts the trainable weights, exactly. Recognised slips: the
  biases forgotten, the notebook's own 3-class head, the whole model, the frozen encoder, the
  final LayerNorm counted as trainable.
- :func:`check_probe_curve_reading` (interpret, multiple choice): ``answer``, one of
  ``"a"``-``"d"``: what the FAQ's small learning curve of the linear probe (6, 12, 24 and all 48
  training tiles per class; five random subsets each; the same 48 validation tiles) supports
  about 12 against 24 tiles per class, whose ranges overlap. Each wrong choice gets its own
  explanation. The messages quote no number of the curve itself (it may move by a tile on
  another machine), only the standard error of an accuracy on 48 images.

A prediction or an answer of None (the student edition's stub) gets "not answered yet".

The references are written again here in plain Python, independently of :mod:`vitlib.folders`.
"""

from __future__ import annotations

import numpy as np

from ._core import Feedback, Mistake, check, choose, compare_prediction

# --- crop_box ------------------------------------------------------------------------------
# side = min(width, height); the square starts half the leftover in from the left and the top:
#   left = (width - side) // 2, top = (height - side) // 2, right = left + side, bottom = top + side


def _crop_box(width, height):
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return (left, top, left + side, top + side)


def _crop_max_side(width, height):
    side = max(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return (left, top, left + side, top + side)


def _crop_corner(width, height):
    side = min(width, height)
    return (0, 0, side, side)


def _crop_full_offset(width, height):
    side = min(width, height)
    left, top = width - side, height - side
    return (left, top, left + side, top + side)


def _crop_size_not_corner(width, height):
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return (left, top, side, side)


def _crop_true_division(width, height):
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return (left, top, left + side, top + side)


def _crop_extra_left(width, height):
    side = min(width, height)
    left, top = -(-(width - side) // 2), -(-(height - side) // 2)
    return (left, top, left + side, top + side)


CROP_BOX_MISTAKES = (
    Mistake("max_side", _crop_max_side,
            "your square is as large as the LONGER side, so it reaches outside the image (a "
            "negative left or top). A crop keeps what is inside: side = min(width, height)."),
    Mistake("corner", _crop_corner,
            "your square starts at the top-left corner. Centre it: move it in by half of what is "
            "left over, (width - side) // 2 from the left and (height - side) // 2 from the top."),
    Mistake("full_offset", _crop_full_offset,
            "you moved the square in by ALL of the leftover, so it touches the right (or bottom) "
            "edge. Centred means half of it on each side: (width - side) // 2."),
    Mistake("true_division", _crop_true_division,
            "with an odd leftover you get half pixels (e.g. 80.5): a box is in whole pixels. Use "
            "integer division, (width - side) // 2, which leaves the extra pixel on the right."),
    Mistake("extra_left", _crop_extra_left,
            "you rounded the offset up, so the odd extra pixel goes to the left (or top). The "
            "convention here keeps it on the right (or bottom): (width - side) // 2."),
    Mistake("size_not_corner", _crop_size_not_corner,
            "the last two numbers of a PIL box are the right and bottom EDGES, not the width and "
            "height: right = left + side, bottom = top + side."),
)


def _crop_cases():
    """A case maker: landscape and portrait in turn with an odd leftover (so the extra pixel's
    side matters), then a square (case 5) and an even leftover (case 6)."""
    count = [0]

    def make(rng):
        count[0] += 1
        side = int(rng.integers(20, 300))
        if count[0] == 5:
            return (side, side)  # square: the box is the whole image
        leftover = 2 * int(rng.integers(1, 60)) + (0 if count[0] == 6 else 1)
        return (side + leftover, side) if count[0] % 2 else (side, side + leftover)

    return make


def check_crop_box(fn, cases: int = 6, seed: int | None = None) -> Feedback:
    """Check ``fn(width, height) -> (left, top, right, bottom)``, non-square images only."""
    return check(fn, _crop_box, _crop_cases(), CROP_BOX_MISTAKES, title="crop_box", cases=cases,
                 atol=0, rtol=0, seed=seed)


# --- validation_counts ---------------------------------------------------------------------
# A stratified split holds out round(fraction * n) of each class's n images, but at least 1
# (every class is validated) and at most n - 1 (every class is also trained on).


def _validation_counts(class_counts, fraction):
    return [int(min(n - 1, max(1, round(fraction * n)))) for n in class_counts]


def _vc_no_clip(class_counts, fraction):
    return [int(round(fraction * n)) for n in class_counts]


def _vc_floor(class_counts, fraction):
    return [int(min(n - 1, max(1, int(fraction * n)))) for n in class_counts]


def _vc_of_total(class_counts, fraction):
    share = round(fraction * sum(class_counts) / len(class_counts))
    return [int(min(n - 1, max(1, share))) for n in class_counts]


def _vc_no_cap(class_counts, fraction):
    return [int(max(1, round(fraction * n))) for n in class_counts]


def _vc_half_up(class_counts, fraction):
    return [int(min(n - 1, max(1, int(fraction * n + 0.5)))) for n in class_counts]


VALIDATION_COUNTS_MISTAKES = (
    Mistake("no_cap", _vc_no_cap,
            "you kept at least 1 but not at most n - 1: a class of 2 images at fraction 0.75 "
            "gives round(1.5) = 2, and then nothing of that class is left to train on. Cap each "
            "count at n - 1."),
    Mistake("no_clip", _vc_no_clip,
            "a class of 2 images at fraction 0.2 gives round(0.4) = 0: that class is never "
            "validated, and a class of 1 image would give it away. Keep each count between 1 "
            "and n - 1."),
    Mistake("half_up", _vc_half_up,
            "you rounded halves up (四捨五入: 2.5 -> 3). Python's round() rounds a half to the "
            "even neighbour (round(2.5) == 2, round(3.5) == 4), and so does vitlib.folders.split: "
            "use round()."),
    Mistake("floor", _vc_floor,
            "you cut the fraction down (int(...)) instead of rounding: 0.2 x 13 = 2.6 should hold "
            "out 3 images, not 2. Use round()."),
    Mistake("of_total", _vc_of_total,
            "you gave every class the same share of the TOTAL. Stratified means each class gives "
            "the fraction of ITS OWN images, so a rare class stays rare in validation too."),
)


def _vc_cases():
    """A case maker: 2-5 classes of 2-40 images. Odd cases: a small fraction, a class of 2 (the lower limit
    binds) and a class whose share is exactly 2.5 or 4.5 (where rounding rules differ). Even
    cases: fraction 0.75, where a class of 2 hits the upper limit."""
    count = [0]

    def make(rng):
        count[0] += 1
        counts = [int(v) for v in rng.integers(2, 40, size=int(rng.integers(2, 6)))]
        counts[0] = 2
        if count[0] % 2 == 0:
            return (counts, 0.75)
        fraction = float(rng.choice([0.1, 0.25, 0.3]))
        counts.append({0.1: 25, 0.25: 10, 0.3: 15}[fraction])  # fraction * n = 2.5 or 4.5
        return (counts, fraction)

    return make


def check_validation_counts(fn, cases: int = 6, seed: int | None = None) -> Feedback:
    """Check ``fn(class_counts, fraction) -> list of ints``, one count per class."""
    return check(fn, _validation_counts, _vc_cases(), VALIDATION_COUNTS_MISTAKES,
                 title="validation_counts", cases=cases, atol=0, rtol=0, seed=seed)


def _agrees_with_vitlib(counts, fraction) -> bool:  # used by the tests
    from vitlib.folders import split

    labels = np.repeat(np.arange(len(counts)), counts)
    _, val = split(labels, fraction)
    return [int(np.sum(labels[val] == k)) for k in range(len(counts))] == _validation_counts(
        counts, fraction)


# --- stage 1: what the head alone trains -----------------------------------------------------


def trainable_in_stage1(model, num_classes: int) -> int:
    """Measured: ``model``'s encoder under a new head of ``num_classes`` outputs, frozen as stage 1
    of ``fit_in_two_stages`` freezes it; the number of trainable weights."""
    from ..finetune import freeze_encoder, with_new_head

    new = freeze_encoder(with_new_head(model, num_classes=num_classes))
    return int(sum(int(np.prod(w.shape)) for w in new.trainable_weights))


def check_stage1_prediction(prediction, model, num_classes: int = 5) -> Feedback:
    """Predict-then-run: parameters trained in stage 1 (the new head alone) for a folder of
    ``num_classes`` classes with ``model``'s encoder (``model``: the notebook's ViT)."""
    from ..finetune import encoder_layers

    k = int(num_classes)
    dim = int(model.head.kernel.shape[0])  # what the head reads: the class token's width
    encoder = sum(layer.count_params() for layer in encoder_layers(model))
    head = dim * k + k
    measured = trainable_in_stage1(model, k)
    return compare_prediction(
        prediction, measured, title=f"Exercise 3 · stage 1 with {k} classes", unit="parameters",
        why=(f"Stage 1 trains only the new head: a Dense layer from the class token's {dim} "
             f"features to {k} classes, {dim} x {k} weights + {k} biases = {head}. The other "
             f"{encoder:,} parameters (the whole encoder, its final LayerNorm included) are "
             "frozen until stage 2."),
        mistakes=[
            ("no_bias", dim * k,
             f"You counted the {dim} x {k} kernel but not the head's {k} biases, one per class: "
             "a Dense layer has both."),
            ("this_notebooks_head", dim * model.num_classes + model.num_classes,
             f"That is the head of THIS notebook's {model.num_classes}-class folder. The question "
             f"is about a folder of {k} classes: the head has one output per class."),
            ("whole_model", encoder + head,
             f"That is every parameter of the {k}-class model. In stage 1 the encoder is frozen "
             "(凍結): its weights do not change, only the new head trains. Everything trains in "
             "stage 2."),
            ("encoder_only", encoder,
             "That is the encoder: exactly the part that stage 1 keeps frozen. Stage 1 trains the "
             "other part, the new head."),
            ("with_final_norm", head + 2 * dim,
             f"You added the final LayerNorm's {2 * dim} parameters (scale and offset). It belongs "
             "to the pretrained encoder (Eq. 4) and is frozen with it; only the head trains."),
        ])


# --- reading the probe's learning curve (the FAQ "How many images do I need?") ----------------

VALIDATION_IMAGES = 48
#: the standard error of an accuracy of about 0.7 measured on 48 images: sqrt(0.7 * 0.3 / 48)
STANDARD_ERROR = (0.7 * 0.3 / VALIDATION_IMAGES) ** 0.5  # 0.066

PROBE_CURVE_WHY = (
    "Each row's range comes from WHICH tiles a subset happens to train on: the same number of "
    "tiles, picked differently, moves the accuracy by several validation tiles, about as much as "
    "doubling from 12 to 24 does. On top of that, any accuracy measured on 48 images carries a "
    f"standard error of about {100 * STANDARD_ERROR:.1f} points at 0.7 (sqrt(0.7 x 0.3 / 48)). "
    "With five subsets and one split of 48 validation tiles, this evidence cannot rank 12 "
    "against 24 per class; only the large step, 6 per class against all 48, is clear (checked "
    "above). To rank them: many more subsets, more validation images or several splits.")
PROBE_CURVE_OPTIONS = {
    "a": ("Overlapping ranges do not show that two sizes are equally good: with five subsets each "
          "and 48 validation tiles, a real difference of a few points would look just like this. "
          "Nor does the curve go flat in the stored run: all 48 per class scored above every "
          "subset of 12 and of 24."),
    "b": ("One validation tile is indeed about 2 points (1/48), but each range is many tiles "
          "wide, so the rounding to whole tiles is not what makes them overlap. The width comes "
          "from which training tiles each subset drew; and separately, an accuracy on 48 images "
          f"has a standard error of about {100 * STANDARD_ERROR:.1f} points, far more than the "
          "2-point step."),
    "c": PROBE_CURVE_WHY,
    "d": ("The lowest of five subsets is itself a noisy number: one unlucky draw of training "
          "tiles sets it, and in the stored run the best subsets of 12 and of 24 tie. More images per class "
          "probably do help on average, but five subsets on 48 validation tiles cannot show it "
          "for 12 against 24."),
}


def check_probe_curve_reading(answer) -> Feedback:
    """Interpret: the FAQ's probe curve; 12 and 24 tiles per class overlap. (a) more than 12 does
    not help; (b) the overlap is the 2-point step of 48 tiles; (c) right: the spread between
    subsets and the noise of 48 validation images are as large as the difference, so this
    evidence cannot rank them; (d) 24 is reliably better because its worst subset is higher."""
    return choose(answer, options=PROBE_CURVE_OPTIONS, correct="c", why=PROBE_CURVE_WHY,
                  title="Exercise 4 · reading the probe curve")
