"""vitlib.pretrained: Google's .npz checkpoints and keras-hub, against independent references.

The .npz layout is written out here a second time, from vit_jax/models_vit.py, and checked
with a float64 NumPy forward pass that reads the keys directly (no vitlib code). keras-hub's
own ViT is the reference for the keras-hub bridge (skipped where keras-hub is not installed).
"""

import pickle
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
from scipy.special import erf

from vitlib import ViT, make_vit, pretrained
from vitlib.pretrained import load_npz, save_npz, to_npz_dict

POS = "Transformer/posembed_input/pos_embedding"
ATT = "MultiHeadDotProductAttention_1"
CFG = dict(image_size=32, patch_size=8, dim=32, depth=2, num_heads=4, mlp_dim=64, channels=3,
           num_classes=5)


def random_npz(seed=0, cls=True, pre_logits=False, cfg=CFG):
    """A checkpoint in vit_jax's layout with random, non-zero values for every weight."""
    rng = np.random.default_rng(seed)
    p, c, d, m, k = (cfg[n] for n in ("patch_size", "channels", "dim", "mlp_dim", "num_classes"))
    h = cfg["num_heads"]
    tokens = (cfg["image_size"] // p) ** 2 + cls

    def normal(shape, scale, mean=0.0):
        return (mean + scale * rng.standard_normal(shape)).astype("float32")

    w = {"embedding/kernel": normal((p, p, c, d), (p * p * c) ** -0.5),
         "embedding/bias": normal((d,), 0.1), POS: normal((1, tokens, d), 0.5)}
    if cls:
        w["cls"] = normal((1, 1, d), 1.0)
    for i in range(cfg["depth"]):
        b = f"Transformer/encoderblock_{i}/"
        for norm in ("LayerNorm_0", "LayerNorm_2"):
            w[f"{b}{norm}/scale"], w[f"{b}{norm}/bias"] = normal((d,), 0.1, 1.0), normal((d,), 0.1)
        for name in ("query", "key", "value"):
            w[f"{b}{ATT}/{name}/kernel"] = normal((d, h, d // h), d**-0.5)
            w[f"{b}{ATT}/{name}/bias"] = normal((h, d // h), 0.1)
        w[f"{b}{ATT}/out/kernel"], w[f"{b}{ATT}/out/bias"] = normal((h, d // h, d), d**-0.5), normal((d,), 0.1)
        w[f"{b}MlpBlock_3/Dense_0/kernel"] = normal((d, m), d**-0.5)
        w[f"{b}MlpBlock_3/Dense_0/bias"] = normal((m,), 0.1)
        w[f"{b}MlpBlock_3/Dense_1/kernel"] = normal((m, d), m**-0.5)
        w[f"{b}MlpBlock_3/Dense_1/bias"] = normal((d,), 0.1)
    w["Transformer/encoder_norm/scale"] = normal((d,), 0.1, 1.0)
    w["Transformer/encoder_norm/bias"] = normal((d,), 0.1)
    if pre_logits:
        w["pre_logits/kernel"], w["pre_logits/bias"] = normal((d, d), d**-0.5), normal((d,), 0.1)
    w["head/kernel"], w["head/bias"] = normal((d, k), d**-0.5), normal((k,), 0.1)
    return w


def gelu(x, approximate=False):
    if approximate:  # flax nn.gelu's default
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1 + erf(x / np.sqrt(2)))


def layer_norm(x, scale, bias, eps=1e-6):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps) * scale + bias


def reference(w, images, approximate_gelu=False):
    """vit_jax's VisionTransformer, in float64 NumPy, straight from the keys: (tokens, logits)."""
    w = {k: v.astype("float64") for k, v in w.items()}
    kernel = w["embedding/kernel"]
    p, _, c, d = kernel.shape
    b, height, width, _ = images.shape
    patches = images.astype("float64").reshape(b, height // p, p, width // p, p, c)
    patches = patches.transpose(0, 1, 3, 2, 4, 5).reshape(b, -1, p * p * c)
    x = patches @ kernel.reshape(-1, d) + w["embedding/bias"]
    if "cls" in w:
        x = np.concatenate([np.broadcast_to(w["cls"], (b, 1, d)), x], axis=1)
    x = x + w[POS]
    i = 0
    while f"Transformer/encoderblock_{i}/LayerNorm_0/scale" in w:
        def get(key, i=i):
            return w[f"Transformer/encoderblock_{i}/{key}"]

        y = layer_norm(x, get("LayerNorm_0/scale"), get("LayerNorm_0/bias"))
        q, k, v = (np.einsum("btd,dhk->bhtk", y, get(f"{ATT}/{n}/kernel"))
                   + get(f"{ATT}/{n}/bias")[None, :, None, :] for n in ("query", "key", "value"))
        scores = q @ k.swapaxes(-1, -2) / np.sqrt(q.shape[-1])
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        out = np.einsum("bhtk,hkd->btd", weights @ v, get(f"{ATT}/out/kernel"))
        x = x + out + get(f"{ATT}/out/bias")
        y = layer_norm(x, get("LayerNorm_2/scale"), get("LayerNorm_2/bias"))
        y = gelu(y @ get("MlpBlock_3/Dense_0/kernel") + get("MlpBlock_3/Dense_0/bias"),
                 approximate_gelu)
        x = x + y @ get("MlpBlock_3/Dense_1/kernel") + get("MlpBlock_3/Dense_1/bias")
        i += 1
    x = layer_norm(x, w["Transformer/encoder_norm/scale"], w["Transformer/encoder_norm/bias"])
    pooled = x[:, 0] if "cls" in w else x.mean(axis=1)
    return x, pooled @ w["head/kernel"] + w["head/bias"]


def images(n=2, size=32, seed=1):
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 3)).astype("float32")


# ---- Google's .npz layout --------------------------------------------------------------------

@pytest.mark.parametrize("cls, patch_method", [(True, "conv"), (False, "conv"), (True, "dense")])
def test_load_npz_matches_numpy_reference(cls, patch_method):
    w = random_npz(cls=cls)
    if patch_method == "conv":
        model = load_npz(w)  # the config is inferred from the shapes
        assert {k: getattr(model, k) for k in CFG} == {**CFG, "image_size": (32, 32)}
        assert model.pooling == ("cls" if cls else "mean")
    else:
        model = load_npz(w, ViT(**CFG, patch_method="dense", gelu="tanh"))
    assert model.gelu == "tanh", "Google's checkpoints were trained with flax's tanh GELU"
    x = images()
    tokens, logits = reference(w, x, approximate_gelu=True)  # the Flax-layout forward pass
    np.testing.assert_allclose(np.asarray(model.encode(x)), tokens, atol=2e-6, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(model(x)), logits, atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize("cls, patch_method", [(True, "conv"), (False, "conv"), (True, "dense")])
def test_to_npz_dict_gives_back_the_same_arrays(cls, patch_method):
    w = random_npz(cls=cls)
    back = to_npz_dict(load_npz(w, ViT(**CFG, pooling="cls" if cls else "mean",
                                         patch_method=patch_method)))
    assert sorted(back) == sorted(w)
    for key in w:
        assert back[key].dtype == w[key].dtype and np.array_equal(back[key], w[key]), key


def test_save_npz_round_trip_and_refuses_to_overwrite(tmp_path):
    w = random_npz()
    model = load_npz(w)
    path = save_npz(model, tmp_path / "mine")
    assert path.name == "mine.npz"
    with np.load(path, allow_pickle=False) as f:
        assert sorted(f.files) == sorted(w) and all(np.array_equal(f[k], w[k]) for k in w)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_npz(model, path)
    save_npz(model, path, overwrite=True)
    x = images()
    np.testing.assert_allclose(np.asarray(load_npz(path)(x)),
                               reference(w, x, approximate_gelu=True)[1], atol=1e-5)


def test_opt_target_prefix_is_stripped():
    w = random_npz()
    model = load_npz({f"opt/target/{k}": v for k, v in w.items()})
    assert np.array_equal(to_npz_dict(model)["head/bias"], w["head/bias"])


@pytest.mark.single_backend
def test_pickled_files_are_refused(tmp_path):
    bad = tmp_path / "objects.npz"
    np.savez(bad, **{"embedding/kernel": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(ValueError, match=r"embedding/kernel.*object array.*allow_pickle=False"):
        load_npz(bad)
    pickled = tmp_path / "weights.pkl"
    pickled.write_bytes(pickle.dumps(random_npz()))
    with pytest.raises(ValueError, match="a pickle of Python objects.*allow_pickle=False"):
        load_npz(pickled)
    page = tmp_path / "error_page.npz"
    page.write_bytes(b"<!DOCTYPE html><title>403</title>")
    with pytest.raises(ValueError, match="not an .npz archive.*Download it again"):
        load_npz(page)
    single = tmp_path / "one.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match="not an .npz archive"):
        load_npz(single)


@pytest.mark.single_backend
def test_missing_key_and_wrong_shape_are_named():
    w = random_npz()
    del w["Transformer/encoder_norm/scale"]
    with pytest.raises(ValueError, match=r"`Transformer/encoder_norm/scale` \(expected shape \(32,\)\)"):
        load_npz(w)
    w = random_npz()
    key = "Transformer/encoderblock_1/MlpBlock_3/Dense_0/kernel"
    w[key] = np.zeros((32, 65), "float32")
    with pytest.raises(ValueError, match=rf"`{key}` has shape \(32, 65\), expected \(32, 64\)"):
        load_npz(w)
    with pytest.raises(ValueError, match=r"`Transformer/posembed_input/pos_embedding` has shape "
                                         r"\(1, 17, 32\), expected \(1, 65, 32\)"):
        load_npz(random_npz(), ViT(**{**CFG, "image_size": 64}))
    with pytest.raises(ValueError, match="no `embedding/kernel`"):
        load_npz({"cls": np.zeros((1, 1, 32), "float32")})


@pytest.mark.single_backend
def test_pre_logits_is_refused_or_dropped_with_the_head():
    w = random_npz(pre_logits=True)
    with pytest.raises(ValueError, match="pre_logits.*include_head=False"):
        load_npz(w)
    model = load_npz(w, include_head=False, num_classes=3)
    assert model.num_classes == 3
    x = images()
    np.testing.assert_allclose(np.asarray(model.encode(x)),
                               reference(w, x, approximate_gelu=True)[0], atol=1e-5)


@pytest.mark.single_backend
def test_gelu_difference_is_small():
    """flax's tanh-approximate GELU vs the exact one: the size of the difference, and vitlib's
    two forms against the formulas."""
    from vitlib import MLP

    layer = MLP(8, gelu="tanh")
    layer.build((1, 3, 4))
    kernel = np.zeros((4, 8), "float32")
    kernel[0, 0] = 1.0  # hidden unit 0 = the first input feature
    layer.fc1.set_weights([kernel, np.zeros(8, "float32")])
    layer.fc2.set_weights([np.eye(8, 4, dtype="float32"), np.zeros(4, "float32")])
    t = np.linspace(-4, 4, 12, dtype="float32").reshape(1, 3, 4)
    got = np.asarray(layer(t))[..., 0]
    np.testing.assert_allclose(got, gelu(t[..., 0].astype(float), approximate=True), atol=1e-6)
    assert np.abs(got - gelu(t[..., 0].astype(float))).max() > 1e-4  # not the exact form
    x = np.linspace(-8, 8, 100_001)
    assert 4.6e-4 < np.abs(gelu(x) - gelu(x, approximate=True)).max() < 4.8e-4
    cfg = {**CFG, "dim": 192, "num_heads": 3, "mlp_dim": 768, "depth": 12, "patch_size": 16,
           "image_size": 224, "num_classes": 1000}  # ViT-Ti/16's shapes
    w = random_npz(cfg=cfg)
    x = images(size=224)
    exact, tanh = reference(w, x)[1], reference(w, x, approximate_gelu=True)[1]
    # Measured: 5e-4 to 8e-4 of the logits' standard deviation (seeds 0-2), no top-1 change.
    assert np.abs(exact - tanh).max() / exact.std() < 2e-3
    assert (exact.argmax(-1) == tanh.argmax(-1)).all()


# ---- Catalogue and downloads (offline) -------------------------------------------------------

@pytest.fixture
def offline(monkeypatch):
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable (test)")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)  # what vitlib._fetch calls


@pytest.mark.single_backend
def test_describe_is_offline_and_says_what_and_where(offline, tmp_path):
    entry = pretrained.CHECKPOINTS["Ti/16-augreg-in21k-ft-in1k"]
    text = pretrained.describe("Ti/16-augreg-in21k-ft-in1k", directory=tmp_path)
    assert entry["url"] in text and f"about {entry['size_mib']} MiB" in text
    assert "Apache-2.0" in text and str(tmp_path) in text and "[-1, 1]" in text
    assert entry["url"].startswith("https://storage.googleapis.com/vit_models/augreg/Ti_16-")
    assert pretrained.IMAGENET_LABELS["url"] in pretrained.describe("imagenet1k-labels")
    with pytest.raises(ValueError, match="`name` must be one of"):
        pretrained.describe("ViT-Z/1")


@pytest.mark.single_backend
def test_download_offline_says_what_to_do_and_reuses_a_file(offline, tmp_path):
    url = pretrained.CHECKPOINTS["B/16-augreg-in21k-ft-in1k"]["url"]
    with pytest.raises(pretrained.DownloadError, match=r"offline\?.*copy the file to"):
        pretrained.download("B/16-augreg-in21k-ft-in1k", tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing half-written left behind
    (tmp_path / url.rsplit("/", 1)[-1]).write_bytes(b"already here")
    assert pretrained.download("B/16-augreg-in21k-ft-in1k", tmp_path).read_bytes() == b"already here"


@pytest.mark.single_backend
def test_catalogue_sizes_match_the_models():
    config = pretrained.CHECKPOINTS["Ti/16-augreg-in21k-ft-in1k"]["config"]
    model = make_vit("Ti/16")
    assert config["params"] == model.count_params() == 5_717_416
    assert pretrained.CHECKPOINTS["B/16-in21k-ft-in1k"]["config"]["params"] == 86_567_656


def test_prepare_images_and_top_k():
    photo = np.full((48, 48, 3), 255, "uint8")
    x = np.asarray(pretrained.prepare_images(photo, image_size=32))
    assert x.shape == (1, 32, 32, 3) and np.allclose(x, 1.0)
    logits = np.array([[0.0, 2.0, 1.0]])
    best = pretrained.top_k(logits, ["a", "b", "c"], k=2)
    p = np.exp(logits[0]) / np.exp(logits[0]).sum()
    assert [name for name, _ in best[0]] == ["b", "c"] and np.isclose(best[0][0][1], p[1])


# ---- keras-hub ------------------------------------------------------------------------------

def randomize(hub_model, seed=0):
    """Give every weight of a keras-hub model non-zero random values (norm scales near 1)."""
    rng = np.random.default_rng(seed)
    for v in hub_model.weights:
        mean = 1.0 if v.path.endswith("gamma") else 0.0
        v.assign((mean + 0.2 * rng.standard_normal(tuple(v.shape))).astype("float32"))


def small_backbone(kh, **kwargs):
    return kh.models.ViTBackbone(image_shape=(32, 32, 3), patch_size=8, num_layers=2,
                                 num_heads=4, hidden_dim=32, mlp_dim=64, **kwargs)


def test_keras_hub_backbone_both_ways():
    kh = pytest.importorskip("keras_hub")
    backbone = small_backbone(kh)
    randomize(backbone)
    x = images()
    model = pretrained.from_keras_hub(backbone, num_classes=7)
    np.testing.assert_allclose(np.asarray(model.encode(x)), np.asarray(backbone(x)), atol=1e-5)
    back = pretrained.to_keras_hub(model)
    np.testing.assert_allclose(np.asarray(back(x)), np.asarray(backbone(x)), atol=1e-5)
    for a, b in zip(backbone.weights, back.weights, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b)), a.path


@pytest.mark.parametrize("pooling", ["token", "gap"])
def test_keras_hub_classifier_both_ways(pooling):
    kh = pytest.importorskip("keras_hub")
    backbone = small_backbone(kh, use_class_token=pooling == "token")
    classifier = kh.models.ViTImageClassifier(backbone=backbone, num_classes=5, pooling=pooling)
    randomize(classifier, seed=1)
    x = images()
    model = pretrained.from_keras_hub(classifier)
    assert model.pooling == {"token": "cls", "gap": "mean"}[pooling]
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(classifier(x)), atol=1e-5)
    back = pretrained.to_keras_hub(model, classifier=True)
    np.testing.assert_allclose(np.asarray(back(x)), np.asarray(classifier(x)), atol=1e-5)


def test_keras_hub_without_biases_gives_zeros():
    kh = pytest.importorskip("keras_hub")
    backbone = small_backbone(kh, use_mha_bias=False, use_mlp_bias=False, use_patch_bias=False)
    randomize(backbone, seed=2)
    x = images()
    model = pretrained.from_keras_hub(backbone, num_classes=3)
    np.testing.assert_allclose(np.asarray(model.encode(x)), np.asarray(backbone(x)), atol=1e-5)


@pytest.mark.single_backend
def test_keras_hub_errors():
    kh = pytest.importorskip("keras_hub")
    backbone = small_backbone(kh)
    with pytest.raises(ValueError, match="`num_classes` is needed"):
        pretrained.from_keras_hub(backbone)
    classifier = kh.models.ViTImageClassifier(backbone=backbone, num_classes=5, intermediate_dim=16)
    with pytest.raises(ValueError, match="pre_logits"):
        pretrained.from_keras_hub(classifier)
    assert pretrained.from_keras_hub(classifier, include_head=False, num_classes=2).num_classes == 2
    with pytest.raises(ValueError, match="ViTBackbone or ViTImageClassifier"):
        pretrained.from_keras_hub(make_vit("fashion-tiny"))


@pytest.mark.single_backend
def test_missing_keras_hub_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras_hub", None)  # `import keras_hub` now fails
    with pytest.raises(ImportError, match="requirements-hub.txt.*tensorflow-text"):
        pretrained.to_keras_hub(make_vit("fashion-tiny"))
