"""Checkers for notebook 08 (ViT vs CNN).

- :func:`check_receptive_field`: the receptive field (受容野) of a stack of convolutions and poolings.
- :func:`check_cnn_params`: the parameter count of a plain Conv-BatchNorm-ReLU CNN, by formula.

The references below are written again here in plain Python, independently of :mod:`vitlib`.
"""

from __future__ import annotations

import numpy as np

from ._core import Feedback, Mistake, check

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
