"""vitlib.detr: canvases with boxes, box IoU, DETR's matching and loss, the decoder, the model.

References: boxes and IoUs counted by hand and on a raster of pixels, the matching against brute
force over every permutation, the loss written again with NumPy loops, the decoder block written
out with keras.layers.MultiHeadAttention and NumPy (copied weights), the encoder against the
classifier it was made from, and scores counted by hand.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

import vitlib
from vitlib import detr
from vitlib.course_files import CLASSIFIER, SEGMENTER
from vitlib.data import load_fashion_mnist

ROOT = Path(__file__).resolve().parent.parent
RNG = np.random.default_rng(0)


def _np(x):
    return ops.convert_to_numpy(x)


# --- boxes and canvases ------------------------------------------------------------------------


def test_foreground_box_by_hand():
    fg = np.zeros((6, 8), bool)
    fg[1:4, 2:7] = True  # rows 1-3, columns 2-6: 5 wide, 3 high
    cx, cy, w, h = detr.foreground_box(fg)
    assert (cx, cy, w, h) == pytest.approx(((2 + 7) / 2 / 8, (1 + 4) / 2 / 6, 5 / 8, 3 / 6))
    # placed at (top 10, left 20) on a 40x50 (height x width) canvas
    box = detr.foreground_box(fg, top=10, left=20, size=(40, 50))
    assert box == pytest.approx(((22 + 27) / 2 / 50, (11 + 14) / 2 / 40, 5 / 50, 3 / 40))
    with pytest.raises(ValueError, match="foreground"):
        detr.foreground_box(np.zeros((3, 3), bool))


def _items(n=12, seed=0):
    """Small random 'items' (n, 8, 8) in [0, 1], each a rectangle of random size and place."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 8, 8), np.float32)
    for k in range(n):
        r0, c0 = rng.integers(0, 4, 2)
        r1, c1 = r0 + rng.integers(2, 5), c0 + rng.integers(2, 5)
        images[k, r0:r1, c0:c1] = rng.uniform(0.5, 1.0)
    return images, rng.integers(0, 10, n)


def test_one_item_canvases_box_the_pixels_above_threshold():
    images, labels = _items()
    scenes = detr.make_scenes(images, labels, 20, size=24, items=(1, 1), seed=3)
    assert scenes.x.shape == (20, 24, 24, 1) and scenes.classes.shape == (20, 1)
    for k in range(20):  # independent: the box of the canvas's own bright pixels
        rows, cols = np.nonzero(scenes.x[k, ..., 0] >= 0.25)
        want = [(cols.min() + cols.max() + 1) / 48, (rows.min() + rows.max() + 1) / 48,
                (cols.max() + 1 - cols.min()) / 24, (rows.max() + 1 - rows.min()) / 24]
        np.testing.assert_allclose(scenes.boxes[k, 0], want, atol=1e-6)
        assert scenes.classes[k, 0] in labels


def test_scenes_pad_counts_and_seed():
    images, labels = _items()
    a = detr.make_scenes(images, labels, 30, size=24, items=(1, 3), seed=5)
    b = detr.make_scenes(images, labels, 30, size=24, items=(1, 3), seed=5)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.boxes, b.boxes)
    assert set(a.items) <= {1, 2, 3} and len(set(a.items)) > 1
    for k in range(30):
        n = a.items[k]
        assert np.all(a.classes[k, :n] >= 0) and np.all(a.classes[k, n:] == detr.PAD)
        assert np.all(a.boxes[k, n:] == 0) and np.all(a.boxes[k, :n, 2:] > 0)
    sub = a.subset(slice(3, 7))
    assert len(sub) == 4 and np.array_equal(sub.boxes, a.boxes[3:7])
    with pytest.raises(ValueError, match="items"):
        detr.make_scenes(images, labels, 2, size=24, items=(0, 2))
    with pytest.raises(ValueError, match="size"):
        detr.make_scenes(images, labels, 2, size=6)


def test_train_and_validation_canvases_use_disjoint_images():
    train, val = detr.split_indices(100, 20, seed=0)
    assert len(train) == 80 and len(val) == 20 and not set(train) & set(val)
    order = np.random.default_rng(0).permutation(100)  # experiments.train.validation_split's
    assert set(val) == set(order[:20])


def _raster_iou(a, b, n=400):
    """IoU of two boxes (cx, cy, w, h) counted on an n x n grid of points over [-0.5, 1.5]^2."""
    grid = (np.arange(n) + 0.5) / n * 2 - 0.5
    xs, ys = np.meshgrid(grid, grid)

    def inside(box):
        cx, cy, w, h = box
        return (np.abs(xs - cx) <= w / 2) & (np.abs(ys - cy) <= h / 2)

    ia, ib = inside(a), inside(b)
    return (ia & ib).sum() / (ia | ib).sum()


def test_box_iou_by_hand_and_on_a_raster():
    a = np.array([[0.5, 0.5, 0.4, 0.4]])
    b = np.array([[0.6, 0.5, 0.4, 0.4], [0.5, 0.5, 0.4, 0.4], [0.9, 0.9, 0.1, 0.1]])
    np.testing.assert_allclose(detr.box_iou(a, b), [[0.12 / 0.20, 1.0, 0.0]], atol=1e-12)
    boxes_a = np.c_[RNG.uniform(0.2, 0.8, (4, 2)), RNG.uniform(0.1, 0.6, (4, 2))]
    boxes_b = np.c_[RNG.uniform(0.2, 0.8, (3, 2)), RNG.uniform(0.1, 0.6, (3, 2))]
    got = detr.box_iou(boxes_a, boxes_b)
    want = np.array([[_raster_iou(p, q) for q in boxes_b] for p in boxes_a])
    assert got.shape == (4, 3)
    np.testing.assert_allclose(got, want, atol=0.01)


# --- the matching and the loss -----------------------------------------------------------------


def _brute_force(cost):
    n, m = cost.shape
    return min(itertools.permutations(range(n), m),
               key=lambda a: sum(cost[i, j] for j, i in enumerate(a)))


@pytest.mark.parametrize("n,m", [(8, 1), (8, 2), (8, 3), (5, 5), (6, 4)])
def test_hungarian_matching_is_the_best_of_all_permutations(n, m):
    rng = np.random.default_rng(n * 10 + m)
    for _ in range(20):
        cost = rng.normal(size=(n, m))
        want = _brute_force(cost)
        for fn in (detr.hungarian_match, detr.exhaustive_match):
            got = fn(cost)
            assert len(set(got)) == m  # one-to-one
            total = sum(cost[i, j] for j, i in enumerate(got))
            assert total == pytest.approx(sum(cost[i, j] for j, i in enumerate(want)))
    with pytest.raises(ValueError, match="cost"):
        detr.hungarian_match(np.zeros((2, 3)))


def test_matching_cost_is_minus_probability_plus_weighted_l1():
    probs = detr.softmax(RNG.normal(size=(5, 11)))
    pred_boxes, boxes = RNG.random((5, 4)), RNG.random((2, 4))
    classes = np.array([3, 10 - 7])
    got = detr.matching_cost(probs, pred_boxes, classes, boxes, box_weight=5.0)
    for i in range(5):
        for j in range(2):
            want = -probs[i, classes[j]] + 5.0 * sum(abs(pred_boxes[i, k] - boxes[j, k]) for k in range(4))
            assert got[i, j] == pytest.approx(want)


def test_match_batch_and_aligned_targets_by_hand():
    classes = np.array([[4, 1, detr.PAD], [7, detr.PAD, detr.PAD]])
    boxes = np.zeros((2, 3, 4), np.float32)
    boxes[0, 0], boxes[0, 1], boxes[1, 0] = [0.2] * 4, [0.7] * 4, [0.5] * 4
    probs = np.full((2, 4, 11), 1 / 11)
    pred = np.full((2, 4, 4), 0.95)
    pred[0, 2], pred[0, 0], pred[1, 3] = [0.2] * 4, [0.7] * 4, [0.5] * 4
    assigned = detr.match_batch(probs, pred, classes, boxes)
    assert assigned.tolist() == [[2, 0, detr.PAD], [3, detr.PAD, detr.PAD]]
    tc, tb = detr.aligned_targets(assigned, classes, boxes, 4)
    assert tc.tolist() == [[1, 10, 4, 10], [10, 10, 10, 7]]
    np.testing.assert_allclose(tb[0, 2], [0.2] * 4)
    np.testing.assert_allclose(tb[0, 1], 0)
    with pytest.raises(ValueError, match="one-to-one"):
        detr.aligned_targets(np.array([[1, 1]]), np.array([[0, 2]]), np.zeros((1, 2, 4)), 4)


def _np_loss(tc, tb, logits, boxes, w0=0.1, lam=5.0, no_object=10):
    num = den = l1 = matched = 0.0
    for b in range(tc.shape[0]):
        for q in range(tc.shape[1]):
            z = logits[b, q].astype(np.float64)
            logp = z - z.max() - np.log(np.exp(z - z.max()).sum())
            w = w0 if tc[b, q] == no_object else 1.0
            num += -w * logp[tc[b, q]]
            den += w
            if tc[b, q] != no_object:
                l1 += np.abs(boxes[b, q] - tb[b, q]).sum()
                matched += 1
    return num / den + lam * l1 / max(matched, 1), num / den, l1 / max(matched, 1)


def test_hungarian_loss_equals_numpy_loops():
    tc = np.array([[3, 10, 10, 0], [10, 10, 10, 10], [9, 2, 10, 10]], np.int32)
    tb = RNG.random((3, 4, 4)).astype("float32")
    logits = RNG.normal(size=(3, 4, 11)).astype("float32")
    boxes = RNG.random((3, 4, 4)).astype("float32")
    got = [float(_np(v)) for v in detr.hungarian_loss(tc, tb, logits, boxes)]
    np.testing.assert_allclose(got, _np_loss(tc, tb, logits, boxes), rtol=1e-5)
    # a set loss: the same permutation of queries and targets changes nothing
    perm = np.array([2, 0, 3, 1])
    again = [float(_np(v)) for v in detr.hungarian_loss(tc[:, perm], tb[:, perm], logits[:, perm],
                                                        boxes[:, perm])]
    np.testing.assert_allclose(again, got, rtol=1e-6)


# --- the decoder and the model -----------------------------------------------------------------


def _np_layer_norm(x, ln):
    gamma, beta = (_np(w) for w in ln.weights)
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + ln.epsilon) * gamma + beta


def test_decoder_block_written_out_with_keras_attention():
    x, memory = RNG.normal(size=(2, 5, 16)).astype("float32"), RNG.normal(size=(2, 9, 12)).astype("float32")
    block = detr.DecoderBlock(num_heads=4, mlp_dim=24)
    got, weights = block(x, memory, return_attention_scores=True)
    for w in block.weights:  # random norms too, so that they matter
        w.assign(RNG.normal(size=w.shape).astype("float32") * 0.3 + (1 if "gamma" in w.path else 0))
    got, weights = (_np(v) for v in block(x, memory, return_attention_scores=True))
    self_mha = keras.layers.MultiHeadAttention(4, key_dim=4)
    self_mha(x, x)
    self_mha.set_weights(block.self_attention.get_weights())
    cross_mha = keras.layers.MultiHeadAttention(4, key_dim=4)
    cross_mha(x, memory)
    cross_mha.set_weights(block.cross_attention.get_weights())
    h = _np_layer_norm(x, block.norm1)
    y = x + _np(self_mha(h, h))
    h, want_w = cross_mha(_np_layer_norm(y, block.norm2), memory, return_attention_scores=True)
    y = y + _np(h)
    w1, b1, w2, b2 = (_np(w) for w in block.mlp.weights)
    h = _np_layer_norm(y, block.norm3) @ w1 + b1
    h = 0.5 * h * (1 + np.vectorize(__import__("math").erf)(h / np.sqrt(2)))  # exact GELU
    y = y + h @ w2 + b2
    assert got.shape == (2, 5, 16) and weights.shape == (2, 4, 5, 9)
    np.testing.assert_allclose(got, y, atol=1e-4)
    np.testing.assert_allclose(weights, _np(want_w), atol=1e-5)
    with pytest.raises(ValueError, match="memory"):
        detr.DecoderBlock(2, 8).build((1, 3, 8))


def tiny_detr(seed=0, **overrides):
    keras.utils.set_random_seed(seed)
    config = dict(image_size=16, patch_size=4, dim=8, depth=1, num_heads=2, mlp_dim=16,
                  channels=1, num_queries=4, decoder_depth=2, decoder_dim=8, decoder_heads=2,
                  decoder_mlp_dim=16)
    model = detr.DETR(**{**config, **overrides})
    model.build()
    return model


def test_detr_outputs_and_queries_are_a_set():
    model = tiny_detr()
    x = RNG.random((3, 16, 16, 1)).astype("float32")
    logits, boxes, attention = (model(x, return_attention=True))
    logits, boxes = _np(logits), _np(boxes)
    assert logits.shape == (3, 4, 11) and boxes.shape == (3, 4, 4)
    assert np.all((boxes > 0) & (boxes < 1)) and len(attention) == 2
    assert _np(attention[0]).shape == (3, 2, 4, 17)  # 4 queries x (class token + 16 patches)
    # No positions among the queries: permuting them permutes the predictions, nothing else.
    perm = np.array([2, 0, 3, 1])
    model.queries.queries.assign(_np(model.queries.queries)[perm])
    logits2, boxes2 = (_np(v) for v in model(x))
    np.testing.assert_allclose(logits2, logits[:, perm], atol=1e-5)
    np.testing.assert_allclose(boxes2, boxes[:, perm], atol=1e-5)
    with pytest.raises(ValueError, match="decoder_dim"):
        tiny_detr(decoder_dim=9)
    with pytest.raises(ValueError, match="num_queries"):
        tiny_detr(num_queries=0)


def test_detr_save_load_and_config(tmp_path):
    model = tiny_detr()
    x = RNG.random((2, 16, 16, 1)).astype("float32")
    path = tmp_path / "detr.keras"
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(again, detr.DETR) and again.get_config()["num_queries"] == 4
    for a, b in zip(model(x), again(x), strict=True):
        np.testing.assert_allclose(_np(a), _np(b), atol=1e-6)
    fresh = detr.DETR.from_config(vitlib.architecture(model))
    fresh.build()
    assert fresh.count_params() == model.count_params()


def test_detr_from_classifier_keeps_the_encoder():
    keras.utils.set_random_seed(1)
    classifier = vitlib.ViT(image_size=8, patch_size=4, num_classes=10, dim=8, depth=1,
                            num_heads=2, mlp_dim=16, channels=1)
    classifier.build()
    same = detr.detr_from_classifier(classifier, 8, num_queries=3, decoder_dim=8, decoder_heads=2)
    x = RNG.random((2, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(_np(same.encode(x)), _np(classifier.encode(x)), atol=1e-6)
    bigger = detr.detr_from_classifier(classifier, 16, num_queries=3, decoder_dim=8, decoder_heads=2)
    assert bigger.num_tokens == 17 and _np(bigger(RNG.random((1, 16, 16, 1)).astype("float32"))[0]).shape == (1, 3, 11)
    scratch = detr.detr_from_classifier(classifier, 8, pretrained=False, num_queries=3,
                                        decoder_dim=8, decoder_heads=2)
    assert not np.allclose(_np(scratch.encode(x)), _np(classifier.encode(x)))
    with pytest.raises(ValueError, match="classifier"):
        detr.detr_from_classifier("not a model", 8)


def test_decoder_only_on_tokens_equals_the_whole_model():
    model = tiny_detr()
    x = RNG.random((5, 16, 16, 1)).astype("float32")
    tokens = detr.encode_scenes(model, x, batch_size=2, dtype="float32")
    np.testing.assert_allclose(tokens, _np(model.encode(x)), atol=1e-5)
    decoder = detr.DecoderOnly(model)
    for a, b in zip(decoder(tokens), model(x), strict=True):
        np.testing.assert_allclose(_np(a), _np(b), atol=1e-5)
    trainable = {id(v) for v in decoder.trainable_variables}
    encoder = {id(v) for layer in vitlib.finetune.encoder_layers(model) for v in layer.weights}
    assert trainable and not trainable & encoder  # only the decoder, queries and heads learn
    assert len(trainable) == len(model.weights) - len(encoder)


def test_training_matches_then_lowers_the_loss():
    images, labels = _items(20)
    scenes = detr.make_scenes(images, labels, 16, size=16, items=(1, 2), seed=0)
    model = tiny_detr()
    detr.compile_detr(model, steps=30, recipe={**detr.RECIPE, "peak_learning_rate": 3e-3},
                      jit_compile=False)
    history = detr.train_detr(model, scenes, epochs=15, batch_size=8)
    assert len(history["loss"]) == 15 and np.all(np.isfinite(history["loss"]))
    assert history["loss"][-1] < history["loss"][0]
    with pytest.raises(ValueError, match="batch_size"):
        detr.train_detr(model, scenes, epochs=1, batch_size=64)
    # the same on tokens computed once, the encoder frozen
    model = tiny_detr(seed=1)
    encoder_before = [_np(w).copy() for w in model.blocks[0].weights]
    decoder = detr.DecoderOnly(model)
    detr.compile_detr(decoder, steps=30, recipe={**detr.RECIPE, "peak_learning_rate": 3e-3},
                      jit_compile=False)
    tokens = detr.encode_scenes(model, scenes.x)
    history = detr.train_detr(decoder, scenes, epochs=15, batch_size=8, inputs=tokens)
    assert history["loss"][-1] < history["loss"][0]
    for before, after in zip(encoder_before, model.blocks[0].weights, strict=True):
        np.testing.assert_array_equal(before, _np(after))
    with pytest.raises(ValueError, match="inputs"):
        detr.train_detr(decoder, scenes, epochs=1, batch_size=8, inputs=tokens[:3])


# --- scores and baselines ----------------------------------------------------------------------


def _scenes(classes, boxes):
    classes = np.array(classes)
    return detr.Scenes(np.zeros((len(classes), 8, 8, 1), np.float32), classes,
                       np.array(boxes, np.float32), (classes != detr.PAD).sum(1))


def test_score_by_hand():
    pad = [0, 0, 0, 0]
    truth = _scenes([[1, 2], [3, detr.PAD]], [[[0.3, 0.3, 0.2, 0.2], [0.7, 0.7, 0.2, 0.2]],
                                              [[0.5, 0.5, 0.4, 0.4], pad]])
    found = detr.Detections(
        index=np.array([0, 0, 0, 1]),
        classes=np.array([1, 1, 5, 3]),  # a hit, a duplicate, a wrong class; a miss (IoU < 0.5)
        boxes=np.array([[0.3, 0.3, 0.2, 0.2], [0.31, 0.3, 0.2, 0.2], [0.7, 0.7, 0.2, 0.2],
                        [0.5, 0.5, 0.2, 0.2]]),
        scores=np.ones(4), queries=np.arange(4), count=2)
    s = detr.score(found, truth)
    assert s["items"] == 3 and s["item_accuracy"] == round(1 / 3, 4)
    assert s["located"] == round(2 / 3, 4)  # the wrong-class box still lies on item 2
    assert s["mean_iou"] == pytest.approx((1 + 1 + 0.25) / 3, abs=1e-4)
    assert s["false_per_canvas"] == 1.5 and s["count_accuracy"] == 0.5 and s["unmatched"] == 0
    assert s["duplicates"] == 1  # the two class-1 boxes on canvas 0 (IoU 0.9)


def test_detections_threshold_subset_and_choice():
    probs = np.zeros((2, 3, 11))
    probs[0, 0, 4], probs[0, 0, 10] = 0.8, 0.2  # confident: class 4
    probs[0, 1, 2], probs[0, 1, 10] = 0.4, 0.6  # "no object" wins the argmax, class 2 has 0.4
    probs[0, 2, 10] = 1.0
    probs[1, :, 10] = 1.0
    probs[1, 2, 10], probs[1, 2, 7] = 0.3, 0.7
    boxes = np.tile([0.5, 0.5, 0.2, 0.2], (2, 3, 1))
    found = detr.detections(probs, boxes, threshold=0.5)
    assert found.index.tolist() == [0, 1] and found.classes.tolist() == [4, 7]
    assert found.queries.tolist() == [0, 2] and found.scores.tolist() == [0.8, 0.7]
    low = detr.detections(probs, boxes, threshold=0.3)
    assert low.classes.tolist() == [4, 2, 7]
    only_second = low.subset([1])
    assert only_second.count == 1 and only_second.index.tolist() == [0]
    assert only_second.classes.tolist() == [7]
    truth = _scenes([[4, detr.PAD], [7, detr.PAD]], [[[0.5, 0.5, 0.2, 0.2], [0, 0, 0, 0]]] * 2)
    threshold, f1 = detr.choose_threshold(probs, boxes, truth, candidates=(0.3, 0.5, 0.9))
    assert f1 == {0.3: round(2 * 2 / (2 + 3), 4), 0.5: 1.0, 0.9: 0.0} and threshold == 0.5
    by_items = detr.score_by_items(found, truth)
    assert list(by_items) == ["1"] and by_items["1"]["item_accuracy"] == 1.0


def test_component_boxes_and_crops():
    canvas = np.zeros((20, 20), np.float32)
    canvas[2:6, 3:9] = 1.0  # a 4 x 6 block
    canvas[12:18, 12:15] = 0.8  # a 6 x 3 block
    canvas[0, 19] = 1.0  # a speck, left out
    boxes = detr.component_boxes(canvas, min_pixels=2)
    np.testing.assert_allclose(boxes, [[6 / 20, 4 / 20, 6 / 20, 4 / 20],
                                       [13.5 / 20, 15 / 20, 3 / 20, 6 / 20]])
    canvas[6:12, 8:12] = 0.9  # touches both (8-neighbours): one component
    assert len(detr.component_boxes(canvas, min_pixels=2)) == 1
    windows = detr.crops(canvas[None, ..., None], [0], boxes[:1], crop=8)
    assert windows.shape == (1, 8, 8, 1) and windows.sum() == pytest.approx(24.0)


def test_floor_baseline_is_the_mean_box_and_the_commonest_class():
    truth = _scenes([[1, 2], [1, detr.PAD]], [[[0.2, 0.2, 0.2, 0.2], [0.8, 0.8, 0.2, 0.2]],
                                              [[0.5, 0.2, 0.2, 0.2], [0, 0, 0, 0]]])
    floor = detr.floor_baseline(truth, 5)
    assert floor.count == 5 and np.all(floor.classes == 1)
    np.testing.assert_allclose(floor.boxes[0], [0.5, 0.4, 0.2, 0.2], atol=1e-6)


# --- the command -------------------------------------------------------------------------------


@pytest.mark.single_backend
def test_command_writes_a_model_and_a_record_and_refuses_to_overwrite(tmp_path, capsys,
                                                                        monkeypatch):
    from experiments import detr as command

    monkeypatch.chdir(ROOT)  # the command reads the shipped checkpoints in data/
    out = tmp_path / "d.keras"
    argv = ["--train-canvases", "64", "--val-canvases", "32", "--test-canvases", "32",
            "--epochs", "1", "--seeds", "3", "--compare-encoder", "none", "--out", str(out)]
    assert command.main(argv) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["seeds"] == [3] and record["recipe"]["train_canvases"] == 64
    assert record["frozen_encoder"] and record["encoder"] == SEGMENTER
    assert record["classifier"] == CLASSIFIER and list(record["encoder_choice"]) == ["what", SEGMENTER]
    run = record["runs"][0]
    assert len(run["loss"]) == 1 and set(run["test"]["by_items"]) <= {"1", "2", "3"}
    assert record["baselines"]["components"]["min_pixels"] in command.MIN_PIXELS
    # independent: the checkpoint reloaded and scored again on canvases made again
    model = keras.saving.load_model(out, safe_mode=True)
    scenes = detr.make_task(load_fashion_mnist(), "test", record["recipe"])
    again = detr.score(detr.detections(*detr.predict(model, scenes.x), run["threshold"]), scenes)
    assert again["items"] == run["test"]["items"]
    assert abs(again["item_accuracy"] - run["test"]["item_accuracy"]) <= 0.05
    with pytest.raises(SystemExit):
        command.main(argv)  # the outputs exist: refused without --overwrite
    assert "--overwrite" in capsys.readouterr().err
