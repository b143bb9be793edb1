"""A small plain CNN, the baseline of notebook 08 (ViT vs CNN).

Three blocks of Conv2D(3x3, "same", no bias) -> BatchNormalization(momentum 0.9) -> ReLU, with
``width``, ``2 * width`` and ``4 * width`` channels, the first two followed by MaxPool(2); then
global average pooling and a Dense head:

    (batch, 28, 28, 1) -> (batch, 14, 14, w) -> (batch, 7, 7, 2w) -> (batch, 7, 7, 4w)
                       -> GAP (batch, 4w) -> Dense (batch, num_classes) logits

Its built-in assumptions (inductive bias, 帰納バイアス): locality and translation equivariance.
Parameters, with c_0 = in_channels, c_1 = w, c_2 = 2w, c_3 = 4w:
sum_i 9*c_{i-1}*c_i (convolutions) + sum_i 4*c_i (BatchNorm) + c_3*num_classes + num_classes
(the head); ``width=39`` gives 139,903, about the size of ``make_vit("fashion-small")``. BatchNorm's
momentum is 0.9 (not Keras' 0.99) so that its test-time statistics settle within the few hundred
steps of notebook 08's time-budgeted runs."""

from __future__ import annotations

import keras
from keras import layers

from . import _checks


def small_cnn(num_classes: int = 10, input_shape=(28, 28, 1), width: int = 39,
              name: str = "small_cnn") -> keras.Model:
    """A Sequential CNN of stock Keras layers: images (batch, H, W, C) -> logits (batch, classes).

    ``width`` is the number of channels of the first block (the next blocks have 2x and 4x).
    The model is built and ready to count parameters or to compile.
    """
    num_classes = _checks.positive_int("num_classes", num_classes)
    width = _checks.positive_int("width", width)
    if len(tuple(input_shape)) != 3:
        raise ValueError(f"`input_shape` must be (height, width, channels), got {input_shape!r}.")
    blocks = []
    for i, channels in enumerate((width, 2 * width, 4 * width), start=1):
        blocks += [
            layers.Conv2D(channels, 3, padding="same", use_bias=False, name=f"conv_{i}"),
            layers.BatchNormalization(momentum=0.9, name=f"bn_{i}"),
            layers.ReLU(name=f"relu_{i}"),
        ]
        if i < 3:
            blocks.append(layers.MaxPooling2D(2, name=f"pool_{i}"))
    return keras.Sequential(
        [keras.Input(tuple(input_shape)), *blocks, layers.GlobalAveragePooling2D(name="gap"),
         layers.Dense(num_classes, name="head")],
        name=name,
    )


def feature_maps(model: keras.Model, block: int = 3) -> keras.Model:
    """A model that returns the ReLU output of ``block`` (1-3) of ``small_cnn``, before any
    pooling: a feature map (batch, h, w, channels), e.g. (batch, 7, 7, 4w) for ``block=3``."""
    block = _checks.one_of("block", block, {1, 2, 3})
    return keras.Model(model.inputs[0], model.get_layer(f"relu_{block}").output)
