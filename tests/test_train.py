"""vitlib.train: the schedule, the augmentation, accuracy, and train() on any model."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from vitlib import train
from vitlib.data import load_fashion_mnist


def test_warmup_then_cosine_to_zero():
    s = train.cosine_schedule(peak=1e-3, warmup_steps=10, total_steps=110)
    lr = [float(s(i)) for i in (0, 5, 10, 60, 110, 200)]
    expected = [0.0, 0.5e-3, 1e-3, 0.5e-3 * (1 + math.cos(math.pi * 0.5)), 0.0, 0.0]
    np.testing.assert_allclose(lr, expected, atol=1e-9)


def test_schedule_round_trips_through_config():
    s = train.cosine_schedule(2e-3, 5, 50)
    again = type(s).from_config(s.get_config())
    assert float(again(7)) == pytest.approx(float(s(7)))


@pytest.mark.parametrize("args, match", [
    ((0.0, 1, 10), "`peak` must be a finite number > 0, got 0.0"),
    ((1e-3, -1, 10), "`warmup_steps` must be an integer >= 0, got -1"),
    ((1e-3, 1, 0), "`total_steps` must be a positive integer, got 0"),
    ((1e-3, 11, 10), r"`warmup_steps` \(11\) must be at most `total_steps` \(10\)"),
])
def test_schedule_rejects_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        train.cosine_schedule(*args)


def test_adamw_uses_the_recipe():
    opt = train.adamw({**train.RECIPE, "beta_2": 0.95}, steps_per_epoch=10, epochs=3)
    assert opt.weight_decay == train.RECIPE["weight_decay"] and opt.beta_2 == 0.95
    assert float(opt.learning_rate) == 0.0  # step 0: the warm-up starts at zero
    opt.iterations.assign(10)  # the end of the one-epoch warm-up: the peak
    assert float(opt.learning_rate) == pytest.approx(train.RECIPE["peak_learning_rate"])


def test_augmentation_shifts_and_flips_but_keeps_labels_and_pixels():
    x = np.random.default_rng(0).random((64, 28, 28, 1)).astype("float32")
    x[:, :2], x[:, -2:], x[:, :, :2], x[:, :, -2:] = 0, 0, 0, 0  # a 2-pixel empty border
    y = np.arange(64) % 10
    batches = train.AugmentedBatches(x, y, batch_size=32, max_shift=2, flip=True, seed=1)
    seen = np.concatenate([batches[i][1] for i in range(len(batches))])
    assert sorted(seen.tolist()) == sorted(y.tolist())
    xb, yb = batches[0]
    idx = batches.order[:32]
    np.testing.assert_array_equal(yb, y[idx])
    # Each augmented image is a shifted (and maybe mirrored) copy: same pixel mass, not always equal.
    np.testing.assert_allclose(xb.sum(axis=(1, 2, 3)), x[idx].sum(axis=(1, 2, 3)), rtol=1e-5)
    assert not np.allclose(xb, x[idx])


def test_accuracy_counts_argmax_hits_and_checks_its_arguments():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, use_bias=False)])
    model.layers[0].set_weights([np.eye(2, dtype="float32")])
    x = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], "float32")
    assert train.accuracy(model, x, np.array([0, 1, 1, 1])) == 0.75
    with pytest.raises(ValueError, match="one label per image: `x` has 4 images, `y` has shape"):
        train.accuracy(model, x, np.array([0]))
    with pytest.raises(ValueError, match="`x` is empty"):
        train.accuracy(model, x[:0], np.array([], int))


def test_train_rejects_unknown_recipe_keys_and_mismatched_data():
    from vitlib import make_vit

    x = np.zeros((8, 28, 28, 1), "float32")
    with pytest.raises(ValueError, match=r"unknown keys \['batch_sise'\]"):
        train.train(make_vit("fashion-tiny"), x, np.zeros(8, int), 1, {"batch_sise": 4})
    with pytest.raises(ValueError, match="same number .* got 8 and 3"):
        train.train(make_vit("fashion-tiny"), x, np.zeros(3, int), 1)
    with pytest.raises(ValueError, match="`epochs` must be a positive integer, got 0"):
        train.train(make_vit("fashion-tiny"), x, np.zeros(8, int), 0)


@pytest.mark.single_backend
def test_train_fits_any_model_with_the_recipe():
    from vitlib import make_vit

    d = load_fashion_mnist()
    x, y = train.to_inputs(d.x_train[:256]), d.y_train[:256]
    model = make_vit("fashion-tiny", patch_size=4, patch_method="hybrid", stem_width=8)
    history = train.train(model, x, y, epochs=2, recipe={"batch_size": 32}, verbose=0,
                          jit_compile=False)
    assert len(history.history["loss"]) == 2
    assert history.history["loss"][1] < history.history["loss"][0]


def test_jit_compile_false_is_kept_on_tensorflow_and_overridden_on_jax():
    from vitlib import make_vit

    model = make_vit("fashion-tiny")
    train.compile_for_training(model, steps_per_epoch=2, epochs=1, jit_compile=False)
    # JAX without jit runs op by op (minutes for a live cell): there a step is always compiled.
    expected = keras.backend.backend() == "jax"
    assert model.jit_compile is expected
    assert train.jit_for_backend(True) is True
