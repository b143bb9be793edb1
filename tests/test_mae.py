"""vitlib.mae: random masking, the masked loss, the encoder on visible patches, the decoder, export.

References: patches cut by hand with NumPy loops; the kept patches and the loss computed in NumPy
from the noise and the mask (He et al. 2022: keep the K = int(N (1 - r)) lowest-noise patches; MSE
over the hidden patches only); the encoder and decoder re-assembled step by step from the layers'
own weights with NumPy indexing; the exported ViT's ordinary forward pass.
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np
import pytest
from keras import ops

from vitlib import make_vit
from vitlib.mae import MaskedAutoencoder, masked_autoencoder, masked_mse, random_masking


def numpy_patches(images, p):
    """(batch, H, W, C) -> (batch, N, p*p*C), row-major patches, each flattened row by row."""
    b, h, w, _ = images.shape
    return np.stack([np.stack([images[i, r:r + p, c:c + p].reshape(-1)
                               for r in range(0, h, p) for c in range(0, w, p)])
                     for i in range(b)])


def random_images(n=3, size=28, seed=0):
    return np.random.default_rng(seed).random((n, size, size, 1)).astype("float32")


@contextlib.contextmanager
def zero_init():
    """Skip drawing random initial values (slow on JAX, which compiles a random-number kernel for
    every new shape) where the test sets every weight itself."""
    with pytest.MonkeyPatch.context() as patch:
        for cls in (keras.initializers.GlorotUniform, keras.initializers.RandomNormal):
            patch.setattr(cls, "__call__", lambda self, shape, dtype=None: ops.zeros(shape, dtype))
        yield


@pytest.fixture(scope="module")
def model():
    with zero_init():
        m = masked_autoencoder(decoder_depth=1)
    rng = np.random.default_rng(1)  # every weight random (class token and biases too)
    m.set_weights([rng.normal(size=w.shape).astype("float32") * 0.2 for w in m.weights])
    return m


def np_(x):
    return ops.convert_to_numpy(x)


def test_masking_keeps_the_lowest_noise_patches_in_image_order():
    x = random_images(4)
    patches = numpy_patches(x, 4)  # (4, 49, 16)
    noise = np.random.default_rng(2).random((4, 49)).astype("float32")
    visible, mask, restore = map(np_, random_masking(patches, 0.75, noise=noise))
    assert visible.shape == (4, 12, 16) and mask.shape == (4, 49)  # int(49 * 0.25) = 12 kept
    for i in range(4):
        kept = np.sort(np.argsort(noise[i])[:12])
        np.testing.assert_array_equal(visible[i], patches[i, kept])
        expected_mask = np.ones(49)
        expected_mask[kept] = 0
        np.testing.assert_array_equal(mask[i], expected_mask)
        # restore puts [visible; hidden] back in image order.
        hidden = patches[i, mask[i] == 1]
        np.testing.assert_array_equal(np.concatenate([visible[i], hidden])[restore[i]], patches[i])


def test_random_masking_differs_per_image_and_keeps_real_patches():
    patches = numpy_patches(random_images(8, seed=3), 4)
    visible, mask, _ = map(np_, random_masking(patches, 0.75, seed=7))
    np.testing.assert_array_equal(mask.sum(axis=1), np.full(8, 37))
    assert len({tuple(row) for row in mask}) == 8  # a different choice for every image
    for i in range(8):
        np.testing.assert_array_equal(visible[i], patches[i, mask[i] == 0])
    for ratio, kept in [(0.0, 49), (0.5, 24), (0.9, 4)]:
        v, m, _ = map(np_, random_masking(patches, ratio, seed=1))
        assert v.shape[1] == kept and (m.sum(axis=1) == 49 - kept).all()


@pytest.mark.parametrize("norm_pix", [False, True])
def test_loss_is_the_mse_over_hidden_patches_only(model, norm_pix):
    x = random_images(3, seed=4)
    predicted, mask = map(np_, model(x, seed=5))
    target = numpy_patches(x, 4).astype("float64")
    if norm_pix:
        target = (target - target.mean(-1, keepdims=True)) / np.sqrt(target.var(-1, keepdims=True) + 1e-6)
    errors = ((predicted - target) ** 2).mean(-1)
    reference = errors[mask == 1].mean()  # every hidden patch of every image counts once
    got = masked_mse(x, predicted, mask, 4, norm_pix_loss=norm_pix)
    np.testing.assert_allclose(float(got), reference, rtol=1e-5)
    model.norm_pix_loss = norm_pix
    try:
        np.testing.assert_allclose(float(model.compute_loss(x, None, (predicted, mask))),
                                   reference, rtol=1e-5)
    finally:
        model.norm_pix_loss = False


def test_encoder_sees_only_the_visible_patches(model):
    x = random_images(2, seed=6)
    tokens, mask, _ = map(np_, model.encode(x, seed=8))
    enc = model.encoder  # the same layers, applied by hand to the visible patches only
    full = np_(enc.position_embedding(enc.class_token(enc.patch_embedding(x))))  # (2, 50, 64)
    for i in range(2):
        h = np.concatenate([full[i, :1], full[i, 1:][mask[i] == 0]])[None]  # (1, 13, 64)
        for block in enc.blocks:
            h = block(h)
        np.testing.assert_allclose(tokens[i], np_(enc.norm(h))[0], atol=1e-4)


def test_decoder_puts_the_mask_token_at_every_hidden_place(model):
    x = random_images(2, seed=9)
    tokens, mask, restore = model.encode(x, seed=10)
    got = np_(model.decode(tokens, restore))
    mask = np_(mask)
    embedded = np_(model.decoder_embed(tokens))  # (2, 13, 32)
    full = np.empty((2, 49, 32), "float32")
    for i in range(2):
        full[i, mask[i] == 0] = embedded[i, 1:]  # visible tokens, in image order
        full[i, mask[i] == 1] = np_(model.mask_token)[0, 0]
    h = model.decoder_position(np.concatenate([embedded[:, :1], full], axis=1))
    for block in model.decoder_blocks:
        h = block(h)
    np.testing.assert_allclose(got, np_(model.decoder_pred(model.decoder_norm(h)))[:, 1:],
                               atol=1e-4)


def test_exported_encoder_is_a_fashion_small_vit_with_the_same_tokens(model):
    x = random_images(2, seed=11)
    exported = model.to_vit()
    assert exported.get_config()["dim"] == 64 and exported.count_params() == 139_018
    tokens, mask, _ = model.encode(x, mask_ratio=0.0)  # nothing hidden: every patch, in order
    assert float(ops.sum(mask)) == 0
    np.testing.assert_allclose(np_(tokens), np_(exported.encode(x)), atol=1e-4)
    fresh = make_vit("fashion-small")
    fresh.set_weights(exported.get_weights())  # loads into the course's model as it is
    assert tuple(model.to_vit(num_classes=3)(x).shape) == (2, 3)


def test_reconstruct_returns_images_and_mask_for_plots(model):
    x = random_images(2, seed=12)
    masked, recon, mask = model.reconstruct(x, seed=3, fill=0.5)
    assert masked.shape == recon.shape == mask.shape == (2, 28, 28, 1)
    np.testing.assert_allclose(mask.mean(axis=(1, 2, 3)), 37 / 49, atol=1e-6)
    np.testing.assert_array_equal(masked, np.where(mask == 1, 0.5, x))
    predicted, _ = model(x, seed=3)
    np.testing.assert_allclose(numpy_patches(recon, 4), np_(predicted), atol=1e-6)
    model.norm_pix_loss = True  # predictions are normalised patches: back to pixels
    try:
        recon = model.reconstruct(x, seed=3)[1]
    finally:
        model.norm_pix_loss = False
    target = numpy_patches(x, 4)
    expected = np_(predicted) * np.sqrt(target.var(-1, keepdims=True) + 1e-6) + target.mean(
        -1, keepdims=True)
    np.testing.assert_allclose(numpy_patches(recon, 4), expected, atol=1e-5)


def test_fit_trains_everything_but_the_unused_head():
    keras.utils.set_random_seed(0)
    m = masked_autoencoder(decoder_depth=1)
    before = {v.path: np_(v).copy() for v in m.weights}
    # "auto": compiled on JAX; not on a TensorFlow CPU, whose XLA step the command test checks
    # (compiling it takes about 40 s of CPU).
    m.compile(optimizer=keras.optimizers.AdamW(1e-3), jit_compile="auto")
    history = m.fit(random_images(32, seed=13), batch_size=16, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    changed = {v.path for v in m.weights if not np.array_equal(np_(v), before[v.path])}
    head = {v.path for v in m.encoder.head.weights}
    assert not changed & head
    assert {v.path for v in m.trainable_weights} <= changed


def test_save_and_load_round_trip(model, tmp_path):
    path = tmp_path / "mae.keras"
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(again, MaskedAutoencoder) and again.get_config() == model.get_config()
    assert not again.encoder.head.trainable
    x = random_images(2, seed=14)
    for a, b in zip(model(x, seed=2), again(x, seed=2), strict=True):
        np.testing.assert_allclose(np_(a), np_(b), atol=1e-6)


@pytest.mark.parametrize("kwargs, text", [
    (dict(mask_ratio=1.0), "`mask_ratio` must be a number in [0, 1)"),
    (dict(mask_ratio=-0.1), "`mask_ratio`"),
    (dict(mask_ratio="most"), "`mask_ratio`"),
    (dict(mask_ratio=0.99), "would hide all 49 patches"),
    (dict(decoder_dim=30), "`decoder_dim`=30"),
    (dict(decoder_dim=32, decoder_heads=3), "`decoder_heads`=3"),
    (dict(decoder_depth=0), "`decoder_depth`"),
    (dict(encoder="fashion-huge"), "`name` must be one of"),
])
def test_bad_arguments_raise_value_errors(kwargs, text):
    with pytest.raises(ValueError) as info:
        MaskedAutoencoder(**kwargs)
    assert text in str(info.value)


def test_bad_images_and_call_ratio(model):
    with pytest.raises(ValueError, match="channel"):
        model(np.zeros((1, 28, 28, 3), "float32"))
    with pytest.raises(ValueError, match="must be 28x28"):
        model(np.zeros((1, 32, 32, 1), "float32"))
    with pytest.raises(ValueError, match="`mask_ratio`"):
        model(random_images(1), mask_ratio=1.5)
