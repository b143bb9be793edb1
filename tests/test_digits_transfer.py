"""experiments.digits_transfer and vitlib.data.load_digits: the task, the starts, the pixel
baseline, and the shipped record (notebook 09)."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from experiments import digits_transfer as dt
from vitlib.course_files import CLASSIFIER, sha256
from vitlib.data import load_digits

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "data" / "digits_transfer.json"
pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def data():
    return load_digits()


@pytest.fixture(scope="module")
def shipped():
    return keras.saving.load_model(ROOT / "data" / CLASSIFIER, safe_mode=True)


def test_digits_are_split_once_into_disjoint_sets(data):
    from sklearn.datasets import load_digits as sklearn_digits

    x_tr, y_tr, x_te, y_te = data
    assert x_tr.shape == (500, 32, 32, 1) and x_te.shape == (1297, 32, 32, 1)
    assert 0.0 <= x_tr.min() and x_tr.max() <= 1.0 and set(np.unique(y_tr)) == set(range(10))
    # Together the two sets hold every digit once: the same labels as scikit-learn's set.
    np.testing.assert_array_equal(np.sort(np.concatenate([y_tr, y_te])),
                                  np.sort(sklearn_digits().target))
    np.testing.assert_array_equal(load_digits()[1], y_tr)  # the same seeded split each time
    assert not np.array_equal(load_digits(seed=1)[1], y_tr)
    for bad in ({"image_size": 0}, {"train_images": 1797}, {"train_images": -5}):
        with pytest.raises(ValueError, match=f"`{next(iter(bad))}`"):
            load_digits(**bad)


def test_the_three_starts(shipped):
    scratch = dt.new_model("scratch", shipped)
    probe = dt.new_model("probe", shipped)
    full = dt.new_model("full", shipped)
    head = sum(int(np.prod(w.shape)) for w in probe.head.weights)
    assert sum(int(np.prod(w.shape)) for w in probe.trainable_weights) == head
    assert len(full.trainable_weights) == len(scratch.trainable_weights) == len(full.weights)
    # full fine-tuning starts from the pretrained blocks; from scratch does not.
    kernel = shipped.blocks[0].weights[0].numpy()
    np.testing.assert_array_equal(full.blocks[0].weights[0].numpy(), kernel)
    assert not np.allclose(scratch.blocks[0].weights[0].numpy(), kernel)
    assert full.position_embedding.embedding.shape[-2] == 1 + 64  # 8x8 patches + class token


def test_pixels_and_probe_are_the_same_linear_classifier_on_different_features(data):
    x_tr, y_tr, _, _ = data
    features = dt.pixel_features(x_tr[:50])
    assert features.shape == (50, 32 * 32) and np.array_equal(features[3], x_tr[3].ravel())
    head = keras.layers.Dense(10)
    linear = dt.fit_linear(features, y_tr[:50], head)
    assert linear.layers[-1] is head and linear.count_params() == 32 * 32 * 10 + 10
    # Trained: 50 images are fitted far above chance by 1,024 pixels.
    assert np.mean(np.argmax(linear.predict(features, verbose=0), -1) == y_tr[:50]) > 0.5


def test_scratch_has_the_checkpoints_architecture(shipped):
    scratch = dt.new_model("scratch", shipped)
    assert (scratch.dim, scratch.depth, scratch.num_heads) == (shipped.dim, shipped.depth,
                                                                shipped.num_heads)
    assert scratch.image_size == (32, 32)


def test_main_refuses_to_overwrite_before_training(tmp_path, capsys):
    out = tmp_path / "r.json"
    out.write_text("{}")
    with pytest.raises(SystemExit):
        dt.main(["--seeds", "0", "--out", str(out)])
    assert "exists" in capsys.readouterr().err and out.read_text() == "{}"
    with pytest.raises(SystemExit):
        dt.main(["--seeds", "0", "-1"])
    assert "argument --seeds: expected an integer >= 0" in capsys.readouterr().err


def test_summary_is_mean_min_max():
    record = {"runs": [{"init": i, "test_accuracy": a} for i, a in
                       [("scratch", 0.1), ("scratch", 0.3), ("probe", 0.5), ("full", 0.8)]]}
    s = dt.summary(record)
    assert s["scratch"] == pytest.approx((0.2, 0.1, 0.3)) and s["full"] == (0.8, 0.8, 0.8)


@pytest.mark.single_backend  # the record was made on TensorFlow; 40 steps amplify backend differences
def test_shipped_record_is_complete_and_reproduced(data, shipped):
    record = json.loads(RECORD.read_text())
    assert record["command"].startswith("python -m experiments.digits_transfer")
    # Made from the shipped classifier: re-run the command when that file changes.
    assert record["checkpoint_sha256"] == sha256(ROOT / "data" / CLASSIFIER)
    assert record["steps"] == dt.EPOCHS * (dt.TRAIN_IMAGES // dt.BATCH) == 40
    assert record["long_steps"] == dt.LONG_EPOCHS * (dt.TRAIN_IMAGES // dt.BATCH)
    assert sorted((r["seed"], r["init"]) for r in record["runs"]) == sorted(
        (s, i) for s in record["seeds"] for i in dt.INITS)
    # The long runs are long enough to fit the 500 training digits, as the notebook says.
    assert min(r["train_accuracy"] for r in record["runs"] if r["init"].endswith("_long")) > 0.97
    # Re-run two recorded runs: the shipped numbers come from this code and this checkpoint.
    recorded = {(r["seed"], r["init"]): r["test_accuracy"] for r in record["runs"]}
    seed = record["seeds"][0]
    for init in ("full", "pixels"):
        assert dt.run_one(init, shipped, data, seed)["test_accuracy"] == pytest.approx(
            recorded[seed, init], abs=2e-3)
