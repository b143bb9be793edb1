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
