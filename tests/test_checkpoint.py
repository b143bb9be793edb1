"""The shipped checkpoint, data/vit_fashion_small.keras, is what its record says it is.

The record (data/vit_fashion_small.json, written by `python -m vitlib.train`) keeps the command,
the recipe with its seed and the test accuracy. Here the accuracy is recomputed on all 10,000
test images from the saved model, and it must reach the course's target.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

import vitlib  # noqa: F401  (registers the vitlib layers that the checkpoint names)
from vitlib.data import load_fashion_mnist

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT = ROOT / "data" / "vit_fashion_small.keras"
RECORD = CHECKPOINT.with_suffix(".json")
TARGET = 0.92  # the course's target test accuracy for fashion-small
MAX_BYTES = 3_000_000

pytestmark = pytest.mark.single_backend


@pytest.fixture(scope="module")
def record():
    return json.loads(RECORD.read_text())


def test_checkpoint_is_small():
    assert CHECKPOINT.stat().st_size <= MAX_BYTES, "a checkpoint of at most 3 MB (no optimizer state)"


def test_record_keeps_the_command_and_the_seed(record):
    assert record["command"].startswith("python -m vitlib.train"), record["command"]
    assert isinstance(record["recipe"]["seed"], int)


def test_recorded_accuracy_is_recomputed_from_the_checkpoint(record):
    model = keras.saving.load_model(CHECKPOINT, safe_mode=True)
    data = load_fashion_mnist()
    # Independent of vitlib.train: scale the uint8 images to [0, 1] here, predict, compare labels.
    x = (data.x_test.astype("float32") / 255.0)[..., None]
    logits = model.predict(x, batch_size=500, verbose=0)
    accuracy = float(np.mean(np.argmax(logits, axis=-1) == data.y_test))
    assert len(data.y_test) == 10_000
    assert abs(accuracy - record["test_accuracy"]) <= 1e-4 + 1e-9, (accuracy, record["test_accuracy"])


@pytest.mark.xfail(strict=True, reason="not met: the shipped checkpoint scores 0.8885 after 10 "
                   "epochs (23.6 min); no ViT tried here reached 0.92 in 20 min on 2 cores (best: "
                   "the paper's hybrid, benchmarks/hybrid.py); see README 'Results measured here'")
def test_recorded_accuracy_reaches_the_course_target(record):
    assert record["test_accuracy"] >= TARGET, (
        f"the shipped checkpoint's test accuracy {record['test_accuracy']} is below the course's "
        f"target {TARGET}"
    )
