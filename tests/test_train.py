"""vitlib.train: the schedule, the augmentation, and a short end-to-end run with a checkpoint."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest

from vitlib import train
from vitlib.data import load_fashion_mnist


def test_warmup_then_cosine_to_zero():
    s = train.WarmupCosine(peak=1e-3, warmup_steps=10, total_steps=110)
    lr = [float(s(i)) for i in (0, 5, 10, 60, 110, 200)]
    expected = [0.0, 0.5e-3, 1e-3, 0.5e-3 * (1 + math.cos(math.pi * 0.5)), 0.0, 0.0]
    np.testing.assert_allclose(lr, expected, atol=1e-9)


def test_schedule_round_trips_through_config():
    s = train.WarmupCosine(2e-3, 5, 50)
    again = train.WarmupCosine.from_config(s.get_config())
    assert float(again(7)) == pytest.approx(float(s(7)))


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


def test_validation_split_is_seeded_disjoint_and_complete():
    tr, val = train.validation_split(60_000, 5_000, seed=0)
    assert len(val) == 5_000 and len(tr) == 55_000
    assert not set(tr.tolist()) & set(val.tolist())
    assert sorted(np.concatenate([tr, val]).tolist()) == list(range(60_000))
    again = train.validation_split(60_000, 5_000, seed=0)
    np.testing.assert_array_equal(val, again[1])
    assert not np.array_equal(val, train.validation_split(60_000, 5_000, seed=1)[1])
    for bad in (-1, 60_000):
        with pytest.raises(ValueError, match=r"`val_images` must be in \[0, 60000\), got"):
            train.validation_split(60_000, bad)


@pytest.mark.single_backend
def test_short_run_with_validation_records_it_and_tests_once(tmp_path):
    record = train.train("fashion-tiny", epochs=2, limit=256, val_images=300, verbose=0)
    assert record["validation_images"] == 300 and record["train_images"] == 256
    assert len(record["validation_accuracy_per_epoch"]) == 2
    assert record["test_accuracy_per_epoch"] is None, "the test set is evaluated once, at the end"


@pytest.mark.single_backend
def test_short_run_saves_a_small_checkpoint_and_a_record(tmp_path):
    out = tmp_path / "vit.keras"
    record = train.train("fashion-tiny", epochs=1, out=out, limit=512, verbose=0)
    assert out.exists() and out.with_suffix(".json").exists()
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["test_accuracy"] == record["test_accuracy"] and 0.0 <= record["test_accuracy"] <= 1.0
    assert out.stat().st_size < 8 * record["parameters"] + 100_000  # no optimizer state
    model = keras.saving.load_model(out, safe_mode=True)  # the checkpoint is the trained model
    d = load_fashion_mnist()
    assert round(train.evaluate(model, d.x_test, d.y_test), 4) == record["test_accuracy"]
    with pytest.raises(FileExistsError, match="--overwrite"):
        train.train("fashion-tiny", epochs=1, out=out, limit=64, verbose=0)



def _traces_of_first_fit(model, compile_model) -> int:
    """How many times the model's call is traced by the first ``fit`` (TensorFlow)."""
    calls = []
    original = model.call
    model.call = lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs)
    compile_model(model)
    x = np.zeros((8, 28, 28, 1), "float32")
    model.fit(x, keras.utils.to_categorical(np.arange(8) % 10, 10), batch_size=8, verbose=0)
    return len(calls)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="counts TensorFlow traces")
def test_compile_for_training_traces_the_training_step_once():
    from vitlib import vit

    once = _traces_of_first_fit(
        vit("fashion-tiny"),
        lambda m: train.compile_for_training(m, steps_per_epoch=1, epochs=1, jit_compile=False))
    # The same optimizer compiled the usual way: its variables (and the string metric's) are
    # created inside the first trace, and TensorFlow traces the step again.
    twice = _traces_of_first_fit(
        vit("fashion-tiny"),
        lambda m: m.compile(keras.optimizers.AdamW(1e-3), "categorical_crossentropy",
                            metrics=["accuracy"], jit_compile=False))
    assert (once, twice) == (1, 2)


def test_build_optimizer_needs_a_compiled_model():
    from vitlib import vit

    with pytest.raises(ValueError, match="not compiled"):
        train.build_optimizer(vit("fashion-tiny"))
