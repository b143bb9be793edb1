"""vitlib.set_tasks and experiments.sets: sets of items, the distinct-count task, the two models.

References: np.unique counts per set, a NumPy forward pass of Deep Sets, the classifier's own
``encode``, and shuffled copies of each set (a permutation-invariant model must not notice).
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

import vitlib
from vitlib import set_tasks

ROOT = Path(__file__).resolve().parent.parent
RECORD = ROOT / "data" / "sets.json"
RNG = np.random.default_rng(0)


def _np(x):
    return ops.convert_to_numpy(x)


def _labels(per_class=12):
    return np.repeat(np.arange(10), per_class)[RNG.permutation(10 * per_class)]


# --- the sets ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [2, 5, 10])
def test_sample_sets_counts_the_distinct_classes(size):
    labels = _labels()
    idx, distinct = set_tasks.sample_sets(labels, 300, size, 1)
    assert idx.shape == (300, size) and distinct.shape == (300,)
    for row, k in zip(idx, distinct, strict=True):
        assert len(set(row.tolist())) == size  # different items of the pool
        assert len(np.unique(labels[row])) == k  # the answer, counted independently
    assert set(distinct.tolist()) == set(range(1, min(size, 10) + 1))  # every count occurs
    again, _ = set_tasks.sample_sets(labels, 300, size, 1)
    assert np.array_equal(again, idx)  # seeded


def test_sample_sets_errors():
    with pytest.raises(ValueError, match="labels"):
        set_tasks.sample_sets(_labels(per_class=3), 5, 4, 0)  # 3 items of a class, 4 needed
    with pytest.raises(ValueError, match="size"):
        set_tasks.sample_sets(_labels(), 5, 0, 0)


def test_set_batches_one_size_per_batch_and_reproducible():
    labels = _labels()
    features = RNG.normal(size=(len(labels), 6)).astype("float32")
    batches = set_tasks.SetBatches(features, labels, batch_size=8, steps=5, seed=3)
    sizes = set()
    for i in range(len(batches)):
        x, y = batches[i]
        assert x.shape[0] == 8 and x.shape[2] == 6 and 2 <= x.shape[1] <= 10
        sizes.add(x.shape[1])
        # y = count - 1, recomputed from the features: find each element's item by its row
        rows = [[int(np.flatnonzero((features == e).all(1))[0]) for e in s] for s in x]
        assert np.array_equal(y, [len(np.unique(labels[r])) - 1 for r in rows])
    assert len(sizes) > 1
    x0, _ = set_tasks.SetBatches(features, labels, 8, 5, seed=3)[0]
    assert np.array_equal(x0, batches[0][0])
    with pytest.raises(ValueError, match="features"):
        set_tasks.SetBatches(features[:5], labels, 8, 5)


def test_fixed_sets_and_scores_by_hand():
    sets = set_tasks.fixed_sets(_labels(), per_size=4, seed=0, sizes=(2, 3))
    assert sorted(sets) == [2, 3] and sets[3][0].shape == (4, 3)
    predicted = {2: sets[2][1].copy(), 3: sets[3][1] + np.array([0, 0, 1, 2])}
    s = set_tasks.count_scores(sets, predicted)
    assert s["accuracy"] == 0.75 and s["mean_absolute_error"] == 0.375
    assert s["accuracy_by_size"] == {"2": 1.0, "3": 0.5}


def test_distinct_predicted_classes_counts_unique_predictions():
    item_classes = np.array([0, 0, 1, 2, 2, 2])
    sets = {3: (np.array([[0, 1, 2], [3, 4, 5], [0, 3, 2]]), np.zeros(3, int))}
    assert set_tasks.distinct_predicted_classes(item_classes, sets)[3].tolist() == [2, 1, 3]


# --- the elements ------------------------------------------------------------------------------


def test_class_token_features_are_the_classifiers_class_token():
    keras.utils.set_random_seed(0)
    vit = vitlib.ViT(image_size=8, patch_size=4, num_classes=10, dim=8, depth=1, num_heads=2,
                     mlp_dim=16, channels=1)
    vit.build()
    images = RNG.integers(0, 256, size=(7, 8, 8), dtype=np.uint8)
    got = set_tasks.class_token_features(vit, images, batch_size=3)  # padded last batch
    want = _np(vit.encode((images[..., None] / 255.0).astype("float32")))[:, 0]
    np.testing.assert_allclose(got, want, atol=1e-5)
    with pytest.raises(ValueError, match="classifier"):
        set_tasks.class_token_features(vitlib.ViT(image_size=8, patch_size=4, num_classes=10, dim=8,
                                                  depth=1, num_heads=2, mlp_dim=16, channels=1,
                                                  pooling="mean"), images)


# --- the models --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(set_tasks.MODELS))
def test_whole_models_are_permutation_invariant(name):
    keras.utils.set_random_seed(0)
    model = set_tasks.MODELS[name](12)
    x = RNG.normal(size=(3, 7, 12)).astype("float32")
    out = _np(model(x))
    assert out.shape == (3, set_tasks.NUM_COUNTS)
    for _ in range(3):
        np.testing.assert_allclose(_np(model(x[:, RNG.permutation(7)])), out, atol=1e-5)
    # not trivially constant: another element changes the output
    y = x.copy()
    y[:, 0] = RNG.normal(size=(3, 12))
    assert np.abs(_np(model(y)) - out).max() > 1e-4
    # any set size
    assert _np(model(x[:, :2])).shape == (3, set_tasks.NUM_COUNTS)


def test_a_model_that_sees_the_order_fails_the_same_check():
    """The invariance test can fail: a Dense on the flattened set (fixed size) sees the order."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((7, 12))
    ordered = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs)))
    x = RNG.normal(size=(3, 7, 12)).astype("float32")
    assert np.abs(_np(ordered(x[:, ::-1])) - _np(ordered(x))).max() > 1e-3


def test_deep_sets_is_rho_of_the_mean_of_phi():
    keras.utils.set_random_seed(1)
    model = set_tasks.deep_sets(5, width=16)
    x = RNG.normal(size=(4, 6, 5)).astype("float32")
    w = {layer.name: [_np(v) for v in layer.weights] for layer in model.layers if layer.weights}

    def dense(name, h, relu):
        kernel, bias = w[name]
        out = h @ kernel + bias
        return np.maximum(out, 0) if relu else out

    h = dense("phi_3", dense("phi_2", dense("phi_1", x, True), True), False)  # each element
    want = dense("head", dense("rho_1", h.mean(axis=1), True), False)
    np.testing.assert_allclose(_np(model(x)), want, atol=1e-5)


def test_model_sizes_are_about_equal():
    counts = {name: build(96).count_params() for name, build in set_tasks.MODELS.items()}
    assert max(counts.values()) / min(counts.values()) < 1.02, counts


@pytest.mark.parametrize("name", list(set_tasks.MODELS))
def test_models_save_and_load_without_this_module(tmp_path, name):
    model = set_tasks.MODELS[name](6)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    x = RNG.normal(size=(2, 5, 6)).astype("float32")
    np.testing.assert_allclose(_np(again(x)), _np(model(x)), atol=1e-6)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="encoder"):
        set_tasks.set_transformer(8, encoder="mean")
    with pytest.raises(ValueError, match="width"):
        set_tasks.deep_sets(8, width=0)


# --- the command and its record ----------------------------------------------------------------


def test_command_refuses_to_overwrite_before_any_work(tmp_path, capsys):
    from experiments import sets as command

    out = tmp_path / "sets.json"
    out.write_text("{}")
    with pytest.raises(SystemExit) as e:
        command.main(["--out", str(out)])
    assert e.value.code == 2 and "--overwrite" in capsys.readouterr().err
    out.unlink()
    (tmp_path / "sets_deep_sets.keras").write_text("")
    with pytest.raises(SystemExit):
        command.main(["--out", str(out)])


def test_summary_is_the_mean_and_spread_of_the_runs():
    from experiments.sets import summarise

    runs = [{"model": "m", "seed": s, "parameters": 5, "peak_learning_rate": 1e-3,
             "val": {"accuracy": a, "mean_absolute_error": 0.0},
             "test": {"accuracy": a, "mean_absolute_error": 1.0}}
            for s, a in enumerate([0.5, 0.6, 0.7])]
    s = summarise(runs)["m"]
    assert s["test_accuracy"] == {"mean": 0.6, "std": 0.1, "min": 0.5, "max": 0.7}
    assert s["seeds"] == [0, 1, 2]


@pytest.mark.skipif(not RECORD.is_file(), reason="the shipped record is made by experiments.sets")
def test_shipped_record_is_consistent_and_its_checkpoints_load():
    from experiments.sets import summarise

    record = json.loads(RECORD.read_text())
    assert record["summary"] == summarise(record["runs"])
    for name in record["models"]:
        assert sorted(r["seed"] for r in record["runs"] if r["model"] == name) == record["seeds"]
        model = keras.saving.load_model(ROOT / "data" / record["checkpoints"][name], safe_mode=True)
        assert model.count_params() == record["summary"][name]["parameters"]
        assert model.count_params() == set_tasks.MODELS[name](96).count_params()
