"""Checkers for notebook 01, images as sequences.

- :func:`check_patchify`: ``patchify(images, patch_size)``, images (batch, H, W, C) ->
  patches (batch, tokens, patch_size*patch_size*C), row-major patch order, each patch
  flattened row by row with the channels last (the layout of :func:`vitlib.extract_patches`).
- :func:`check_torch_kernel_to_dense` (transfer): ``torch_kernel_to_dense(weight)``, a PyTorch
  (timm) patch-embedding weight (D, C, P, P) -> the Dense kernel (P*P*C, D) whose rows follow
  patchify's (row, column, channel) order; the Keras answer of Section 3
  (``kernel.reshape(-1, D)``), a plain reshape, channels-first rows, a transposed result and
  swapped pixel axes each get their own hint.
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
- :func:`check_conv_reach_prediction` and :func:`check_attention_reach_prediction`
  (predict-then-run): ``prediction``, a whole number: how many stacked 5x5 convolutions (14), and
  how many self-attention layers (1), before the token of patch 0 of a 28x28 grid (a 224x224
  photo in 8x8 patches) depends on the opposite corner patch; both measured by stacking real
  Keras layers. The FAQ's 13, one layer per patch of distance, the 14x14 grid's answer and the
  grid side get their own hints.

The prediction checkers read None as "not answered yet".
"""

from __future__ import annotations

import numpy as np

from ._core import Feedback, Mistake, check, compare_prediction

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
# Exercise 2 (transfer): a PyTorch (timm) patch-embedding kernel as the Dense kernel E
# --------------------------------------------------------------------------------------


def _torch_to_dense(weight):
    """Reference: PyTorch's Conv2d weight (D, C, P, P) -> the Dense kernel (P*P*C, D) whose rows
    follow patchify's (row, column, channel) order."""
    return weight.transpose(2, 3, 1, 0).reshape(-1, weight.shape[0])


TORCH_MISTAKES = (
    Mistake(
        "keras_layout",
        lambda w: w.reshape(-1, w.shape[-1]),
        "you treated the weight as a Keras Conv2D kernel (P, P, C, D), as in Section 3 "
        "(`kernel.reshape(-1, D)`). A PyTorch (timm) weight is (D, C, P, P): the output axis comes "
        "first and the channels before the pixels. Move the axes to (row, column, channel, "
        "output) first, `weight.transpose(2, 3, 1, 0)`, then reshape to (P*P*C, D).",
    ),
    Mistake(
        "reshape_only",
        lambda w: w.reshape(-1, w.shape[0]),
        "the shape is right, but a reshape does not move axes: it cuts the weight's memory order "
        "(output, channel, row, column) into rows of D numbers, so every column mixes pieces of "
        "several filters. Move the axes with a transpose first, then reshape.",
    ),
    Mistake(
        "channels_first",
        lambda w: w.reshape(w.shape[0], -1).T,
        "each column is one filter, good, but its rows follow (channel, row, column), PyTorch's "
        "order. patchify flattens a patch as (row, column, channel), so the rows of the Dense "
        "kernel must follow that order: move the channel axis after the two pixel axes, "
        "`weight.transpose(2, 3, 1, 0)`.",
    ),
    Mistake(
        "transposed_output",
        lambda w: _torch_to_dense(w).T,
        "your matrix is (D, P*P*C), the transpose of what is needed. A Keras Dense kernel "
        "is (inputs, outputs): tokens = patches @ kernel, so it must be (P*P*C, D).",
    ),
    Mistake(
        "rows_columns_swapped",
        lambda w: w.transpose(3, 2, 1, 0).reshape(-1, w.shape[0]),
        "you swapped the row and column axes of each filter (PyTorch's last two axes are (row, "
        "column)), so each filter is transposed and would meet the wrong pixels. The axes must "
        "come out as (row, column, channel, output): `weight.transpose(2, 3, 1, 0)`.",
    ),
)


def _torch_case(rng):
    """Sizes chosen so that every mistake has its own shape or values: C != P, and D differs
    from P, C and P*P*C."""
    p = int(rng.integers(2, 5))
    c = int(rng.choice([v for v in (2, 3) if v != p]))
    d = int(rng.choice([v for v in (5, 6, 7) if v not in (p, c, p * p * c)]))
    return (rng.standard_normal((d, c, p, p)).astype("float32"),)


def check_torch_kernel_to_dense(torch_kernel_to_dense, seed: int | None = None) -> Feedback:
    """Check ``torch_kernel_to_dense(weight)``: PyTorch's (D, C, P, P) -> the Dense (P*P*C, D)."""
    return check(torch_kernel_to_dense, _torch_to_dense, _torch_case, TORCH_MISTAKES,
                 title="Exercise 2 (torch_kernel_to_dense)", seed=seed)


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
# Exercise 6 (predict-then-run): the reach of convolutions and of attention on a 28x28 grid
# --------------------------------------------------------------------------------------

REACH = {"image_size": 224, "patch_size": 8, "kernel": 5}  # 8x8 patches: a 28x28 grid


def measure_conv_reach(grid: int = 28, kernel: int = 5, max_layers: int = 100) -> int:
    """Stack ``kernel`` x ``kernel`` Keras Conv2D layers (padding "same") on a ``grid`` x ``grid``
    map until the output at patch 0 (top left) depends on the opposite corner patch; return the
    number of layers. The map is 0 except a 1 at the far corner and every weight is 1, so the
    output at patch 0 is non-zero exactly when the far corner is inside its receptive field
    (random weights could cancel by chance)."""
    import keras

    x = np.zeros((1, grid, grid, 1), "float32")
    x[0, -1, -1, 0] = 1.0  # the far corner: patch grid * grid - 1
    layers = 0
    while x[0, 0, 0, 0] == 0:
        if layers == max_layers:
            raise RuntimeError(f"patch 0 not reached after {max_layers} layers")
        conv = keras.layers.Conv2D(1, kernel, padding="same", use_bias=False,
                                   kernel_initializer="ones")
        x = keras.ops.convert_to_numpy(conv(x))
        layers += 1
    return layers


def measure_attention_reach(grid: int = 28, dim: int = 8, max_layers: int = 5) -> int:
    """Stack ``vitlib.MultiHeadSelfAttention`` layers (random weights) on ``grid * grid`` random
    tokens until the output of token 0 changes when only the last token changes; return the
    number of layers."""
    import keras

    from vitlib.attention import MultiHeadSelfAttention

    tokens = np.random.default_rng(0).standard_normal((1, grid * grid, dim)).astype("float32")
    changed = tokens.copy()
    changed[0, -1] += 1.0  # new content in the far corner's token only
    a, b, layers = tokens, changed, 0
    while np.all(keras.ops.convert_to_numpy(a)[0, 0] == keras.ops.convert_to_numpy(b)[0, 0]):
        if layers == max_layers:
            raise RuntimeError(f"token 0 unchanged after {max_layers} layers")
        layer = MultiHeadSelfAttention(num_heads=1)
        a, b, layers = layer(a), layer(b), layers + 1
    return layers


def check_conv_reach_prediction(prediction) -> Feedback:
    """Predicted number of stacked 5x5 convolutions before patch 0 of a 28x28 grid depends on the
    opposite corner (27 patches away in both directions): ceil(27 / 2) = 14, measured."""
    s, p, k = REACH["image_size"], REACH["patch_size"], REACH["kernel"]
    g = s // p
    measured = measure_conv_reach(g, k)
    step, far = k // 2, g - 1
    mistakes = [
        ("kept_faq", 13,
         f"13 is the FAQ's count, for 3x3 convolutions on the 14x14 grid (and also {far} / {step} "
         f"rounded down). Here the corners are {far} patches apart and a {k}x{k} window reaches "
         f"{step} patches further each layer: 13 layers reach 26, one short; 14 reach 28."),
        ("one_per_patch", far,
         f"{far} is the distance in patches: one layer per patch is the 3x3 rule. A {k}x{k} window "
         f"reaches {step} patches to each side, so each layer covers {step} patches of the "
         f"distance: {far} / {step} = {far / step:g}, rounded up."),
        ("doubled_faq", 26,
         "26 doubles the FAQ's 13 because the grid doubled. But 13 was for 3x3 windows, one "
         f"patch per layer; a {k}x{k} window covers {step} per layer. (And the corners are "
         f"{far} patches apart, not 26.)"),
        ("old_grid", 7,
         f"7 is the count for {k}x{k} convolutions on the FAQ's 14x14 grid (13 / {step}, rounded "
         f"up). With {p}x{p} patches the grid is {g}x{g}: the corners are {far} patches apart."),
        ("grid_side", g,
         f"{g} is the side of the grid; the corners are {g} - 1 = {far} patches apart, and a "
         f"{k}x{k} convolution covers {step} of them per layer."),
    ]
    why = (f"With {p}x{p} patches the 224x224 photo is a {g}x{g} grid; patch 0 and the opposite "
           f"corner are {far} patches apart in both directions. A {k}x{k} window reaches {step} "
           f"patches to each side, so the receptive field grows by {step} patches a layer: "
           f"{far} / {step} = {far / step:g}, rounded up to {-(-far // step)}.")
    return compare_prediction(prediction, measured, unit="layers", why=why, mistakes=mistakes,
                              title=f"Exercise 6 ({k}x{k} convolutions on a {g}x{g} grid)")


def check_attention_reach_prediction(prediction) -> Feedback:
    """Predicted number of self-attention layers before token 0 of a 28x28 grid depends on the
    opposite corner: 1, measured with random weights."""
    g = REACH["image_size"] // REACH["patch_size"]
    measured = measure_attention_reach(g)
    mistakes = [
        ("like_conv", 14,
         "14 is the count for 5x5 convolutions. Attention has no window: in one layer every "
         "query scores every key, so token 0 takes from the far corner at once."),
        ("kept_faq_conv", 13,
         "13 is the FAQ's count for 3x3 convolutions. Attention has no window: in one layer "
         "every query scores every key."),
        ("one_per_patch", g - 1,
         f"{g - 1} is the distance in patches. Attention does not move information one patch at "
         "a time: every query scores every key in every layer."),
        ("two", 2,
         "One layer is enough: every query scores every key, including the farthest one, and "
         "takes a share of its value."),
        ("zero", 0,
         "Before any attention layer, token 0 is patch 0 alone: the patch embedding is local "
         "(Step 6). One attention layer is needed, and enough."),
    ]
    why = (f"Attention has no window: every query scores all {g * g} keys of the {g}x{g} grid, "
           "however far, so one layer connects any two patches, whatever the patch size. What "
           "grows with the grid is the cost: (tokens)^2 pairs per layer, Section 2.")
    return compare_prediction(prediction, measured, unit="layer(s)",
                              why=why, mistakes=mistakes,
                              title=f"Exercise 6 (attention layers on a {g}x{g} grid)")


__all__ = ["check_attention_reach_prediction", "check_conv_reach_prediction",
           "check_embedding_params_prediction", "check_num_tokens_and_cost", "check_patchify",
           "check_patchify_rect", "check_torch_kernel_to_dense", "measure_attention_reach",
           "measure_conv_reach", "measure_embedding_params"]
