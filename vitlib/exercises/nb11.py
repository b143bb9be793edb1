"""Checkers for notebook 11 (your own images).

- :func:`check_crop_box`: the largest centred square of a ``width`` x ``height`` image, as the
  box ``(left, top, right, bottom)`` that ``PIL.Image.crop`` takes.
- :func:`check_validation_counts`: how many images of each class a stratified split holds out.

The references are written again here in plain Python, independently of :mod:`vitlib.folders`.
"""

from __future__ import annotations

import numpy as np

from ._core import Feedback, Mistake, check

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
