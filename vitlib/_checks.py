"""Argument checks that fail early with a message a learner can act on.

Every message names the argument, the value that was given and what was expected,
so the learner never has to decode a backend error from deep inside TensorFlow or JAX.
"""

from __future__ import annotations

import numbers

import numpy as np


def positive_int(name: str, value) -> int:
    """Return ``value`` as an int, or raise if it is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    return int(value)


def non_negative_int(name: str, value) -> int:
    """Return ``value`` as an int, or raise if it is not an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"`{name}` must be an integer >= 0, got {value!r}.")
    return int(value)


def positive_float(name: str, value) -> float:
    """Return ``value`` as a float, or raise if it is not a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < float("inf"):
        raise ValueError(f"`{name}` must be a finite number > 0, got {value!r}.")
    return float(value)


def probability(name: str, value) -> float:
    """Return ``value`` as a float in [0, 1), or raise."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = None
    if v is None or not 0.0 <= v < 1.0:
        raise ValueError(f"`{name}` must be a number in [0, 1), got {value!r}.")
    return v


def one_of(name: str, value, choices) -> str:
    """Raise unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {sorted(choices)}, got {value!r}.")
    return value


def pair(name: str, value) -> tuple[int, int]:
    """Accept ``n`` or ``(h, w)`` of positive ints and return ``(h, w)``."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"`{name}` must be an int or a pair (height, width), got {value!r}.")
        return positive_int(f"{name}[0]", value[0]), positive_int(f"{name}[1]", value[1])
    n = positive_int(name, value)
    return n, n


def divides(name: str, value: int, by_name: str, by: int) -> None:
    """Raise unless ``by`` divides ``value`` exactly."""
    if value % by:
        lower, upper = value - value % by, value - value % by + by
        raise ValueError(
            f"`{name}` must be divisible by `{by_name}`={by}, got {value} "
            f"(the nearest that work are {lower or upper} and {upper})."
        )


def image_batch(name: str, shape, channels: int | None = None) -> tuple:
    """Check a batch of images has shape ``(batch, height, width, channels)``."""
    shape = tuple(shape)
    if len(shape) != 4:
        raise ValueError(
            f"`{name}` must be a batch of images with shape (batch, height, width, channels) "
            f"(rank 4), got shape {shape} (rank {len(shape)}). "
            "For a single image, add a batch axis: images[None]."
        )
    if channels is not None and shape[-1] is not None and shape[-1] != channels:
        raise ValueError(
            f"`{name}` must have {channels} channel(s) in the last axis, got shape {shape} "
            f"with {shape[-1]}. Images are channels-last: (batch, height, width, channels)."
        )
    return shape


def static_shape(name: str, x) -> tuple:
    """The shape of an array or tensor as a tuple (None for sizes unknown while tracing), or a
    ValueError naming ``name`` if ``x`` has no shape (None, a list of lists, a string)."""
    shape = getattr(x, "shape", None)
    if shape is None:
        raise ValueError(f"`{name}` must be an array or tensor, got {type(x).__name__} "
                         f"{x!r:.60}. Convert it with np.asarray(...).")
    return tuple(None if d is None else int(d) for d in shape)


def float_images(name: str, x) -> None:
    """Raise unless ``x`` holds floating-point values: integer or boolean images (e.g. raw uint8
    pixels 0-255) are refused with what to do, before a backend error or a silent mis-scale."""
    import keras

    dtype = keras.backend.standardize_dtype(x.dtype)
    if not dtype.startswith(("float", "bfloat")):
        raise ValueError(
            f"`{name}` must hold floating-point pixel values, got dtype {dtype}. For raw 8-bit "
            "images (0-255) divide by 255 first: x.astype('float32') / 255 "
            "(vitlib.train.to_inputs does this for Fashion-MNIST).")


def finite(name: str, array, hint: str = "check the model's inputs and weights") -> None:
    """Raise a ValueError naming ``name`` if the NumPy ``array`` holds NaN or Inf."""
    bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise ValueError(f"`{name}` contains NaN or Inf ({bad} values): {hint}.")


def rank(name: str, shape, expected: int, layout: str) -> tuple:
    """Check a tensor's rank and say which layout was expected."""
    shape = tuple(shape)
    if len(shape) != expected:
        raise ValueError(
            f"`{name}` must have shape {layout} (rank {expected}), "
            f"got shape {shape} (rank {len(shape)})."
        )
    return shape
