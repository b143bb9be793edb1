"""The shipped classifier, data/vit_fashion_medium.keras, is what its record says it is.

The record (data/vit_fashion_medium.json, written by `python -m experiments.train`) keeps the command,
the recipe with its seed, the validation split used for model selection and the test accuracy
(evaluated once, at the end). Here the accuracy is recomputed on all 10,000 test images from the
saved model, and it must reach the course's target.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

import vitlib  # registers the vitlib layers that the checkpoint names
from vitlib.course_files import CLASSIFIER
from vitlib.data import load_fashion_mnist

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT = ROOT / "data" / CLASSIFIER
RECORD = CHECKPOINT.with_suffix(".json")
TARGET = 0.92  # the course's target test accuracy
MAX_BYTES = 3_000_000

pytestmark = pytest.mark.single_backend


@pytest.fixture(scope="module")
def record():
    return json.loads(RECORD.read_text())


def test_checkpoint_is_small():
    assert CHECKPOINT.stat().st_size <= MAX_BYTES, "a checkpoint of at most 3 MB (no optimizer state)"


def test_record_keeps_the_command_the_seed_and_the_validation_split(record):
    assert record["command"].startswith("python -m experiments.train"), record["command"]
    assert f"--out data/{CLASSIFIER}" in record["command"]
    assert isinstance(record["recipe"]["seed"], int)
    assert record["validation_images"] == 5_000 and record["train_images"] == 55_000
    assert len(record["validation_accuracy_per_epoch"]) == record["epochs"]
    assert record["test_accuracy_per_epoch"] is None, "model selection never looked at the test set"


@pytest.fixture(scope="module")
def recomputed():
    model = keras.saving.load_model(CHECKPOINT, safe_mode=True)
    data = load_fashion_mnist()
    # Independent of vitlib.train: scale the uint8 images to [0, 1] here, predict, compare labels.
    x = (data.x_test.astype("float32") / 255.0)[..., None]
    logits = model.predict(x, batch_size=500, verbose=0)
    assert len(data.y_test) == 10_000
    return float(np.mean(np.argmax(logits, axis=-1) == data.y_test))


def test_recorded_accuracy_is_recomputed_from_the_checkpoint(record, recomputed):
    # Other CPUs round the last digits differently and may flip a borderline image or two.
    assert abs(recomputed - record["test_accuracy"]) <= 0.002, (recomputed, record["test_accuracy"])


def test_shipped_checkpoint_is_a_pure_vit(record):
    model = keras.saving.load_model(CHECKPOINT, safe_mode=True)
    assert isinstance(model, vitlib.ViT) and model.patch_method == "conv"  # linear patch embedding
    assert model.pooling == "cls" and model.position == "learned"
    assert model.count_params() == record["parameters"] <= 1_000_000


def test_shipped_checkpoint_reaches_the_course_target(recomputed):
    assert recomputed >= TARGET, (
        f"the shipped checkpoint's test accuracy {recomputed:.4f}, recomputed from the file, is "
        f"below the course's target {TARGET}")
