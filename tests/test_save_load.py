"""Every vitlib layer and the ViT survive a `.keras` save and a `safe_mode=True` load.

Reference: the outputs of the object before saving, with every weight set to random values
first (so that a freshly initialised layer after a failed restore would not match).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from vitlib import (
    MLP,
    ClassToken,
    EncoderBlock,
    MultiHeadSelfAttention,
    PatchEmbedding,
    PositionEmbedding,
    ViT,
)


@pytest.fixture(autouse=True)
def zero_init(monkeypatch):
    """Every test sets all weights to random values itself: skip drawing random initial values
    (slow on JAX, which compiles a random-number kernel for every new shape)."""
    def zeros(self, shape, dtype=None):
        return ops.zeros(shape, dtype=dtype)
    for cls in (keras.initializers.GlorotUniform, keras.initializers.RandomNormal):
        monkeypatch.setattr(cls, "__call__", zeros)


def randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(size=w.shape).astype("float32") * 0.3 for w in model.weights])


def save_and_load(model, tmp_path):
    path = tmp_path / "model.keras"
    model.save(path)
    return keras.saving.load_model(path, safe_mode=True)


def to_numpy(outputs):
    return [ops.convert_to_numpy(t) for t in keras.tree.flatten(outputs)]


# name -> (layer factory, input shape without batch)
LAYERS = {
    "patch_embedding_conv": (lambda: PatchEmbedding(4, 8, method="conv"), (8, 8, 2)),
    "patch_embedding_dense": (lambda: PatchEmbedding(4, 8, method="dense"), (8, 8, 2)),
    "class_token": (ClassToken, (4, 8)),
    "position_learned": (lambda: PositionEmbedding((2, 2), kind="learned"), (5, 8)),
    "position_sincos": (lambda: PositionEmbedding((2, 2), kind="sincos"), (5, 8)),
    "position_none": (lambda: PositionEmbedding((2, 2), kind="none"), (5, 8)),
    "position_no_prefix": (lambda: PositionEmbedding((1, 4), num_prefix_tokens=0), (4, 8)),
    "attention": (lambda: MultiHeadSelfAttention(2), (5, 8)),
    "mlp": (lambda: MLP(16), (5, 8)),
    "encoder_block": (lambda: EncoderBlock(2, 16), (5, 8)),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_round_trip(name, tmp_path):
    factory, shape = LAYERS[name]
    layer = factory()
    inputs = keras.Input(shape)
    model = keras.Model(inputs, layer(inputs))
    randomize(model)
    x = np.random.default_rng(1).normal(size=(2, *shape)).astype("float32")
    before = to_numpy(model(x))
    loaded = save_and_load(model, tmp_path)
    restored = loaded.layers[-1]
    assert type(restored) is type(layer)
    assert restored.get_config() == layer.get_config()
    for a, b in zip(to_numpy(loaded(x)), before, strict=True):
        np.testing.assert_array_equal(a, b)


def test_attention_with_scores_round_trip(tmp_path):
    inputs = keras.Input((5, 8))
    out, scores = MultiHeadSelfAttention(2)(inputs, return_attention_scores=True)
    model = keras.Model(inputs, [out, scores])
    randomize(model)
    x = np.random.default_rng(2).normal(size=(2, 5, 8)).astype("float32")
    before = to_numpy(model(x))
    after = to_numpy(save_and_load(model, tmp_path)(x))
    for a, b in zip(after, before, strict=True):
        np.testing.assert_array_equal(a, b)


def test_vit_round_trip(tmp_path):
    model = ViT(image_size=8, patch_size=4, num_classes=3, dim=8, depth=2, num_heads=2,
                mlp_dim=16, channels=2, pooling="cls", position="learned")
    model.build()
    randomize(model)
    x = np.random.default_rng(3).normal(size=(2, 8, 8, 2)).astype("float32")
    logits, attention = model(x, return_attention=True)
    loaded = save_and_load(model, tmp_path)
    assert type(loaded) is ViT
    assert loaded.get_config() == model.get_config()
    assert loaded.count_params() == model.count_params()
    logits2, attention2 = loaded(x, return_attention=True)
    np.testing.assert_array_equal(ops.convert_to_numpy(logits2), ops.convert_to_numpy(logits))
    for a, b in zip(attention2, attention, strict=True):
        np.testing.assert_array_equal(ops.convert_to_numpy(a), ops.convert_to_numpy(b))


def test_encoder_block_with_scores_round_trip(tmp_path):
    inputs = keras.Input((5, 8))
    out, scores = EncoderBlock(2, 16)(inputs, return_attention_scores=True)
    assert tuple(scores.shape) == (None, 2, 5, 5) and tuple(out.shape) == (None, 5, 8)
    model = keras.Model(inputs, [out, scores])
    randomize(model)
    x = np.random.default_rng(4).normal(size=(2, 5, 8)).astype("float32")
    before = to_numpy(model(x))
    after = to_numpy(save_and_load(model, tmp_path)(x))
    for a, b in zip(after, before, strict=True):
        np.testing.assert_array_equal(a, b)
