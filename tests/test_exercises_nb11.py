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


# --- Exercise 3 (predict-then-run) and Exercise 4 (interpret) -----------------------------------
@pytest.fixture(scope="module")
def notebook_model():
    """The notebook's model: the course's fashion-medium architecture under a 3-class head."""
    import vitlib

    return vitlib.make_vit("fashion-medium", num_classes=3)


def test_stage1_right_prediction_passes(notebook_model):
    # Written independently: a Dense(5) on the class token's 96 features, kernel + biases.
    import keras

    head = keras.layers.Dense(5)
    head.build((None, 96))
    assert head.count_params() == 485
    feedback = nb11.check_stage1_prediction(485, notebook_model, num_classes=5)
    assert feedback and "measured 485" in feedback.message


def test_stage1_slips_get_their_hints(notebook_model):
    total = notebook_model.count_params()  # 3-class head: 96 * 3 + 3 = 291
    encoder = total - 291
    slips = {"no_bias": 480, "this_notebooks_head": 291, "whole_model": encoder + 485,
             "encoder_only": encoder, "with_final_norm": 485 + 2 * 96}
    for name, value in slips.items():
        feedback = nb11.check_stage1_prediction(value, notebook_model, num_classes=5)
        assert not feedback and feedback.mistake == name, (name, feedback.message)
    assert "not answered yet" in nb11.check_stage1_prediction(None, notebook_model).message


def test_stage1_measurement_is_what_fit_in_two_stages_trains(notebook_model):
    """The checker's count equals the trainable parameters that stage 1 itself reports."""
    from vitlib import finetune

    model = finetune.with_new_head(notebook_model, num_classes=5)
    x = np.zeros((4, 28, 28, 1), "float32")
    seen = {}
    original = finetune.freeze_encoder

    def spy(m, frozen=True):
        out = original(m, frozen)
        if frozen:
            seen["trainable"] = sum(int(np.prod(w.shape)) for w in m.trainable_weights)
        return out

    finetune.freeze_encoder = spy
    try:
        finetune.fit_in_two_stages(model, x, np.arange(4) % 5, head_epochs=1, full_epochs=0,
                                   verbose=0)
    finally:
        finetune.freeze_encoder = original
    assert seen["trainable"] == nb11.trainable_in_stage1(notebook_model, 5) == 485


def test_probe_curve_reading_right_wrong_and_unanswered():
    assert nb11.check_probe_curve_reading("c")
    for letter in "abd":
        wrong = nb11.check_probe_curve_reading(letter)
        assert not wrong and wrong.mistake == letter
        assert nb11.PROBE_CURVE_OPTIONS[letter] in wrong.message
    assert "not answered yet" in nb11.check_probe_curve_reading(None).message
    assert nb11.check_probe_curve_reading("e").mistake == "not_an_option"


def test_the_standard_error_in_the_reading():
    """sqrt(p (1 - p) / n) at p = 0.7, n = 48, computed here by simulation: about 6.6 points."""
    rng = np.random.default_rng(0)
    accuracies = rng.binomial(48, 0.7, size=200_000) / 48
    assert abs(accuracies.std() - nb11.STANDARD_ERROR) < 0.001
    assert "6.6 points" in nb11.PROBE_CURVE_WHY
