"""experiments/data_curve.py and its shipped record data/data_curve.json (notebook 08)."""

from __future__ import annotations

import numpy as np

from experiments import data_curve


def test_shift_right_moves_columns_and_fills_zeros():
    x = np.arange(2 * 3 * 5, dtype="float32").reshape(2, 3, 5, 1) + 1
    y = data_curve.shift_right(x, 2)
    np.testing.assert_array_equal(y[:, :, 2:], x[:, :, :3])
    assert not y[:, :, :2].any()
    assert data_curve.shift_right(x, 0) is x


def test_shipped_record_is_complete_and_its_summary_recomputes():
    import json
    from pathlib import Path

    record = json.loads((Path(__file__).resolve().parents[1] / "data" / "data_curve.json").read_text())
    assert record["command"].startswith("python -m experiments.data_curve")
    assert len(record["seeds"]) >= 3 and record["recipe"]["max_shift"] == 0
    sizes = sorted({r["train_images"] for r in record["runs"]})
    assert len(sizes) == len(record["sizes"])
    for kind in ("cnn", "vit"):
        for n in sizes:
            seeds = sorted(r["seed"] for r in record["runs"] if (r["model"], r["train_images"]) == (kind, n))
            assert seeds == sorted(record["seeds"]), (kind, n)
    assert data_curve.summarise(record["runs"]) == record["summary"]
    # The shift test: the largest size only, every shift, and 0 px is the plain test accuracy.
    for r in record["runs"]:
        assert ("shifted_test_accuracy" in r) == (r["train_images"] == max(sizes))
        if "shifted_test_accuracy" in r:
            assert [int(s) for s in r["shifted_test_accuracy"]] == list(data_curve.SHIFTS)
            assert r["shifted_test_accuracy"]["0"] == r["test_accuracy"]
