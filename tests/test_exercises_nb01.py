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
    """Keras' Conv2D kernel (P, P, C, D) -> (P*P*C, D), by loops (Section 3's conversion)."""
    p, _, c, d = kernel.shape
    dense = np.zeros((p * p * c, d), kernel.dtype)
    for y in range(p):
        for x in range(p):
            for ch in range(c):
                dense[(y * p + x) * c + ch] = kernel[y, x, ch]
    return dense


def torch_kernel_to_dense_loops(weight):
    """PyTorch's Conv2d weight (D, C, P, P) -> (P*P*C, D), by loops over the pixels."""
    d, c, p, _ = weight.shape
    dense = np.zeros((p * p * c, d), weight.dtype)
    for y in range(p):
        for x in range(p):
            for ch in range(c):
                dense[(y * p + x) * c + ch] = weight[:, ch, y, x]
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
def test_torch_kernel_to_dense_accepts_a_correct_answer():
    assert nb01.check_torch_kernel_to_dense(torch_kernel_to_dense_loops, seed=3).passed
    assert nb01.check_torch_kernel_to_dense(
        lambda w: np.transpose(w, (2, 3, 1, 0)).reshape(-1, w.shape[0]), seed=4).passed


@pytest.mark.single_backend
def test_num_tokens_and_cost_accepts_a_correct_answer():
    feedback = nb01.check_num_tokens_and_cost(num_tokens_and_cost_plain, seed=4)
    assert feedback.passed, feedback.message


def test_conv_kernel_to_dense_reference_matches_keras_layers():
    """Section 3's conversion (the loops above) is what makes a Dense layer equal a strided
    Conv2D; the tests of Exercise 2 build on it."""
    rng = np.random.default_rng(0)
    p, c, d = 4, 3, 5
    images = rng.standard_normal((2, 8, 12, c)).astype("float32")
    conv = keras.layers.Conv2D(d, p, strides=p)
    want = keras.ops.convert_to_numpy(conv(images)).reshape(2, -1, d)
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in conv.weights)
    got = patchify_loops(images, p) @ conv_kernel_to_dense_loops(kernel) + bias
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_torch_kernel_to_dense_reference_is_a_channels_first_convolution():
    """What the checker calls right: patchify(images) @ dense equals a channels-first
    convolution with kernel = stride = P computed by loops, and equals Keras' Conv2D when the
    PyTorch weight is Keras' kernel with its axes moved to (D, C, P, P)."""
    rng = np.random.default_rng(1)
    p, c, d = 3, 2, 5
    images = rng.standard_normal((1, 6, 9, c)).astype("float32")
    weight = rng.standard_normal((d, c, p, p)).astype("float32")
    want = np.zeros((1, 2 * 3, d), "float32")
    for gy in range(2):
        for gx in range(3):
            window = images[0, gy * p:(gy + 1) * p, gx * p:(gx + 1) * p]  # (P, P, C)
            for out in range(d):
                want[0, gy * 3 + gx, out] = sum(weight[out, ch, y, x] * window[y, x, ch]
                                                for ch in range(c) for y in range(p)
                                                for x in range(p))
    solution = nb01._torch_to_dense(weight)
    np.testing.assert_allclose(patchify_loops(images, p) @ solution, want, atol=1e-4)
    np.testing.assert_array_equal(solution, torch_kernel_to_dense_loops(weight))

    conv = keras.layers.Conv2D(d, p, strides=p, use_bias=False)
    keras_out = keras.ops.convert_to_numpy(conv(images)).reshape(1, -1, d)
    kernel = keras.ops.convert_to_numpy(conv.weights[0])  # (P, P, C, D)
    as_torch = kernel.transpose(3, 2, 0, 1)  # (D, C, P, P), PyTorch's order
    np.testing.assert_allclose(patchify_loops(images, p) @ nb01._torch_to_dense(as_torch),
                               keras_out, atol=1e-4)


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
    (lambda w: w.reshape(-1, w.shape[-1]), "keras_layout"),  # Section 3's answer, unchanged
    (lambda w: np.reshape(w, (-1, w.shape[0])), "reshape_only"),
    (lambda w: np.moveaxis(w, 0, -1).reshape(-1, w.shape[0]), "channels_first"),
    (lambda w: torch_kernel_to_dense_loops(w).T, "transposed_output"),
    (lambda w: torch_kernel_to_dense_loops(np.swapaxes(w, 2, 3)), "rows_columns_swapped"),
])
def test_torch_kernel_to_dense_names_each_mistake(wrong, name):
    feedback = nb01.check_torch_kernel_to_dense(wrong, seed=6)
    assert not feedback.passed and feedback.mistake == name, feedback.message


@pytest.mark.single_backend
def test_section_3_answer_pasted_unchanged_fails_exercise_2():
    """The transfer cannot be solved by pasting Section 3's `kernel.reshape(-1, D)`."""
    for seed in range(5):
        feedback = nb01.check_torch_kernel_to_dense(lambda k: k.reshape(-1, k.shape[-1]), seed=seed)
        assert not feedback.passed and feedback.mistake == "keras_layout", feedback.message


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
    feedback = nb01.check_torch_kernel_to_dense(lambda w: w.reshape(w.shape[0], w.shape[1], -1),
                                                seed=9)
    assert not feedback.passed and feedback.mistake is None
    assert "wrong shape" in feedback.message


@pytest.mark.single_backend
@pytest.mark.parametrize("checker", [nb01.check_patchify, nb01.check_torch_kernel_to_dense,
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
# Exercise 6 (predict-then-run): reach of 5x5 convolutions and of attention on a 28x28 grid
# --------------------------------------------------------------------------------------


def layers_to_reach(grid, kernel):
    """Written independently: the set of grid positions that depend on the far corner grows by
    a (kernel x kernel) window per layer (a boolean dilation in NumPy); count the layers until
    it contains patch 0."""
    reach = np.zeros((grid, grid), bool)
    reach[-1, -1] = True
    r, layers = kernel // 2, 0
    while not reach[0, 0]:
        padded = np.pad(reach, r)
        reach = np.zeros_like(reach)
        for dy in range(kernel):
            for dx in range(kernel):
                reach |= padded[dy:dy + grid, dx:dx + grid]
        layers += 1
    return layers


def test_conv_reach_measurement_matches_the_receptive_field():
    assert layers_to_reach(28, 5) == 14 == nb01.measure_conv_reach(28, 5)
    assert nb01.measure_conv_reach(14, 3) == layers_to_reach(14, 3) == 13  # the FAQ's count


def test_attention_reach_is_one_layer():
    assert nb01.measure_attention_reach(28) == 1


@pytest.mark.single_backend
def test_reach_predictions_right_wrong_and_unanswered():
    assert nb01.check_conv_reach_prediction(14).passed
    assert nb01.check_attention_reach_prediction(1).passed
    conv_slips = {13: "kept_faq", 27: "one_per_patch", 26: "doubled_faq", 7: "old_grid",
                  28: "grid_side"}
    for wrong, name in conv_slips.items():
        feedback = nb01.check_conv_reach_prediction(wrong)
        assert not feedback.passed and feedback.mistake == name, feedback.message
    attention_slips = {14: "like_conv", 13: "kept_faq_conv", 27: "one_per_patch", 2: "two",
                       0: "zero"}
    for wrong, name in attention_slips.items():
        feedback = nb01.check_attention_reach_prediction(wrong)
        assert not feedback.passed and feedback.mistake == name, feedback.message
    for checker in (nb01.check_conv_reach_prediction, nb01.check_attention_reach_prediction):
        assert "not answered yet" in checker(None).message
        assert checker("14").mistake == "not_a_number"
    other = nb01.check_conv_reach_prediction(15)
    assert not other.passed and other.mistake is None


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
