"""Checkers of notebook 01: each accepts a correct answer and names each usual mistake."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import vitlib
from vitlib.exercises import nb01

# --------------------------------------------------------------------------------------
# Independent solutions: plain loops over the pixels, not the checkers' reshapes.
# --------------------------------------------------------------------------------------


def patchify_loops(images, patch_size):
    p = patch_size
    b, h, w, c = images.shape
    out = np.zeros((b, (h // p) * (w // p), p * p * c), images.dtype)
    for n in range(b):
        for gy in range(h // p):
            for gx in range(w // p):
                values = [images[n, gy * p + y, gx * p + x, ch]
                          for y in range(p) for x in range(p) for ch in range(c)]
                out[n, gy * (w // p) + gx] = values
    return out


def conv_kernel_to_dense_loops(kernel):
    p, _, c, d = kernel.shape
    dense = np.zeros((p * p * c, d), kernel.dtype)
    for y in range(p):
        for x in range(p):
            for ch in range(c):
                dense[(y * p + x) * c + ch] = kernel[y, x, ch]
    return dense


def num_tokens_and_cost_plain(image_size, patch_size):
    patches = (image_size / patch_size) ** 2
    tokens = int(patches) + 1
    return tokens, tokens**2


# --------------------------------------------------------------------------------------
# Correct answers pass
# --------------------------------------------------------------------------------------


@pytest.mark.single_backend
def test_patchify_accepts_a_correct_answer():
    feedback = nb01.check_patchify(patchify_loops, seed=1)
    assert feedback.passed, feedback.message
    assert feedback.message.startswith("✅")


def test_patchify_accepts_vitlib_extract_patches():
    def with_vitlib(images, patch_size):
        return keras.ops.convert_to_numpy(vitlib.extract_patches(images, patch_size))

    assert nb01.check_patchify(with_vitlib, seed=2).passed


@pytest.mark.single_backend
def test_conv_kernel_to_dense_accepts_a_correct_answer():
    assert nb01.check_conv_kernel_to_dense(conv_kernel_to_dense_loops, seed=3).passed


@pytest.mark.single_backend
def test_num_tokens_and_cost_accepts_a_correct_answer():
    feedback = nb01.check_num_tokens_and_cost(num_tokens_and_cost_plain, seed=4)
    assert feedback.passed, feedback.message


def test_conv_kernel_to_dense_reference_matches_keras_layers():
    """The checker's notion of 'correct' is what makes a Dense layer equal a strided Conv2D."""
    rng = np.random.default_rng(0)
    p, c, d = 4, 3, 5
    images = rng.standard_normal((2, 8, 12, c)).astype("float32")
    conv = keras.layers.Conv2D(d, p, strides=p)
    want = keras.ops.convert_to_numpy(conv(images)).reshape(2, -1, d)
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in conv.weights)
    got = patchify_loops(images, p) @ conv_kernel_to_dense_loops(kernel) + bias
    np.testing.assert_allclose(got, want, atol=1e-4)


# --------------------------------------------------------------------------------------
# Each usual mistake is recognised, with its own hint
# --------------------------------------------------------------------------------------


def _column_major(images, p):
    b, h, w, c = images.shape
    out = patchify_loops(images, p).reshape(b, h // p, w // p, -1)
    return out.transpose(0, 2, 1, 3).reshape(b, (h // p) * (w // p), -1)


def _transposed_pixels(images, p):
    return patchify_loops(images.transpose(0, 2, 1, 3), p).reshape(
        images.shape[0], images.shape[2] // p, images.shape[1] // p, -1
    ).transpose(0, 2, 1, 3).reshape(images.shape[0], -1, p * p * images.shape[3])


def _channels_first(images, p):
    b, _, _, c = images.shape
    out = patchify_loops(images, p).reshape(b, -1, p * p, c)
    return out.transpose(0, 1, 3, 2).reshape(b, -1, p * p * c)


def _strips(images, p):
    b, h, w, c = images.shape
    return images.reshape(b, -1, p * p * c)


def _grid_kept(images, p):
    b, h, w, _ = images.shape
    return patchify_loops(images, p).reshape(b, h // p, w // p, -1)


@pytest.mark.single_backend
@pytest.mark.parametrize("wrong, name, words", [
    (_column_major, "column_major_patches", "column-major"),
    (_transposed_pixels, "transposed_pixels", "transposed"),
    (_channels_first, "channels_first", "channels-first"),
    (_strips, "no_transpose", "strip"),
    (_grid_kept, "grid_not_flattened", "sequence"),
])
def test_patchify_names_each_mistake(wrong, name, words):
    feedback = nb01.check_patchify(wrong, seed=5)
    assert not feedback.passed
    assert feedback.mistake == name, feedback.message
    assert words in feedback.message and feedback.message.startswith("❌")


@pytest.mark.single_backend
@pytest.mark.parametrize("wrong, name", [
    (lambda k: conv_kernel_to_dense_loops(k).T, "transposed_output"),
    (lambda k: np.moveaxis(k, 2, 0).reshape(-1, k.shape[-1]), "channels_first"),
    (lambda k: conv_kernel_to_dense_loops(np.swapaxes(k, 0, 1)), "rows_columns_swapped"),
])
def test_conv_kernel_to_dense_names_each_mistake(wrong, name):
    feedback = nb01.check_conv_kernel_to_dense(wrong, seed=6)
    assert not feedback.passed and feedback.mistake == name, feedback.message


@pytest.mark.single_backend
@pytest.mark.parametrize("wrong, name", [
    (lambda s, p: ((s // p) ** 2, ((s // p) ** 2) ** 2), "forgot_class_token"),
    (lambda s, p: (s // p + 1, (s // p + 1) * (s // p + 1)), "one_side_only"),
    (lambda s, p: ((s // p) ** 2 + 1, (s // p) ** 2 + 1), "linear_cost"),
    (lambda s, p: (p * p + 1, (p * p + 1) ** 2), "pixels_per_patch"),
])
def test_num_tokens_and_cost_names_each_mistake(wrong, name):
    feedback = nb01.check_num_tokens_and_cost(wrong, seed=7)
    assert not feedback.passed and feedback.mistake == name, feedback.message


# --------------------------------------------------------------------------------------
# Unknown mistakes, None, errors and unwritten stubs are reported in plain words
# --------------------------------------------------------------------------------------


@pytest.mark.single_backend
def test_an_unknown_mistake_gets_a_general_message():
    feedback = nb01.check_patchify(lambda x, p: patchify_loops(x, p) * 2, seed=8)
    assert not feedback.passed and feedback.mistake is None
    assert "values differ" in feedback.message


@pytest.mark.single_backend
def test_a_wrong_shape_is_reported():
    feedback = nb01.check_conv_kernel_to_dense(lambda k: k.reshape(k.shape[0], -1), seed=9)
    assert not feedback.passed and feedback.mistake is None
    assert "wrong shape" in feedback.message


@pytest.mark.single_backend
@pytest.mark.parametrize("checker", [nb01.check_patchify, nb01.check_conv_kernel_to_dense,
                                     nb01.check_num_tokens_and_cost])
def test_none_errors_and_stubs_are_reported(checker):
    def returns_none(*args):
        pass

    def raises(*args):
        raise IndexError("tuple index out of range")

    def stub(*args):
        raise NotImplementedError("Exercise: write it")

    assert "forget `return`" in checker(returns_none).message
    message = checker(raises).message
    assert "IndexError" in message and "tuple index out of range" in message
    assert "not written yet" in checker(stub).message


# --------------------------------------------------------------------------------------
# Counts are exact; any length-2 sequence is accepted
# --------------------------------------------------------------------------------------


@pytest.mark.single_backend
@pytest.mark.parametrize("as_type", [list, np.array])
def test_num_tokens_and_cost_accepts_any_length_2_sequence(as_type):
    feedback = nb01.check_num_tokens_and_cost(
        lambda s, p: as_type(num_tokens_and_cost_plain(s, p)), seed=0)
    assert feedback.passed, feedback.message


@pytest.mark.single_backend
def test_num_tokens_and_cost_rejects_an_off_by_one_pair_count():
    # pairs reach ~10^5 here: a relative tolerance of 1e-4 would let an error of 10 pass.
    def off_by_one(image_size, patch_size):
        tokens, pairs = num_tokens_and_cost_plain(image_size, patch_size)
        return tokens, pairs + 1

    feedback = nb01.check_num_tokens_and_cost(off_by_one, seed=0)
    assert not feedback.passed and feedback.mistake is None, feedback.message


@pytest.mark.single_backend
def test_core_check_takes_rtol():
    from vitlib.exercises._core import check

    def case(rng):
        return (int(rng.integers(40_000, 50_000)),)

    assert check(lambda n: n + 1, lambda n: n, case, atol=0)  # the default rtol=1e-4 lets it pass
    assert not check(lambda n: n + 1, lambda n: n, case, atol=0, rtol=0)
    assert check(lambda n: n, lambda n: n, case, atol=0, rtol=0)


# --------------------------------------------------------------------------------------
# Exercise 4 (predict-then-run): the patch embedding's parameters for 32x32 RGB images
# --------------------------------------------------------------------------------------


def test_embedding_params_prediction_right_count_passes():
    """The right count, from an independent Keras Conv2D with kernel = stride = 4."""
    conv = keras.layers.Conv2D(192, 4, strides=4)
    conv(np.zeros((1, 32, 32, 3), "float32"))
    count = int(conv.count_params())
    assert count == 4 * 4 * 3 * 192 + 192 == nb01.measure_embedding_params()
    feedback = nb01.check_embedding_params_prediction(count)
    assert feedback.passed and feedback.message.startswith("✅"), feedback.message


@pytest.mark.single_backend
@pytest.mark.parametrize("wrong, name", [
    (48 * 192, "no_bias"),
    (16 * 192 + 192, "no_channels"),
    (64 * (48 * 192 + 192), "one_matrix_per_patch"),
    (64 * 48 * 192, "one_matrix_per_patch_no_bias"),
    (32 * 32 * 3 * 192 + 192, "whole_image"),
    (48 * 192 + 192 + 192, "with_class_token"),
])
def test_embedding_params_prediction_names_each_mistake(wrong, name):
    feedback = nb01.check_embedding_params_prediction(wrong)
    assert not feedback.passed and feedback.mistake == name, feedback.message
    assert "9,408" in feedback.message  # the measured count is shown with the hint


@pytest.mark.single_backend
def test_embedding_params_prediction_unanswered_unknown_and_not_a_number():
    assert "not answered yet" in nb01.check_embedding_params_prediction(None).message
    other = nb01.check_embedding_params_prediction(10_000)
    assert not other.passed and other.mistake is None
    assert nb01.check_embedding_params_prediction("9408").mistake == "not_a_number"


# --------------------------------------------------------------------------------------
# Exercise 5 (transfer): rectangular patches
# --------------------------------------------------------------------------------------


def patchify_rect_loops(images, ph, pw):
    b, h, w, c = images.shape
    out = np.zeros((b, (h // ph) * (w // pw), ph * pw * c), images.dtype)
    for n in range(b):
        for gy in range(h // ph):
            for gx in range(w // pw):
                values = [images[n, gy * ph + y, gx * pw + x, ch]
                          for y in range(ph) for x in range(pw) for ch in range(c)]
                out[n, gy * (w // pw) + gx] = values
    return out


def _rect_column_major(images, ph, pw):
    b, h, w, _ = images.shape
    out = patchify_rect_loops(images, ph, pw).reshape(b, h // ph, w // pw, -1)
    return out.transpose(0, 2, 1, 3).reshape(b, (h // ph) * (w // pw), -1)


def _rect_pixels_by_column(images, ph, pw):
    b, _, _, c = images.shape
    out = patchify_rect_loops(images, ph, pw).reshape(b, -1, ph, pw, c)
    return out.transpose(0, 1, 3, 2, 4).reshape(b, -1, ph * pw * c)


@pytest.mark.single_backend
def test_patchify_rect_accepts_a_correct_answer():
    feedback = nb01.check_patchify_rect(patchify_rect_loops, seed=11)
    assert feedback.passed, feedback.message


@pytest.mark.single_backend
@pytest.mark.parametrize("wrong, name", [
    (lambda x, ph, pw: patchify_loops(x, ph), "square_patches"),
    (lambda x, ph, pw: patchify_rect_loops(x, pw, ph), "swapped_sides"),
    (_rect_column_major, "column_major_patches"),
    (_rect_pixels_by_column, "transposed_pixels"),
    (lambda x, ph, pw: x.reshape(x.shape[0], -1, ph * pw * x.shape[3]), "no_transpose"),
])
def test_patchify_rect_names_each_mistake(wrong, name):
    feedback = nb01.check_patchify_rect(wrong, seed=12)
    assert not feedback.passed and feedback.mistake == name, feedback.message


@pytest.mark.single_backend
def test_exercise_1_patchify_pasted_unchanged_fails_exercise_5():
    """The transfer cannot be solved by pasting Exercise 1's function (square patches)."""
    for seed in range(5):
        feedback = nb01.check_patchify_rect(lambda x, ph, pw: patchify_loops(x, ph), seed=seed)
        assert not feedback.passed and feedback.mistake == "square_patches", feedback.message


@pytest.mark.single_backend
def test_patchify_rect_stub_is_not_written_yet():
    def stub(images, patch_h, patch_w):
        raise NotImplementedError("Exercise: write it")

    assert "not written yet" in nb01.check_patchify_rect(stub).message


# --------------------------------------------------------------------------------------
# Exercise 6 (interpret): one attention layer vs stacked 3x3 convolutions
# --------------------------------------------------------------------------------------


@pytest.mark.single_backend
def test_locality_answer_right_wrong_and_unanswered():
    assert nb01.check_locality_answer("c").passed
    assert nb01.check_locality_answer(" C ").passed
    hints = {"a": "RANDOM", "b": "patch size", "d": "notebook 08"}
    for letter, words in hints.items():
        feedback = nb01.check_locality_answer(letter)
        assert not feedback.passed and feedback.mistake == letter, feedback.message
        assert words in feedback.message
    assert "not answered yet" in nb01.check_locality_answer(None).message
    assert nb01.check_locality_answer("e").mistake == "not_an_option"


def test_thirteen_3x3_convolutions_connect_opposite_corners_of_a_14x14_grid():
    """The fact Exercise 6 rests on, with NumPy: a 3x3 window grows the reach by one patch a
    layer, so patch 0 first depends on patch 195 (13 rows and 13 columns away) after 13 layers."""
    reach = np.zeros((14, 14), bool)
    reach[13, 13] = True  # which grid positions depend on patch 195
    layers = 0
    while not reach[0, 0]:
        padded = np.pad(reach, 1)
        reach = np.zeros_like(reach)
        for dy in range(3):
            for dx in range(3):
                reach |= padded[dy:dy + 14, dx:dx + 14]
        layers += 1
    assert layers == 13
