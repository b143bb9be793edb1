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


def tokens_by_hand(patch, size=224):
    """Written independently: Keras' own patch extraction on a size x size RGB image, plus one
    class token."""
    image = np.zeros((1, size, size, 3), "float32")
    patches = ops.image.extract_patches(image, patch)  # (1, rows, cols, patch * patch * 3)
    rows, cols = ops.shape(patches)[1:3]
    return int(rows) * int(cols) + 1


ASKED = [(14, 224), (16, 384)]  # (patch, image size): the two predictions of Exercise 1


@pytest.mark.parametrize("patch, size", [(16, 224), *ASKED])
def test_the_measured_count_is_patches_plus_the_class_token(patch, size):
    assert nb00.measure_tokens(patch, size) == tokens_by_hand(patch, size)


@pytest.mark.parametrize("patch, size, right", [(14, 224, 257), (16, 384, 577), (16, 224, 197)])
def test_right_predictions_pass(patch, size, right):
    feedback = nb00.check_tokens(right, patch_size=patch, image_size=size)
    assert feedback and f"measured {right}" in feedback.message


# (patch, image size, wrong prediction, the mistake it must be recognised as)
SLIPS = [(14, 224, 197, "kept_base_answer"), (16, 384, 197, "kept_base_answer"),
         (14, 224, 196, "kept_base_patches"), (16, 384, 196, "kept_base_patches"),
         (14, 224, 225, "scaled_one_side"), (16, 384, 337, "scaled_one_side"),
         (16, 384, 338, "scaled_one_side"),
         (14, 224, 256, "no_class_token"), (16, 384, 576, "no_class_token"),
         (14, 224, 16, "one_side"), (16, 384, 24, "one_side"),
         (14, 224, 17, "one_side_plus_one"), (16, 384, 25, "one_side_plus_one"),
         (16, 384, 256, "pixels_per_patch"), (16, 224, 256, "pixels_per_patch"),
         (16, 384, 257, "swapped"), (16, 224, 257, "swapped"),
         (14, 224, 588, "patch_vector"), (16, 384, 768, "patch_vector"),
         (14, 224, 3584, "divided_by_side"), (16, 384, 9216, "divided_by_side")]


@pytest.mark.parametrize("patch, size, wrong, mistake", SLIPS)
def test_each_slip_gets_its_hint(patch, size, wrong, mistake):
    feedback = nb00.check_tokens(wrong, patch_size=patch, image_size=size)
    assert not feedback and feedback.mistake == mistake, feedback.message


def test_keeping_the_tour_answer_is_named_and_the_squared_patch_too():
    """197 for 14x14 patches: likeliest the tour's answer kept, possibly 14 x 14 + 1; the hint
    names both. 196: the tour's patch count, or the pixels of a 14x14 patch."""
    kept = nb00.check_tokens(197, patch_size=14).message
    assert "did you keep that answer? Smaller patches mean more of them" in kept
    assert "squared the patch size" in kept
    patches = nb00.check_tokens(196, patch_size=14).message
    assert "did you keep that count? Smaller patches mean more of them" in patches
    assert "pixels in one patch" in patches
    bigger = nb00.check_tokens(197, patch_size=16, image_size=384).message
    assert "A bigger image in the same 16x16 patches has more of them" in bigger


def test_unanswered_and_not_a_number():
    assert "not answered yet" in nb00.check_tokens(None).message
    assert "not answered yet" in nb00.check_tokens(None, patch_size=16, image_size=384).message
    assert nb00.check_tokens("257").mistake == "not_a_number"
    with pytest.raises(ValueError, match="patch_size"):
        nb00.check_tokens(197, patch_size=15)


def test_preview_right_wrong_and_unanswered():
    right = nb00.check_preview("d")
    assert right and "帰納バイアス" in right.message and "shift test" in right.message
    for letter in "abce":
        wrong = nb00.check_preview(letter)
        assert not wrong and wrong.mistake == letter
        assert nb00.PREVIEW_OPTIONS[letter] in wrong.message
    assert "not answered yet" in nb00.check_preview(None).message
    assert nb00.check_preview("z").mistake == "not_an_option"


def test_the_numbers_quoted_in_the_preview_are_the_records():
    """The spread of the seeds, the model sizes and the shift test quoted in Exercise 2's
    explanations: as in data/data_curve.json, computed here from the runs."""
    curve = json.loads((ROOT / "data" / "data_curve.json").read_text())
    sizes = sorted({run["train_images"] for run in curve["runs"]})  # 500, 1,999, 8,001
    widths = []
    for size in sizes:
        for model in ("cnn", "vit"):
            acc = [r["test_accuracy"] for r in curve["runs"]
                   if r["model"] == model and r["train_images"] == size]
            assert len(acc) == 3
            widths.append(max(acc) - min(acc))
        cnn = [r["test_accuracy"] for r in curve["runs"] if r["model"] == "cnn" and r["train_images"] == size]
        vit = [r["test_accuracy"] for r in curve["runs"] if r["model"] == "vit" and r["train_images"] == size]
        assert min(cnn) > max(vit)  # the CNN ahead with every seed
    assert f"{min(widths):.3f}" == "0.001" and f"{max(widths):.3f}" == "0.035"
    assert sum(w < 0.01 for w in widths) >= 4  # "most under 0.01"
    assert "0.001 to 0.035 wide (most under 0.01)" in nb00.PREVIEW_OPTIONS["a"]

    largest = sizes[-1]
    shifted = {m: [r["shifted_test_accuracy"] for r in curve["runs"]
                   if r["model"] == m and r["train_images"] == largest] for m in ("cnn", "vit")}
    quoted = {"the CNN keeps": f"{np.mean([s['4'] for s in shifted['cnn']]):.3f} of its "
                               f"{np.mean([s['0'] for s in shifted['cnn']]):.3f}",
              "the ViT falls": f"from {np.mean([s['0'] for s in shifted['vit']]):.3f} to "
                               f"{np.mean([s['4'] for s in shifted['vit']]):.3f}"}
    for who, numbers in quoted.items():
        assert f"{who} {numbers}" in nb00.PREVIEW_WHY
    assert f"{largest:,}-image models" in nb00.PREVIEW_WHY
    import vitlib
    from vitlib.cnn import small_cnn

    assert f"{vitlib.make_vit('fashion-small').count_params():,}" in nb00.PREVIEW_OPTIONS["c"]
    assert f"{small_cnn().count_params():,}" in nb00.PREVIEW_OPTIONS["c"]
