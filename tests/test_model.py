"""vitlib.encoder, vitlib.model, vitlib.configs: MLP, pre-norm encoder block, whole ViT, sizes.

References: the block and the whole model written out in NumPy from the layers' own weights
(ViT Eq. 1-4), and the parameter count computed by hand from dim/depth/heads/mlp/patch,
checked against the published counts.
"""

from __future__ import annotations

import gc
import math
import warnings

import keras
import numpy as np
import pytest
from keras import ops

from vitlib import CONFIGS, MLP, EncoderBlock, ViT, make_vit


@pytest.fixture(autouse=True)
def zero_init(monkeypatch):
    """Every test here sets the weights it checks, or only counts them: fill new kernels with zeros
    instead of random numbers, which is much faster (H/14 draws 632M of them; JAX compiles a
    random-number kernel for every new shape)."""
    def zeros(self, shape, dtype=None):
        return ops.zeros(shape, dtype=dtype)
    for cls in (keras.initializers.GlorotUniform, keras.initializers.RandomNormal):
        monkeypatch.setattr(cls, "__call__", zeros)


# ---------------------------------------------------------------------------------------------
# NumPy reference (float64), independent of vitlib's code

_erf = np.vectorize(math.erf)


def np_gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))  # exact GELU, as in ViT


def np_layer_norm(x, gamma, beta, eps=1e-6):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_mhsa(x, wq, bq, wk, bk, wv, bv, wo, bo):
    """x (b, t, d); kernels (d, h, k) as in keras.layers.MultiHeadAttention -> (out, weights)."""
    q = np.einsum("btd,dhk->bhtk", x, wq) + bq[None, :, None]
    k = np.einsum("btd,dhk->bhtk", x, wk) + bk[None, :, None]
    v = np.einsum("btd,dhk->bhtk", x, wv) + bv[None, :, None]
    w = np_softmax(q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1]))  # (b, h, t, t)
    return np.einsum("bhtk,hkd->btd", w @ v, wo) + bo, w


def np_mlp(x, w1, b1, w2, b2):
    return np_gelu(x @ w1 + b1) @ w2 + b2


def weights_of(layer):
    return [np.asarray(ops.convert_to_numpy(w), np.float64) for w in layer.weights]


def np_block(x, block):
    """LN -> MHSA -> +x -> LN -> MLP -> +x, from the block's sub-layer weights."""
    g1, be1 = weights_of(block.norm1)
    g2, be2 = weights_of(block.norm2)
    h, w = np_mhsa(np_layer_norm(x, g1, be1), *weights_of(block.attention))
    x = x + h  # Eq. 2
    x = x + np_mlp(np_layer_norm(x, g2, be2), *weights_of(block.mlp))  # Eq. 3
    return x, w


def np_patches(images, p):
    b, hh, ww, c = images.shape
    return np.stack([images[:, i:i + p, j:j + p].reshape(b, -1)
                     for i in range(0, hh, p) for j in range(0, ww, p)], axis=1)


def np_vit(images, model):
    """The whole ViT (Eq. 1-4) in NumPy from the model's weights -> (logits, attention list)."""
    kernel, bias = weights_of(model.patch_embedding.projection)
    x = np_patches(np.asarray(images, np.float64), model.patch_size) @ kernel.reshape(-1, model.dim)
    x = x + bias  # Eq. 1: x_p E
    if model.pooling == "cls":
        (token,) = weights_of(model.class_token)
        x = np.concatenate([np.broadcast_to(token, (len(x), 1, model.dim)), x], axis=1)
    if model.position != "none":
        (pos,) = weights_of(model.position_embedding)
        x = x + pos
    attention = []
    for block in model.blocks:
        x, w = np_block(x, block)
        attention.append(w)
    x = np_layer_norm(x, *weights_of(model.norm))  # Eq. 4
    y = x[:, 0] if model.pooling == "cls" else x.mean(1)
    w, b = weights_of(model.head)
    return y @ w + b, attention


def randomize(layer, seed=0, scale=0.3):
    """Random values for every weight (LayerNorm gammas, biases, class token included)."""
    rng = np.random.default_rng(seed)
    layer.set_weights([(rng.normal(size=w.shape) * scale + (1.0 if "gamma" in w.path else 0.0))
                       .astype("float32") for w in layer.weights])


# ---------------------------------------------------------------------------------------------
# MLP and encoder block


def test_mlp_is_dense_gelu_dense():
    layer = MLP(16)
    x = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")
    layer(x)
    randomize(layer, scale=1.0)
    assert [tuple(w.shape) for w in layer.weights] == [(8, 16), (16,), (16, 8), (8,)]
    np.testing.assert_allclose(ops.convert_to_numpy(layer(x)), np_mlp(x, *weights_of(layer)),
                               rtol=1e-5, atol=1e-5)
    # Exact GELU, not the tanh approximation: they differ by up to ~1e-3 around |x| ~ 2.
    x_tanh = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    assert np.abs(np_gelu(x.astype(np.float64)) - x_tanh).max() > 1e-4


def test_encoder_block_equals_numpy_pre_norm_block():
    block = EncoderBlock(num_heads=2, mlp_dim=16)
    x = np.random.default_rng(1).normal(size=(2, 5, 8)).astype("float32")
    block(x)
    randomize(block, seed=2)
    ref, ref_w = np_block(x.astype(np.float64), block)
    out, w = block(x, return_attention_scores=True)
    np.testing.assert_allclose(ops.convert_to_numpy(out), ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ops.convert_to_numpy(w), ref_w, atol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(block(x)), ref, rtol=1e-4, atol=1e-4)


def test_encoder_block_with_mask_and_no_warning():
    block = EncoderBlock(num_heads=2, mlp_dim=16)
    x = np.random.default_rng(3).normal(size=(2, 4, 8)).astype("float32")
    causal = np.tril(np.ones((4, 4), bool))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a masked call must not warn about Keras masks
        out, w = block(x, mask=causal, return_attention_scores=True)
        fused = block(x, mask=causal)
    assert np.abs(ops.convert_to_numpy(w)[..., ~causal]).max() < 1e-6
    np.testing.assert_allclose(ops.convert_to_numpy(fused), ops.convert_to_numpy(out), atol=1e-5)
    # Token 0 sees only itself, so it does not depend on the later tokens.
    x2 = x.copy()
    x2[:, 1:] += 1.0
    np.testing.assert_allclose(ops.convert_to_numpy(block(x2, mask=causal))[:, 0],
                               ops.convert_to_numpy(out)[:, 0], atol=1e-5)


# ---------------------------------------------------------------------------------------------
# The whole ViT

TINY = dict(image_size=8, patch_size=4, num_classes=3, dim=8, depth=2, num_heads=2, mlp_dim=16,
            channels=2)


@pytest.mark.parametrize("pooling, position, method", [("cls", "learned", "conv"),
                                                       ("mean", "sincos", "dense")])
def test_vit_equals_numpy_model(pooling, position, method):
    model = ViT(**TINY, pooling=pooling, position=position, patch_method=method)
    model.build()
    randomize(model, seed=4)
    images = np.random.default_rng(5).normal(size=(2, 8, 8, 2)).astype("float32")
    ref, ref_attention = np_vit(images, model)
    logits, attention = model(images, return_attention=True)
    assert tuple(logits.shape) == (2, 3)
    np.testing.assert_allclose(ops.convert_to_numpy(logits), ref, rtol=1e-4, atol=1e-4)
    tokens = 4 + (pooling == "cls")
    assert model.num_tokens == tokens
    assert len(attention) == 2
    for a, r in zip(attention, ref_attention, strict=True):
        assert tuple(a.shape) == (2, 2, tokens, tokens)
        np.testing.assert_allclose(ops.convert_to_numpy(a), r, atol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(model(images)), ref, rtol=1e-4, atol=1e-4)
    assert tuple(model.encode(images).shape) == (2, tokens, 8)
    assert (model.class_token is None) == (pooling == "mean")


def test_vit_position_none_ignores_patch_order():
    # Without position information and with mean pooling, the model cannot tell where a patch
    # is: permuting the patches leaves the logits unchanged.
    model = ViT(**TINY, pooling="mean", position="none")
    model.build()
    randomize(model, seed=6)
    images = np.random.default_rng(7).normal(size=(2, 8, 8, 2)).astype("float32")
    swapped = np.concatenate([images[:, 4:], images[:, :4]], axis=1)  # swap top and bottom
    a, b = (ops.convert_to_numpy(model(t)) for t in (images, swapped))
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(a, np_vit(images, model)[0], rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# Named configurations and parameter counts

# Dosovitskiy et al. 2021 Table 1 (B, L, H); Touvron et al. 2021 (Ti, S): dim, depth, heads, mlp.
PAPER = {"Ti": (192, 12, 3, 768), "S": (384, 12, 6, 1536), "B": (768, 12, 12, 3072),
         "L": (1024, 24, 16, 4096), "H": (1280, 32, 16, 5120)}
PUBLISHED = {"Ti/16": 5_717_416, "S/16": 22_050_664, "B/16": 86_567_656, "L/16": 304_326_632,
             "H/14": 632_045_800, "fashion-small": 139_018}


def count_by_hand(dim, depth, num_heads, mlp_dim, patch_size, image_size=224, channels=3,
                  num_classes=1000, **_):
    """Parameters of a class-token ViT with learned position embedding, from its sizes."""
    head_dim = dim // num_heads
    tokens = (image_size // patch_size) ** 2 + 1
    embedding = patch_size * patch_size * channels * dim + dim  # E and its bias
    embedding += dim + tokens * dim  # class token, E_pos
    attention = 3 * (dim * num_heads * head_dim + num_heads * head_dim)  # q, k, v
    attention += num_heads * head_dim * dim + dim  # output projection
    mlp = dim * mlp_dim + mlp_dim + mlp_dim * dim + dim
    block = 2 * (2 * dim) + attention + mlp  # two LayerNorms
    return embedding + depth * block + 2 * dim + dim * num_classes + num_classes


def _sizes(name):
    return {k: CONFIGS[name][k] for k in ("dim", "depth", "num_heads", "mlp_dim", "patch_size",
                                          "image_size", "channels", "num_classes")}


# The /32 models as reported by timm (vit_small/base/large_patch32_224: 22.88M, 88.22M, 306.54M).
PUBLISHED_32 = {"S/32": 22_878_952, "B/32": 88_224_232, "L/32": 306_535_400}


def test_formula_reproduces_published_counts():
    for name, expected in {**PUBLISHED, **PUBLISHED_32}.items():
        assert count_by_hand(**_sizes(name)) == expected, name


def test_imagenet_configs_are_the_papers_sizes():
    names = [n for n in CONFIGS if "/" in n]
    assert sorted(names) == sorted(["Ti/16", "S/16", "S/32", "B/16", "B/32", "L/16", "L/32", "H/14"])
    for name in names:
        size, patch = name.split("/")
        c = CONFIGS[name]
        assert (c["dim"], c["depth"], c["num_heads"], c["mlp_dim"]) == PAPER[size], name
        assert (c["patch_size"], c["image_size"], c["channels"], c["num_classes"]) == \
            (int(patch), 224, 3, 1000), name


def _count(model):
    n = model.count_params()
    assert n == sum(int(np.prod(w.shape)) for w in model.weights)
    return n


@pytest.mark.parametrize("name", ["fashion-tiny", "fashion-small"])
def test_fashion_configs_count(name):
    model = make_vit(name)
    assert model.image_size == (28, 28) and model.channels == 1 and model.num_classes == 10
    assert _count(model) == count_by_hand(**_sizes(name))


@pytest.mark.single_backend  # backend-independent, and slow to build (H/14: 632M parameters)
@pytest.mark.parametrize("name", ["Ti/16", "S/16", "B/16", "L/16", "H/14"])
def test_published_counts_exact(name):
    model = make_vit(name)
    n = _count(model)
    del model
    gc.collect()
    keras.backend.clear_session()
    assert n == PUBLISHED[name] == count_by_hand(**_sizes(name))


@pytest.mark.single_backend  # backend-independent
@pytest.mark.parametrize("name", ["S/32", "B/32", "L/32"])
def test_32_variants_count(name):
    # Built with 2 of their blocks to stay fast; the depth is checked against the paper above.
    model = make_vit(name, depth=2)
    assert _count(model) == count_by_hand(**{**_sizes(name), "depth": 2})
    assert model.num_tokens == 7 * 7 + 1


def test_counts_with_other_options():
    # Mean pooling drops the class token and one E_pos row; sincos E_pos is not trainable.
    base = count_by_hand(**{**TINY, "image_size": 8})
    mean = ViT(**TINY, pooling="mean")
    mean.build()
    assert _count(mean) == base - 2 * TINY["dim"]
    sincos = ViT(**TINY, position="sincos")
    sincos.build()
    assert _count(sincos) == base
    n_pos = (4 + 1) * TINY["dim"]
    assert sum(int(np.prod(w.shape)) for w in sincos.trainable_weights) == base - n_pos
