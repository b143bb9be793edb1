"""Checkers for notebook 08 (ViT vs CNN).

- :func:`check_shift_prediction` (predict-then-run): ``prediction``, a fraction in [0, 1], the
  ViT's test accuracy (mean of the seeds) on test images shifted right by 2 px, written before the
  shift test is shown; compared with the shipped record ``data/data_curve.json`` (passed as
  ``record``), right within 0.1; known slips: no loss at all (the 0 px accuracy), chance (0.1), a
  percentage instead of a fraction.
- :func:`check_receptive_field`: ``fn(layers) -> int``, the receptive field (受容野) of a stack of
  convolutions and poolings.
- :func:`check_receptive_field_prediction` (predict-then-run): ``prediction``, a whole number of
  pixels, the receptive field of ``small_cnn`` with one more block (2x2 pooling, 3x3 convolution).
  The checker measures it: a 1-D stack of Keras convolutions with all-ones kernels and the same
  sizes and strides, each input pixel nudged in turn (38 px; exact). Known slips: 21 (strides
  ignored), 26 (the pooling forgotten), 30 (the jump not doubled by the new pooling), 28 (capped
  at the image), 36 (the size doubled).
- :func:`check_cnn_params`: ``fn(widths, kernel_size, in_channels, num_classes) -> int``, the
  parameter count of a plain Conv-BatchNorm-ReLU CNN, by formula.
- :func:`check_data_curve_answer` (interpret): ``answer``, a letter: which one extra set of runs
  would separate "more data" from "more steps" in Step 5's same-epochs data curve (the same
  number of steps at every size, "c"); every wrong letter is explained.

The references below are written again here in plain Python, independently of :mod:`vitlib`.
"""

from __future__ import annotations

import numpy as np

from ._core import Feedback, Mistake, check, choose, compare_prediction

# --- receptive_field -----------------------------------------------------------------------
# layers: a list of (kernel_size, stride), first layer first. One output unit of the last layer
# sees r x r input pixels. Going up one layer of kernel k adds (k - 1) steps of the current
# "jump" j (the distance, in input pixels, between neighbouring units of the layer below):
#   r = 1, j = 1;  for (k, s): r += (k - 1) * j;  j *= s


def _receptive_field(layers):
    r, j = 1, 1
    for k, s in layers:
        r += (k - 1) * j
        j *= s
    return r


def _rf_no_jump(layers):
    return 1 + sum(k - 1 for k, _ in layers)


def _rf_sum_kernels(layers):
    return sum(k for k, _ in layers)


def _rf_product(layers):
    return int(np.prod([k for k, _ in layers]))


def _rf_jump_too_early(layers):
    r, j = 1, 1
    for k, s in layers:
        j *= s
        r += (k - 1) * j
    return r


RECEPTIVE_FIELD_MISTAKES = (
    Mistake("no_jump", _rf_no_jump,
            "you added (k - 1) for every layer but ignored the strides. After a layer of stride s, "
            "neighbouring units are s times further apart in the input, so each later layer adds "
            "(k - 1) * jump, where jump is the product of the strides BELOW it."),
    Mistake("sum_kernels", _rf_sum_kernels,
            "you added the kernel sizes. Two stacked 3x3 convolutions see 5x5 pixels, not 6x6: the "
            "windows overlap, so each layer adds (k - 1) * jump to a start of 1."),
    Mistake("product", _rf_product,
            "you multiplied the kernel sizes. The receptive field grows by adding: each layer adds "
            "(k - 1) * jump, with jump the product of the strides of the layers below it."),
    Mistake("jump_too_early", _rf_jump_too_early,
            "you multiplied the jump by the layer's own stride before adding its (k - 1) * jump. "
            "A layer's stride spreads out the layers ABOVE it, not itself: add first, then "
            "jump *= stride."),
)


def _rf_case(rng):
    n = int(rng.integers(2, 6))
    kernels = rng.choice([2, 3, 5, 7], size=n)
    strides = rng.choice([1, 2], size=n)
    strides[int(rng.integers(0, n - 1))] = 2  # at least one stride below the top layer
    return ([(int(k), int(s)) for k, s in zip(kernels, strides, strict=True)],)


def check_receptive_field(fn, cases: int = 5, seed: int | None = None) -> Feedback:
    """Check ``fn(layers) -> int``, ``layers`` a list of ``(kernel_size, stride)``."""
    return check(fn, _receptive_field, _rf_case, RECEPTIVE_FIELD_MISTAKES,
                 title="receptive_field", cases=cases, atol=0, rtol=0, seed=seed)


# --- cnn_params ----------------------------------------------------------------------------
# A plain CNN like vitlib.cnn.small_cnn: for each width c_i, Conv2D(k x k, no bias) from c_{i-1}
# to c_i channels, then BatchNormalization (gamma, beta, moving mean, moving variance: 4 c_i),
# ReLU (and pooling: no parameters); then global average pooling and Dense(c_last -> classes).


def _cnn_params(widths, kernel_size, in_channels, num_classes, conv=None, bn=4, head_bias=True):
    conv = conv or (lambda k, a, b: k * k * a * b)
    channels = [in_channels, *widths]
    total = sum(conv(kernel_size, a, b) + bn * b for a, b in zip(channels[:-1], channels[1:], strict=True))
    return total + widths[-1] * num_classes + (num_classes if head_bias else 0)


def _params(widths, kernel_size, in_channels, num_classes):
    return _cnn_params(widths, kernel_size, in_channels, num_classes)


CNN_PARAMS_MISTAKES = (
    Mistake("conv_bias",
            lambda w, k, c, n: _cnn_params(w, k, c, n, conv=lambda k, a, b: k * k * a * b + b),
            "you gave every convolution a bias. These have use_bias=False: BatchNorm's shift beta "
            "right after it would make a bias redundant."),
    Mistake("bn_trainable_only", lambda w, k, c, n: _cnn_params(w, k, c, n, bn=2),
            "you counted 2 parameters per BatchNorm channel (gamma, beta). count_params() also "
            "counts the moving mean and moving variance (not trained, but stored): 4 per channel."),
    Mistake("no_batchnorm", lambda w, k, c, n: _cnn_params(w, k, c, n, bn=0),
            "you forgot the BatchNorm layers: 4 numbers per channel (gamma, beta, moving mean, "
            "moving variance)."),
    Mistake("kernel_not_squared",
            lambda w, k, c, n: _cnn_params(w, k, c, n, conv=lambda k, a, b: k * a * b),
            "a k x k kernel has k * k weights per input and output channel: "
            "k * k * c_in * c_out for the convolution, not k * c_in * c_out."),
    Mistake("no_input_channels",
            lambda w, k, c, n: _cnn_params(w, k, c, n, conv=lambda k, a, b: k * k * b),
            "each filter spans ALL input channels: the convolution has k * k * c_in * c_out "
            "weights, not k * k * c_out."),
    Mistake("no_head_bias", lambda w, k, c, n: _cnn_params(w, k, c, n, head_bias=False),
            "the Dense head has a bias too: widths[-1] * num_classes + num_classes."),
)


def _cnn_case(rng):
    n = int(rng.integers(1, 5))
    widths = [int(v) for v in rng.integers(2, 65, size=n)]
    return widths, int(rng.choice([3, 5])), int(rng.choice([1, 3])), int(rng.integers(2, 20))


def check_cnn_params(fn, cases: int = 5, seed: int | None = None) -> Feedback:
    """Check ``fn(widths, kernel_size, in_channels, num_classes) -> int``, exactly."""
    return check(fn, _params, _cnn_case, CNN_PARAMS_MISTAKES, title="cnn_params", cases=cases,
                 atol=0, rtol=0, seed=seed)


# --- Exercise 1 · predict-then-run: the ViT under a 2 px shift ---------------------------------

def _shifted_means(record, model: str, pixels: int) -> float:
    values = [r["shifted_test_accuracy"][str(pixels)] for r in record["runs"]
              if r["model"] == model and "shifted_test_accuracy" in r]
    if not values:
        raise ValueError(f"the record has no shifted test accuracy for {model!r}")
    return float(np.mean(values))


def check_shift_prediction(prediction, record) -> Feedback:
    """Compare ``prediction`` (the ViT's test accuracy at a 2 px shift, a fraction) with the
    mean of the seeds in ``record`` (the parsed ``data_curve.json``); right within 0.1."""
    title = "Exercise 1, the ViT at 2 px"
    if (isinstance(prediction, (int, float, np.integer, np.floating))
            and not isinstance(prediction, bool) and 1 < prediction <= 100):
        return Feedback(False, f"❌ {title}: write the accuracy as a fraction between 0 and 1 "
                               f"(0.5 for 50%); got {prediction!r}.", mistake="percent")
    measured = round(_shifted_means(record, "vit", 2), 3)
    unshifted = round(_shifted_means(record, "vit", 0), 3)
    cnn = round(_shifted_means(record, "cnn", 2), 3)
    why = (f"Unshifted, the ViT scores {unshifted:.3f}; 2 px (half a patch) already cost it about "
           f"a quarter of that, while the CNN scores {cnn:.3f} at 2 px. The figure below shows "
           "1 to 4 px.")
    return compare_prediction(
        prediction, measured, title=title, atol=0.1, why=why,
        mistakes=[
            ("no_loss", unshifted,
             f"That is about its accuracy on unshifted images ({unshifted:.3f}): no loss at all. "
             "The CNN comes close to that (its features move with the image), but the ViT's "
             "position embeddings stay where they are while the garment moves (Step 2), and it "
             "never saw shifted garments in training."),
            ("chance", 0.1,
             "That is chance (1 in 10 classes). A 2 px shift moves each garment by only half a "
             "patch: it is still nearly where the position embeddings expect it, so a good part "
             "of the accuracy can survive."),
        ])


# --- Exercise 3 · predict-then-run: one more block ------------------------------------------

SMALL_CNN_LAYERS = [(3, 1), (2, 2), (3, 1), (2, 2), (3, 1)]  # conv, pool, conv, pool, conv
ONE_MORE_BLOCK = [(2, 2), (3, 1)]  # pool, conv


def measure_receptive_field(layers, length: int = 96) -> int:
    """Measure, not compute: a 1-D stack of Keras Conv1D layers with all-ones kernels of the given
    (kernel_size, stride), no padding, no bias. Input image k has a 1 at pixel k and zeros
    elsewhere; count the pixels whose 1 reaches the first unit of the last layer. (A 2x2 pooling
    sees the same pixels as a 2-wide kernel of stride 2; rows and columns are independent, so 1-D
    suffices.)"""
    import keras

    model = keras.Sequential(
        [keras.Input((length, 1))]
        + [keras.layers.Conv1D(1, k, strides=s, use_bias=False, kernel_initializer="ones")
           for k, s in layers])
    nudges = np.eye(length, dtype="float32")[..., None]  # (length, length, 1)
    out = keras.ops.convert_to_numpy(model(nudges))  # (length, positions, 1)
    return int(np.count_nonzero(out[:, 0, 0]))


def check_receptive_field_prediction(prediction) -> Feedback:
    """Compare ``prediction`` (pixels) with the measured receptive field of small_cnn plus one
    block (2x2 pooling, then a 3x3 convolution); exact."""
    measured = measure_receptive_field(SMALL_CNN_LAYERS + ONE_MORE_BLOCK)
    why = ("The pooling adds (2 - 1) x 4 = 4 px and doubles the jump to 8; the convolution then "
           "adds (3 - 1) x 8 = 16 px: 18 + 4 + 16 = 38. One unit would see more than the 28 px "
           "image (the rest is padding): every block doubles what the next one adds, while a "
           "ViT reaches all 28 px in its first block.")
    return compare_prediction(
        prediction, measured, title="Exercise 3, one more block", unit="px", why=why,
        mistakes=[
            ("no_jump", 21,
             "You added (k - 1) for each new layer as if it worked on pixels. After two poolings "
             "neighbouring units are 4 px apart (the jump); after the new pooling 8 px: each new "
             "layer adds (k - 1) * jump."),
            ("no_pooling", 26,
             "You added only the convolution, at the old jump of 4. The pooling adds (2 - 1) x 4 "
             "px itself, and it doubles the jump for the convolution above it."),
            ("jump_not_doubled", 30,
             "You added the pooling's 4 px but kept the jump at 4 for the convolution. The new "
             "pooling doubles it: the 3x3 convolution above it adds (3 - 1) x 8 px."),
            ("capped", 28,
             "The receptive field is a property of the layers, not of the image: it can be wider "
             "than the image (the unit then also sees padding). The measurement uses a 96 px line."),
            ("doubled", 36,
             "Pooling doubles the JUMP (the spacing of the units), not the receptive field: "
             "each later layer adds (k - 1) * jump to it."),
        ])


# --- Exercise 5 · interpret: the data curve -----------------------------------------------------

DATA_CURVE_OPTIONS = {
    "a": ("More seeds would narrow each point's uncertainty, but the three seeds already agree "
          "(every CNN seed is above every ViT seed at every size; the per-seed gaps are 6.1-10.3, "
          "4.1-4.3 and 3.3-3.9 points). And with ten seeds, data and steps would still grow "
          "together (160, 640 and 2,520 steps): the question would stay open."),
    "b": ("A fourth size extends the curve, and it is tempting to see where it goes, but at 20 "
          "epochs 32,000 images also make four times the steps of the 8,001-image runs (about "
          "10,000). Data and steps would still grow together, so it cannot separate them either."),
    "c": "",
    "d": ("40 epochs double the steps at EVERY size (320, 1,280 and 5,040), so data and steps "
          "still grow together across the sizes and the comparison stays confounded. (It would "
          "show whether the 20-epoch runs had converged: a useful question, but a different one.)"),
}


def check_data_curve_answer(answer) -> Feedback:
    """Multiple choice: which extra runs would separate "more data" from "more steps" in Step 5."""
    return choose(
        answer, options=DATA_CURVE_OPTIONS, correct="c", title="Exercise 5, the data curve",
        why=("With the same number of steps at every size, only the data changes between the "
             "points. If the 500-image gap then falls to about the 8,001-image gap (3-4 points), "
             "the extra steps had narrowed it; if it stays near 8 points, the data did. (Some 320 "
             "epochs on 500 images may overfit, but seeing the same few images again and again is "
             "part of what 'less data' means.)"))
