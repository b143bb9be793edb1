"""vitlib.finetune: a new head, a new image size, a frozen encoder.

References: the source model's weights themselves (copied, not changed); a NumPy bilinear resize
of the position-embedding grid (tests/test_embeddings.py); the sine-cosine table of the new grid;
one optimizer step, after which only the head may have moved.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops
from test_embeddings import numpy_bilinear

from vitlib import make_vit, sincos_2d
from vitlib.finetune import copy_encoder, freeze_encoder, with_new_head


def randomized(name="fashion-tiny", seed=0, **overrides):
    """A ViT with every weight drawn from N(0, 1) (built without drawing initial values first:
    slow on JAX, which compiles a random-number kernel for every new shape)."""
    with pytest.MonkeyPatch.context() as patch:
        for cls in (keras.initializers.GlorotUniform, keras.initializers.RandomNormal):
            patch.setattr(cls, "__call__", lambda self, shape, dtype=None: ops.zeros(shape, dtype))
        model = make_vit(name, **overrides)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.weights])
    return model


def by_path(model):
    """{weight path without the model's own name: value}, e.g. 'block_0/mlp/fc1/kernel'."""
    return {v.path.split("/", 1)[1]: ops.convert_to_numpy(v) for v in model.weights}


def test_new_head_copies_every_encoder_weight_and_starts_a_new_head():
    source = randomized()
    before = by_path(source)
    new = with_new_head(source, num_classes=5)
    after = by_path(new)
    assert set(after) == set(before)
    for path, value in before.items():
        if path.startswith("head/"):
            assert after[path].shape[-1] == 5  # (dim, 5) and (5,)
        else:
            np.testing.assert_array_equal(after[path], value, err_msg=path)
    for path, value in by_path(source).items():  # the source is unchanged
        np.testing.assert_array_equal(value, before[path])
    assert tuple(new(np.zeros((2, 28, 28, 1), "float32")).shape) == (2, 5)


@pytest.mark.parametrize("size, grid", [(42, (6, 6)), ((28, 56), (4, 8)), (14, (2, 2))])
def test_new_size_resizes_the_position_embedding_bilinearly(size, grid):
    source = randomized(seed=1)  # fashion-tiny: 28x28 with patch 7, a 4x4 grid
    new = with_new_head(source, image_size=size)
    table = ops.convert_to_numpy(source.position_embedding.embedding)  # (1, 1 + 16, 32)
    expected = numpy_bilinear(table[0, 1:].reshape(4, 4, -1), *grid).reshape(1, -1, 32)
    got = ops.convert_to_numpy(new.position_embedding.embedding)
    assert got.shape == (1, 1 + grid[0] * grid[1], 32)
    np.testing.assert_array_equal(got[:, :1], table[:, :1])  # the class token's entry is kept
    np.testing.assert_allclose(got[:, 1:], expected, atol=1e-5)
    np.testing.assert_array_equal(ops.convert_to_numpy(new.blocks[1].mlp.fc2.kernel),
                                  ops.convert_to_numpy(source.blocks[1].mlp.fc2.kernel))
    h, w = (size, size) if isinstance(size, int) else size
    assert tuple(new(np.zeros((1, h, w, 1), "float32")).shape) == (1, 10)


def test_sincos_position_embedding_is_recomputed_not_resized():
    source = randomized(position="sincos")
    new = with_new_head(source, image_size=42)
    got = ops.convert_to_numpy(new.position_embedding.embedding)[0, 1:]
    np.testing.assert_allclose(got, sincos_2d((6, 6), 32), atol=1e-6)


def test_mean_pooling_model_without_class_token():
    source = randomized(pooling="mean", seed=2)
    new = with_new_head(source, image_size=56)
    table = ops.convert_to_numpy(source.position_embedding.embedding)  # (1, 16, 32): no prefix
    expected = numpy_bilinear(table[0].reshape(4, 4, -1), 8, 8).reshape(1, 64, 32)
    np.testing.assert_allclose(ops.convert_to_numpy(new.position_embedding.embedding), expected,
                               atol=1e-5)


def test_frozen_encoder_trains_only_the_head():
    keras.utils.set_random_seed(0)
    model = freeze_encoder(randomized(seed=3))
    assert [v.path.split("/", 1)[1] for v in model.trainable_weights] == ["head/kernel", "head/bias"]
    before = by_path(model)
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).random((8, 28, 28, 1)).astype("float32")
    model.train_on_batch(x, np.arange(8) % 10)
    for path, value in by_path(model).items():
        moved = not np.array_equal(value, before[path])
        assert moved == path.startswith("head/"), path
    freeze_encoder(model, frozen=False)
    assert len(model.trainable_weights) == len(make_vit("fashion-tiny").trainable_weights)


def test_bad_arguments_raise_value_errors():
    source = randomized()
    with pytest.raises(ValueError, match="`model` must be a vitlib.ViT, got Sequential"):
        with_new_head(keras.Sequential([keras.layers.Dense(2)]))
    with pytest.raises(ValueError, match="`num_classes` must be a positive integer, got 0"):
        with_new_head(source, num_classes=0)
    with pytest.raises(ValueError, match="divisible by `patch_size`=7"):
        with_new_head(source, image_size=30)
    with pytest.raises(ValueError, match="dim=64, but `source` has dim=32"):
        copy_encoder(source, make_vit("fashion-tiny", dim=64, num_heads=2))
    with pytest.raises(ValueError, match="`model` must be a vitlib.ViT, got str"):
        freeze_encoder("encoder")
