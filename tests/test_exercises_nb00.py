"""Checkers of notebook 00: the right answers pass, each usual slip and each wrong choice gets its
own hint, an unanswered exercise says so."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from keras import ops

from vitlib.exercises import nb00

pytestmark = pytest.mark.single_backend
ROOT = Path(__file__).resolve().parent.parent


def tokens_by_hand(patch):
    """Written independently: Keras' own patch extraction on a 224x224 RGB image, plus one
    class token."""
    image = np.zeros((1, 224, 224, 3), "float32")
    patches = ops.image.extract_patches(image, patch)  # (1, rows, cols, patch * patch * 3)
    rows, cols = ops.shape(patches)[1:3]
    return int(rows) * int(cols) + 1


@pytest.mark.parametrize("patch", [16, 14])
def test_the_measured_count_is_patches_plus_the_class_token(patch):
    assert nb00.measure_tokens(patch) == tokens_by_hand(patch)


@pytest.mark.parametrize("patch, right", [(16, 197), (14, 257)])
def test_right_predictions_pass(patch, right):
    feedback = nb00.check_tokens(right, patch_size=patch)
    assert feedback and f"measured {right}" in feedback.message


# (patch, wrong prediction, the mistake it must be recognised as)
SLIPS = [(16, 196, "no_class_token"), (14, 256, "no_class_token"),
         (16, 14, "one_side"), (14, 16, "one_side"),
         (16, 15, "one_side_plus_one"), (14, 17, "one_side_plus_one"),
         (16, 256, "pixels_per_patch"), (14, 196, "pixels_per_patch"),
         (16, 257, "swapped"), (14, 197, "swapped"),
         (16, 768, "patch_vector"), (14, 588, "patch_vector"),
         (16, 3136, "divided_by_side"), (14, 3584, "divided_by_side")]


@pytest.mark.parametrize("patch, wrong, mistake", SLIPS)
def test_each_slip_gets_its_hint(patch, wrong, mistake):
    feedback = nb00.check_tokens(wrong, patch_size=patch)
    assert not feedback and feedback.mistake == mistake


def test_unanswered_and_not_a_number():
    assert "not answered yet" in nb00.check_tokens(None).message
    assert nb00.check_tokens("197").mistake == "not_a_number"
    with pytest.raises(ValueError, match="patch_size"):
        nb00.check_tokens(197, patch_size=15)


def test_preview_right_wrong_and_unanswered():
    right = nb00.check_preview("d")
    assert right and "帰納バイアス" in right.message
    for letter in "abce":
        wrong = nb00.check_preview(letter)
        assert not wrong and wrong.mistake == letter
        assert nb00.PREVIEW_OPTIONS[letter] in wrong.message
    assert "not answered yet" in nb00.check_preview(None).message
    assert nb00.check_preview("z").mistake == "not_an_option"


def test_the_numbers_quoted_in_the_preview_are_the_records():
    """0.766 / 0.685 at 500 images, 0.879 / 0.844 at about 8,000, the CNN ahead with every seed,
    and the model sizes: as in data/data_curve.json and vit_vs_cnn.json."""
    curve = json.loads((ROOT / "data" / "data_curve.json").read_text())
    sizes = sorted({run["train_images"] for run in curve["runs"]})  # 500, 1,999, 8,001
    small, large = sizes[0], sizes[-1]
    quoted = {("cnn", small): "0.766", ("vit", small): "0.685",
              ("cnn", large): "0.879", ("vit", large): "0.844"}
    for (model, size), text in quoted.items():
        assert f"{curve['summary'][f'{model} {size}']['mean']:.3f}" == text
        assert text in nb00.PREVIEW_WHY
    for size in sizes:
        assert curve["summary"][f"cnn {size}"]["min"] > curve["summary"][f"vit {size}"]["max"]
    import vitlib
    from vitlib.cnn import small_cnn

    assert f"{vitlib.make_vit('fashion-small').count_params():,}" in nb00.PREVIEW_OPTIONS["c"]
    assert f"{small_cnn().count_params():,}" in nb00.PREVIEW_OPTIONS["c"]
