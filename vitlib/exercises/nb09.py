"""Checkers for notebook 09 (pretraining and fine-tuning).

- :func:`check_query_heads`: the queries of every head from a checkpoint's ``query/kernel`` and
  ``query/bias`` arrays (the ``.npz`` layout of Google's ViT checkpoints).
- :func:`check_masked_mse`: the masked autoencoder's loss, the mean squared error over the
  MASKED patches only.
- :func:`check_visible_tokens` (predict-then-run): ``prediction``, a whole number: the tokens the
  MAE's encoder processes per image at mask ratio 0.9 (class token included); the checker runs
  ``mae.encode`` on one image and counts them.
- :func:`check_resize_positions` (transfer): ``fn(table, old_grid, new_grid)``, a position
  embedding (1, 1 + rows*cols, D) for a NON-square grid resized bilinearly to (R, C), the class
  token's row kept first -> (1, 1 + R*C, D).
- :func:`check_digits_answer` (interpret): a letter, what the digits record (Step 3) says read
  seed by seed (fine-tuning minus scratch after 1,000 steps); each wrong letter gets its own
  explanation.
- :func:`check_mae_answer` (interpret): a letter, what the shipped MAE's training loss per epoch
  (Step 4) says.

The references below are written again here in plain NumPy, independently of :mod:`vitlib`.
"""

from __future__ import annotations

import numpy as np

from ._core import Feedback, Mistake, check, choose, compare_prediction

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


# --- visible tokens (predict-then-run) ---------------------------------------------------------
# The learner predicts how many tokens the MAE's encoder processes per image at mask_ratio 0.9;
# the checker runs the encoder and counts them.

PREDICT_MASK_RATIO = 0.9


def check_visible_tokens(prediction, mae, images, mask_ratio: float = PREDICT_MASK_RATIO) -> Feedback:
    """Run ``mae.encode(images[:1], mask_ratio)`` and compare its number of tokens (class token
    included) with ``prediction`` (a whole number)."""
    tokens, mask, _ = mae.encode(images[:1], mask_ratio=mask_ratio, seed=0)
    measured, patches = int(tokens.shape[1]), int(mask.shape[1])
    visible = measured - 1  # the class token is not a patch
    hidden = patches - visible
    exact = patches * (1 - mask_ratio)
    why = (f"{patches} patches x (1 - {mask_ratio:g}) = {exact:.1f}, rounded DOWN as in MAE's code: "
           f"{visible} visible patches, plus the class token = {measured} tokens. The encoder's "
           f"attention then works on {measured} tokens instead of {patches + 1}: about "
           f"{(measured / (patches + 1)) ** 2:.0%} of the pairs, which is why MAE pretraining is cheap.")
    mistakes = [
        ("no_class_token", visible,
         f"That is the number of visible PATCHES. The encoder also gets the class token: "
         f"{visible} + 1 = {measured} tokens."),
        ("rounded_up", int(np.ceil(exact)) + 1,
         f"There are no {exact:.1f} patches; MAE's code rounds DOWN, int({exact:.1f}) = "
         f"{visible} (`vitlib.mae.num_visible`), plus the class token."),
        ("hidden", hidden,
         f"That is the number of HIDDEN patches. The encoder never sees them: it gets the "
         f"{visible} visible ones (plus the class token); only the decoder gets mask tokens in their place."),
        ("hidden_plus_class", hidden + 1,
         f"You counted the {hidden} HIDDEN patches plus the class token. The encoder gets the "
         f"{visible} VISIBLE ones (plus the class token)."),
        ("all_patches", patches + 1,
         "That is every patch plus the class token, as in a classifier. In MAE the hidden patches "
         "are removed BEFORE the encoder (Step 4), which is what makes pretraining cheap."),
    ]
    mistakes = [m for m in mistakes if m[1] != measured]
    return compare_prediction(prediction, measured, title="visible tokens", unit="tokens",
                              why=why, mistakes=mistakes)


# --- resize_positions (transfer: a non-square grid) --------------------------------------------
# table (1, 1 + rows * cols, D): the class token's row, then the grid row by row; old_grid
# (rows, cols), new_grid (new_rows, new_cols) -> (1, 1 + new_rows * new_cols, D): the class row
# unchanged, the grid resized bilinearly with half-pixel centres (ops.image.resize, TF/JAX).


def _axis_weights(n_in, n_out, align_corners=False):
    """(n_out, n_in) linear-interpolation weights along one axis."""
    out = np.arange(n_out)
    if align_corners:
        src = out * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(n_out)
    else:
        src = (out + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0, n_in - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    w = np.zeros((n_out, n_in))
    np.add.at(w, (out, lo), 1 - frac)
    np.add.at(w, (out, hi), frac)
    return w


def _nearest_weights(n_in, n_out):
    src = np.minimum(np.floor((np.arange(n_out) + 0.5) * (n_in / n_out)).astype(int), n_in - 1)
    w = np.zeros((n_out, n_in))
    w[np.arange(n_out), src] = 1.0
    return w


def _resize_grid(grid, new_grid, weights=_axis_weights):
    rows, cols = new_grid
    return np.einsum("ri,cj,ijd->rcd", weights(grid.shape[0], rows), weights(grid.shape[1], cols),
                     grid)


def _resize(table, old_grid, new_grid, weights=_axis_weights, swap_old=False, swap_new=False,
            class_row="first"):
    table = np.asarray(table, dtype=np.float64)
    rows, cols = old_grid
    new_rows, new_cols = new_grid
    d = table.shape[-1]
    if swap_old:  # read the grid as (cols, rows) and resize it as such
        grid = table[0, 1:].reshape(cols, rows, d)
        resized = _resize_grid(grid, (new_cols, new_rows), weights)
    else:
        grid = table[0, 1:].reshape(rows, cols, d)
        resized = _resize_grid(grid, (new_cols, new_rows) if swap_new else (new_rows, new_cols),
                               weights)
    resized = resized.reshape(1, -1, d)
    cls = table[:, :1]
    if class_row == "none":
        return resized
    if class_row == "last":
        return np.concatenate([resized, cls], axis=1)
    return np.concatenate([cls, resized], axis=1)


def _ref_resize(table, old_grid, new_grid):
    return _resize(table, old_grid, new_grid)


RESIZE_MISTAKES = (
    Mistake("no_class_token", lambda t, o, n: _resize(t, o, n, class_row="none"),
            "the grid is right, but the class token's row is gone: keep `table[:, :1]` unchanged "
            "and put it back in FRONT of the resized grid (it has no place on the grid)."),
    Mistake("class_token_last", lambda t, o, n: _resize(t, o, n, class_row="last"),
            "the class token's row is at the end: it comes FIRST, as in the original table."),
    Mistake("rows_cols_swapped", lambda t, o, n: _resize(t, o, n, swap_old=True),
            "you read the grid as (cols, rows). The table lists the patches row by row (notebook "
            "01), so reshape the grid part to (1, rows, cols, D), rows first."),
    Mistake("new_grid_swapped", lambda t, o, n: _resize(t, o, n, swap_new=True),
            "you resized to (new_cols, new_rows): `ops.image.resize` takes (height, width), that "
            "is (new_rows, new_cols). Image libraries that take (width, height) make this slip easy."),
    Mistake("nearest", lambda t, o, n: _resize(t, o, n, weights=_nearest_weights),
            "you copied the nearest old position. The ViT paper interpolates (bilinear): "
            "interpolation=\"bilinear\"."),
    Mistake("align_corners", lambda t, o, n: _resize(
        t, o, n, weights=lambda a, b: _axis_weights(a, b, align_corners=True)),
            "your interpolation puts the grids' corner positions on each other (align_corners, "
            "e.g. scipy.ndimage.zoom). Use keras.ops.image.resize(..., interpolation=\"bilinear\"), "
            "which samples at the centres of the new cells, as ViT's code does."),
)


def _resize_case(rng):
    while True:
        rows, cols = int(rng.integers(2, 7)), int(rng.integers(2, 7))
        new_rows, new_cols = int(rng.integers(2, 11)), int(rng.integers(2, 11))
        if rows != cols and new_rows != new_cols and (new_rows, new_cols) != (rows, cols):
            break
    d = int(rng.choice([3, 8]))
    return (rng.normal(size=(1, 1 + rows * cols, d)).astype("float32"), (rows, cols),
            (new_rows, new_cols))


def check_resize_positions(fn, cases: int = 5, seed: int | None = None) -> Feedback:
    """Check ``fn(table (1, 1 + rows*cols, D), old_grid (rows, cols), new_grid (R, C))
    -> (1, 1 + R*C, D)``: the class row kept, the grid resized bilinearly (half-pixel centres)."""
    def learner(table, old_grid, new_grid):
        out = fn(table, old_grid, new_grid)
        return None if out is None else np.asarray(out)  # a Keras tensor becomes NumPy
    return check(learner, _ref_resize, _resize_case, RESIZE_MISTAKES, title="resize_positions",
                 cases=cases, atol=1e-4, rtol=1e-4, seed=seed)


# --- interpret: the digits measurement, seed by seed --------------------------------------------
# The record (data/digits_transfer.json), test accuracy on 1,297 digits, seeds 0-4:
#   pixels        0.9453 0.9437 0.9437 0.9460 0.9514
#   scratch (40)  0.1974 0.0979 0.3015 0.1072 0.4302
#   scratch_long  0.9483 0.9437 0.9638 0.9668 0.9630
#   full_long     0.9653 0.9692 0.9653 0.9684 0.9692
# full_long - scratch_long: +22, +33, +2, +2, +8 test digits.

DIGITS_OPTIONS = {
    "a": ("'About one point' is the MEAN gain (+0.010). Seed by seed it ranges from +0.002 (2 of "
          "1,297 digits, seeds 2 and 3) to +0.025 (33 digits, seed 1): far from one point with "
          "every seed. A mean can hide very different seeds; that is why the zoom joins each seed."),
    "b": "",
    "c": ("After 40 steps seed 4 was the best from scratch (0.430), but after 1,000 steps seed 3 "
          "is (0.967), and seed 4 (0.963) is third. How a run starts says little about where it "
          "ends, which is why a 40-step result is a training budget, not a verdict."),
    "d": ("The first half is true (fine-tuning's worst seed, 0.965, is below scratch's best, "
          "0.967), but comparing the best of one with the worst of the other mixes seeds. With "
          "the same seed (same head start, same batches) fine-tuning is ahead every time, by "
          "+0.002 to +0.025."),
}
DIGITS_WHY = ("Fine-tuning minus scratch after 1,000 steps, seed by seed: +22, +33, +2, +2 and +8 of "
              "the 1,297 test digits. The two large gains are on seeds 0 and 1, where scratch ended "
              "lowest (0.948 and 0.944, level with the pixels' 0.945 and 0.944); on seeds 2 and 3, where scratch "
              "reached 0.964 and 0.967, pretraining added 2 digits. Here its final gain is mostly "
              "protection against an unlucky run (the stability of Step 3); five seeds show a "
              "pattern, not a law.")


def check_digits_answer(answer) -> Feedback:
    """Multiple choice on the digits record read seed by seed (5 seeds); the right answer is
    ``"b"``."""
    return choose(answer, options=DIGITS_OPTIONS, correct="b", why=DIGITS_WHY,
                  title="What pretraining bought on digits, seed by seed")


# --- interpret: the MAE's training loss per epoch -------------------------------------------------
# The record (data/mae_fashion_small.json): 0.2123, 0.0495, 0.0418, 0.0382, 0.0359, 0.0340,
# 0.0328, 0.0324; masked MSE on 512 test images: 0.031 (class mean 0.052, mean image 0.088).

MAE_OPTIONS = {
    "a": ("After epoch 2 the loss still fell from 0.0495 to 0.0324, another third off. And 0.0495 "
          "is about what the mean image of the garment's class gives on test images (0.052); the "
          "8-epoch MAE's 0.031 is well below that. The big first drop is the random start "
          "(epoch 1's mean includes it), not the end of learning."),
    "b": "",
    "c": ("Overfitting shows as a test error well ABOVE the training loss: the model learned its "
          "training images, not images in general. Here the test error (0.031) is no higher than "
          "the training loss (0.032): what the MAE learned carries over to images it never saw."),
    "d": ("A loss is not a sharpness. Epoch 1's mean includes the random start, so the 6.5-fold "
          "drop mostly says the model stopped painting noise; and a mean squared error rewards "
          "the average of the plausible answers, so the reconstructions stay blurry (Step 4's "
          "figure)."),
}
MAE_WHY = ("The loss fell in every epoch, by 0.16 in the second and by 0.0004 in the last: most of "
           "the drop is behind it, but it has not stopped. More epochs would lower it a little (He "
           "et al. pretrain for 800 to 1,600 epochs); the course stopped at 8 (20 minutes on a CPU). "
           "And the test error (0.031) is no higher than the training loss: no sign of overfitting.")


def check_mae_answer(answer) -> Feedback:
    """Multiple choice on the MAE's training loss per epoch; the right answer is ``"b"``."""
    return choose(answer, options=MAE_OPTIONS, correct="b", why=MAE_WHY,
                  title="Reading the MAE's training loss")
