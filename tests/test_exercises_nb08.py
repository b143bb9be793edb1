"""Checkers of notebook 08: the solution passes, each usual mistake gets its own hint."""

from __future__ import annotations

import keras
import pytest

from vitlib.exercises import nb08

pytestmark = pytest.mark.single_backend


# Learner-style answers, written independently of the checker's references.
def rf_good(layers):
    size, jump = 1, 1
    for kernel, stride in layers:
        size = size + (kernel - 1) * jump
        jump = jump * stride
    return size


def test_receptive_field_solution_passes_and_known_values():
    assert nb08.check_receptive_field(rf_good, seed=0)
    assert rf_good([(3, 1), (3, 1)]) == 5  # two 3x3 convolutions see 5x5
    assert rf_good([(3, 1)] * 3) == 7  # three see 7x7 (VGG's argument)
    # small_cnn: conv3, pool2, conv3, pool2, conv3 -> 18x18 pixels
    assert nb08._receptive_field([(3, 1), (2, 2), (3, 1), (2, 2), (3, 1)]) == 18


def _rf_by_brute_force(layers, width=64):
    """Which input positions can reach output unit 0: follow the windows down, in 1-D."""
    reach = {0}
    for kernel, stride in reversed(layers):
        reach = {u * stride + t for u in reach for t in range(kernel)}
    return max(reach) - min(reach) + 1


@pytest.mark.parametrize("layers", [[(3, 1), (2, 2), (3, 1), (2, 2), (3, 1)],
                                    [(7, 2), (3, 2), (5, 1)], [(2, 2), (2, 2), (2, 2)]])
def test_receptive_field_reference_matches_brute_force(layers):
    assert nb08._receptive_field(layers) == _rf_by_brute_force(layers)


@pytest.mark.parametrize("fn, name", [
    (lambda layers: 1 + sum(k - 1 for k, _ in layers), "no_jump"),
    (lambda layers: sum(k for k, _ in layers), "sum_kernels"),
    (lambda layers: __import__("math").prod(k for k, _ in layers), "product"),
])
def test_receptive_field_mistakes_get_their_hint(fn, name):
    fb = nb08.check_receptive_field(fn, seed=0)
    assert not fb.passed and fb.mistake == name, fb.message
    hint = next(m.hint for m in nb08.RECEPTIVE_FIELD_MISTAKES if m.name == name)
    assert hint in fb.message


def test_receptive_field_jump_too_early_gets_its_hint():
    def early(layers):
        size, jump = 1, 1
        for kernel, stride in layers:
            jump *= stride
            size += (kernel - 1) * jump
        return size

    fb = nb08.check_receptive_field(early, seed=0)
    assert not fb.passed and fb.mistake == "jump_too_early", fb.message


def params_good(widths, kernel_size, in_channels, num_classes):
    total, c_in = 0, in_channels
    for c in widths:
        total += kernel_size**2 * c_in * c + 4 * c  # conv without bias, BatchNorm
        c_in = c
    return total + c_in * num_classes + num_classes


@pytest.mark.parametrize("widths, k, c, n", [([8], 3, 1, 10), ([5, 7, 9], 3, 3, 4),
                                             ([16, 32], 5, 1, 10)])
def test_cnn_params_formula_matches_keras_count(widths, k, c, n):
    layers = [keras.Input((12, 12, c))]
    for w in widths:
        layers += [keras.layers.Conv2D(w, k, padding="same", use_bias=False),
                   keras.layers.BatchNormalization(), keras.layers.ReLU()]
    model = keras.Sequential([*layers, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(n)])
    assert model.count_params() == nb08._params(widths, k, c, n) == params_good(widths, k, c, n)


def test_cnn_params_solution_passes():
    assert nb08.check_cnn_params(params_good, seed=0)


def _variant(conv=lambda k, a, b: k * k * a * b, bn=4, head_bias=True):
    def fn(widths, k, c_in, n):
        total = 0
        for c in widths:
            total += conv(k, c_in, c) + bn * c
            c_in = c
        return total + c_in * n + (n if head_bias else 0)
    return fn


@pytest.mark.parametrize("fn, name", [
    (_variant(conv=lambda k, a, b: k * k * a * b + b), "conv_bias"),
    (_variant(bn=2), "bn_trainable_only"),
    (_variant(bn=0), "no_batchnorm"),
    (_variant(conv=lambda k, a, b: k * a * b), "kernel_not_squared"),
    (_variant(conv=lambda k, a, b: k * k * b), "no_input_channels"),
    (_variant(head_bias=False), "no_head_bias"),
])
def test_cnn_params_mistakes_get_their_hint(fn, name):
    fb = nb08.check_cnn_params(fn, seed=0)
    assert not fb.passed and fb.mistake == name, fb.message
    hint = next(m.hint for m in nb08.CNN_PARAMS_MISTAKES if m.name == name)
    assert hint in fb.message


def test_unknown_answers_are_reported():
    fb = nb08.check_cnn_params(lambda *a: params_good(*a) + 1, seed=0)
    assert not fb.passed and fb.mistake is None
    fb = nb08.check_receptive_field(lambda layers: None, seed=0)
    assert not fb.passed and "returned None" in fb.message


# --- Exercise 1 · predict-then-run: the ViT under a 2 px shift ------------------------------

RECORD = {"runs": [  # a made-up record in the shape of data/data_curve.json
    {"model": "vit", "seed": s, "shifted_test_accuracy": {"0": 0.84, "2": v}}
    for s, v in enumerate([0.60, 0.62, 0.64])] + [
    {"model": "cnn", "seed": 0, "shifted_test_accuracy": {"0": 0.88, "2": 0.83}},
    {"model": "vit", "seed": 9, "test_accuracy": 0.5}]}  # a run without a shift test: ignored


@pytest.mark.parametrize("prediction, passed, mistake", [
    (0.62, True, None), (0.55, True, None), (0.7, True, None),
    (0.84, False, "no_loss"), (0.9, False, "no_loss"), (0.1, False, "chance"),
    (0.4, False, None), (62, False, "percent"), ("0.6", False, "not_a_number"),
])
def test_shift_prediction_verdicts(prediction, passed, mistake):
    fb = nb08.check_shift_prediction(prediction, RECORD)
    assert fb.passed is passed and fb.mistake == mistake, fb.message


def test_shift_prediction_reads_the_shipped_record():
    import json

    from vitlib.course_files import course_file

    record = json.loads(course_file("data_curve.json").read_text())
    vit2 = [r["shifted_test_accuracy"]["2"] for r in record["runs"]
            if r["model"] == "vit" and "shifted_test_accuracy" in r]
    assert len(vit2) == 3
    fb = nb08.check_shift_prediction(sum(vit2) / 3, record)
    assert fb.passed and f"measured {round(sum(vit2) / 3, 3):g}" in fb.message, fb.message
    assert "not answered yet" in nb08.check_shift_prediction(None, record).message


# --- Exercise 3 · predict-then-run: one more block -----------------------------------------

@pytest.mark.parametrize("layers", [[(3, 1)], [(3, 1), (3, 1)],
                                    [(3, 1), (2, 2), (3, 1), (2, 2), (3, 1)],
                                    [(7, 2), (3, 2), (5, 1)]])
def test_measured_receptive_field_matches_brute_force(layers):
    assert nb08.measure_receptive_field(layers) == _rf_by_brute_force(layers) == rf_good(layers)


@pytest.mark.parametrize("prediction, passed, mistake", [
    (38, True, None), (38.0, True, None), (21, False, "no_jump"), (26, False, "no_pooling"),
    (30, False, "jump_not_doubled"), (28, False, "capped"), (36, False, "doubled"),
    (40, False, None),
])
def test_receptive_field_prediction_verdicts(prediction, passed, mistake):
    fb = nb08.check_receptive_field_prediction(prediction)
    assert fb.passed is passed and fb.mistake == mistake, fb.message
    assert "measured 38 px" in fb.message


def test_receptive_field_prediction_value_by_hand():
    # small_cnn's 18 px, then a 2x2 pooling (+1 x 4, jump 8) and a 3x3 convolution (+2 x 8)
    assert rf_good(nb08.SMALL_CNN_LAYERS + nb08.ONE_MORE_BLOCK) == 18 + 4 + 16
    assert "not answered yet" in nb08.check_receptive_field_prediction(None).message


# --- Exercise 5 · interpret: the data curve ----------------------------------------------------

def test_data_curve_answer_right_wrong_and_unanswered():
    fb = nb08.check_data_curve_answer("c")
    assert fb.passed and "only the data changes" in fb.message
    for letter in "abd":
        fb = nb08.check_data_curve_answer(letter.upper())
        assert not fb.passed and fb.mistake == letter
        assert nb08.DATA_CURVE_OPTIONS[letter] in fb.message
        assert len(nb08.DATA_CURVE_OPTIONS[letter]) > 80
    assert "not answered yet" in nb08.check_data_curve_answer(None).message
    assert nb08.check_data_curve_answer(2).mistake == "not_an_option"
