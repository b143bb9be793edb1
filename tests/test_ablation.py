"""experiments/ablation.py and its shipped record data/ablation.json (notebooks 04 and 05)."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

from experiments import ablation

ROOT = Path(__file__).resolve().parent.parent
RECORD = ROOT / "data" / "ablation.json"


@pytest.fixture(scope="module")
def record():
    return json.loads(RECORD.read_text())


@pytest.mark.single_backend
def test_every_variant_has_every_seed(record):
    assert record["seeds"] == [0, 1, 2] and set(record["variants"]) == set(ablation.VARIANTS)
    for v in record["variants"]:
        seeds = sorted(r["seed"] for r in record["runs"] if r["variant"] == v)
        assert seeds == record["seeds"], (v, seeds)


@pytest.mark.single_backend
def test_summary_is_recomputed_from_the_runs(record):
    assert ablation.summarise(record["runs"], record["variants"]) == record["summary"]


@pytest.mark.single_backend
def test_a_model_without_positions_scores_the_same_on_shuffled_patches(record):
    """What notebook 04 reads from the record, and what Step 1 proves: exact invariance."""
    for r in record["runs"]:
        if r["variant"] == "none":
            assert r["shuffled_test_accuracy"] == r["test_accuracy"]


def test_shuffle_patches_moves_whole_patches():
    x = np.arange(2 * 8 * 8, dtype="float32").reshape(2, 8, 8, 1)
    y = ablation.shuffle_patches(x, 4, seed=0)

    def blocks(a, i):  # the four 4x4 patches of image i, in some canonical order
        return sorted(a[i, r:r + 4, c:c + 4, 0].tobytes() for r in (0, 4) for c in (0, 4))

    assert all(blocks(x, i) == blocks(y, i) for i in range(2)) and not np.array_equal(x, y)


def test_untrained_variants_build_and_a_positionless_vit_ignores_the_order():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).random((3, 28, 28, 1)).astype("float32")
    shuffled = ablation.shuffle_patches(x, 4, seed=1)
    none = ablation.build("none")
    np.testing.assert_allclose(ops.convert_to_numpy(none(shuffled)),
                               ops.convert_to_numpy(none(x)), atol=1e-4)
    full = ablation.build("learned").count_params()
    no_mlp, no_attention = ablation.build("no-mlp"), ablation.build("no-attention")
    mlp, attention = 2 * 64 * 128 + 128 + 64, 4 * (64 * 64 + 64)  # per block, fashion-small
    assert no_mlp.count_params() == full - 4 * (mlp + 64 * 2)  # the MLP and its LayerNorm
    assert no_attention.count_params() == full - 4 * (attention + 64 * 2) - 64 - 64  # and no class token
    assert no_attention(x).shape == (3, 10)
    assert ablation.build("mean-pooling").pooling == "mean"
    with pytest.raises(ValueError, match="variant"):
        ablation.build("no-position")
