"""vitlib.patches: images -> patches -> patch tokens (ViT Eq. 1), against independent references.

References: a plain NumPy loop over the patches, ``keras.ops.image.extract_patches``, and the
linear map of Eq. 1 written out in NumPy.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from vitlib import PatchEmbedding, extract_patches, patches_to_images


def numpy_patches(images: np.ndarray, p: int) -> np.ndarray:
    """Reference: loop over the grid row by row; flatten each patch row by row, channels last."""
    b, h, w, c = images.shape
    out = []
    for i in range(h // p):  # patch row
        for j in range(w // p):  # patch column
            out.append(images[:, i * p:(i + 1) * p, j * p:(j + 1) * p, :].reshape(b, p * p * c))
    return np.stack(out, axis=1)


@pytest.fixture
def images() -> np.ndarray:
    # 12x8 (not square) so that rows and columns cannot be confused; distinct values everywhere.
    return np.random.default_rng(0).normal(size=(2, 12, 8, 3)).astype("float32")


def test_extract_patches_matches_numpy_loop(images):
    got = ops.convert_to_numpy(extract_patches(images, 4))
    assert got.shape == (2, 3 * 2, 4 * 4 * 3)
    np.testing.assert_array_equal(got, numpy_patches(images, 4))


def test_extract_patches_row_major_by_hand():
    # One 4x4 single-channel image, pixel value = 10*row + col, patch 2: patch 1 is the
    # top-right one, patch 2 the bottom-left one.
    img = (10 * np.arange(4)[:, None] + np.arange(4)[None, :]).astype("float32")[None, :, :, None]
    got = ops.convert_to_numpy(extract_patches(img, 2))[0]
    np.testing.assert_array_equal(got[0], [0, 1, 10, 11])
    np.testing.assert_array_equal(got[1], [2, 3, 12, 13])
    np.testing.assert_array_equal(got[2], [20, 21, 30, 31])
    np.testing.assert_array_equal(got[3], [22, 23, 32, 33])


def test_extract_patches_equals_keras_extract_patches(images):
    ref = ops.convert_to_numpy(ops.image.extract_patches(images, 4))  # (batch, gh, gw, p*p*c)
    assert ref.shape == (2, 3, 2, 48)
    got = ops.convert_to_numpy(extract_patches(images, 4))
    np.testing.assert_array_equal(got, ref.reshape(2, 6, 48))


def test_patches_to_images_is_exact_inverse(images):
    patches = extract_patches(images, 4)
    back = ops.convert_to_numpy(patches_to_images(patches, 4, grid_size=(3, 2)))
    np.testing.assert_array_equal(back, images)
    # And the other way round, from arbitrary patches (square grid by default).
    rng = np.random.default_rng(1)
    p = rng.normal(size=(3, 9, 2 * 2 * 5)).astype("float32")
    img = patches_to_images(p, 2)
    assert tuple(img.shape) == (3, 6, 6, 5)
    np.testing.assert_array_equal(ops.convert_to_numpy(extract_patches(img, 2)), p)
    # patches_to_images undoes the NumPy reference too.
    np.testing.assert_array_equal(
        ops.convert_to_numpy(patches_to_images(numpy_patches(images, 4), 4, grid_size=(3, 2))),
        images,
    )


@pytest.mark.parametrize("method", ["conv", "dense"])
def test_patch_embedding_is_eq1_linear_map(images, method):
    """tokens = x_p E + b, with E written out in NumPy from the layer's kernel."""
    layer = PatchEmbedding(4, 5, method=method)
    out = ops.convert_to_numpy(layer(images))
    assert out.shape == (2, 6, 5)
    kernel, bias = (ops.convert_to_numpy(w) for w in layer.projection.weights)
    rng = np.random.default_rng(2)
    bias = rng.normal(size=bias.shape).astype("float32")  # non-zero bias, so it is tested
    layer.projection.set_weights([kernel, bias])
    out = ops.convert_to_numpy(layer(images))
    ref = numpy_patches(images, 4) @ kernel.reshape(4 * 4 * 3, 5) + bias
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_patch_embedding_conv_equals_dense_with_copied_weights(images):
    conv = PatchEmbedding(4, 5, method="conv")
    dense = PatchEmbedding(4, 5, method="dense")
    conv.build(images.shape)
    dense.build(images.shape)
    kernel, bias = (ops.convert_to_numpy(w) for w in conv.projection.weights)
    assert kernel.shape == (4, 4, 3, 5)
    assert tuple(dense.projection.kernel.shape) == (4 * 4 * 3, 5)
    bias = np.random.default_rng(3).normal(size=bias.shape).astype("float32")
    conv.projection.set_weights([kernel, bias])
    dense.projection.set_weights([kernel.reshape(-1, 5), bias])
    a = ops.convert_to_numpy(conv(images))
    b = ops.convert_to_numpy(dense(images))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    # Different weights give a different output: the comparison can fail.
    dense.projection.set_weights([kernel.reshape(-1, 5)[::-1], bias])
    assert np.abs(ops.convert_to_numpy(dense(images)) - a).max() > 1e-2


def test_patch_embedding_in_functional_model():
    inputs = keras.Input((8, 8, 1))
    outputs = PatchEmbedding(2, 3)(inputs)
    assert tuple(outputs.shape) == (None, 16, 3)
