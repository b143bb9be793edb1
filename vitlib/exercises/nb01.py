"""Checkers for notebook 01, images as sequences.

- :func:`check_patchify`: ``patchify(images, patch_size)``, images (batch, H, W, C) ->
  patches (batch, tokens, patch_size*patch_size*C), row-major patch order, each patch
  flattened row by row with the channels last (the layout of :func:`vitlib.extract_patches`).
- :func:`check_conv_kernel_to_dense`: ``conv_kernel_to_dense(kernel)``, a Conv2D kernel
  (P, P, C, D) -> the Dense kernel (P*P*C, D) that computes the same patch embedding.
- :func:`check_num_tokens_and_cost`: ``num_tokens_and_cost(image_size, patch_size)`` ->
  ``(tokens, pairs)``: the patch tokens plus the class token, and the number of
  query-key pairs self-attention scores (tokens squared).
"""

from __future__ import annotations

import numpy as np

from ._core import Feedback, Mistake, check

# --------------------------------------------------------------------------------------
# Exercise 1: patchify
# --------------------------------------------------------------------------------------


def _grid(images, p):
    b, h, w, c = images.shape
    return b, h // p, w // p, c


def _patchify(images, patch_size):
    """Reference: (batch, H, W, C) -> (batch, tokens, P*P*C), row-major patches."""
    p = patch_size
    b, gh, gw, c = _grid(images, p)
    x = images.reshape(b, gh, p, gw, p, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, gh * gw, p * p * c)


def _patchify_column_major(images, patch_size):
    p = patch_size
    b, gh, gw, c = _grid(images, p)
    x = images.reshape(b, gh, p, gw, p, c).transpose(0, 3, 1, 2, 4, 5)  # columns of patches first
    return x.reshape(b, gh * gw, p * p * c)


def _patchify_transposed_pixels(images, patch_size):
    p = patch_size
    b, gh, gw, c = _grid(images, p)
    x = images.reshape(b, gh, p, gw, p, c).transpose(0, 1, 3, 4, 2, 5)  # pixel columns first
    return x.reshape(b, gh * gw, p * p * c)


def _patchify_channels_first(images, patch_size):
    p = patch_size
    b, gh, gw, c = _grid(images, p)
    x = images.reshape(b, gh, p, gw, p, c).transpose(0, 1, 3, 5, 2, 4)  # (C, P, P) in a patch
    return x.reshape(b, gh * gw, p * p * c)


def _patchify_no_transpose(images, patch_size):
    p = patch_size
    b, gh, gw, c = _grid(images, p)
    return images.reshape(b, gh * gw, p * p * c)  # strips of image rows, not squares


def _patchify_grid_kept(images, patch_size):
    b, gh, gw, _ = _grid(images, patch_size)
    return _patchify(images, patch_size).reshape(b, gh, gw, -1)


PATCHIFY_MISTAKES = (
    Mistake(
        "grid_not_flattened",
        _patchify_grid_kept,
        "the patches are right but still laid out as a grid (batch, H/P, W/P, P*P*C). A "
        "Transformer takes a sequence: reshape to (batch, tokens, P*P*C) with "
        "tokens = (H/P) * (W/P).",
    ),
    Mistake(
        "no_transpose",
        _patchify_no_transpose,
        "each of your 'patches' is a horizontal strip of whole image rows, not a square. "
        "A single reshape keeps the pixels in image-row order; reshape to "
        "(batch, H/P, P, W/P, P, C) first, then transpose so the two grid axes come before "
        "the two within-patch axes.",
    ),
    Mistake(
        "column_major_patches",
        _patchify_column_major,
        "the patches are right but in column-major order (down the first column of patches, "
        "then the next). Number them row by row, like reading text: patch 1 is the right "
        "neighbour of patch 0. Check the order of the grid axes in your transpose.",
    ),
    Mistake(
        "transposed_pixels",
        _patchify_transposed_pixels,
        "the patches are in the right order, but inside each patch the pixels are "
        "transposed (flattened column by column). Keep the within-patch axes as (row, column, "
        "channel): the transpose should be (0, 1, 3, 2, 4, 5).",
    ),
    Mistake(
        "channels_first",
        _patchify_channels_first,
        "each patch is flattened channels-first (all red values, then all green, ...). Keras "
        "images are channels-last, and the course flattens each patch as (row, column, "
        "channel) so that it matches a Conv2D kernel (P, P, C, D).",
    ),
)


def _patchify_case(rng):
    p = int(rng.integers(2, 5))
    gh, gw = int(rng.integers(2, 5)), int(rng.integers(2, 5))
    while gw == gh:  # a non-square grid catches swapped height and width
        gw = int(rng.integers(2, 5))
    b, c = int(rng.integers(1, 3)), int(rng.integers(2, 4))
    images = rng.standard_normal((b, gh * p, gw * p, c)).astype("float32")
    return images, p


def check_patchify(patchify, seed: int | None = None) -> Feedback:
    """Check ``patchify(images, patch_size)`` on random non-square images and patch sizes."""
    return check(patchify, _patchify, _patchify_case, PATCHIFY_MISTAKES,
                 title="patchify", seed=seed)


# --------------------------------------------------------------------------------------
# Exercise 2: conv_kernel_to_dense
# --------------------------------------------------------------------------------------


def _conv_to_dense(kernel):
    return kernel.reshape(-1, kernel.shape[-1])


CONV_MISTAKES = (
    Mistake(
        "transposed_output",
        lambda k: k.reshape(-1, k.shape[-1]).T,
        "your matrix is (D, P*P*C), the transpose of what is needed. A Keras Dense kernel "
        "is (inputs, outputs): tokens = patches @ kernel, so it must be (P*P*C, D).",
    ),
    Mistake(
        "channels_first",
        lambda k: k.transpose(2, 0, 1, 3).reshape(-1, k.shape[-1]),
        "you flattened the kernel channels-first (C, P, P). The patches are flattened as "
        "(row, column, channel), so the rows of the Dense kernel must follow the same order: "
        "the Conv2D kernel (P, P, C, D) is already in that order.",
    ),
    Mistake(
        "rows_columns_swapped",
        lambda k: k.transpose(1, 0, 2, 3).reshape(-1, k.shape[-1]),
        "you swapped the kernel's row and column axes, so each filter is transposed and would "
        "meet the wrong pixels. Keep the axes in the order (row, column, channel, output).",
    ),
)


def _conv_case(rng):
    p, c, d = int(rng.integers(2, 5)), int(rng.integers(2, 4)), int(rng.integers(2, 6))
    return (rng.standard_normal((p, p, c, d)).astype("float32"),)


def check_conv_kernel_to_dense(conv_kernel_to_dense, seed: int | None = None) -> Feedback:
    """Check ``conv_kernel_to_dense(kernel)``: (P, P, C, D) -> (P*P*C, D)."""
    return check(conv_kernel_to_dense, _conv_to_dense, _conv_case, CONV_MISTAKES,
                 title="conv_kernel_to_dense", seed=seed)


# --------------------------------------------------------------------------------------
# Exercise 3: num_tokens_and_cost
# --------------------------------------------------------------------------------------


def _tokens_and_cost(image_size, patch_size):
    n = (image_size // patch_size) ** 2 + 1
    return n, n * n


COST_MISTAKES = (
    Mistake(
        "forgot_class_token",
        lambda s, p: ((s // p) ** 2, (s // p) ** 4),
        "you counted the patches only. ViT prepends one class token to the sequence, so the "
        "encoder sees (H/P)^2 + 1 tokens.",
    ),
    Mistake(
        "one_side_only",
        lambda s, p: (s // p + 1, (s // p + 1) ** 2),
        "image_size // patch_size is the number of patches along ONE side; the grid has "
        "that many rows AND columns.",
    ),
    Mistake(
        "linear_cost",
        lambda s, p: ((s // p) ** 2 + 1, (s // p) ** 2 + 1),
        "the token count is right, but self-attention scores every query against every key: "
        "tokens x tokens pairs, not tokens.",
    ),
    Mistake(
        "pixels_per_patch",
        lambda s, p: (p * p + 1, (p * p + 1) ** 2),
        "you counted the pixels in one patch (P*P). The number of tokens is the number of "
        "patches, (image_size / patch_size)^2, plus the class token.",
    ),
)


def _cost_case(rng):
    p = int(rng.choice([2, 4, 7, 8, 14, 16, 32]))
    grid = int(rng.integers(2, 20))
    while grid == p:  # grid == patch would make 'pixels per patch' look right
        grid = int(rng.integers(2, 20))
    return grid * p, p


def _as_pair(result):
    """Accept any length-2 sequence (tuple, list, array) as ``(tokens, pairs)``."""
    if isinstance(result, (list, tuple, np.ndarray)) and np.shape(result) == (2,):
        return tuple(np.asarray(result).tolist())
    return result


def check_num_tokens_and_cost(num_tokens_and_cost, seed: int | None = None) -> Feedback:
    """Check ``num_tokens_and_cost(image_size, patch_size)`` -> (tokens, pairs), exactly.

    Any length-2 sequence is accepted (a tuple, a list or ``np.array([tokens, pairs])``).
    """
    def learner(image_size, patch_size):
        return _as_pair(num_tokens_and_cost(image_size, patch_size))

    return check(learner, _tokens_and_cost, _cost_case, COST_MISTAKES,
                 title="num_tokens_and_cost", seed=seed, atol=0, rtol=0)


__all__ = ["check_conv_kernel_to_dense", "check_num_tokens_and_cost", "check_patchify"]
