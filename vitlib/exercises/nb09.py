"""Checkers for notebook 09 (pretraining and fine-tuning).

- :func:`check_query_heads`: the queries of every head from a checkpoint's ``query/kernel`` and
  ``query/bias`` arrays (the ``.npz`` layout of Google's ViT checkpoints).
- :func:`check_masked_mse`: the masked autoencoder's loss, the mean squared error over the
  MASKED patches only.

The references below are written again here in plain NumPy, independently of :mod:`vitlib`.
"""

from __future__ import annotations

import numpy as np

from ._core import Feedback, Mistake, check

# --- query_heads ------------------------------------------------------------------------------
# x: (tokens, D); kernel: (D, H, Dh); bias: (H, Dh) -> q: (tokens, H, Dh),
#   q[t, h, k] = sum_d x[t, d] * kernel[d, h, k] + bias[h, k]


def _query_heads(x, kernel, bias):
    d, h, k = kernel.shape
    return (x @ kernel.reshape(d, h * k)).reshape(len(x), h, k) + bias


def _qh_no_bias(x, kernel, bias):
    return _query_heads(x, kernel, np.zeros_like(bias))


def _qh_heads_first(x, kernel, bias):
    return np.transpose(_query_heads(x, kernel, bias), (1, 0, 2))  # (H, tokens, Dh)


def _qh_wrong_reshape(x, kernel, bias):
    d, h, k = kernel.shape
    flat = np.transpose(kernel, (0, 2, 1)).reshape(d, k * h)  # columns ordered (Dh, H)
    return (x @ flat).reshape(len(x), h, k) + bias


QUERY_HEADS_MISTAKES = (
    Mistake("no_bias", _qh_no_bias,
            "the values are right up to the bias: add `bias` (H, Dh), which broadcasts over the "
            "tokens."),
    Mistake("heads_first", _qh_heads_first,
            "right numbers, wrong order: return (tokens, heads, head_dim), the layout of "
            "`kernel`'s last two axes (for the attention scores you would transpose later)."),
    Mistake("wrong_reshape", _qh_wrong_reshape,
            "the kernel's columns were mixed up: reshape `kernel` (D, H, Dh) to (D, H * Dh) as it "
            "is (row-major: head by head), or use np.einsum('td,dhk->thk', x, kernel)."),
)


def _qh_case(rng):
    d, h = int(rng.choice([8, 12, 16])), int(rng.choice([2, 4]))
    tokens = int(rng.integers(3, 9))
    return (rng.normal(size=(tokens, d)), rng.normal(size=(d, h, d // h)),
            rng.normal(size=(h, d // h)))


def check_query_heads(fn, cases: int = 5, seed: int | None = None) -> Feedback:
    """Check ``fn(x, kernel, bias) -> q`` with x (tokens, D), kernel (D, H, Dh), bias (H, Dh)."""
    return check(fn, _query_heads, _qh_case, QUERY_HEADS_MISTAKES, title="query_heads",
                 cases=cases, seed=seed)


# --- masked_mse -------------------------------------------------------------------------------
# target, predicted: (patches, values); mask: (patches,) with 1 = masked (hidden from the
# encoder), 0 = visible. Loss = mean over the masked patches of the per-patch mean squared error.


def _masked_mse(target, predicted, mask):
    per_patch = np.mean((predicted - target) ** 2, axis=-1)
    return np.sum(per_patch * mask) / np.sum(mask)


def _mse_all(target, predicted, mask):
    return np.mean((predicted - target) ** 2)


def _mse_visible(target, predicted, mask):
    return _masked_mse(target, predicted, 1 - mask)


def _mse_sum(target, predicted, mask):
    return np.sum(np.mean((predicted - target) ** 2, axis=-1) * mask)


def _mse_divided_by_all(target, predicted, mask):
    return np.sum(np.mean((predicted - target) ** 2, axis=-1) * mask) / len(mask)


MASKED_MSE_MISTAKES = (
    Mistake("all_patches", _mse_all,
            "you averaged over every patch. MAE's loss counts only the MASKED patches (mask == 1): "
            "the visible ones were given to the encoder, so copying them is no achievement."),
    Mistake("visible", _mse_visible,
            "you averaged over the VISIBLE patches: in this exercise mask == 1 means masked "
            "(hidden), the patches the decoder must guess."),
    Mistake("sum", _mse_sum,
            "you summed the masked patches' errors: divide by the number of masked patches, "
            "mask.sum(), to get a mean."),
    Mistake("divided_by_all", _mse_divided_by_all,
            "you divided the masked patches' summed error by the number of ALL patches: divide "
            "by the number of masked patches, mask.sum()."),
)


def _mse_case(rng):
    n, values = int(rng.integers(8, 17)), int(rng.choice([4, 16]))
    mask = np.zeros(n)
    mask[rng.choice(n, size=int(rng.integers(2, n - 1)), replace=False)] = 1.0
    return rng.normal(size=(n, values)), rng.normal(size=(n, values)), mask


def check_masked_mse(fn, cases: int = 5, seed: int | None = None) -> Feedback:
    """Check ``fn(target, predicted, mask) -> float``; target/predicted (patches, values),
    mask (patches,) with 1 = masked."""
    return check(fn, _masked_mse, _mse_case, MASKED_MSE_MISTAKES, title="masked_mse",
                 cases=cases, seed=seed)
