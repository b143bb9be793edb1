"""Bad input raises a ValueError from vitlib itself, before any backend error, and its message
names the argument, the value given and what was expected."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

import vitlib
from vitlib import (
    EncoderBlock,
    MultiHeadSelfAttention,
    PatchEmbedding,
    ViT,
    extract_patches,
    resize_position_embedding,
    scaled_dot_product_attention,
)

VITLIB = Path(vitlib.__file__).parent


def raises_from_vitlib(fn, *expected):
    """Call ``fn``; it must raise exactly ValueError, raised by vitlib's own code (the innermost
    frame of the traceback is in vitlib/), whose message contains every ``expected`` text."""
    with pytest.raises(ValueError) as info:
        fn()
    assert type(info.value) is ValueError, type(info.value)
    assert Path(info.traceback[-1].path).parent == VITLIB, info.traceback[-1].path
    message = str(info.value)
    for text in expected:
        assert text in message, f"{text!r} not in {message!r}"
    return message


def images(*shape):
    return np.zeros(shape, "float32")


@pytest.fixture(autouse=True)
def zero_init(monkeypatch):
    """Initial weight values play no part here: skip drawing random numbers (slow on JAX)."""
    def zeros(self, shape, dtype=None):
        return ops.zeros(shape, dtype=dtype)
    for cls in (keras.initializers.GlorotUniform, keras.initializers.RandomNormal):
        monkeypatch.setattr(cls, "__call__", zeros)


@pytest.fixture
def fashion_tiny(zero_init):
    return vitlib.make_vit("fashion-tiny")  # 28x28, 1 channel


def test_image_size_not_divisible_by_patch_size():
    raises_from_vitlib(lambda: extract_patches(images(1, 30, 28, 3), 4),
                       "`images`", "height 30", "divisible by `patch_size`=4", "(1, 30, 28, 3)")
    raises_from_vitlib(lambda: PatchEmbedding(4, 8)(images(1, 28, 30, 3)),
                       "`images`", "width 30", "divisible by `patch_size`=4")
    raises_from_vitlib(lambda: ViT(image_size=30, patch_size=4),
                       "`image_size (height)`", "divisible by `patch_size`=4", "got 30", "28", "32")


def test_wrong_rank(fashion_tiny):
    raises_from_vitlib(lambda: extract_patches(images(28, 28, 3), 4),
                       "`images`", "(batch, height, width, channels)", "rank 4", "(28, 28, 3)",
                       "rank 3", "images[None]")
    raises_from_vitlib(lambda: fashion_tiny(images(28, 28, 1)),
                       "`images`", "rank 4", "(28, 28, 1)")
    raises_from_vitlib(lambda: MultiHeadSelfAttention(2)(images(5, 8)),
                       "`x`", "(batch, tokens, dim)", "rank 3", "(5, 8)", "rank 2")


def test_wrong_channel_count(fashion_tiny):
    raises_from_vitlib(lambda: fashion_tiny(images(2, 28, 28, 3)),
                       "`images`", "1 channel(s)", "(2, 28, 28, 3)", "with 3", "channels-last")
    layer = PatchEmbedding(4, 8)
    layer(images(1, 8, 8, 3))
    raises_from_vitlib(lambda: layer(images(1, 8, 8, 1)),
                       "`images`", "3 channel(s)", "(1, 8, 8, 1)", "with 1")


def test_heads_not_dividing_width():
    raises_from_vitlib(lambda: ViT(dim=64, num_heads=5), "`num_heads`=5", "`dim`=64", "divide")
    raises_from_vitlib(lambda: MultiHeadSelfAttention(5)(images(1, 4, 64)),
                       "`num_heads`=5", "dim=64", "divide")
    raises_from_vitlib(lambda: EncoderBlock(3, 16)(images(1, 4, 8)), "`num_heads`=3", "dim=8")


@pytest.mark.parametrize("make, name, value", [
    (lambda: PatchEmbedding(0, 8), "patch_size", "0"),
    (lambda: PatchEmbedding(4, -8), "dim", "-8"),
    (lambda: extract_patches(images(1, 8, 8, 1), 0), "patch_size", "0"),
    (lambda: ViT(depth=0), "depth", "0"),
    (lambda: ViT(image_size=(224, -1)), "image_size[1]", "-1"),
    (lambda: ViT(num_classes=0), "num_classes", "0"),
    (lambda: MultiHeadSelfAttention(0), "num_heads", "0"),
    (lambda: vitlib.MLP(0), "mlp_dim", "0"),
    (lambda: vitlib.PositionEmbedding((0, 4)), "grid_size[0]", "0"),
])
def test_non_positive_sizes(make, name, value):
    raises_from_vitlib(make, f"`{name}`", f"got {value}", "positive integer")


def test_mask_of_wrong_shape():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(2, 5, 4)).astype("float32")
    k = rng.normal(size=(2, 6, 4)).astype("float32")
    bad = np.ones((5, 5), bool)  # 5 keys, but there are 6
    raises_from_vitlib(lambda: scaled_dot_product_attention(q, k, k, bad),
                       "`mask`", "(2, 5, 6)", "(..., queries, keys)", "got shape (5, 5)")
    layer = MultiHeadSelfAttention(2)
    x = rng.normal(size=(2, 6, 8)).astype("float32")
    for kwargs in ({}, {"return_attention_scores": True}):  # fused and explicit paths
        raises_from_vitlib(lambda kw=kwargs: layer(x, mask=np.ones((3, 6, 6), bool), **kw),
                           "`mask`", "got shape (3, 1, 6, 6)", "(..., queries, keys)")
        raises_from_vitlib(lambda kw=kwargs: layer(x, mask=np.ones((6,), bool), **kw),
                           "`mask`", "got shape (6,)")


def test_resize_to_impossible_grid():
    emb = np.zeros((1, 1 + 16, 8), "float32")
    raises_from_vitlib(lambda: resize_position_embedding(emb, (0, 4)),
                       "`new_grid[0]`", "got 0", "positive integer")
    raises_from_vitlib(lambda: resize_position_embedding(emb, (4, 4), old_grid=(3, 5)),
                       "`old_grid`", "(3, 5)", "15", "16 grid tokens")
    raises_from_vitlib(lambda: resize_position_embedding(np.zeros((1, 11, 8), "float32"), 3),
                       "`embedding`", "11 tokens", "10 grid tokens", "not a square grid",
                       "`old_grid`")
    raises_from_vitlib(lambda: resize_position_embedding(emb, (4, 4, 4)),
                       "`new_grid`", "(4, 4, 4)", "pair")


def test_model_checks_image_size(fashion_tiny):
    raises_from_vitlib(lambda: fashion_tiny(images(1, 32, 32, 1)),
                       "`images`", "28x28", "(1, 32, 32, 1)", "resize_position_embedding")


# --- what a careless learner tries (issue #17): one clear answer on TensorFlow and JAX ---------


@pytest.mark.parametrize("dtype", ["uint8", "int64", "bool"])
def test_raw_pixels_are_refused_with_what_to_do(dtype):
    model = vitlib.make_vit("fashion-tiny")
    x = np.zeros((2, 28, 28, 1), dtype)
    raises_from_vitlib(lambda: model(x), "`images` must hold floating-point pixel values",
                       f"got dtype {dtype}", "/ 255")
    raises_from_vitlib(lambda: model.predict(x, verbose=0), "`x` must hold floating-point")


def test_bad_predict_input_leaves_the_model_usable():
    """On JAX an error inside Keras' predict left the variables unusable: vitlib checks first."""
    model = vitlib.make_vit("fashion-tiny")
    good = np.zeros((2, 28, 28, 1), "float32")
    before = model.predict(good, verbose=0)
    raises_from_vitlib(lambda: model.predict(np.zeros((2, 28, 28), "float32"), verbose=0),
                       "`x` must be a batch of images", "(2, 28, 28)")
    raises_from_vitlib(lambda: model.predict(good[:0], verbose=0), "`x` holds no images")
    raises_from_vitlib(lambda: model.predict(good * np.nan, verbose=0), "NaN or Inf")
    np.testing.assert_allclose(model.predict(good, verbose=0), before, atol=1e-6)


def test_none_and_mismatched_labels_are_named():
    model = vitlib.make_vit("fashion-tiny")
    raises_from_vitlib(lambda: model(None), "`images` must be an array or tensor, got NoneType")
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.zeros((4, 28, 28, 1), "float32")
    raises_from_vitlib(lambda: model.evaluate(x, np.zeros(1), verbose=0),
                       "one label per image: `x` has 4 images")
    raises_from_vitlib(lambda: model.fit(x, np.zeros(1), verbose=0), "one label per image")


def test_built_layers_refuse_another_width():
    block = EncoderBlock(num_heads=2, mlp_dim=8)
    block(np.zeros((1, 5, 8), "float32"))
    raises_from_vitlib(lambda: block(np.zeros((1, 5, 12), "float32")), "width 12", "dim=8")
    attention = MultiHeadSelfAttention(num_heads=2)
    attention(np.zeros((1, 5, 8), "float32"))
    raises_from_vitlib(lambda: attention(np.zeros((1, 5, 6), "float32")), "width 6", "dim=8")


def test_attention_batch_mismatch_is_named():
    q, k = np.zeros((2, 3, 4), "float32"), np.zeros((3, 5, 4), "float32")
    raises_from_vitlib(lambda: scaled_dot_product_attention(q, k, k),
                       "same leading (batch, heads) axes", "(2, 3, 4)", "(3, 5, 4)")


def test_small_functions_refuse_silent_nonsense():
    from vitlib import explain, pretrained, sincos_1d
    from vitlib.mae import masked_mse, random_masking

    raises_from_vitlib(lambda: sincos_1d(None, 4), "`positions` must be finite numbers")
    raises_from_vitlib(lambda: pretrained.top_k(np.zeros((1, 3)), ["a", "b", "c"], k=-1),
                       "`k` must be a positive integer, got -1")
    raises_from_vitlib(lambda: explain.position_similarity(np.ones((1, 17, 4)), (2, 2)),
                       "has 17 rows", "needs 4 (patches) or 5")
    raises_from_vitlib(lambda: resize_position_embedding(np.zeros((2, 5, 4)), (3, 3)),
                       "must be ONE table", "(2, 5, 4)")
    tokens = np.zeros((2, 16, 4), "float32")
    raises_from_vitlib(lambda: random_masking(tokens, 0.5, noise=np.zeros((2, 15))),
                       "`noise` must be (batch, tokens) = (2, 16)")
    imgs = np.zeros((2, 8, 8, 1), "float32")
    raises_from_vitlib(lambda: masked_mse(imgs, np.zeros((2, 4, 15)), np.zeros((2, 4)), 4),
                       "`predicted` must be", "(batch, 4, 16)")
    raises_from_vitlib(lambda: masked_mse(imgs, np.zeros((2, 4, 16)), np.zeros((2, 5)), 4),
                       "`mask` must be (batch, patches) = (batch, 4)")


def test_degenerate_attention_maps_are_refused_not_divided_by_zero():
    from vitlib import explain

    raises_from_vitlib(lambda: explain.attention_rollout([np.full((1, 1, 3, 3), np.nan)]),
                       "NaN or Inf")
    zero = np.zeros((1, 1, 3, 3))
    raises_from_vitlib(lambda: explain.attention_rollout([zero], residual=False), "sums to 0")
    only_cls = np.zeros((1, 1, 5, 5))
    only_cls[..., 0] = 1.0  # every query attends to the class token only
    raises_from_vitlib(lambda: explain.mean_attention_distance([only_cls], (2, 2), 4, 1),
                       "no weight on any patch")


@pytest.mark.parametrize("returned", ["0.5", {"a": 1}, [[1, 2], [3]]])
def test_exercise_checker_answers_when_the_learner_returns_the_wrong_kind(returned):
    from vitlib.exercises._core import check

    feedback = check(lambda x: returned, lambda x: x * 2, lambda rng: (rng.random((2, 3)),))
    assert not feedback and "expected" in feedback.message


def test_damaged_keras_files_are_named(tmp_path):
    from vitlib.model import load_model

    for name, content in (("empty.keras", b""), ("page.keras", b"<!DOCTYPE html><html>"),
                          ("half.keras", None)):
        path = tmp_path / name
        if content is None:
            vitlib.make_vit("fashion-tiny").save(path)
            content = path.read_bytes()[:200]
        path.write_bytes(content)
        raises_from_vitlib(lambda p=path: load_model(p), str(path))
