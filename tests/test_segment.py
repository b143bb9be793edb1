"""vitlib.segment: the per-patch segmenter, the canvases, the patch labels and the scores.

References: NumPy loops written here (per-token head, majority vote, IoU by hand), the classifier
itself (same weights at the same image size give the same tokens), a NumPy bilinear resize, and
small examples counted by hand.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

import vitlib
from vitlib import segment
from vitlib.course_files import CLASSIFIER, SEGMENTER, sha256
from vitlib.data import load_fashion_mnist

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "data" / SEGMENTER


def tiny_classifier(seed=0, **overrides):
    keras.utils.set_random_seed(seed)
    config = dict(image_size=8, patch_size=4, num_classes=10, dim=8, depth=1, num_heads=2,
                  mlp_dim=16, channels=1)
    model = vitlib.ViT(**{**config, **overrides})
    model.build()
    rng = np.random.default_rng(seed)  # every weight random, the class token and E_pos included
    model.set_weights([rng.normal(size=w.shape).astype("float32") * 0.3 for w in model.weights])
    return model


def np_bilinear(grid, new_h, new_w):
    """Half-pixel-centre bilinear resize of (h, w, d) in NumPy (what image resizing does)."""
    h, w, _ = grid.shape

    def axis(new, old):
        src = np.clip((np.arange(new) + 0.5) * old / new - 0.5, 0, old - 1)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, old - 1)
        return lo, hi, src - lo

    (r0, r1, fr), (c0, c1, fc) = axis(new_h, h), axis(new_w, w)
    rows = grid[r0] * (1 - fr)[:, None, None] + grid[r1] * fr[:, None, None]
    return rows[:, c0] * (1 - fc)[None, :, None] + rows[:, c1] * fc[None, :, None]


# --- the model ---------------------------------------------------------------------------------


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_every_patch_token_gets_the_same_linear_head(pooling):
    seg = segment.segmenter_from_classifier(tiny_classifier(pooling=pooling), (8, 12), num_classes=3)
    x = np.random.default_rng(1).random((2, 8, 12, 1)).astype("float32")
    logits = ops.convert_to_numpy(seg(x))
    assert logits.shape == (2, 2, 3, 3)  # (batch, rows, cols, classes)
    tokens = ops.convert_to_numpy(seg.encode(x))
    kernel, bias = (ops.convert_to_numpy(w) for w in seg.head.weights)
    prefix = 1 if pooling == "cls" else 0
    for b in range(2):
        for r in range(2):
            for c in range(3):  # token prefix + r * cols + c is patch (r, c), row by row
                want = tokens[b, prefix + r * 3 + c] @ kernel + bias
                np.testing.assert_allclose(logits[b, r, c], want, atol=1e-5)


def test_at_the_same_size_the_segmenter_encodes_exactly_like_the_classifier():
    classifier = tiny_classifier()
    seg = segment.segmenter_from_classifier(classifier, 8, num_classes=4)
    x = np.random.default_rng(2).random((3, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(ops.convert_to_numpy(seg.encode(x)),
                               ops.convert_to_numpy(classifier.encode(x)), atol=1e-6)
    random = segment.segmenter_from_classifier(classifier, 8, num_classes=4, pretrained=False)
    assert not np.allclose(ops.convert_to_numpy(random.encode(x)),
                           ops.convert_to_numpy(classifier.encode(x)), atol=1e-3)


def test_learned_position_embedding_is_interpolated_to_the_new_grid():
    classifier = tiny_classifier(image_size=12)  # 3x3 patches
    seg = segment.segmenter_from_classifier(classifier, (24, 16), num_classes=4)  # 6x4 patches
    old = ops.convert_to_numpy(classifier.position_embedding.embedding)[0]
    new = ops.convert_to_numpy(seg.position_embedding.embedding)[0]
    assert new.shape == (1 + 6 * 4, 8)
    np.testing.assert_allclose(new[0], old[0])  # the class token's row is kept
    want = np_bilinear(old[1:].reshape(3, 3, 8), 6, 4).reshape(24, 8)
    np.testing.assert_allclose(new[1:], want, atol=1e-5)


def test_segmenter_saves_and_loads(tmp_path):
    seg = segment.segmenter_from_classifier(tiny_classifier(), (8, 12), num_classes=3)
    x = np.random.default_rng(3).random((2, 8, 12, 1)).astype("float32")
    path = tmp_path / "seg.keras"
    seg.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(again, segment.PatchSegmenter)
    np.testing.assert_allclose(ops.convert_to_numpy(again(x)), ops.convert_to_numpy(seg(x)), atol=1e-6)


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="`classifier`"):
        segment.segmenter_from_classifier(keras.Sequential(), 56)
    with pytest.raises(ValueError, match="image_size"):
        segment.segmenter_from_classifier(tiny_classifier(), 10)  # not a multiple of the patch size
    with pytest.raises(ValueError, match="`images`"):
        segment.segmenter_from_classifier(tiny_classifier(), 8)(np.zeros((1, 12, 12, 1), "float32"))


# --- the data ----------------------------------------------------------------------------------


def item_pool(seed=0):
    rng = np.random.default_rng(seed)
    images = np.zeros((20, 6, 6), np.uint8)
    images[:, 1:5, 1:5] = rng.integers(100, 256, size=(20, 4, 4))  # a 4x4 foreground in a 6x6 item
    images[:, 0, 0] = 30  # a faint pixel below the threshold
    return images, np.arange(20) % 10


@pytest.mark.single_backend
def test_a_single_item_canvas_of_the_item_size_is_the_item():
    images, labels = item_pool()
    c = segment.make_canvases(images, labels, 5, size=6, items=(1, 1), threshold=0.25, seed=0)
    assert c.x.shape == (5, 6, 6, 1) and c.x.dtype == np.float32 and c.mask.shape == (5, 6, 6)
    for x, m in zip(c.x[..., 0], c.mask, strict=True):
        k = int(np.argmin(np.abs(images / 255.0 - x).sum(axis=(1, 2))))  # which item it is
        np.testing.assert_allclose(x, images[k] / 255.0, atol=1e-7)
        np.testing.assert_array_equal(m, np.where(images[k] >= 0.25 * 255, 1 + labels[k], 0))


@pytest.mark.single_backend
def test_canvases_are_seeded_and_every_foreground_pixel_has_one_owner():
    images, labels = item_pool()
    a = segment.make_canvases(images, labels, 30, size=16, items=(2, 3), seed=4)
    b = segment.make_canvases(images, labels, 30, size=16, items=(2, 3), seed=4)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert a.items.min() >= 1 and a.items.max() <= 3
    assert not np.array_equal(a.x, segment.make_canvases(images, labels, 30, size=16, seed=5).x)
    np.testing.assert_array_equal(a.mask > 0, a.x[..., 0] >= 0.25)  # foreground <=> labelled
    assert set(np.unique(a.mask)) <= {0, *(1 + labels).tolist()}


@pytest.mark.single_backend
def test_items_cover_at_most_max_overlap_of_their_foreground():
    images = np.zeros((1, 4, 4), np.uint8)
    images[0] = 200  # all foreground: two items on a 5x5 canvas always overlap a lot
    c = segment.make_canvases(images, [3], 20, size=5, items=(2, 2), max_overlap=0.1, seed=0)
    assert np.all(c.items == 1)  # the second item never finds a place
    c = segment.make_canvases(images, [3], 20, size=5, items=(2, 2), max_overlap=0.99, seed=0)
    assert np.all(c.items == 2)


@pytest.mark.single_backend
def test_bad_canvas_arguments_name_the_argument():
    images, labels = item_pool()
    with pytest.raises(ValueError, match="`size`"):
        segment.make_canvases(images, labels, 2, size=4)
    with pytest.raises(ValueError, match="`items`"):
        segment.make_canvases(images, labels, 2, size=8, items=(3, 2))
    with pytest.raises(ValueError, match="`labels`"):
        segment.make_canvases(images, labels[:3], 2, size=8)
    with pytest.raises(ValueError, match="`count`"):
        segment.make_canvases(images, labels, 0, size=8)


# --- patch labels and scores -------------------------------------------------------------------


def loop_patch_labels(mask, p):
    n, h, w = mask.shape
    out = np.zeros((n, h // p, w // p), int)
    for i in range(n):
        for r in range(h // p):
            for c in range(w // p):
                counts = collections.Counter(mask[i, r * p:(r + 1) * p, c * p:(c + 1) * p].ravel().tolist())
                best = max(counts.values())
                out[i, r, c] = min(k for k, v in counts.items() if v == best)
    return out


@pytest.mark.single_backend
@pytest.mark.parametrize("p", [1, 2, 4])
def test_patch_labels_are_the_majority_vote(p):
    mask = np.random.default_rng(p).choice(4, size=(3, 3 * p, 5 * p), p=[0.4, 0.2, 0.2, 0.2])
    np.testing.assert_array_equal(segment.patch_labels(mask, p, num_labels=4), loop_patch_labels(mask, p))


@pytest.mark.single_backend
def test_patch_label_ties_go_to_the_smaller_label_and_bad_input_is_named():
    mask = np.array([[[0, 3], [3, 0]]])
    assert segment.patch_labels(mask, 2, num_labels=4).tolist() == [[[0]]]
    with pytest.raises(ValueError, match="patch_size"):
        segment.patch_labels(np.zeros((1, 6, 6), int), 4)
    with pytest.raises(ValueError, match="`mask`"):
        segment.patch_labels(np.full((1, 4, 4), 11), 2)


@pytest.mark.single_backend
def test_iou_counted_by_hand():
    true = np.array([0, 0, 1, 1, 2])
    pred = np.array([0, 1, 1, 1, 0])
    # label 0: overlap 1, union {0, 1, 4} = 3; label 1: 2 of 3; label 2: 0 of 1; label 3: absent
    iou = segment.iou_per_class(true, pred, 4)
    np.testing.assert_allclose(iou[:3], [1 / 3, 2 / 3, 0.0])
    assert np.isnan(iou[3])
    assert segment.mean_iou(true, pred, 4) == pytest.approx(1 / 3)
    assert segment.confusion_matrix(true, pred, 4).tolist() == [
        [1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    s = segment.scores(true, pred, 4)
    assert s["patch_accuracy"] == 0.6 and s["mean_iou"] == round(1 / 3, 4)
    assert s["iou"][segment.LABEL_NAMES[3]] is None
    assert segment.mean_iou(true, true, 4) == 1.0
    with pytest.raises(ValueError, match="`pred`"):
        segment.mean_iou(true, pred[:4], 4)
    with pytest.raises(ValueError, match="`true`"):
        segment.mean_iou(true + 5, pred, 4)


# --- the shipped segmenter ---------------------------------------------------------------------


@pytest.mark.single_backend
@pytest.mark.skipif(not SHIPPED.exists(), reason="no shipped segmenter yet")
def test_shipped_segmenter_is_what_its_record_says():
    record = json.loads(SHIPPED.with_suffix(".json").read_text())
    assert record["command"].startswith("python -m experiments.segment"), record["command"]
    assert record["encoder_sha256"] == sha256(ROOT / "data" / CLASSIFIER), (
        f"data/{SEGMENTER} was fine-tuned from another classifier than data/{CLASSIFIER}: re-run "
        f"`python -m experiments.segment --out data/{SEGMENTER} --overwrite`")
    model = keras.saving.load_model(SHIPPED, safe_mode=True)
    x_test, y_test = segment.make_task(load_fashion_mnist(), "test", record["recipe"],
                                       record["patch_size"])
    pred = model.predict(x_test, batch_size=250, verbose=0).argmax(-1)
    assert abs(float(np.mean(pred == y_test)) - record["test"]["patch_accuracy"]) <= 1e-4 + 1e-9


# --- frozen features and the linear probe ------------------------------------------------------


def test_patch_tokens_are_the_encoder_outputs_without_the_class_token():
    seg = segment.segmenter_from_classifier(tiny_classifier(), (8, 12), num_classes=3)
    x = np.random.default_rng(5).random((3, 8, 12, 1)).astype("float32")
    tokens = segment.patch_tokens(seg, x, batch_size=2, jit_compile=False)
    assert tokens.shape == (3, 6, 8)
    np.testing.assert_allclose(tokens, ops.convert_to_numpy(seg.encode(x))[:, 1:], atol=1e-5)
    with pytest.raises(ValueError, match="`model`"):
        segment.patch_tokens(keras.Sequential(), x)


@pytest.mark.single_backend
def test_linear_probe_learns_a_linearly_separable_labelling():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 6)) * 4  # 4 labels, well apart in 6-D
    labels = rng.integers(0, 4, size=(300, 2, 3))
    features = (centres[labels] + rng.normal(size=(300, 2, 3, 6)) * 0.3).reshape(300, 6, 6)
    pred = segment.linear_probe(features[:200], labels[:200], features[200:], num_classes=4)
    assert pred.shape == (100, 2, 3)
    assert np.mean(pred == labels[200:]) > 0.98
    with pytest.raises(ValueError, match="`train_labels`"):
        segment.linear_probe(features[:200], labels[:100], features[200:], num_classes=4)
    with pytest.raises(ValueError, match="`test_features`"):
        segment.linear_probe(features[:200], labels[:200], features[200:, :3], num_classes=4)


def test_predict_labels_pads_the_last_batch_and_keeps_every_image():
    seg = segment.segmenter_from_classifier(tiny_classifier(), (8, 12), num_classes=3)
    x = np.random.default_rng(6).random((5, 8, 12, 1)).astype("float32")
    want = ops.convert_to_numpy(seg(x)).argmax(-1)
    np.testing.assert_array_equal(segment.predict_labels(seg, x, batch_size=2), want)
    np.testing.assert_array_equal(segment.predict_labels(seg, x, batch_size=50), want)
