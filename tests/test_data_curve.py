"""experiments/data_curve.py (notebook 08; its record is not shipped yet)."""

from __future__ import annotations

import numpy as np

from experiments import data_curve


def test_shift_right_moves_columns_and_fills_zeros():
    x = np.arange(2 * 3 * 5, dtype="float32").reshape(2, 3, 5, 1) + 1
    y = data_curve.shift_right(x, 2)
    np.testing.assert_array_equal(y[:, :, 2:], x[:, :, :3])
    assert not y[:, :, :2].any()
    assert data_curve.shift_right(x, 0) is x
