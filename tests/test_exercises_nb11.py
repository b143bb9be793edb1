"""Checkers of notebook 11: the solution passes, each usual mistake gets its own hint."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vitlib.exercises import nb11

pytestmark = pytest.mark.single_backend


# Learner-style answers, written independently of the checker's references.
def crop_good(width, height):
    s = width if width < height else height
    x0 = (width - s) // 2
    y0 = (height - s) // 2
    return x0, y0, x0 + s, y0 + s


def counts_good(class_counts, fraction):
    out = []
    for n in class_counts:
        k = round(fraction * n)
        out.append(max(1, min(k, n - 1)))
    return out


def test_solutions_pass():
    assert nb11.check_crop_box(crop_good, seed=0)
    assert nb11.check_validation_counts(counts_good, seed=0)


@pytest.mark.parametrize("mistake", nb11.CROP_BOX_MISTAKES, ids=lambda m: m.name)
def test_each_crop_mistake_gets_its_hint(mistake):
    feedback = nb11.check_crop_box(mistake.fn, seed=0)
    assert not feedback and feedback.mistake == mistake.name


@pytest.mark.parametrize("mistake", nb11.VALIDATION_COUNTS_MISTAKES, ids=lambda m: m.name)
def test_each_counting_mistake_gets_its_hint(mistake):
    feedback = nb11.check_validation_counts(mistake.fn, seed=0)
    assert not feedback and feedback.mistake == mistake.name


def test_the_crop_reference_is_what_vitlib_folders_cuts(tmp_path):
    """The box of the reference, cut by PIL, is exactly what load_image(fit="crop") keeps."""
    from vitlib.folders import load_image

    rng = np.random.default_rng(0)
    for width, height in ((30, 18), (17, 40), (25, 24)):
        pixels = rng.integers(0, 256, (height, width), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / "a.png")
        left, top, right, bottom = nb11._crop_box(width, height)
        side = right - left
        ours = load_image(tmp_path / "a.png", side, channels=1, fit="crop")[..., 0]
        np.testing.assert_array_equal(ours, pixels[top:bottom, left:right])


@pytest.mark.parametrize("counts, fraction", [([10, 5, 2], 0.2), ([13, 40, 3], 0.25), ([2, 2], 0.1)])
def test_the_counting_reference_is_what_vitlib_folders_holds_out(counts, fraction):
    assert nb11._agrees_with_vitlib(counts, fraction)


def test_the_cases_make_every_rule_matter():
    """A wrong answer that skips the upper limit, or rounds halves up, cannot pass by luck."""
    for seed in range(20):
        assert not nb11.check_validation_counts(nb11._vc_no_cap, seed=seed)
        assert not nb11.check_validation_counts(nb11._vc_half_up, seed=seed)

    def crop_ceil(width, height):  # puts the odd extra pixel on the left/top
        side = min(width, height)
        left, top = -(-(width - side) // 2), -(-(height - side) // 2)
        return (left, top, left + side, top + side)

    for seed in range(20):
        assert not nb11.check_crop_box(crop_ceil, seed=seed)
