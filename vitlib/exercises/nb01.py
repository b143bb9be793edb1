"""Checkers for notebook 01, images as sequences.

- :func:`check_patchify`: ``patchify(images, patch_size)``, images (batch, H, W, C) ->
  patches (batch, tokens, patch_size*patch_size*C), row-major patch order, each patch
  flattened row by row with the channels last (the layout of :func:`vitlib.extract_patches`).
- :func:`check_conv_kernel_to_dense`: ``conv_kernel_to_dense(kernel)``, a Conv2D kernel
  (P, P, C, D) -> the Dense kernel (P*P*C, D) that computes the same patch embedding.
- :func:`check_num_tokens_and_cost`: ``num_tokens_and_cost(image_size, patch_size)`` ->
  ``(tokens, pairs)``: the patch tokens plus the class token, and the number of
  query-key pairs self-attention scores (tokens squared).
- :func:`check_embedding_params_prediction` (predict-then-run): ``prediction``, a number: the
  parameters of ``vitlib.PatchEmbedding(4, 192)`` on 32x32 RGB images, compared with the built
  layer's count (9,408); known wrong counts (no bias, no channels, one matrix per patch, the
  whole image, the class token added) get their own hint.
- :func:`check_patchify_rect` (transfer): ``patchify_rect(images, patch_h, patch_w)``, images
  (batch, H, W, C) -> (batch, (H/patch_h)*(W/patch_w), patch_h*patch_w*C): rectangular patches,
  row-major, each flattened (row, column, channel); patch_h != patch_w in every case, so
  Exercise 1's square ``patchify`` fails.
- :func:`check_locality_answer` (interpret): ``answer``, one letter 'a'-'d', about the FAQ's
  measurement (one attention layer vs stacked 3x3 convolutions); right: 'c'.

The prediction and multiple-choice checkers read None as "not answered yet".
"""

from __future__ import annotations

import numpy as np

from ._core import Feedback, Mistake, check, choose, compare_prediction

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




# --------------------------------------------------------------------------------------
# Exercise 4 (predict-then-run): the patch embedding's parameters for a 32x32 RGB image
# --------------------------------------------------------------------------------------

CIFAR = {"image_size": 32, "channels": 3, "patch_size": 4, "dim": 192}


def measure_embedding_params(image_size: int = 32, channels: int = 3, patch_size: int = 4,
                             dim: int = 192) -> int:
    """Build ``vitlib.PatchEmbedding(patch_size, dim)`` on one (image_size, image_size,
    channels) image and count its parameters (the experiment the prediction is compared with)."""
    import keras

    from vitlib.patches import PatchEmbedding

    layer = PatchEmbedding(patch_size, dim)
    layer(keras.ops.zeros((1, image_size, image_size, channels)))
    return int(layer.count_params())


def _embedding_mistakes(s: int, c: int, p: int, d: int) -> list[tuple[str, float, str]]:
    n = (s // p) ** 2
    return [
        ("no_bias", p * p * c * d,
         "That is the matrix E alone. Keras' Conv2D (and Dense) layer also has one bias per "
         "output, D more parameters."),
        ("no_channels", p * p * d + d,
         f"You counted a grey patch (P*P = {p * p} values). An RGB patch has P*P*C = {p * p * c} "
         "values, and E has one row per value."),
        ("one_matrix_per_patch", n * (p * p * c * d + d),
         f"You gave each of the {n} patches its own matrix. Every patch is multiplied by the SAME "
         "E (that is what makes it a convolution), so the count does not depend on how many "
         "patches there are."),
        ("one_matrix_per_patch_no_bias", n * p * p * c * d,
         f"You gave each of the {n} patches its own matrix (and left out the bias). Every patch "
         "is multiplied by the SAME E, so the count does not depend on how many patches there "
         "are."),
        ("whole_image", s * s * c * d + d,
         "That is a Dense layer on the whole flattened image. The patch embedding only sees one "
         f"P x P x C patch at a time: E is (P*P*C, D) = ({p * p * c}, {d})."),
        ("with_class_token", p * p * c * d + d + d,
         "You added the class token (D more). It is a separate layer (ClassToken, Section 4); "
         "the question asks for the patch embedding alone."),
    ]


def check_embedding_params_prediction(prediction) -> Feedback:
    """Compare a predicted parameter count of ``vitlib.PatchEmbedding(4, 192)`` on 32x32 RGB
    images (E is 48 x 192, plus 192 biases: 9,408) with the count of the built layer."""
    s, c, p, d = CIFAR["image_size"], CIFAR["channels"], CIFAR["patch_size"], CIFAR["dim"]
    measured = measure_embedding_params(s, c, p, d)
    why = (f"E has one row per value of a flattened {p}x{p}x{c} patch ({p * p * c}) and one "
           f"column per output ({d}): {p * p * c} x {d} = {p * p * c * d:,}, plus {d} biases. "
           f"The {(s // p) ** 2} patches all share it, so the count would be the same for a "
           "224x224 image.")
    return compare_prediction(prediction, measured, title="Exercise 4 (patch embedding parameters)",
                              unit="parameters", why=why, mistakes=_embedding_mistakes(s, c, p, d))


# --------------------------------------------------------------------------------------
# Exercise 5 (transfer): rectangular patches
# --------------------------------------------------------------------------------------


def _patchify_rect(images, patch_h, patch_w):
    """Reference: (batch, H, W, C) -> (batch, (H/ph)*(W/pw), ph*pw*C), row-major patches."""
    b, h, w, c = images.shape
    x = images.reshape(b, h // patch_h, patch_h, w // patch_w, patch_w, c)
    return x.transpose(0, 1, 3, 2, 4, 5).reshape(b, (h // patch_h) * (w // patch_w), -1)


def _rect_swapped_sides(images, patch_h, patch_w):
    return _patchify_rect(images, patch_w, patch_h)


def _rect_square(images, patch_h, patch_w):
    return _patchify(images, patch_h)


def _rect_column_major(images, patch_h, patch_w):
    b, h, w, c = images.shape
    x = images.reshape(b, h // patch_h, patch_h, w // patch_w, patch_w, c)
    return x.transpose(0, 3, 1, 2, 4, 5).reshape(b, (h // patch_h) * (w // patch_w), -1)


def _rect_transposed_pixels(images, patch_h, patch_w):
    b, h, w, c = images.shape
    x = images.reshape(b, h // patch_h, patch_h, w // patch_w, patch_w, c)
    return x.transpose(0, 1, 3, 4, 2, 5).reshape(b, (h // patch_h) * (w // patch_w), -1)


def _rect_no_transpose(images, patch_h, patch_w):
    b, _, _, c = images.shape
    return images.reshape(b, -1, patch_h * patch_w * c)


RECT_MISTAKES = (
    Mistake(
        "square_patches",
        _rect_square,
        "you cut square patches of patch_h x patch_h pixels (Exercise 1's patchify with one "
        "size). Here a patch is patch_h pixels high and patch_w pixels wide: split the height "
        "by patch_h and the width by patch_w.",
    ),
    Mistake(
        "swapped_sides",
        _rect_swapped_sides,
        "your patches are patch_w high and patch_h wide: height and width are swapped. The "
        "image is (batch, H, W, C): axis 1 is the height, so reshape it to (H/patch_h, "
        "patch_h) and axis 2 to (W/patch_w, patch_w).",
    ),
    Mistake(
        "column_major_patches",
        _rect_column_major,
        "the patches are right but in column-major order. Number them row by row, like "
        "reading text: the grid axes go (patch row, patch column) in the transpose.",
    ),
    Mistake(
        "transposed_pixels",
        _rect_transposed_pixels,
        "the patches are in the right order, but inside each patch the pixels are flattened "
        "column by column. Keep the within-patch axes as (row, column, channel): the "
        "transpose is (0, 1, 3, 2, 4, 5).",
    ),
    Mistake(
        "no_transpose",
        _rect_no_transpose,
        "each 'patch' is a run of consecutive pixels in memory (parts of image rows), not a "
        "rectangle. Reshape to (batch, H/patch_h, patch_h, W/patch_w, patch_w, C), then "
        "transpose the two grid axes in front.",
    ),
)


def _rect_case(rng):
    """Height and width multiples of both patch sides, so that the mistakes run too."""
    ph, pw = (int(v) for v in rng.choice([2, 3, 4], size=2, replace=False))
    unit = ph * pw
    gh, gw = int(rng.integers(1, 3)), int(rng.integers(2, 4))
    b, c = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    images = rng.standard_normal((b, gh * unit, gw * unit, c)).astype("float32")
    return images, ph, pw


def check_patchify_rect(patchify_rect, seed: int | None = None) -> Feedback:
    """Check ``patchify_rect(images, patch_h, patch_w)`` on random images with patch_h != patch_w."""
    return check(patchify_rect, _patchify_rect, _rect_case, RECT_MISTAKES,
                 title="Exercise 5 (patchify_rect)", seed=seed)


# --------------------------------------------------------------------------------------
# Exercise 6 (interpret): what the locality measurement shows
# --------------------------------------------------------------------------------------

LOCALITY_OPTIONS = {
    "a": ("The layers here have RANDOM weights, so the measurement says nothing about what a "
          "trained ViT does. It shows what one attention layer CAN do: every token may take "
          "from every patch. Whether trained heads do look far is measured in notebook 07 "
          "(mean attention distance)."),
    "b": ("Reach does not come from the patch size: at P = 16 a 3x3 convolution on the token "
          "grid still needed 13 layers to connect patch 0 with patch 195, while one attention "
          "layer connected them at once. Attention links every pair of tokens whatever P is; P "
          "only sets how finely the image is cut (and how many tokens there are)."),
    "c": "",  # the right answer
    "d": ("The measurement is about reach, not accuracy. A CNN's locality is a useful prior "
          "(inductive bias) with little data: notebook 08 measures the CNN ahead of the ViT on "
          "Fashion-MNIST at the same size."),
}


def check_locality_answer(answer) -> Feedback:
    """The FAQ's measurement: after one attention layer, the token of patch 0 changed when only
    patch 195 changed; after one 3x3 convolution it did not, and 13 stacked 3x3 convolutions were
    needed. Right answer: (c)."""
    return choose(answer, options=LOCALITY_OPTIONS, correct="c", title="Exercise 6 (locality)",
                  why="One attention layer can move information between any two patches; a 3x3 "
                      "convolution moves it one patch per layer, so 13 layers to cross the 14x14 "
                      "grid. With random weights this shows the reach, not what a trained model "
                      "uses: notebook 07 measures that.")


__all__ = ["check_conv_kernel_to_dense", "check_embedding_params_prediction",
           "check_locality_answer", "check_num_tokens_and_cost", "check_patchify",
           "check_patchify_rect", "measure_embedding_params"]
