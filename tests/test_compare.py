"""vitlib.cnn and vitlib.compare: the CNN's size, the time budget, the results file."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

import vitlib
from vitlib import compare
from vitlib.cnn import feature_maps, small_cnn

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "data" / "vit_vs_cnn.json"


def cnn_params_by_hand(width, in_channels=1, num_classes=10):
    c1, c2, c3 = width, 2 * width, 4 * width
    convs = 9 * (in_channels * c1 + c1 * c2 + c2 * c3)  # 3x3 kernels, no bias
    batch_norms = 4 * (c1 + c2 + c3)  # gamma, beta, moving mean, moving variance
    head = c3 * num_classes + num_classes
    return convs + batch_norms + head


@pytest.mark.single_backend  # a count of the layers' weights: the same on every backend
@pytest.mark.parametrize("width", [39, 8])
def test_cnn_parameter_count_matches_the_formula(width):
    assert small_cnn(width=width).count_params() == cnn_params_by_hand(width)


@pytest.mark.single_backend
def test_default_cnn_matches_the_vit_within_10_percent():
    cnn, vit = small_cnn().count_params(), vitlib.make_vit("fashion-small").count_params()
    assert (cnn, vit) == (139_903, 139_018)
    assert abs(cnn - vit) / vit < 0.10


def test_cnn_shapes_and_bad_width():
    model = small_cnn(width=4)
    x = np.zeros((2, 28, 28, 1), "float32")
    assert tuple(model(x).shape) == (2, 10)
    assert tuple(feature_maps(model, 3)(x).shape) == (2, 7, 7, 16)
    with pytest.raises(ValueError, match="`width`"):
        small_cnn(width=0)


@pytest.mark.single_backend
def test_endless_batches_are_full_one_hot_and_reshuffled_each_pass():
    x = np.arange(40, dtype="float32").reshape(10, 2, 2, 1)
    y = np.arange(10) % 10
    batches = compare.EndlessBatches(x, y, batch_size=4, max_shift=0, flip=False, seed=0)
    assert batches.num_batches is None and batches.per_pass == 2  # 10 // 4: full batches only
    first = [batches[i] for i in range(2)]
    assert all(xb.shape == (4, 2, 2, 1) and yb.shape == (4, 10) for xb, yb in first)
    for xb, yb in first:  # labels travel with their images
        np.testing.assert_array_equal(np.argmax(yb, -1), xb[:, 0, 0, 0].astype(int) // 4)
    order_1 = batches.batches.order.copy()
    batches[2]  # the first batch of the second pass: a new permutation
    assert batches.passes == 1 and not np.array_equal(order_1, batches.batches.order)


@pytest.mark.single_backend
def test_time_budget_stops_training_and_schedules_the_rate():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10)])
    model.compile(optimizer=keras.optimizers.AdamW(0.0), loss="categorical_crossentropy")
    x = np.random.default_rng(0).random((64, 28, 28, 1)).astype("float32")
    data = compare.EndlessBatches(x, np.arange(64) % 10, batch_size=16)
    budget = compare.TimeBudget(0.0, schedule=lambda ms: 1e-3)
    model.fit(data, epochs=1, verbose=0, shuffle=False, callbacks=[budget])  # endless data
    assert budget.steps == 1 and budget.seconds >= 0.0
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    budget = compare.TimeBudget(0.3)
    model.fit(data, epochs=1, verbose=0, shuffle=False, callbacks=[budget])
    assert 1 < budget.steps < 100_000 and budget.seconds >= 0.3
    with pytest.raises(ValueError, match="`seconds`"):
        compare.TimeBudget(-1)


@pytest.mark.single_backend
def test_train_with_budget_runs_the_real_recipe():
    x = np.random.default_rng(0).random((256, 28, 28, 1)).astype("float32")
    model, budget = compare.train_with_budget("cnn", x, np.arange(256) % 10, seconds=0.0)
    assert budget.steps == 1 and model.count_params() == 139_903
    with pytest.raises(ValueError, match="`kind`"):
        compare.train_with_budget("mlp", x, np.arange(256) % 10, seconds=0.0)


@pytest.mark.single_backend
def test_shipped_results_have_every_size_for_both_models_and_the_command():
    record = json.loads(SHIPPED.read_text())
    assert record["command"].startswith("python -m experiments.vit_vs_cnn ")
    sizes = record["sizes"]
    assert sizes == [1000, 5000, 20000, 60000]
    assert f"--sizes {' '.join(map(str, sizes))}" in record["command"]
    for kind in ("cnn", "vit"):
        points = {p["train_images"]: p for p in record["results"] if p["model"] == kind}
        assert sorted(points) == sizes, kind
        for p in points.values():
            assert 0.0 <= p["test_accuracy"] <= 1.0 and p["steps"] > 0
    assert record["models"]["cnn"]["parameters"] == small_cnn().count_params()
    assert record["models"]["vit"]["parameters"] == vitlib.make_vit("fashion-small").count_params()
    assert record["machine"]["cpu_count"] >= 1 and record["date"] and record["versions"]["keras"]
    assert len(record["load_average"]["start"]) == 3
